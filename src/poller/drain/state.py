"""What the parts of one run share: settings, the summary, and the run's state under one lock.

The receiver, the assembler, the writers and the settler run on different threads. Whatever
more than one of them reads or writes is in `RunState`, guarded by its one condition
variable (`cond`, re-entrant); each part keeps the rest to itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..model import Message

StopReason = Literal["empty", "deadline", "error", "systemic"]

#: SQS's batch size for ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch.
SQS_BATCH = 10


@dataclass(frozen=True)
class Settings:
    """What the core needs to know; built from `config.Tuning`."""

    wait_time_seconds: int = 1
    #: requests in flight at once per pacer (per base)
    max_in_flight: int = 4
    max_attempts: int = 4
    dead_letter_after_receives: int = 4
    batch_linger_seconds: float = 1.0
    max_buffered: int = 100
    lockout_seconds: float = 30.0
    fifo: bool = False


@dataclass
class RunSummary:
    """What one run confirmed. Every count is of confirmed outcomes, never attempts.

    `stopped_routes` maps each route found systemically broken to the error's text;
    `pacing_rps` is the lowest `effective_rps` of the destinations' pacers at the end."""

    received: int = 0
    written: int = 0
    created: int = 0
    updated: int = 0
    superseded: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    released: int = 0
    failed: int = 0
    delete_failures: int = 0
    batches: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    elapsed_ms: int = 0
    stopped_because: StopReason = "empty"
    error: str | None = None
    stopped_routes: dict[str, str] = field(default_factory=dict)
    pacing_rps: float = 0.0
    batch_latency_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k != "batch_latency_ms"}
        data["stopped_routes"] = dict(self.stopped_routes)
        data["records_per_request"] = (
            round(self.written / self.requests, 2) if self.requests else 0.0
        )
        return data


@dataclass(frozen=True)
class Stop:
    """Why the run must stop taking work, with the error when there was one."""

    reason: StopReason
    error: Exception | None = None


class RunState:
    """The state the parts of one run share. Every attribute is read and written under `cond`.

    * `held` and `held_bytes`: messages received and neither settled nor set aside for
      release, and their bodies' bytes; the receiver stops receiving while they would exceed
      its bounds (`receiver.Receiver._full`).
    * `to_release` and `blocked_groups`: messages set aside, released when the run ends,
      and (FIFO) the groups that must not be written further in this run because of them.
    * `broken`: route -> why, for the routes a systemic failure stopped.
    * `out_of_time`: routes whose pacer has no slot left before the deadline.
    * `stop`: set once, by whoever first decides the run must stop; the first reason wins.
    """

    def __init__(self, fifo: bool) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.fifo = fifo
        self.summary = RunSummary()
        self.held = 0
        self.held_bytes = 0
        self.to_release: list[Message] = []
        self.blocked_groups: set[str] = set()
        self.broken: dict[str, str] = {}
        self.out_of_time: set[str] = set()
        self.stop: Stop | None = None
        self.receiver_done = False
        #: set when the run loop has stopped taking work: the receiver stops too
        self.halted = threading.Event()

    def stop_with(self, reason: StopReason, error: Exception | None = None) -> None:
        with self.cond:
            self.stop = self.stop or Stop(reason, error)
            self.cond.notify_all()

    def closed(self, route: str) -> bool:
        """No more requests go to `route` in this run (broken, or its pacer out of time)."""
        with self.cond:
            return route in self.broken or route in self.out_of_time

    def let_go(self, messages: Sequence[Message]) -> None:
        """The messages are no longer held (settled, or set aside): room for more."""
        with self.cond:
            self.held -= len(messages)
            self.held_bytes -= sum(len(m.body) for m in messages)
            self.cond.notify_all()

    def set_aside(self, messages: Iterable[Message]) -> None:
        """Keep messages for release at the end of the run. They stop counting as held, and
        on FIFO queues their groups are blocked (a later message must not overtake them)."""
        messages = list(messages)
        with self.cond:
            self.to_release += messages
            self.let_go(messages)
            if self.fifo:
                self.blocked_groups |= {m.group_id for m in messages if m.group_id}
            self.cond.notify_all()
