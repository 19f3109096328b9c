"""The local stack: moto's server (SQS and Secrets Manager) and the Airtable emulator on
loopback, with real HTTP.

Used by `make run`, the integration tests, the built-artifact check and the benchmark.
No AWS account and no Docker: boto3 talks to moto through `AWS_ENDPOINT_URL_SQS` and
`AWS_ENDPOINT_URL_SECRETS_MANAGER` (botocore's name: the service id "Secrets Manager" with
the space turned into an underscore), and pyairtable talks to the emulator through
`AIRTABLE_API_URL`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from airtable_emulator import ALL_SCOPES, Emulator, EmulatorConfig, donations_schema

from poller_ops import admin

from .factories import DONATION_FIELD_MAP_JSON

REGION = "us-east-1"
ACCOUNT = "123456789012"
BASE_ID = "appDonations00001"
TABLE = "Donations"
TOKEN = "patLocalDevToken"
#: Every scope, schema.bases:write included, so that `poller init-tables` works locally.
SCOPES = ALL_SCOPES
#: moto accepts any credentials; these keep boto3 from looking for real ones.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def moto_client(service: str, endpoint: str, region: str = REGION) -> Any:
    """A boto3 client of `service` for moto's server (which serves every service it mocks),
    with moto's test credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def sqs_client(endpoint: str) -> Any:
    return moto_client("sqs", endpoint)


def secrets_client(endpoint: str) -> Any:
    return moto_client("secretsmanager", endpoint)


class PortTaken(OSError):
    """A port the local stack needs is held by another program (often another `make serve`)."""

    def __init__(self, port: int, service: str, variable: str) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} is taken")
        self.port, self.service, self.variable = port, service, variable

    def __str__(self) -> str:
        return (
            f"port {self.port} ({self.service}) is taken by another program: stop the other "
            f"local stack (a `make serve` still running?) or set {self.variable} to a free port"
        )


