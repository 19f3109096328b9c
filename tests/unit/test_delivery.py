"""Delivery guarantees against the in-memory fakes: idempotence, isolation, the receive-count
dead-letter rule, visibility and FIFO ordering (issue 3). No socket is opened.

The HTTP-level proofs (moto + the Airtable emulator, killed runs) are in tests/faults/.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from devstack.factories import Budget, donation
from devstack.memory import MemoryQueue, MemorySink

from poller.errors import (
    RecordsRejectedError,
    SinkConfigurationError,
    ThrottledError,
    TransientSinkError,
)
from poller.model import DeadLetter, Message, Record, WriteResult


def bodies_written(sink: MemorySink) -> list[str]:
    """The Id of every record Airtable accepted, in request order."""
    return [fields["Id"] for fields, _ in _accepted(sink)]


def _accepted(sink: MemorySink) -> list[tuple[dict[str, Any], float]]:
    by_id = {row["fields"]["Id"]: row["fields"] for row in sink.rows}
    return [(by_id[record_id], at) for record_id, at in sink.confirmed_log]


def _id(n: int) -> str:
    return donation(n)["Id"]


# --------------------------------------------------------------------------- idempotence
def test_duplicates_in_one_batch_keep_the_latest_by_sent_time_not_by_arrival(make_drain):
    # GIVEN the corrected version of a donation that was *sent* later but *received* first
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    queue.send(donation(7, DonationAmount=12.5))
    queue.send(donation(7, DonationAmount=10.0))
    newer, older = queue.messages
    newer.sent_at_ms, older.sent_at_ms = 2_000, 1_000
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN one record is sent for the key, with the later-sent amount, and both messages go
    assert [len(r) for r in sink.requests] == [1]
    assert sink.values("Donation Amount") == [12.5]
    assert summary.superseded == 1 and summary.deleted == 2 and queue.depth() == 0


class ConcurrencyProbe(MemorySink):
    """A sink that remembers, for every merge key, how many requests held it at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._busy: dict[str, int] = {}
        self._probe_lock = threading.Lock()
        self.max_concurrent: dict[str, int] = {}

    def write(self, records: Sequence[Record]) -> WriteResult:
        keys = [r.fields["Id"] for r in records]
        with self._probe_lock:
            for key in keys:
                self._busy[key] = self._busy.get(key, 0) + 1
                self.max_concurrent[key] = max(self.max_concurrent.get(key, 0), self._busy[key])
        try:
            return super().write(records)
        finally:
            with self._probe_lock:
                for key in keys:
                    self._busy[key] -= 1


def test_a_merge_key_is_never_in_two_requests_at_once(make_drain):
    # GIVEN a donation and its duplicate, where the duplicate is received only once the
    # original's request is in flight (a slow one: 0.3 s)
    queue = MemoryQueue()
    queue.send(donation(1))
    queue.send(donation(1, DonationAmount=99.0))
    in_flight = threading.Event()
    receive = queue.receive

    def one_at_a_time(**kwargs: Any) -> list[Message]:
        if queue.calls:  # every receive after the first waits for the first write
            in_flight.wait(2)
        return receive(**{**kwargs, "max_messages": 1})

    queue.receive = one_at_a_time  # type: ignore[method-assign]

    class Probe(ConcurrencyProbe):
        def write(self, records: Sequence[Record]) -> WriteResult:
            in_flight.set()
            return super().write(records)

    sink = Probe(merge_on=("Id",), latency=0.3)
    # WHEN drained by 4 writers
    summary = make_drain(queue, sink, max_in_flight=4, batch_linger_seconds=0.0).run()
    # THEN the duplicate waited for the original's request: never two at once for one key
    assert sink.max_concurrent == {_id(1): 1}
    # AND both were written, in turn, to one row holding the later amount; both are deleted
    assert [len(r) for r in sink.requests] == [1, 1]
    assert sink.values("Donation Amount") == [99.0]
    assert summary.deleted == 2 and queue.depth() == 0


# --------------------------------------------------------------------------- the receive-count rule
def _received_before(queue: MemoryQueue, times: int) -> None:
    for stored in queue.messages:
        stored.receive_count = times


