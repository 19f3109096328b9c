"""The drain loop against in-memory fakes: what is deleted, written, dead-lettered, released."""

from __future__ import annotations

import json
import math
import time

from devstack.factories import Budget, donation
from devstack.memory import MemoryQueue, MemorySink

from poller.errors import (
    SinkConfigurationError,
    ThrottledError,
    TransientSinkError,
)


def fill(queue: MemoryQueue, count: int, start: int = 0) -> list[str]:
    return [queue.send(donation(n)) for n in range(start, start + count)]


def test_writes_everything_and_deletes_only_what_was_written(make_drain):
    # GIVEN 25 valid donations
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    donation_ids = {message_id: donation(n)["Id"] for n, message_id in enumerate(fill(queue, 25))}
    # WHEN the queue is drained
    summary = make_drain(queue, sink).run()
    # THEN every donation is a row, every message is gone, and the run ended on an empty queue
    assert len(sink.rows) == 25
    assert queue.depth() == 0
    assert summary.received == summary.written == summary.deleted == summary.created == 25
    assert summary.stopped_because == "empty"
    # AND no message was deleted before Airtable confirmed its record
    confirmed_at = dict(sink.confirmed_log)
    for message_id, deleted_at in queue.deleted_log:
        assert deleted_at >= confirmed_at[donation_ids[message_id]]


def test_requests_are_filled_to_ten_records(make_drain):
    # GIVEN 25 messages
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    fill(queue, 25)
    # WHEN drained
    make_drain(queue, sink).run()
    # THEN requests carry 10, 10 and the 5 left when the queue ran dry
    assert sorted(len(r) for r in sink.requests) == [5, 10, 10]


def test_empty_queue_stops_after_one_receive(make_drain):
    # GIVEN an empty queue
    queue, sink = MemoryQueue(), MemorySink()
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN one receive, no write, and the reason is "empty"
    assert summary.stopped_because == "empty"
    assert [c for c in queue.calls if c[0] == "receive"] == [("receive", 10)]
    assert sink.requests == [] and summary.received == 0


def test_failed_write_is_not_deleted_but_released(make_drain):
    # GIVEN 10 messages and an Airtable that keeps failing with 503
    queue = MemoryQueue()
    sink = MemorySink(
        merge_on=("Id",), faults=[TransientSinkError("503", error_type="HTTP_503")] * 10
    )
    fill(queue, 10)
    # WHEN drained with 3 attempts
    summary = make_drain(queue, sink, max_attempts=3).run()
    # THEN nothing was written or deleted, and every message is visible again for the next run
    assert sink.rows == [] and queue.deleted_log == []
    assert summary.failed == 10 and summary.released == 10 and summary.deleted == 0
    assert queue.visible() == 10
    assert summary.retries == 2 and len(sink.requests) == 3


def test_transient_failure_is_retried_and_then_confirmed(make_drain):
    # GIVEN an Airtable whose first answer to a write is lost after applying it
    queue = MemoryQueue()
    sink = MemorySink(
        merge_on=("Id",),
        faults=[TransientSinkError("lost", error_type="ConnectionError")],
        applied_before_fault={0},
    )
    fill(queue, 10)
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the retry upserts the same records: exactly one row per donation, all deleted
    assert len(sink.rows) == 10
    assert summary.retries == 1 and summary.deleted == 10 and summary.updated == 10


def test_delete_partial_failure_counts_only_real_deletes(make_drain):
    # GIVEN 10 messages, two of which the queue refuses to delete
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    ids = fill(queue, 10)
    queue.fail_delete_ids = {ids[2], ids[7]}
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN all 10 are written, 8 deleted, 2 counted as delete failures (they will be redelivered)
    assert summary.written == 10
    assert summary.deleted == 8 and summary.delete_failures == 2
    assert queue.depth() == 2


