"""Unit tests drive the core with in-memory fakes and open no socket."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from devstack.factories import DONATION_FIELD_MAP_JSON, Budget
from devstack.memory import MemoryQueue, MemorySink

from poller.drain import Destination, Drain, Settings
from poller.mapping import FieldMap, Mapper
from poller.model import DEFAULT_ROUTE, Message, Record
from poller.policies import Backoff, Deadline, RateLimiter


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that opens a socket is an integration test in disguise: fail it."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)


DrainFactory = Callable[..., Drain]

#: no long polls, a short linger and a short lockout
FAST: dict[str, Any] = {
    "wait_time_seconds": 0,
    "batch_linger_seconds": 0.05,
    "lockout_seconds": 0.2,
}


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
        options = {**FAST, **settings}
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


def routed(mapper: Callable[[Message], Record]) -> Callable[[Message], Record]:
    """The donation mapper, routing each record by the body's "Table" key (not a mapped
    field), like a routes config would."""

    def route(message: Message) -> Record:
        record = mapper(message)
        table = json.loads(message.body).get("Table", DEFAULT_ROUTE)
        return dataclasses.replace(record, route=table)

    return route


@pytest.fixture
def make_routed_drain() -> DrainFactory:
    """Build a Drain over several destinations: {route: (sink, pacer)} or Destination values."""

    def build(
        queue: MemoryQueue,
        destinations: Mapping[str, Any],
        *,
        guard: Any = None,
        budget: Callable[[], int] | None = None,
        margin: float = 0.5,
        merge_on: tuple[str, ...] = ("Id",),
        **settings: Any,
    ) -> Drain:
        wired = {
            name: d if isinstance(d, Destination) else Destination(name, *d)
            for name, d in destinations.items()
        }
        return Drain(
            queue=queue,
            mapper=routed(Mapper(FieldMap.parse(DONATION_FIELD_MAP_JSON), merge_on)),
            deadline=Deadline(budget or Budget(30), margin),
            destinations=wired,
            settings=Settings(**{**FAST, **settings}),
            guard=guard,
            backoff=Backoff(base=0.01, cap=0.02),
        )

    return build
