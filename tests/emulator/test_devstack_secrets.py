"""The local stack's Secrets Manager helpers, through moto's server over real HTTP.

Warm-container tests rotate the token in a secret and in the emulator; these tests show
that the helpers do what they say and that a poller configured with the secret's ARN
reads it from moto, not from real AWS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from devstack.stack import TOKEN, LocalStack, moto_sqs

ROTATED = "patRotatedLocalToken"


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with moto_sqs() as endpoint, LocalStack.start(sqs_endpoint=endpoint) as local:
        yield local


def test_poller_env_points_botocore_secrets_manager_at_moto(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a secret created in moto, and only the poller's environment
    arn = stack.create_token_secret()
    assert arn.startswith("arn:aws:secretsmanager:us-east-1:")
    for name, value in stack.poller_env().items():
        monkeypatch.setenv(name, value)
    # WHEN a client is built with no endpoint of its own (as the poller's Powertools does)
    client = boto3.client("secretsmanager")
    # THEN botocore sends it to moto (the variable's name is AWS_ENDPOINT_URL_SECRETS_MANAGER)
    assert stack.poller_env()["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == stack.sqs_endpoint
    assert client.get_secret_value(SecretId=arn)["SecretString"] == TOKEN
    # WHEN the token is rotated in the secret
    version = stack.put_token(arn, ROTATED)
    # THEN the secret's current value is the new token
    current = client.get_secret_value(SecretId=arn)
    assert current["SecretString"] == ROTATED and current["VersionId"] == version


def test_a_poller_run_reads_its_token_from_the_moto_secret(stack: LocalStack) -> None:
    # GIVEN a donation in the queue, the token only in a moto secret, and the emulator
    # accepting only a rotated token that the secret holds after put_token
    stack.send_messages([{"Id": "d-1", "DonationAmount": 25.0}])
    arn = stack.create_token_secret()
    stack.put_token(arn, ROTATED)
    stack.emulator.rotate_token(TOKEN, ROTATED)
    env = stack.poller_env(
        AIRTABLE_TOKEN=None,
        AIRTABLE_TOKEN_SECRET_ARN=arn,
        POWERTOOLS_METRICS_DISABLED="true",
    )
    # WHEN the handler runs in its own process, as Lambda would run it
    run = subprocess.run(
        [sys.executable, "-m", "devstack.invoke", "--timeout", "30"],
        env={k: v for k, v in os.environ.items() if not k.startswith("AIRTABLE_")} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN the row was written with the token read from moto, which no output shows
    assert run.returncode == 0, run.stdout + run.stderr
    assert [row["fields"]["Id"] for row in stack.rows()] == ["d-1"]
    assert ROTATED not in run.stdout + run.stderr
