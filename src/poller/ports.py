"""The two ports the core is written against. Adapters live in `sqs` and `airtable`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
