"""What the integration tests share: the real handler called again and again in this process
(a warm Lambda container), the log lines it wrote, and facts read from moto's server
without spending a receive.

The poller waits out Airtable's 30 s lockout after a 429: a fact, not a setting. These
tests shrink the lockout on both sides, the emulator's (`default_emulator_config(
lockout_seconds=...)`) and the one of the pacers the runtime builds (`Container`), so that
a 429 costs a second, not half a minute, and the poller never waits less than the emulator
locks it out.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from devstack import LambdaContext
from devstack.mirror import BASE_ID, Event, routes
from devstack.stack import ACCOUNT, REGION, LocalStack

from poller import runtime
from poller.capacity import Capacity
from poller.errors import RunFailedError
from poller.pacing import Pacer
from poller_ops.samples import SCHEDULED_EVENT

#: The emulator's lockout in these tests, and what the poller's pacers wait after a 429.
LOCKOUT_SECONDS = 1.0
EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}


def pacers_with_lockout(seconds: float) -> type[Pacer]:
    """A `Pacer` that waits `seconds` after a 429 instead of Airtable's 30 s."""

    class ShortLockoutPacer(Pacer):
        def __init__(self, capacity: Capacity, **kwargs: Any) -> None:
            kwargs.setdefault("lockout_seconds", seconds)
            super().__init__(capacity, **kwargs)

    return ShortLockoutPacer


class Container:
    """The real `lambda_handler` on `stack`, with the poller's environment plus `env` (a value
    of None or "" unsets a variable). The environment persists between calls, and so does
    the handler's runtime: every call after the first is a warm start.

    `container(**env)` sets more variables and invokes, raising what the handler raises;
    `container.run()` returns a failed run's summary too, with `raised` (the error's text).
    Every JSON line the handler logged is in `lines`."""

    def __init__(
        self,
        stack: LocalStack,
        monkeypatch: pytest.MonkeyPatch,
        *,
        lockout_seconds: float = LOCKOUT_SECONDS,
        **env: str | None,
    ) -> None:
        self.stack = stack
        self.monkeypatch = monkeypatch
        self.env: dict[str, str | None] = {"POWERTOOLS_METRICS_DISABLED": "true"}
        self.lines: list[dict[str, Any]] = []
        monkeypatch.setattr(runtime, "Pacer", pacers_with_lockout(lockout_seconds))
        self.set(**env)

    def set(self, **env: str | None) -> None:
        self.env.update(env)
        for name, value in self.stack.poller_env(**self.env).items():
            self.monkeypatch.setenv(name, value)
        for name, value in self.env.items():
            if not value:
                self.monkeypatch.delenv(name, raising=False)

    def __call__(self, timeout_s: float = 60, **env: str | None) -> dict[str, Any]:
        if env:
            self.set(**env)
        from poller.handler import lambda_handler

        context = LambdaContext(timeout_ms=int(timeout_s * 1000))
        with self._captured():
            return lambda_handler(SCHEDULED_EVENT, context)

    def run(self, timeout_s: float = 60, **env: str | None) -> dict[str, Any]:
        try:
            return self(timeout_s, **env)
        except RunFailedError as failed:
            return {**failed.summary, "raised": str(failed)}

    def logged(self, message: str) -> list[dict[str, Any]]:
        """The lines whose message starts with `message`."""
        return [line for line in self.lines if str(line.get("message", "")).startswith(message)]

    @contextmanager
    def _captured(self) -> Iterator[None]:
        """Every line the handler and the core wrote, through the Powertools handler itself
        (its JSON formatter and its filters), read from its stream."""
        from poller.handler import logger

        stream_handler = logger.registered_handler
        previous, buffer = stream_handler.stream, io.StringIO()
        stream_handler.stream = buffer  # assigned: setStream would flush the old stream
        try:
            yield
        finally:
            stream_handler.stream = previous
            self.lines += [json.loads(x) for x in buffer.getvalue().splitlines() if x.strip()]


def on_first(
    world: LocalStack,
    matches: Callable[[Any], bool],
    act: Callable[[], None],
    then: Callable[[], None] | None = None,
) -> None:
    """When the first request that `matches` arrives at the emulator: `act`, serve it, and
    `then` (if given); every other request is served as usual."""
    emulator = world.emulator
    inner = emulator.handle

    def handle(request: Any) -> Any:
        if not matches(request):
            return inner(request)
        emulator.handle = inner
        act()
        try:
            return inner(request)
        finally:
            if then is not None:
                then()

    emulator.handle = handle


