"""The settler: what becomes of each message once its request is done.

Confirmed messages are deleted; rejected ones are dead-lettered with Airtable's reason; the
rest are set aside and released when the run ends, so that the next run gets them at once.
Only a write that was tried and kept failing (5xx, timeout, no answer) makes a message
suspect: on its `dead_letter_after_receives`-th receive it is dead-lettered with the last
error instead of going round again. A 429, a refused request, the deadline or a FIFO
kept-back are the run's circumstances, not the message's fault.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..errors import SinkError, TransientSinkError
from ..model import DeadLetter, Message
from ..ports import QueuePort
from .batch import Outcome
from .state import SQS_BATCH, RunState, Settings

log = logging.getLogger(__name__)


class Settler:
    def __init__(self, queue: QueuePort, settings: Settings, state: RunState) -> None:
        self.queue = queue
        self.settings = settings
        self.state = state

    def settle(self, outcome: Outcome) -> None:
        """Delete what was confirmed, dead-letter what was rejected, set the rest aside."""
        summary = self.state.summary
        with self.state.cond:
            summary.batches += 1
            summary.requests += outcome.requests
            summary.retries += outcome.retries
            summary.throttled += outcome.throttled
            summary.written += len(outcome.written)
            summary.created += outcome.created
            summary.updated += outcome.updated
        self.delete([m for e in outcome.written for m in e.messages])

        letters = [
            letter(m, exc, exc.error_type or "REJECTED")
            for e, exc in outcome.rejected
            for m in e.messages
        ]
        retry_later: list[Message] = []
        for entry, exc in outcome.failed:
            for message in entry.messages:
                if self._suspect(message, exc):
                    reason = f"failed on {message.receive_count} receives; last error: {exc}"
                    kind = exc.error_type or "REPEATED_FAILURE"
                    letters.append(DeadLetter(message, reason, kind))
                else:
                    retry_later.append(message)
        if letters:
            self.dead_letter(letters)
        if retry_later:
            with self.state.cond:
                summary.failed += len(retry_later)
                self.state.set_aside(retry_later)
        # not the messages' fault (their route is broken): released, never counted as failed
        self.state.set_aside(m for e in outcome.held_back for m in e.messages)

    def _suspect(self, message: Message, exc: SinkError) -> bool:
        threshold = self.settings.dead_letter_after_receives
        return bool(
            threshold
            and isinstance(exc, TransientSinkError)
            and message.receive_count >= threshold
            and self.queue.has_dead_letter_queue
        )

    def delete(self, messages: Sequence[Message]) -> None:
        deleted = 0
        for chunk in chunks(messages):
            try:
                deleted += len(self.queue.delete(chunk))
            except Exception:
                log.exception(
                    "DeleteMessageBatch failed; %d message(s) will be redelivered", len(chunk)
                )
        with self.state.cond:
            self.state.summary.deleted += deleted
            self.state.summary.delete_failures += len(messages) - deleted
            self.state.let_go(messages)

    def dead_letter(self, letters: list[DeadLetter]) -> None:
        """Move poison to the DLQ (send, then delete from the source). Without a DLQ, leave
        it hidden until this run's visibility ends; the queue's redrive policy takes over."""
        for each in letters:
            log.warning(
                "dead-lettering message",
                extra={
                    "message_id": each.message.id,
                    "reason": each.reason,
                    "error_type": each.error_type,
                    "receive_count": each.message.receive_count,
                    "message_group_id": each.message.group_id,
                },
            )
        stored: list[Message] = []
        if self.queue.has_dead_letter_queue:
            try:
                stored = self.queue.dead_letter(letters)
            except Exception:
                log.exception("sending to the dead-letter queue failed")
        deleted = 0
        for chunk in chunks(stored):
            try:
                deleted += len(self.queue.delete(chunk))
            except Exception:
                log.exception("deleting dead-lettered messages failed; they will be redelivered")
        state = self.state
        with state.cond:
            state.summary.dead_lettered += len(stored)
            state.summary.deleted += deleted
            state.summary.delete_failures += len(stored) - deleted
            state.summary.failed += len(letters) - len(stored)
            state.let_go([lt.message for lt in letters])
            if state.fifo:
                state.blocked_groups |= {
                    lt.message.group_id
                    for lt in letters
                    if lt.message.group_id and lt.message not in stored
                }
            state.cond.notify_all()

    def release(self, messages: Sequence[Message]) -> None:
        """Give messages back now (ChangeMessageVisibility 0): the next run gets them at once."""
        released = 0
        for chunk in chunks(messages):
            try:
                released += len(self.queue.release(chunk))
            except Exception:
                log.exception(
                    "releasing %d message(s) failed; they reappear when visibility ends", len(chunk)
                )
        with self.state.cond:
            self.state.summary.released += released


def letter(message: Message, error: SinkError, error_type: str) -> DeadLetter:
    """A dead letter whose reason is the error's own text (its type is in `error_type`)."""
    return DeadLetter(message, str(error), error_type)


def chunks(
    items: Sequence[Message] | Iterable[Message], size: int = SQS_BATCH
) -> list[list[Message]]:
    items = list(items)
    return [items[start : start + size] for start in range(0, len(items), size)]
