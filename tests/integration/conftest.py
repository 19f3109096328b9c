"""Integration tests: real boto3 over HTTP to moto's SQS server, real pyairtable over HTTP to
the project's Airtable emulator, and the real Lambda handler (helpers: harness.py).

Every test collected under this folder is marked `integration`, and `slow` when it is
named in SLOW (it takes more than a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.stack import LocalStack, default_emulator_config, moto_sqs
from harness import LOCKOUT_SECONDS, Container

HERE = Path(__file__).resolve().parent
#: Tests that take more than a few seconds: a module's file name (all of its tests) or
#: "file::test" (every parametrization of that test).
SLOW = frozenset(
    {
        "test_cli_local_stack.py",
        "test_end_to_end.py::test_drains_a_queue_with_duplicates_and_poison_exactly_once",
        "test_end_to_end.py::test_the_token_never_appears_in_the_output",
        "test_log_safety.py",
        "test_observability.py",
        "test_routes.py::test_every_event_type_and_envelope_lands_once_in_its_own_table",
        "test_systemic_conditions.py",
        "test_world_changes.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what this folder holds (the hook sees every collected item: only ours)."""
    for item in items:
        path = Path(item.path).resolve()
        if not path.is_relative_to(HERE):
            continue
        item.add_marker(pytest.mark.integration)
        name = getattr(item, "originalname", item.name)
        if path.name in SLOW or f"{path.name}::{name}" in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """One moto server for the session; every test gets its own queues."""
    with moto_sqs() as endpoint:
        yield endpoint


@pytest.fixture
def stack(sqs_endpoint: str) -> Iterator[LocalStack]:
    """Fresh queues and a fresh emulator with Airtable's real 5 req/s limit and a short lockout."""
    config = default_emulator_config(lockout_seconds=LOCKOUT_SECONDS)
    with LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config) as local:
        yield local


@pytest.fixture
def invoke(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Container:
    """The real handler on `stack`, in this process: `invoke(timeout_s=60, **env)`."""
    return Container(stack, monkeypatch)
