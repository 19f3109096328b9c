"""The two ports the core is written against. The adapters are `sqs.SqsQueue` and
`airtable.AirtableTable`; `devstack.memory` has in-memory ones for unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .model import Message, Record, Verdict, WriteResult


class QueuePort(Protocol):
    """A message queue with at-least-once delivery (SQS semantics)."""

    @property
    def has_dead_letter_queue(self) -> bool: ...

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]:
        """Long-poll for up to `max_messages` (1-10); hide them for `visibility_seconds`."""
        ...

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        """Delete up to 10 messages; return those the queue confirmed deleted."""
        ...

    def release(self, messages: Sequence[Message]) -> list[Message]:
        """Make up to 10 messages visible again now; return those the queue confirmed."""
        ...

    def dead_letter(self, letters: Sequence[Verdict]) -> list[Message]:
        """Store a copy of each message in the DLQ with its reason; return the messages
        stored (the caller deletes them from the source). Raise
        `errors.DeadLetterQueueMissing` when the DLQ does not exist."""
        ...

    def requeue(self, messages: Sequence[Message]) -> list[Message]:
        """Send a fresh copy of each message to the source queue (same body and attributes,
        its first id and sent time kept); return those whose copy was stored (the caller
        deletes the originals)."""
        ...


class SinkPort(Protocol):
    """One Airtable table. Every call is ONE request; failures raise `errors.SinkError`."""

    max_records: int

    def write(self, records: Sequence[Record]) -> WriteResult:
        """Create or upsert the records (one action for all) in one request."""
        ...