def _listening_socket(host: str, port: int, service: str, variable: str) -> socket.socket:
    """A socket bound and listening on host:port, or `PortTaken` at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(port, service, variable) from None
        raise
    return sock


@contextlib.contextmanager
def moto_sqs(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """moto's server (SQS, Secrets Manager, CloudWatch, ...) in a thread of this process;
    yields its endpoint URL. The port is bound here, before the thread starts, so that a
    taken port raises `PortTaken` at once (moto's own ThreadedMotoServer binds in its thread
    and, when that fails, waits forever)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per SQS call is noise
    sock = _listening_socket(host, port, "moto's SQS", "DEVSTACK_SQS_PORT")
    try:
        server = make_server(
            host,
            sock.getsockname()[1],
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=sock.fileno(),
        )
    finally:
        sock.close()  # the server holds its own duplicate of the descriptor
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    try:
        bound_host, bound_port = server.server_address[:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def airtable_emulator(emulator: Emulator, host: str, port: int) -> Iterator[str]:
    """The emulator served on host:port; `PortTaken` at once when the port is held."""
    try:
        served = emulator.serve(host=host, port=port)
        url = served.__enter__()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(port, "the Airtable emulator", "DEVSTACK_AIRTABLE_PORT") from None
        raise
    try:
        yield url
    finally:
        served.__exit__(None, None, None)


def default_emulator_config(**overrides: Any) -> EmulatorConfig:
    options: dict[str, Any] = {"bases": {BASE_ID: donations_schema()}, "tokens": {TOKEN: SCOPES}}
    options.update(overrides)
    return EmulatorConfig(**options)


@dataclass
class LocalStack:
    """A source queue with a DLQ (redrive after `max_receive_count`) and the Donations base."""

    sqs_endpoint: str
    airtable_url: str
    emulator: Emulator
    queue_url: str
    dlq_url: str
    sqs: Any = field(repr=False)
    #: Secrets Manager on the same moto server.
    secrets: Any = field(default=None, repr=False)

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        *,
        sqs_endpoint: str | None = None,
        host: str = "127.0.0.1",
        sqs_port: int = 0,
        airtable_port: int = 0,
        emulator_config: EmulatorConfig | None = None,
        queue_name: str | None = None,
        fifo: bool = False,
        max_receive_count: int = 5,
        visibility_timeout: int = 30,
    ) -> Iterator[LocalStack]:
        """Start what is not given, create the queues, and tear everything down after."""
        with contextlib.ExitStack() as stack:
            endpoint = sqs_endpoint or stack.enter_context(moto_sqs(host=host, port=sqs_port))
            emulator = Emulator(emulator_config or default_emulator_config())
            url = stack.enter_context(airtable_emulator(emulator, host, airtable_port))
            if host == "0.0.0.0":  # reachable from anywhere; talk to it over loopback here
                endpoint = endpoint.replace("0.0.0.0", "127.0.0.1")
                url = url.replace("0.0.0.0", "127.0.0.1")
            sqs = sqs_client(endpoint)
            name = queue_name or f"donations-{uuid.uuid4().hex[:8]}"
            queue_url, dlq_url = create_queues(
                sqs, name, fifo, max_receive_count, visibility_timeout
            )
            yield cls(endpoint, url, emulator, queue_url, dlq_url, sqs, secrets_client(endpoint))

    def poller_env(self, **overrides: str | None) -> dict[str, str]:
        """Every environment variable the poller needs to drain this stack.

        `AIRTABLE_TOKEN=None, AIRTABLE_TOKEN_SECRET_ARN=arn` (from `create_token_secret`)
        makes the poller read the token from moto's Secrets Manager (exactly one of the two
        may be set)."""
        return poller_env(
            self.sqs_endpoint, self.queue_url, self.dlq_url, self.airtable_url, **overrides
        )

    def create_token_secret(self, token: str = TOKEN, *, name: str | None = None) -> str:
        """Create a Secrets Manager secret in moto holding `token` (the bare string, as the
        deployed stack's secret holds it); return its ARN."""
        secret_name = name or f"airtable-token-{uuid.uuid4().hex[:8]}"
        return str(self.secrets.create_secret(Name=secret_name, SecretString=token)["ARN"])

    def put_token(self, secret_arn: str, token: str) -> str:
        """Rotate: put `token` into the secret as its new current value; return the new
        version id. A poller that cached the old value still holds it until it reads
        again (Powertools caches; `force_fetch=True` reads past the cache)."""
        answer = self.secrets.put_secret_value(SecretId=secret_arn, SecretString=token)
        return str(answer["VersionId"])

    def send_messages(
        self, bodies: Sequence[str | dict[str, Any]], *, group_id: str | None = None
    ) -> list[str]:
        """Send in batches (as `poller send` does); return the message ids."""
        texts = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
        return admin.send(self.sqs, self.queue_url, texts, group_id=group_id)

    def counts(self, queue_url: str | None = None) -> dict[str, int]:
        """Visible, in-flight and delayed messages (moto's counts are exact)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
        }

    def dead_letters(self) -> list[tuple[str, dict[str, str]]]:
        """Every DLQ message as (body, string attributes), read without consuming them."""
        return peek(self.sqs, self.dlq_url)

    def rows(self) -> list[dict[str, Any]]:
        return self.emulator.records(BASE_ID, TABLE)


def poller_env(
    sqs_endpoint: str, queue_url: str, dlq_url: str, airtable_url: str, **overrides: str | None
) -> dict[str, str]:
    """What the deployed function would get, pointed at local services (None drops one).

    `sqs_endpoint` is moto's server, which answers Secrets Manager, SSM and S3 too."""
    env: dict[str, str | None] = {
        **AWS_ENV,
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": sqs_endpoint,
        "AWS_ENDPOINT_URL_SSM": sqs_endpoint,
        "AWS_ENDPOINT_URL_S3": sqs_endpoint,
        "QUEUE_URL": queue_url,
        "DEAD_LETTER_QUEUE_URL": dlq_url,
        "AIRTABLE_API_URL": airtable_url,
        "AIRTABLE_BASE_ID": BASE_ID,
        "AIRTABLE_TABLE": TABLE,
        "AIRTABLE_TOKEN": TOKEN,
        "FIELD_MAP": DONATION_FIELD_MAP_JSON,
        "MERGE_ON": "Id",
        "WAIT_TIME_SECONDS": "1",
        "POWERTOOLS_SERVICE_NAME": "sqs-airtable-poller",
        "POWERTOOLS_METRICS_NAMESPACE": "SqsAirtablePoller",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def create_queues(
    sqs: Any,
    name: str,
    fifo: bool = False,
    max_receive_count: int = 5,
    visibility_timeout: int = 30,
) -> tuple[str, str]:
    suffix = ".fifo" if fifo else ""
    fifo_attributes = {"FifoQueue": "true"} if fifo else {}
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq{suffix}",
        Attributes={"MessageRetentionPeriod": "1209600", **fifo_attributes},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{name}{suffix}",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
            **fifo_attributes,
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def peek(sqs: Any, queue_url: str, limit: int = 1000) -> list[tuple[str, dict[str, str]]]:
    """Messages as (body, string attributes), read without consuming them (`poller peek-dlq`'s
    reader: each is made visible again at once and read once per call)."""
    return [
        (
            raw["Body"],
            {k: v.get("StringValue", "") for k, v in raw.get("MessageAttributes", {}).items()},
        )
        for raw in admin.peek_raw(sqs, queue_url, limit=limit, wait_seconds=0)
    ]