def test_a_configuration_error_never_dead_letters_even_after_many_receives(make_drain):
    # GIVEN messages already received 5 times, and a table that refuses the field map
    queue = MemoryQueue()
    sink = MemorySink(
        merge_on=("Id",),
        faults=[
            SinkConfigurationError('Unknown field name: "Id"', error_type="UNKNOWN_FIELD_NAME")
        ],
    )
    for n in range(10):
        queue.send(donation(n))
    _received_before(queue, 5)
    # WHEN drained with dead_letter_after_receives=4
    summary = make_drain(queue, sink, dead_letter_after_receives=4).run()
    # THEN the run stops on the error and nothing is dead-lettered: it is not the messages' fault
    assert summary.stopped_because == "error"
    assert queue.dead_letters == [] and summary.dead_lettered == 0
    assert queue.depth() == 10 and queue.visible() == 10


def test_a_lockout_without_time_to_wait_never_dead_letters(make_drain):
    # GIVEN messages already received 5 times, and a 429 whose lockout is longer than the run
    queue = MemoryQueue()
    sink = MemorySink(merge_on=("Id",), faults=[ThrottledError("429", error_type="RATE_LIMIT")])
    for n in range(10):
        queue.send(donation(n))
    _received_before(queue, 5)
    # WHEN drained
    summary = make_drain(queue, sink, dead_letter_after_receives=4, lockout_seconds=60).run()
    # THEN they are released for the next run, not dead-lettered: being throttled is not poison
    assert summary.stopped_because == "deadline"
    assert queue.dead_letters == [] and queue.visible() == 10


def test_running_out_of_time_mid_bisection_never_dead_letters(make_drain):
    # GIVEN messages already received 5 times, one of them bad, and so little time that the
    # bisection of the rejected request cannot get another request slot
    queue = MemoryQueue()
    sink = MemorySink(
        merge_on=("Id",),
        reject=lambda f: "bad amount" if f["Donation Amount"] < 0 else None,
    )
    for n in range(9):
        queue.send(donation(n))
    queue.send(donation(9, DonationAmount=-1))
    _received_before(queue, 5)
    # WHEN drained at 1 request/s with 1.3 s left and a 0.5 s margin
    summary = make_drain(
        queue, sink, rps=1.0, budget=Budget(1.3), margin=0.5, dead_letter_after_receives=4
    ).run()
    # THEN only the first request was sent; the good records were never tried, so nothing is
    # dead-lettered for "no time left": all ten are released for the next run
    assert len(sink.requests) == 1
    assert queue.dead_letters == [] and queue.visible() == 10
    assert summary.released == 10
    # AND the run says it stopped for lack of time, not because the queue was empty
    assert summary.stopped_because == "deadline"


def test_repeated_transient_failure_dead_letters_only_the_often_received(make_drain):
    # GIVEN an Airtable that answers 503 for good, five messages on their 4th receive and five
    # on their 1st
    queue = MemoryQueue()
    sink = MemorySink(merge_on=("Id",), faults=[TransientSinkError("Airtable answered 503")] * 20)
    for n in range(10):
        queue.send(donation(n))
    for stored in queue.messages[:5]:
        stored.receive_count = 3
    # WHEN drained with two attempts per request
    summary = make_drain(queue, sink, max_attempts=2, dead_letter_after_receives=4).run()
    # THEN the often-received five are dead-lettered with the last error; the others are
    # released (a transient failure alone never dead-letters)
    assert summary.dead_lettered == 5
    assert {json.loads(body)["Id"] for body, _ in queue.dead_letters} == {_id(n) for n in range(5)}
    assert all("last error: Airtable answered 503" in a["reason"] for _, a in queue.dead_letters)
    assert queue.depth() == 5 and queue.visible() == 5


# --------------------------------------------------------------------------- poison isolation
def test_a_body_that_crashes_the_parser_is_poison_and_does_not_stop_the_run(make_drain):
    # GIVEN a JSON body nested so deeply that the parser gives up, among
    # good messages
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    for n in range(5):
        queue.send(donation(n))
    queue.send("[" * 100_000 + "]" * 100_000)
    for n in range(5, 10):
        queue.send(donation(n))
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the run carries on: the good ten are written, the deep one is dead-lettered with why
    assert summary.stopped_because == "empty"
    assert len(sink.rows) == 10 and queue.depth() == 0
    [(_, attrs)] = queue.dead_letters
    assert "nested too deeply" in attrs["reason"]