def test_unmappable_messages_go_to_the_dlq_with_a_reason_and_do_not_block_the_batch(make_drain):
    # GIVEN good messages mixed with poison: not JSON, not an object, no merge key, NaN
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    fill(queue, 4)
    queue.send("this is not json")
    queue.send("[1, 2, 3]")
    queue.send(json.dumps({"DonationAmount": 5}))
    queue.send('{"Id": "x", "DonationAmount": NaN}')
    fill(queue, 4, start=4)
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the 8 good ones are written in ONE request, and the 4 bad ones are in the DLQ with reasons
    assert len(sink.rows) == 8 and [len(r) for r in sink.requests] == [8]
    reasons = [attrs["reason"] for _, attrs in queue.dead_letters]
    assert len(reasons) == 4
    assert any("not valid JSON" in r for r in reasons)
    assert any("expected an object" in r for r in reasons)
    assert any('merge key field "Id"' in r for r in reasons)
    assert any("NaN" in r for r in reasons)
    assert summary.dead_lettered == 4 and queue.depth() == 0 and summary.deleted == 12


def test_without_a_dlq_poison_is_left_for_the_redrive_policy(make_drain):
    # GIVEN no dead-letter queue and one poison message
    queue, sink = MemoryQueue(with_dlq=False), MemorySink(merge_on=("Id",))
    fill(queue, 3)
    poison = queue.send("garbage")
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the poison is neither deleted nor released: it stays hidden until its visibility ends,
    # so its receive count grows once per run until the queue's redrive policy moves it
    assert [m.id for m in queue.messages] == [poison]
    assert queue.visible() == 0
    assert summary.dead_lettered == 0 and summary.failed == 1 and summary.released == 0


def test_one_bad_record_costs_its_neighbours_only_the_bisection(make_drain):
    # GIVEN 10 messages, one of which Airtable rejects (a negative amount, say)
    queue = MemoryQueue()
    sink = MemorySink(
        merge_on=("Id",),
        reject=lambda f: (
            'Field "Donation Amount" cannot accept the provided value'
            if f["Donation Amount"] < 0
            else None
        ),
    )
    fill(queue, 6)
    queue.send(donation(6, DonationAmount=-1))
    fill(queue, 3, start=7)
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the 9 good ones are written and the bad one is dead-lettered with Airtable's error
    assert len(sink.rows) == 9
    [(body, attrs)] = queue.dead_letters
    assert json.loads(body)["DonationAmount"] == -1
    assert (
        attrs["error_type"] == "INVALID_VALUE_FOR_COLUMN" and "Donation Amount" in attrs["reason"]
    )
    # AND it took no more requests than bisecting 10 records needs
    assert len(sink.requests) <= 1 + 2 * math.ceil(math.log2(10))
    assert summary.deleted == 10 and queue.depth() == 0


def test_configuration_error_stops_the_run_and_keeps_every_message(make_drain):
    # GIVEN a table that has no such field (a FIELD_MAP mistake)
    queue = MemoryQueue()
    sink = MemorySink(
        faults=[SinkConfigurationError('Unknown field name: "Id"', error_type="UNKNOWN_FIELD_NAME")]
    )
    fill(queue, 12)
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the run stops on the error, nothing is deleted or dead-lettered, and all are released
    assert summary.stopped_because == "error" and "Unknown field name" in (summary.error or "")
    assert queue.deleted_log == [] and queue.dead_letters == []
    assert queue.depth() == 12 and queue.visible() == 12


def test_duplicates_in_one_batch_collapse_to_the_latest(make_drain):
    # GIVEN the same donation sent twice (amount corrected the second time) among others
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    fill(queue, 3)
    queue.send(donation(99, DonationAmount=10.0))
    queue.send(donation(99, DonationAmount=12.5))
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN one request, one row for the key with the latest amount, and both messages deleted
    assert len(sink.requests) == 1 and len(sink.requests[0]) == 4
    assert sorted(sink.values("Donation Amount"))[-1] == 12.5
    assert summary.superseded == 1 and summary.deleted == 5 and queue.depth() == 0


def test_without_merge_on_every_message_is_created(make_drain):
    # GIVEN no MERGE_ON
    queue, sink = MemoryQueue(), MemorySink()
    fill(queue, 12)
    # WHEN drained
    summary = make_drain(queue, sink, merge_on=()).run()
    # THEN every message is a created record
    assert summary.created == 12 and len(sink.rows) == 12


