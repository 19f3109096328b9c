"""Fixtures of the fault tests (helpers are in faultkit.py): one moto SQS server per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devstack.stack import moto_sqs


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    with moto_sqs() as endpoint:
        yield endpoint
