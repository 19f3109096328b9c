"""DEBUG logging in a warm container never leaks the token or a message body.

One process, the real `lambda_handler` called again and again. The token is read from a
Secrets Manager secret in moto's server over real boto3 HTTP (`AWS_ENDPOINT_URL_SECRETS_MANAGER`),
the rows go to the Airtable emulator through the real pyairtable. Every byte the run writes is
captured: the Powertools handler's stream, a root handler at DEBUG (what Lambda's
`AWS_LAMBDA_LOG_LEVEL=DEBUG` installs), and the process's stdout/stderr (`capfd`)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from devstack import LambdaContext, donation
from devstack.stack import AWS_ENV, REGION, SCOPES, LocalStack, default_emulator_config
from harness import EMPTY, LOCKOUT_SECONDS, pacers_with_lockout

from poller import handler, logs, runtime
from poller_ops.samples import SCHEDULED_EVENT

#: Shaped like real Airtable personal access tokens (pat + 14 + "." + 64 hex).
TOKEN = "patLogSafety00001." + hashlib.sha256(b"first").hexdigest()
ROTATED_TOKEN = "patLogSafety00002." + hashlib.sha256(b"rotated").hexdigest()
RUNS = 3
PER_RUN = 4


@dataclass
class World:
    stack: LocalStack
    secrets: Any
    secret_arn: str
    #: what the Powertools handler (every poller line) wrote
    powertools: io.StringIO
    capfd: pytest.CaptureFixture[str]
    marker: str

    def send_run(self, run: int) -> list[str]:
        """PER_RUN valid donations and one poison message, each recognisable by the marker."""
        bodies = [
            json.dumps(donation(run * 100 + n, DonorDisplayName=f"{self.marker} donor {run}.{n}"))
            for n in range(PER_RUN)
        ]
        bodies.append(f"{self.marker} poison {run}: not JSON")
        self.stack.send_messages(bodies)
        return bodies

    def invoke(self) -> dict[str, Any]:
        return handler.lambda_handler(SCHEDULED_EVENT, LambdaContext(timeout_ms=60_000))

    def output(self) -> str:
        """Every byte written so far (the fd capture is drained, so call it once per test)."""
        captured = self.capfd.readouterr()
        return self.powertools.getvalue() + captured.out + captured.err


@pytest.fixture
def world(
    sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Iterator[World]:
    """A new container: queues with maxReceiveCount 3, an emulator that accepts the token
    (a test rotates it with `emulator.rotate_token`), and the token in a Secrets Manager secret."""
    config = default_emulator_config(lockout_seconds=LOCKOUT_SECONDS, tokens={TOKEN: SCOPES})
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint, emulator_config=config, max_receive_count=3
    ) as stack:
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=sqs_endpoint,
            region_name=REGION,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        arn = secrets.create_secret(
            Name=f"airtable-token-{uuid.uuid4().hex[:8]}",
            SecretString=json.dumps({"token": TOKEN}),
        )["ARN"]
        env = stack.poller_env(
            POWERTOOLS_METRICS_DISABLED="true",
            AIRTABLE_TOKEN_SECRET_ARN=arn,
            AWS_ENDPOINT_URL_SECRETS_MANAGER=sqs_endpoint,
        )
        env.pop("AIRTABLE_TOKEN")
        monkeypatch.delenv("AIRTABLE_TOKEN", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(runtime, "Pacer", pacers_with_lockout(LOCKOUT_SECONDS))
        parameters.clear_caches()  # a new container: no secret cached yet
        stream_handler = handler.logger.registered_handler
        root, core = logging.getLogger(), logging.getLogger("poller")
        saved = (stream_handler.stream, handler.logger.log_level, core.level, root.level)
        saved_root_handlers = list(root.handlers)
        libraries = [logging.getLogger(name) for name in logs.LIBRARY_LOGGERS]
        saved_libraries = [(lg, lg.level, list(lg.handlers), lg.propagate) for lg in libraries]
        saved_filters = list(stream_handler.filters)
        stream_handler.stream = io.StringIO()  # assigned: setStream would flush the old one
        try:
            yield World(stack, secrets, arn, stream_handler.stream, capfd, uuid.uuid4().hex)
        finally:
            stream_handler.stream = saved[0]
            handler.logger.setLevel(saved[1])
            core.setLevel(saved[2])
            root.setLevel(saved[3])
            root.handlers = saved_root_handlers
            for library, level, handlers, propagate in saved_libraries:
                library.setLevel(level)
                library.handlers, library.propagate = handlers, propagate
            stream_handler.filters = saved_filters
            parameters.clear_caches()


def debug_through(switch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn DEBUG on the way an operator would."""
    if switch == "POWERTOOLS_LOG_LEVEL":
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
        handler.logger.setLevel(None)  # what the Logger reads from the environment at cold start
        logging.getLogger("poller").setLevel(logging.DEBUG)
    else:  # Lambda's log-level control: the root logger at DEBUG with the runtime's handler
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)
        root.addHandler(logging.StreamHandler(sys.stderr))


