"""Unit tests drive the core with in-memory fakes and open no socket."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from devstack.factories import DONATION_FIELD_MAP_JSON, Budget
from devstack.memory import MemoryQueue, MemorySink

from poller.drain import Drain, Settings
from poller.mapping import FieldMap, Mapper
from poller.policies import Backoff, Deadline, RateLimiter


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that opens a socket is an integration test in disguise: fail it."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)


DrainFactory = Callable[..., Drain]


@pytest.fixture
def make_drain() -> DrainFactory:
    """Build a Drain over fakes, fast: high rate limit, no long polls, short lockout."""

    def build(
        queue: MemoryQueue,
        sink: MemorySink,
        *,
        budget: Callable[[], int] | None = None,
        margin: float = 0.5,
        rps: float = 1000.0,
        merge_on: tuple[str, ...] = ("Id",),
        **settings: Any,
    ) -> Drain:
        options: dict[str, Any] = {
            "wait_time_seconds": 0,
            "batch_linger_seconds": 0.05,
            "lockout_seconds": 0.2,
        }
        options.update(settings)
        return Drain.single(
            queue=queue,
            sink=sink,
            mapper=Mapper(FieldMap.parse(DONATION_FIELD_MAP_JSON), merge_on),
            deadline=Deadline(budget or Budget(30), margin),
            limiter=RateLimiter(rps),
            settings=Settings(**options),
            backoff=Backoff(base=0.01, cap=0.02),
        )

    return build