def test_text_that_is_not_unicode_is_poison_before_it_reaches_airtable(make_drain):
    # GIVEN a donor name holding a lone surrogate (escaped in JSON, so SQS takes it), which no
    # UTF-8 JSON request can carry
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    for n in range(4):
        queue.send(donation(n))
    queue.send(json.dumps(donation(4, DonorDisplayName="Jos\ud800")))
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN it is dead-lettered with a reason, and never sent: its neighbours go in one request
    assert [len(r) for r in sink.requests] == [4]
    [(body, attrs)] = queue.dead_letters
    assert json.loads(body)["Id"] == _id(4) and "not valid Unicode" in attrs["reason"]
    assert summary.dead_lettered == 1 and queue.depth() == 0


def test_a_failed_dead_letter_send_keeps_the_message_in_the_source_queue(make_drain):
    # GIVEN a DLQ that refuses everything
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    queue.dead_letter = lambda letters: []  # type: ignore[method-assign]
    queue.send("not json")
    queue.send(donation(1))
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the poison is not deleted (it would be lost), and is counted as failed
    assert [m.body for m in queue.messages] == ["not json"]
    assert summary.dead_lettered == 0 and summary.failed == 1 and len(sink.rows) == 1


# --------------------------------------------------------------------------- visibility
def test_every_receive_hides_messages_for_longer_than_the_run_can_last(make_drain):
    # GIVEN a queue that remembers the visibility asked for on each receive
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    asked: list[int] = []
    receive = queue.receive

    def spy(**kwargs: Any) -> list[Message]:
        asked.append(kwargs["visibility_seconds"])
        return receive(**kwargs)

    queue.receive = spy  # type: ignore[method-assign]
    for n in range(25):
        queue.send(donation(n))
    # WHEN drained by a run with 20 s left
    make_drain(queue, sink, budget=Budget(20)).run()
    # THEN each receive hid its messages past the end of the run (20 s + the 10 s margin)
    assert asked and all(29 <= seconds <= 30 for seconds in asked)


def test_release_reads_failed_entries(make_drain):
    # GIVEN a run that must release everything (Airtable keeps failing), and a queue that
    # refuses to release two of the messages
    queue = MemoryQueue()
    sink = MemorySink(merge_on=("Id",), faults=[TransientSinkError("503")] * 10)
    ids = [queue.send(donation(n)) for n in range(10)]
    queue.fail_release_ids = {ids[3], ids[4]}
    # WHEN drained
    summary = make_drain(queue, sink, max_attempts=1).run()
    # THEN only the releases SQS confirmed are counted; the other two stay hidden until their
    # visibility ends (they are neither deleted nor lost)
    assert summary.released == 8 and queue.visible() == 8 and queue.depth() == 10


# --------------------------------------------------------------------------- FIFO
def fifo_send(queue: MemoryQueue, plan: list[tuple[str, int]]) -> None:
    for group, n in plan:
        queue.send(donation(n), group_id=group)


def test_fifo_writes_each_group_in_order_across_runs_after_a_failure(make_drain):
    # GIVEN group A with five messages, and an Airtable whose second request fails for good
    queue = MemoryQueue(fifo=True)
    fifo_send(queue, [("A", n) for n in range(5)])
    sink = MemorySink(merge_on=("Id",), max_records=1, faults=[None, TransientSinkError("503")])
    # WHEN one run drains one record per request, and a second run follows
    first = make_drain(queue, sink, fifo=True, max_in_flight=1, max_attempts=1).run()
    # THEN the first run wrote A0, stopped the group at A1 and released A1..A4 in order
    assert bodies_written(sink) == [_id(0)]
    assert first.released == 4 and [json.loads(b)["Id"] for b in queue.bodies()] == [
        _id(n) for n in range(1, 5)
    ]
    # AND the next run writes the rest in the original order
    make_drain(queue, sink, fifo=True, max_in_flight=1).run()
    assert bodies_written(sink) == [_id(n) for n in range(5)]
    assert queue.depth() == 0


