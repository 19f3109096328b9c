"""The ports the core is written against. Adapters live in `sqs` and `airtable`.

The queue and the sink are the two ports proper; a `Destination` binds a sink to the `Pacer`
of its base, and an optional `SystemicGuard` tells a broken route from a bad message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import RecordsRejectedError, SinkConfigurationError
from .model import DeadLetter, Message, Record, WriteResult


class QueuePort(Protocol):
    """A message queue with at-least-once delivery (SQS semantics)."""

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]:
        """Long-poll for up to `max_messages`; hide them for `visibility_seconds`."""
        ...

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        """Delete the messages; return only those the queue confirmed deleted."""
        ...

    def release(self, messages: Sequence[Message]) -> list[Message]:
        """Make the messages visible again now; return those the queue confirmed."""
        ...

    def dead_letter(self, letters: Sequence[DeadLetter]) -> list[Message]:
        """Copy the messages to the dead-letter queue with their reasons.

        Return the messages that were stored there (none when no DLQ is configured).
        The caller deletes them from the source afterwards."""
        ...

    @property
    def has_dead_letter_queue(self) -> bool: ...


class SinkPort(Protocol):
    """A table that accepts at most 10 records per request."""

    max_records: int

    def write(self, records: Sequence[Record]) -> WriteResult:
        """Write the records in ONE request. Raise a `SinkError` subclass on failure."""
        ...


class Pacer(Protocol):
    """Paces the requests to one Airtable base (`policies.RateLimiter` is the real one).

    Several destinations may share one pacer (tables of one base). Clock times are those of
    the pacer's clock (`time.monotonic` in production)."""

    def next_free(self) -> float:
        """The earliest clock time at which `acquire` could let a request through."""
        ...

    def acquire(self, *, not_after: float | None = None) -> bool:
        """Wait for the next free slot and take it; False, without waiting, if that slot
        falls after `not_after`. Called right before a request is sent."""
        ...

    def mark_sent(self) -> None:
        """The request this thread was last let through has now left (called by the sink)."""
        ...

    def pause_until(self, when: float) -> None:
        """Let nobody through before `when` (a clock time): a lockout after a 429."""
        ...

    def on_throttled(self) -> None:
        """Airtable answered 429 to a request this pacer let through."""
        ...

    @property
    def effective_rps(self) -> float:
        """Requests per second this pacer currently lets through at most."""
        ...


@dataclass(frozen=True)
class Destination:
    """Where the records of one route go: a table (`sink`) and the pacer of its base.

    `name` is the route's name, as `Record.route` carries it."""

    name: str
    sink: SinkPort
    limiter: Pacer


class SystemicGuard(Protocol):
    """Decides whether a failure is systemic: one that every message of the route would meet
    (issue 9 §1). Called from writer threads, possibly several at once; at most once per
    request for each kind of failure. Both methods may take time (a secret or schema read)."""

    def on_refused(self, route: str, error: SinkConfigurationError) -> bool:
        """Airtable refused a request of `route` (401, 403, 404, UNKNOWN_FIELD_NAME).

        True: the cause was fixed (e.g. the token was re-read and changed), so the request is
        sent once more. False: the route is broken for the rest of the run."""
        ...

    def on_uniform_rejection(self, route: str, error: RecordsRejectedError) -> bool:
        """Every record of a request of `route` was rejected alone with the same field-level
        error on the same field (`error.error_type`, `error.field`).

        True: systemic (e.g. the field's type changed in Airtable): nothing is dead-lettered,
        the records are released and the route is broken for the rest of the run.
        False: the records are poison, dead-lettered one by one."""
        ...
