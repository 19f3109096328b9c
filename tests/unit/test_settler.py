"""The settler: the one place verdicts become SQS calls and counts, counting only what SQS
confirmed."""

from __future__ import annotations

from devstack.memory import MemoryQueue

from poller.model import Message, Verdict
from poller.settler import Settler
from poller.summary import RunSummary


def received(queue: MemoryQueue, n: int, **options: object) -> list[Message]:
    for i in range(n):
        queue.send({"Id": str(i)}, **options)  # type: ignore[arg-type]
    return queue.receive(max_messages=10, wait_seconds=0, visibility_seconds=60)


def test_only_deletes_sqs_confirmed_are_counted() -> None:
    # GIVEN three messages, one of whose deletes SQS will not confirm
    queue = MemoryQueue()
    messages = received(queue, 3)
    queue.fail_delete_ids = {messages[1].id}
    summary = RunSummary()
    # WHEN they are settled as written
    Settler(queue, summary).settle([Verdict.delete(m) for m in messages])
    # THEN two are counted deleted and one as a delete failure; it stays in the queue
    assert (summary.deleted, summary.delete_failures) == (2, 1) and queue.depth() == 1


def test_a_dead_letter_is_copied_with_its_reason_then_deleted() -> None:
    queue = MemoryQueue()
    [message] = received(queue, 1)
    summary = RunSummary()
    Settler(queue, summary).settle([Verdict.dead_letter(message, "body is empty", "MAPPING_ERROR")])
    assert queue.dead_letters == [
        (message.body, {"reason": "body is empty", "error_type": "MAPPING_ERROR"})
    ]
    assert (summary.dead_lettered, summary.deleted, queue.depth()) == (1, 1, 0)


def test_without_a_dlq_poison_stays_hidden_for_the_redrive_policy() -> None:
    queue = MemoryQueue(with_dlq=False)
    [message] = received(queue, 1)
    summary = RunSummary()
    Settler(queue, summary).settle([Verdict.dead_letter(message, "no", "X")])
    assert (summary.failed, summary.dead_lettered, queue.depth(), queue.visible()) == (1, 0, 1, 0)


def test_releases_wait_for_the_end_of_the_run() -> None:
    # GIVEN a message released in the middle of a run
    queue = MemoryQueue()
    [message] = received(queue, 1)
    summary = RunSummary()
    settler = Settler(queue, summary)
    settler.settle([Verdict.release(message, "no time")])
    # THEN it stays hidden until the run finishes (no message is received twice in a run)
    assert queue.visible() == 0
    settler.finish()
    assert queue.visible() == 1 and summary.released == 1


def test_a_blameless_message_on_its_last_receive_is_requeued_not_released() -> None:
    # GIVEN a queue whose redrive policy moves a message received a 4th time, and a message
    # on its 3rd receive that the run could not write for a reason that is not its fault
    queue = MemoryQueue(max_receive_count=3)
    queue.send({"Id": "a"})
    for _ in range(2):
        queue.release(queue.receive(max_messages=1, wait_seconds=0, visibility_seconds=60))
    [message] = queue.receive(max_messages=1, wait_seconds=0, visibility_seconds=60)
    assert message.receive_count == 3
    summary = RunSummary()
    settler = Settler(queue, summary, max_receive_count=3)
    settler.settle([Verdict.release(message, "base locked out")])
    # WHEN the run ends
    settler.finish()
    # THEN a fresh copy took its place, with its first id: the next receive is its 1st
    [again] = queue.receive(max_messages=1, wait_seconds=0, visibility_seconds=60)
    assert summary.requeued == 1 and again.receive_count == 1 and again.id == message.id
    assert queue.redriven == []


def test_a_message_whose_own_write_kept_failing_is_not_requeued() -> None:
    queue = MemoryQueue(max_receive_count=1)
    [message] = received(queue, 1)
    summary = RunSummary()
    settler = Settler(queue, summary, max_receive_count=1)
    settler.settle([Verdict.release(message, "503", blameless=False)])
    settler.finish()
    assert (summary.requeued, summary.released) == (0, 1)


def test_fifo_a_released_message_blocks_its_group() -> None:
    queue = MemoryQueue(fifo=True)
    [message] = received(queue, 1, group_id="g")
    blocked: list[set[str]] = []
    Settler(queue, RunSummary(), fifo=True, block=blocked.append).settle([Verdict.release(message)])
    assert blocked == [{"g"}]