def test_fifo_failure_in_one_group_does_not_hold_up_another(make_drain):
    # GIVEN groups A and B interleaved, and A's first request failing for good
    queue = MemoryQueue(fifo=True)
    fifo_send(queue, [("A", 0), ("B", 10), ("A", 1), ("B", 11), ("A", 2), ("B", 12)])
    sink = MemorySink(merge_on=("Id",), max_records=1, faults=[TransientSinkError("503")])
    # WHEN drained one record per request
    summary = make_drain(queue, sink, fifo=True, max_in_flight=1, max_attempts=1).run()
    # THEN all of B is written in order, none of A after its failure, and A is released whole
    assert bodies_written(sink) == [_id(10), _id(11), _id(12)]
    assert summary.released == 3 and {m.group_id for m in queue.messages} == {"A"}


def test_fifo_bisection_does_not_write_past_a_failed_half(make_drain):
    # GIVEN group A: A0..A3 where A3 is rejected by Airtable, so the request is bisected, and
    # the first half [A0, A1] then fails for a transient reason
    queue = MemoryQueue(fifo=True)
    fifo_send(queue, [("A", 0), ("A", 1), ("A", 2)])
    queue.send(donation(3, DonationAmount=-1), group_id="A")
    sink = MemorySink(
        merge_on=("Id",),
        reject=lambda f: "bad amount" if f["Donation Amount"] < 0 else None,
        faults=[None, TransientSinkError("503")],
    )
    # WHEN drained with one attempt per request
    summary = make_drain(queue, sink, fifo=True, max_in_flight=1, max_attempts=1).run()
    # THEN A2 is not written after A0/A1 failed (that would reorder the group), and A0..A3
    # are all released in order for the next run
    assert sink.rows == []
    assert [json.loads(b)["Id"] for b in queue.bodies()] == [_id(n) for n in range(4)]
    assert summary.released == 4 and queue.visible() == 4


def test_fifo_poison_is_dead_lettered_explicitly_and_the_group_goes_on(make_drain, caplog):
    # GIVEN group A whose second message is not JSON
    queue = MemoryQueue(fifo=True)
    queue.send(donation(0), group_id="A")
    queue.send("not json", group_id="A")
    queue.send(donation(2), group_id="A")
    sink = MemorySink(merge_on=("Id",))
    # WHEN drained
    with caplog.at_level(logging.WARNING, logger="poller.drain"):
        summary = make_drain(queue, sink, fifo=True, max_in_flight=1).run()
    # THEN the poison is dead-lettered, the log names its group, and the rest of A is written
    assert bodies_written(sink) == [_id(0), _id(2)]
    assert summary.dead_lettered == 1 and queue.depth() == 0
    [record] = [r for r in caplog.records if r.getMessage() == "dead-lettering message"]
    assert record.message_group_id == "A" and "not valid JSON" in record.reason


def test_fifo_rejected_record_is_dead_lettered_and_its_group_continues_in_order(make_drain):
    # GIVEN group A where A1 is rejected by Airtable
    queue = MemoryQueue(fifo=True)
    fifo_send(queue, [("A", 0)])
    queue.send(donation(1, DonationAmount=-1), group_id="A")
    fifo_send(queue, [("A", 2), ("A", 3)])
    sink = MemorySink(
        merge_on=("Id",), reject=lambda f: "bad amount" if f["Donation Amount"] < 0 else None
    )
    # WHEN drained
    summary = make_drain(queue, sink, fifo=True, max_in_flight=1).run()
    # THEN A1 is in the DLQ, and A0, A2, A3 are written in their order
    assert bodies_written(sink) == [_id(0), _id(2), _id(3)]
    assert summary.dead_lettered == 1 and queue.depth() == 0


def test_fifo_group_longer_than_one_receive_is_drained_in_one_run(make_drain):
    # GIVEN one FIFO group of 35 messages: SQS hands out at most 10 at a time and then hides
    # the group while this run holds any of them, so receives come back empty meanwhile
    queue = MemoryQueue(fifo=True)
    fifo_send(queue, [("G", n) for n in range(35)])
    sink = MemorySink(merge_on=("Id",))
    # WHEN drained by one run
    summary = make_drain(queue, sink, fifo=True, max_in_flight=1).run()
    # THEN an empty receive while the group was held did not end the run: all 35, in order
    assert bodies_written(sink) == [_id(n) for n in range(35)]
    assert summary.stopped_because == "empty" and queue.depth() == 0


