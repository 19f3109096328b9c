"""Unit tests drive the core with in-memory fakes and open no socket."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from devstack.factories import DONATION_FIELD_MAP_JSON, Budget
from devstack.memory import FakeClock, MemoryQueue, MemorySink

from poller.capacity import Capacity
from poller.drain import Drain, Limits
from poller.fieldmap import FieldMap
from poller.model import Message
from poller.pacing import Backoff, Deadline, Pacer
from poller.routing import Router, single_route
from poller.writer import Destination, Writer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this folder is a unit test (`make test-unit`)."""
    for item in items:
        if item.path.is_relative_to(__file__.rsplit("/", 1)[0]):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that opens a socket is an integration test in disguise: fail it."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


#: no long polls, short waits, a short lockout
FAST = Limits(wait_time_seconds=0, linger_seconds=0.05, poll_seconds=0.005)
LOCKOUT = 0.3


def donation_router(merge_on: tuple[str, ...] = ("Id",)) -> Router:
    route = single_route(
        "appDonations00001", "Donations", FieldMap.parse(DONATION_FIELD_MAP_JSON), merge_on
    )
    return Router([route])


DrainFactory = Callable[..., Drain]


@pytest.fixture
def make_drain() -> DrainFactory:
    """A Drain over fakes, fast: a high rate, no long polls, a short lockout."""

    def build(
        queue: MemoryQueue,
        sink: MemorySink,
        *,
        seconds: float = 30,
        margin: float = 0.5,
        rps: float = 1000.0,
        merge_on: tuple[str, ...] = ("Id",),
        max_attempts: int = 3,
        suspect: Callable[[Message, Exception], bool] = lambda m, e: False,
        limits: Limits = FAST,
        pacer: Pacer | None = None,
        **options: Any,
    ) -> Drain:
        deadline = Deadline(Budget(seconds), margin)
        pacer = pacer or Pacer(Capacity(rps), lockout_seconds=LOCKOUT)
        writer = Writer(
            deadline,
            max_attempts=max_attempts,
            suspect=suspect,  # type: ignore[arg-type]
            backoff=Backoff(base=0.01, cap=0.02),
            **options,
        )
        destination = Destination("default", sink, pacer)
        return Drain(
            queue,
            donation_router(merge_on),
            {"default": destination},
            deadline,
            writer,
            limits=limits,
            max_receive_count=queue.max_receive_count,
        )

    return build


def bodies(queue: MemoryQueue) -> list[dict[str, Any]]:
    return [json.loads(b) for b in queue.bodies()]
