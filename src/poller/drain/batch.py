"""What travels between the parts: an entry (one record and its messages), a request (the
entries of one route sent together) and its outcome (what became of each entry)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SinkError
from ..model import Message, Record
from ..ports import Destination
from .state import Stop


@dataclass
class Entry:
    """One record waiting to be written, and every message it stands for (duplicates of
    the same merge key in one route collapse into one entry, keeping the latest message's
    fields)."""

    record: Record
    messages: list[Message]
    since: float

    @property
    def route(self) -> str:
        return self.record.route

    @property
    def key(self) -> tuple[str, tuple[str, ...]] | None:
        """The merge key, scoped to the route (two tables may use the same key values)."""
        return None if self.record.key is None else (self.record.route, self.record.key)

    @property
    def latest(self) -> Message:
        return max(self.messages, key=lambda m: (m.sent_at_ms, m.sequence))

    @property
    def groups(self) -> set[str]:
        return {m.group_id for m in self.messages if m.group_id is not None}


@dataclass(eq=False)
class Request:
    """Entries of one route, to be written in one request to its destination."""

    destination: Destination
    entries: list[Entry]

    @property
    def route(self) -> str:
        return self.destination.name


@dataclass
class Outcome:
    """What became of the entries of one request, after retries and bisection.

    * `written`: confirmed by the sink; their messages are deleted.
    * `rejected`: the sink refused the record itself; its messages are dead-lettered.
    * `failed`: not written for a reason that may pass (5xx, 429, no time); released, and
      dead-lettered only by the receive-count rule after a transient failure.
    * `held_back`: not written because the route is broken; released, not the messages' fault.

    `stop` asks the whole run to stop; `out_of_time` says the route's pacer has no slot left
    in this run; `broken` is the systemic error that broke the route."""

    written: list[Entry] = field(default_factory=list)
    rejected: list[tuple[Entry, SinkError]] = field(default_factory=list)
    failed: list[tuple[Entry, SinkError]] = field(default_factory=list)
    held_back: list[Entry] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    stop: Stop | None = None
    out_of_time: bool = False
    broken: SinkError | None = None

    def merge(self, other: Outcome) -> None:
        self.written += other.written
        self.rejected += other.rejected
        self.failed += other.failed
        self.held_back += other.held_back
        self.created += other.created
        self.updated += other.updated
        self.requests += other.requests
        self.retries += other.retries
        self.throttled += other.throttled
        self.stop = self.stop or other.stop
        self.out_of_time = self.out_of_time or other.out_of_time
        self.broken = self.broken or other.broken

    @property
    def must_halt(self) -> bool:
        """Nothing more of this route should be sent by this request."""
        return self.stop is not None or self.out_of_time or self.broken is not None

    @classmethod
    def failing(cls, entries: list[Entry], error: SinkError, **kwargs: object) -> Outcome:
        return cls(failed=[(e, error) for e in entries], **kwargs)  # type: ignore[arg-type]