def failing_once(world: LocalStack, matches: Callable[[Any], bool], base_id: str) -> None:
    """The first request that `matches` meets an outage of `base_id` (a 503 with an HTML
    page); the requests before and after it are served as usual."""
    outage = world.emulator.set_outage
    on_first(
        world,
        matches,
        lambda: outage(base_id, True, status=503, scope="data"),
        then=lambda: outage(base_id, False),
    )


def receive_counts(stack: LocalStack) -> list[int]:
    """Each message's ApproximateReceiveCount in the source queue, read from moto's server in
    this process (receiving them would spend a count)."""
    from moto.sqs.models import sqs_backends

    name = stack.queue_url.rsplit("/", 1)[-1]
    queue = sqs_backends[ACCOUNT][REGION].get_queue(name)
    return sorted(m.approximate_receive_count for m in queue._messages)


def untouched(stack: LocalStack, count: int) -> bool:
    """`count` messages wait, none was ever received, and the DLQ is empty."""
    return (
        stack.counts() == {**EMPTY, "visible": count}
        and receive_counts(stack) == [0] * count
        and stack.dead_letters() == []
    )


def rows_by_id(stack: LocalStack) -> dict[str, dict[str, Any]]:
    """The Donations rows by Id; fails if one Id is on two rows."""
    rows = stack.rows()
    by_id = {r["fields"]["Id"]: r["fields"] for r in rows}
    assert len(by_id) == len(rows), "a donation was written twice"
    return by_id


# -- the mirror's routes ------------------------------------------------------------
def mirror_runs(
    world: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, Any]]:
    """The mirror's routes (`devstack.mirror.routes`) on `world`: `run()` invokes the real
    handler in this process (a warm container), `run(cold=True)` starts a new one first."""
    env = world.poller_env(POWERTOOLS_METRICS_DISABLED="true", ROUTES=json.dumps(routes()))
    for name in ("AIRTABLE_BASE_ID", "AIRTABLE_TABLE", "FIELD_MAP", "MERGE_ON"):
        env.pop(name, None)
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def invoke(cold: bool = False) -> dict[str, Any]:
        from poller import handler

        if cold:
            handler.runtime.cache_clear()
        try:
            return handler.lambda_handler(SCHEDULED_EVENT, LambdaContext(timeout_ms=120_000))
        except RunFailedError as failed:
            return {**failed.summary, "raised": str(failed)}

    return invoke


def send(world: LocalStack, *events: Event) -> None:
    for event in events:
        world.sqs.send_message(QueueUrl=world.queue_url, **event.message())


def rows(world: LocalStack, table: str) -> list[dict[str, Any]]:
    return [r["fields"] | {"_id": r["id"]} for r in world.emulator.records(BASE_ID, table)]


def donation(n: int, version: int, amount: float, fundraiser: str = "fr-1", **extra: Any) -> Event:
    kind = "DonationCreated" if version == 1 else "DonationUpdated"
    return Event(
        kind,
        {
            "Id": f"d{n}",
            "DonationAmount": amount,
            "Status": "paid",
            "FundraiserId": fundraiser,
            "Version": version,
            **extra,
        },
    )


def by_id(world: LocalStack) -> dict[str, dict[str, Any]]:
    found = {r["Id"]: r for r in rows(world, "Donations")}
    assert len(found) == len(rows(world, "Donations")), "a donation has two rows"
    return found


def with_routes(monkeypatch: pytest.MonkeyPatch, change: Callable[[dict[str, Any]], None]) -> None:
    """The contract's routes, changed by `change` (a route by name: `contract["donations"]`)."""
    contract = routes()
    change({r["name"]: r for r in contract["routes"]})
    monkeypatch.setenv("ROUTES", json.dumps(contract))


def hard_delete(contract: dict[str, Any]) -> None:
    """For `with_routes`: the delete route without deleted_field and version (a hard delete
    leaves no row to hold a version)."""
    del contract["donation-deleted"]["deleted_field"], contract["donation-deleted"]["version"]


def dead_letter_missing_links(contract: dict[str, Any]) -> None:
    """For `with_routes`: a donation whose fundraiser the Fundraisers table lacks is poison
    (`if_missing: dead_letter`), instead of getting a stub row."""
    contract["donations"]["fields"]["FundraiserId"]["if_missing"] = "dead_letter"