def test_fifo_empty_long_poll_during_which_the_group_unlocks_does_not_end_the_run(make_drain):
    # GIVEN one FIFO group of 25, and a long poll that comes back empty after 0.3 s: the
    # group was locked when it started, and the run's write settled while it waited
    queue = MemoryQueue(fifo=True)
    fifo_send(queue, [("G", n) for n in range(25)])
    receive = queue.receive

    def long_poll(**kwargs: Any) -> list[Message]:
        got = receive(**kwargs)
        if not got:
            time.sleep(0.3)
        return got

    queue.receive = long_poll  # type: ignore[method-assign]
    sink = MemorySink(merge_on=("Id",))
    # WHEN drained by one run
    summary = make_drain(queue, sink, fifo=True, max_in_flight=1).run()
    # THEN the empty poll was not taken for an empty queue: all 25 written, in order
    assert bodies_written(sink) == [_id(n) for n in range(25)]
    assert summary.stopped_because == "empty" and queue.depth() == 0


def test_fifo_never_has_two_requests_of_one_group_in_flight(make_drain):
    # GIVEN groups A (even donations) and B (odd ones), four writers and a slow Airtable that
    # takes at most three records per request
    queue = MemoryQueue(fifo=True)
    fifo_send(queue, [("A", 2 * n) for n in range(15)] + [("B", 2 * n + 1) for n in range(15)])
    inner = MemorySink(merge_on=("Id",), max_records=3)
    in_flight = {"A": 0, "B": 0}
    worst = {"A": 0, "B": 0}
    lock = threading.Lock()

    class GroupProbe:
        max_records = 3

        def write(self, records: Sequence[Record]) -> WriteResult:
            groups = {"AB"[int(r.fields["Donor Id"].removeprefix("user-")) % 2] for r in records}
            with lock:
                for g in groups:
                    in_flight[g] += 1
                    worst[g] = max(worst[g], in_flight[g])
            try:
                time.sleep(0.01)
                return inner.write(records)
            finally:
                with lock:
                    for g in groups:
                        in_flight[g] -= 1

    # WHEN drained with 4 writers
    make_drain(queue, GroupProbe(), fifo=True, max_in_flight=4, batch_linger_seconds=0).run()
    # THEN at most one request per group was ever in flight, and each group was written in order
    assert worst == {"A": 1, "B": 1}
    written = [row["fields"]["Id"] for row in inner.rows]
    assert [i for i in written if i in {_id(2 * n) for n in range(15)}] == [
        _id(2 * n) for n in range(15)
    ]
    assert [i for i in written if i in {_id(2 * n + 1) for n in range(15)}] == [
        _id(2 * n + 1) for n in range(15)
    ]
    assert queue.depth() == 0


# --------------------------------------------------------------------------- sanity of the fakes
def test_memory_queue_fifo_redelivers_a_released_group_in_order():
    # GIVEN a FIFO queue with a group of three, all received
    queue = MemoryQueue(fifo=True)
    for n in range(3):
        queue.send(donation(n), group_id="G")
    got = queue.receive(max_messages=10, wait_seconds=0, visibility_seconds=30)
    # WHEN the last two are released and the first is deleted
    queue.release(got[1:])
    queue.delete(got[:1])
    # THEN they come back in their order, and the group was locked until then
    again = queue.receive(max_messages=10, wait_seconds=0, visibility_seconds=30)
    assert [m.sequence for m in again] == [got[1].sequence, got[2].sequence]


def test_dead_letter_reason_survives_in_the_memory_queue():
    # GIVEN a letter WHEN dead-lettered THEN its reason and type are kept (what tests read)
    queue = MemoryQueue()
    queue.send("x")
    [message] = queue.receive(max_messages=1, wait_seconds=0, visibility_seconds=30)
    assert queue.dead_letter([DeadLetter(message, "why", "KIND")]) == [message]
    assert queue.dead_letters == [("x", {"reason": "why", "error_type": "KIND"})]


