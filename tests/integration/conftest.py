"""Integration tests: real boto3 over HTTP to moto's SQS server, real pyairtable over HTTP to
the project's Airtable emulator, and the real Lambda handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack import LambdaContext
from devstack.stack import LocalStack, default_emulator_config, moto_sqs

SCHEDULED_EVENT = {
    "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-24T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/poller-schedule"],
    "detail": {},
}


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """One moto server for the session; every test gets its own queues."""
    with moto_sqs() as endpoint:
        yield endpoint


@pytest.fixture
def stack(sqs_endpoint: str) -> Iterator[LocalStack]:
    """Fresh queues and a fresh emulator with Airtable's real 5 req/s limit and a short lockout."""
    config = default_emulator_config(lockout_seconds=1.0)
    with LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config) as local:
        yield local


Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def invoke(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Call the real handler with the scheduled event, after setting the poller's environment."""

    def call(timeout_s: float = 60, **env: str) -> dict[str, Any]:
        for name, value in stack.poller_env(POWERTOOLS_METRICS_DISABLED="true", **env).items():
            monkeypatch.setenv(name, value)
        for name, value in env.items():
            if value == "":
                monkeypatch.delenv(name, raising=False)
        from poller.handler import lambda_handler

        return lambda_handler(SCHEDULED_EVENT, LambdaContext(timeout_ms=int(timeout_s * 1000)))

    return call