@pytest.mark.parametrize("switch", ["POWERTOOLS_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"])
def test_debug_logging_leaks_neither_the_token_nor_a_body(world, monkeypatch, switch):
    # GIVEN DEBUG logging switched on, and a container started by a run on an empty queue
    # (before it, this process's own producer would log its bodies through botocore at DEBUG)
    debug_through(switch, monkeypatch)
    assert world.invoke()["received"] == 0
    sent: list[str] = []
    for run in range(RUNS):
        sent += world.send_run(run)
        # WHEN the scheduled run fires
        summary = world.invoke()
        assert summary["written"] == PER_RUN and summary["dead_lettered"] == 1
    out = world.output()
    # THEN every valid message is a row once, the poison is in the DLQ, the queue is empty
    assert len(world.stack.rows()) == RUNS * PER_RUN
    assert len(world.stack.dead_letters()) == RUNS
    assert world.stack.counts() == EMPTY
    # AND DEBUG was still on after the runs (the poller's own loggers have nothing to say there)
    switched = handler.logger if switch == "POWERTOOLS_LOG_LEVEL" else logging.getLogger()
    assert switched.isEnabledFor(logging.DEBUG)
    # AND not one byte of the token, of a body, or of a value only a body holds, was written
    assert TOKEN not in out and TOKEN.split(".")[1][:16] not in out
    for body in sent:
        assert body not in out
    assert world.marker not in out


def test_wire_debug_shows_the_wire_and_still_masks_the_token_even_after_a_rotation(
    world, monkeypatch
):
    # GIVEN wire debugging asked for explicitly, and DEBUG through the root logger too
    monkeypatch.setenv("WIRE_DEBUG", "true")
    debug_through("AWS_LAMBDA_LOG_LEVEL", monkeypatch)
    assert world.invoke()["received"] == 0  # cold start on an empty queue
    world.send_run(0)
    assert world.invoke()["written"] == PER_RUN
    before_rotation = len(world.powertools.getvalue())
    # WHEN the secret is rotated and Airtable refuses the old token: the warm container reads
    # the secret again (past Powertools' cache) before its next run
    world.secrets.put_secret_value(
        SecretId=world.secret_arn, SecretString=json.dumps({"token": ROTATED_TOKEN})
    )
    world.stack.emulator.rotate_token(TOKEN, ROTATED_TOKEN)
    world.send_run(1)
    assert world.invoke()["written"] == PER_RUN
    out = world.output()
    # THEN botocore's DEBUG lines are there, the Secrets Manager responses among them, before
    # the rotation and after it, each with the token masked
    logged = world.powertools.getvalue()

    def secret_reads(text: str) -> list[dict[str, Any]]:
        wire = [json.loads(x) for x in text.splitlines() if '"botocore' in x]
        assert any(line["level"] == "DEBUG" for line in wire)
        return [
            x
            for x in wire
            if str(x["message"]).startswith("Response body") and "SecretString" in x["message"]
        ]

    before, after = secret_reads(logged[:before_rotation]), secret_reads(logged[before_rotation:])
    assert before and after
    assert all(logs.MASK in str(x["message"]) for x in before + after)
    # AND neither token is in any byte of the output
    for token in (TOKEN, ROTATED_TOKEN):
        assert token not in out and token.split(".")[1][:16] not in out
    assert len(world.stack.rows()) == 2 * PER_RUN


def test_a_token_in_an_error_message_is_masked(world, monkeypatch):
    # GIVEN the shipped mapping, which converts amounts to currency, and a message whose amount
    # holds the token (a producer bug): the conversion error that dead-letters it quotes it
    monkeypatch.setenv("FIELD_MAP", "field_maps/donations.json")
    debug_through("POWERTOOLS_LOG_LEVEL", monkeypatch)
    world.stack.send_messages([donation(7, DonationAmount=TOKEN)])
    # WHEN the run dead-letters it
    summary = world.invoke()
    out = world.output()
    # THEN the reason is logged, with the token masked
    assert summary["dead_lettered"] == 1
    [line] = [
        json.loads(x)
        for x in world.powertools.getvalue().splitlines()
        if '"dead-lettering message"' in x
    ]
    assert "cannot convert str" in line["reason"] and logs.MASK in line["reason"]
    assert TOKEN[:25] not in out


def test_metrics_disabled_prints_no_emf_not_even_the_cold_start_line(world, monkeypatch):
    # GIVEN POWERTOOLS_METRICS_DISABLED=true (the fixture's env) in a brand-new container
    from aws_lambda_powertools.metrics.provider import cold_start

    monkeypatch.setattr(cold_start, "is_cold_start", True)
    world.send_run(0)
    # WHEN the cold run and a warm one finish
    world.invoke()
    world.invoke()
    # THEN no EMF document was printed, the ColdStart one included
    assert '"_aws"' not in world.output()
    assert len(world.stack.rows()) == PER_RUN