@pytest.mark.parametrize("status", [413, 422])
def test_rejected_pairs_are_split_until_each_bad_record_stands_alone(make_drain, status):
    # GIVEN ten records, two of them bad, rejected as a whole with a 422 (or a 413: too large)
    queue = MemoryQueue()
    sink = MemorySink(merge_on=("Id",))
    error_type = "INVALID_VALUE_FOR_COLUMN" if status == 422 else "HTTP_413"

    def reject(fields: dict[str, Any]) -> str | None:
        return "bad" if fields["Donation Amount"] < 0 else None

    sink.reject = reject
    original = sink.write

    def write(records: Sequence[Record]) -> WriteResult:
        try:
            return original(records)
        except RecordsRejectedError as exc:
            raise RecordsRejectedError(str(exc), error_type=error_type, status=status) from exc

    sink.write = write  # type: ignore[method-assign]
    for n in range(10):
        queue.send(donation(n, DonationAmount=-1 if n in (2, 7) else 5.0))
    # WHEN drained
    summary = make_drain(queue, sink).run()
    # THEN the eight good ones are written, the two bad ones dead-lettered with the error type
    assert len(sink.rows) == 8
    assert sorted(json.loads(b)["Id"] for b, _ in queue.dead_letters) == [_id(2), _id(7)]
    assert {a["error_type"] for _, a in queue.dead_letters} == {error_type}
    assert summary.deleted == 10


# --------------------------------------------------------------------------- the DLQ copy's size
class SizeCheckingSqs:
    """A boto3 SQS client stand-in that enforces SQS's rule: body and attributes (names,
    types and values) together at most 1 MiB. (moto checks the body only.)"""

    LIMIT = 1_048_576

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **request: Any) -> dict[str, str]:
        size = len(request["MessageBody"].encode())
        for name, value in request.get("MessageAttributes", {}).items():
            size += len(name.encode()) + len(value["DataType"].encode())
            size += len(value["StringValue"].encode())
        if size > self.LIMIT:
            raise ValueError(f"InvalidParameterValue: message of {size} bytes is too long")
        self.sent.append(request)
        return {"MessageId": f"dlq-{len(self.sent)}"}


def _letter(body: str, reason: str, **attributes: str) -> DeadLetter:
    message = Message(id="m-1", receipt="r-1", body=body, receive_count=2, attributes=attributes)
    return DeadLetter(message, reason, "INVALID_VALUE_FOR_COLUMN")


@pytest.mark.parametrize("body_bytes", [1_048_000, 1_048_400, 1_048_560])
def test_a_near_1mib_poison_still_reaches_the_dlq_with_as_much_reason_as_fits(body_bytes):
    from poller.sqs import SqsQueue

    # GIVEN a poison body close to SQS's 1 MiB limit and a long reason
    client = SizeCheckingSqs()
    queue = SqsQueue(client, "http://q/source", "http://q/dlq")
    body = json.dumps({"Id": "x", "DonorDisplayName": ""})[:-2]
    body += "y" * (body_bytes - len(body) - 2) + '"}'
    reason = 'INVALID_VALUE_FOR_COLUMN: Field "Donor Display Name" cannot accept ' + "z" * 900
    # WHEN it is dead-lettered
    stored = queue.dead_letter([_letter(body, reason, trace="abc")])
    # THEN SQS took it, body intact, and the reason is there whenever there was room for any
    assert [m.id for m in stored] == ["m-1"]
    [sent] = client.sent
    assert sent["MessageBody"] == body
    attributes = sent["MessageAttributes"]
    if body_bytes <= 1_048_400:
        assert reason.startswith(attributes["poller.reason"]["StringValue"])
        assert attributes["poller.reason"]["StringValue"].startswith("INVALID_VALUE_FOR_COLUMN")


def test_a_small_poison_keeps_its_full_reason_and_attributes():
    from poller.sqs import SqsQueue

    # GIVEN a small poison message with two attributes of its own
    client = SizeCheckingSqs()
    queue = SqsQueue(client, "http://q/source", "http://q/dlq")
    # WHEN dead-lettered
    queue.dead_letter([_letter("not json", "body is not valid JSON", trace="abc", tenant="t1")])
    # THEN the reason, the error type, the source id, the receive count and its own
    # attributes are all on the DLQ copy
    attributes = client.sent[0]["MessageAttributes"]
    assert {k: v["StringValue"] for k, v in attributes.items()} == {
        "poller.reason": "body is not valid JSON",
        "poller.error_type": "INVALID_VALUE_FOR_COLUMN",
        "poller.source_message_id": "m-1",
        "poller.receive_count": "2",
        "trace": "abc",
        "tenant": "t1",
    }
