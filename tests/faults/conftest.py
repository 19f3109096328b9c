"""Fixtures of the fault tests (helpers are in faultkit.py): one moto SQS server per module.

Every test collected under this folder is marked `integration`, `faults` and `slow`: each
runs the poller in its own process, through real HTTP, for several seconds at least."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.stack import moto_sqs

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what this folder holds (the hook sees every collected item: only ours)."""
    for item in items:
        if Path(item.path).resolve().is_relative_to(HERE):
            for marker in (pytest.mark.integration, pytest.mark.faults, pytest.mark.slow):
                item.add_marker(marker)


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    with moto_sqs() as endpoint:
        yield endpoint