def test_deadline_leaves_nothing_half_done(make_drain):
    # GIVEN a deep queue, a slow Airtable and a Lambda with little time left
    queue = MemoryQueue()
    sink = MemorySink(merge_on=("Id",), latency=0.1)
    fill(queue, 300)
    # WHEN drained with 1.2 s left and a 0.5 s margin, at 10 requests/s
    summary = make_drain(queue, sink, budget=Budget(1.2), margin=0.5, rps=10, max_in_flight=2).run()
    # THEN it stopped on the deadline, and every received message is either written and deleted,
    # or released: none is left hidden
    assert summary.stopped_because == "deadline"
    assert 0 < summary.written < 300
    assert summary.deleted == summary.written == len(sink.rows)
    assert summary.received == summary.deleted + summary.released
    assert queue.depth() == 300 - summary.deleted and queue.visible() == queue.depth()


def test_lockout_is_waited_out_when_time_allows(make_drain):
    # GIVEN an Airtable that answers the first write with 429
    queue = MemoryQueue()
    sink = MemorySink(
        merge_on=("Id",), faults=[ThrottledError("429", error_type="RATE_LIMIT_REACHED")]
    )
    fill(queue, 10)
    # WHEN drained with a 0.2 s lockout
    started = time.monotonic()
    summary = make_drain(queue, sink, lockout_seconds=0.2).run()
    # THEN it waited out the lockout once, then wrote everything
    assert time.monotonic() - started >= 0.2
    assert summary.throttled == 1 and len(sink.rows) == 10 and queue.depth() == 0


def test_lockout_longer_than_the_time_left_stops_cleanly(make_drain):
    # GIVEN a 429 and a lockout longer than the run has left
    queue = MemoryQueue()
    sink = MemorySink(
        merge_on=("Id",), faults=[ThrottledError("429", error_type="RATE_LIMIT_REACHED")]
    )
    fill(queue, 10)
    # WHEN drained
    summary = make_drain(queue, sink, lockout_seconds=60).run()
    # THEN it stops without another request during the lockout, and the messages are released
    assert len(sink.requests) == 1
    assert (
        summary.stopped_because == "deadline" and summary.released == 10 and queue.visible() == 10
    )


def test_messages_that_keep_failing_are_dead_lettered_with_the_last_error(make_drain):
    # GIVEN messages already received 3 times, and an Airtable that keeps failing
    queue = MemoryQueue()
    sink = MemorySink(merge_on=("Id",), faults=[TransientSinkError("Airtable answered 503")] * 10)
    fill(queue, 4)
    for stored in queue.messages:
        stored.receive_count = 3
    # WHEN drained with dead_letter_after_receives=4 (this is their 4th receive)
    summary = make_drain(queue, sink, max_attempts=2, dead_letter_after_receives=4).run()
    # THEN they are dead-lettered with the last error instead of going round again
    assert summary.dead_lettered == 4 and queue.depth() == 0
    assert all(
        "last error: Airtable answered 503" in attrs["reason"] for _, attrs in queue.dead_letters
    )


def test_fifo_group_is_not_written_past_its_first_failure(make_drain):
    # GIVEN a FIFO queue with group A (3 messages) and group B (3 messages), and an Airtable
    # that fails the first request for good
    queue = MemoryQueue(fifo=True)
    for n in range(3):
        queue.send(donation(n), group_id="A")
        queue.send(donation(10 + n), group_id="B")
    sink = MemorySink(merge_on=("Id",), max_records=1, faults=[TransientSinkError("503")] * 2)
    # WHEN drained one record per request (so that the groups' messages are in separate requests)
    summary = make_drain(queue, sink, fifo=True, max_in_flight=1, max_attempts=2).run()
    # THEN the failed message's group is not written further, and the group is released in order
    written = sink.values("Id")
    first_failed = json.loads(queue.messages[0].body)["Id"]
    failed_group = queue.messages[0].group_id
    assert first_failed not in written
    assert all(m.group_id == failed_group for m in queue.messages)
    assert summary.released == len(queue.messages) == 3
