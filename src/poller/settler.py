"""The settler: the one place where verdicts become SQS calls and counts.

* delete: `DeleteMessageBatch` at once; only what SQS lists under `Successful` counts.
* dead letter: a copy with its reason to the DLQ, then the original deleted; without a DLQ
  the message stays hidden until this run's visibility ends, and the queue's redrive
  policy takes over. FIFO: it does not block its group, since a message held behind it
  would be received with it every run and share its redrive.
* release: kept until the run ends, then made visible again at once (so no message is
  received twice in one run). A message on its last receive before the queue's redrive
  policy would move it (`ApproximateReceiveCount` = maxReceiveCount) is requeued instead:
  a fresh copy is sent and the original deleted, so that a message that was not at fault
  never reaches the DLQ without a reason. FIFO queues release it (a copy would lose its
  place in its group).

Single-threaded: only the drain loop calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from .errors import DeadLetterQueueMissing
from .model import Fate, Message, Verdict
from .ports import QueuePort
from .summary import RunSummary

log = logging.getLogger(__name__)

#: SQS's batch size for DeleteMessageBatch and ChangeMessageVisibilityBatch.
SQS_BATCH = 10


class Settler:
    def __init__(
        self,
        queue: QueuePort,
        summary: RunSummary,
        *,
        max_receive_count: int | None = None,
        fifo: bool = False,
        block: Callable[[set[str]], None] = lambda groups: None,
    ) -> None:
        self.queue = queue
        self.summary = summary
        self.max_receive_count = max_receive_count
        self.fifo = fifo
        #: FIFO: nothing later of these groups may be written in this run (`Batcher.block`)
        self.block = block
        self._to_release: list[Verdict] = []
        #: set when the DLQ could not take a letter because it does not exist
        self.dead_letter_queue_missing = False

    def settle(self, verdicts: Iterable[Verdict]) -> None:
        deletes, letters = [], []
        for verdict in verdicts:
            if verdict.fate is Fate.DELETE:
                deletes.append(verdict.message)
            elif verdict.fate is Fate.DEAD_LETTER:
                letters.append(verdict)
            else:
                self._to_release.append(verdict)
                self._block([verdict.message])
        self._delete(deletes)
        if letters:
            self._dead_letter(letters)

    def finish(self) -> None:
        """The run is over: release what was kept back (requeue what is on its last life)."""
        held, self._to_release = self._to_release, []
        self._release(
            [v.message for v in held if not self._requeues(v)],
            "releasing %d message(s) failed; they reappear when their visibility ends",
        )
        last = [v.message for v in held if self._requeues(v)]
        if last:
            self._requeue(last)

    def _requeues(self, verdict: Verdict) -> bool:
        """A blameless message on its last receive before the redrive policy would move it."""
        limit = self.max_receive_count
        on_last_receive = limit is not None and verdict.message.receive_count >= limit
        return verdict.blameless and on_last_receive and not self.fifo

    def _requeue(self, messages: list[Message]) -> None:
        try:
            copied = self.queue.requeue(messages)
        except Exception:
            log.exception("requeueing %d message(s) on their last receive failed", len(messages))
            copied = []
        self.summary.requeued += len(copied)
        self._delete(copied, count=False)
        self._release([m for m in messages if m not in copied], "releasing %d message(s) failed")

    def _release(self, messages: Sequence[Message], failure: str) -> None:
        """`failure`: the line logged (with the chunk's size) for a chunk that failed."""
        for chunk in chunks(messages):
            try:
                self.summary.released += len(self.queue.release(chunk))
            except Exception:
                log.exception(failure, len(chunk))

    def _delete(self, messages: Sequence[Message], *, count: bool = True) -> None:
        deleted = 0
        for chunk in chunks(messages):
            try:
                deleted += len(self.queue.delete(chunk))
            except Exception:
                log.exception(
                    "DeleteMessageBatch failed; %d message(s) will be redelivered", len(chunk)
                )
        if count:
            self.summary.deleted += deleted
            self.summary.delete_failures += len(messages) - deleted

    def _dead_letter(self, letters: list[Verdict]) -> None:
        for letter in letters:
            log.warning(
                "dead-lettering message",
                extra={
                    "message_id": letter.message.id,
                    "reason": letter.reason,
                    "error_type": letter.error_type,
                    "receive_count": letter.message.receive_count,
                    "message_group_id": letter.message.group_id,
                },
            )
        if not self.queue.has_dead_letter_queue:
            self.summary.failed += len(letters)
            return
        try:
            stored = self.queue.dead_letter(letters)
        except DeadLetterQueueMissing:
            self.dead_letter_queue_missing = True
            stored = []
        self.summary.dead_lettered += len(stored)
        self.summary.failed += len(letters) - len(stored)
        self._delete(stored)
        self._block([v.message for v in letters if v.message not in stored])

    def _block(self, messages: Iterable[Message]) -> None:
        """FIFO: a message of a group stays in the queue, so the group's later ones wait."""
        if self.fifo:
            groups = {m.group_id for m in messages if m.group_id}
            if groups:
                self.block(groups)


def chunks(items: Iterable[Message]) -> list[list[Message]]:
    """`items` in batches of `SQS_BATCH`."""
    items = list(items)
    return [items[start : start + SQS_BATCH] for start in range(0, len(items), SQS_BATCH)]
