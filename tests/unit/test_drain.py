"""The drain loop over in-memory fakes: everything written once, poison dead-lettered with
its reason, nothing received that cannot be written before the deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from devstack.factories import DONATION_FIELD_MAP_JSON, Budget, donation
from devstack.memory import MemoryQueue, MemorySink

from poller.capacity import Capacity
from poller.drain import Drain, Limits
from poller.errors import SystemicSinkError, ThrottledError
from poller.fieldmap import FieldMap
from poller.pacing import Deadline, Pacer
from poller.routing import Condition, Route, Router
from poller.systemic import Cause
from poller.writer import Destination, Writer

DrainFactory = Callable[..., Drain]


def ids(sink: MemorySink) -> list[str]:
    return sorted(r["fields"]["Id"] for r in sink.rows)


def test_a_queue_is_drained_ten_records_per_request(make_drain: DrainFactory) -> None:
    # GIVEN 45 donations
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    for n in range(45):
        queue.send(donation(n))
    # WHEN one run of 10 s drains the queue, A waiting out 3 s after each 429
    summary = make_drain(queue, sink).run()
    # THEN each is one row, every message was deleted, in full requests but the last
    assert ids(sink) == sorted(donation(n)["Id"] for n in range(45))
    assert (summary.written, summary.deleted, summary.stopped_because) == (45, 45, "empty")
    assert sorted(len(r) for r in sink.requests) == [5, 10, 10, 10, 10]
    assert queue.depth() == 0


def test_poison_is_dead_lettered_with_its_reason_and_the_rest_written(
    make_drain: DrainFactory,
) -> None:
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    queue.send(donation(1))
    queue.send("not json")
    queue.send('{"DonationAmount": 1.0}')
    queue.send("[" * 100_000)  # nested too deep for the parser
    summary = make_drain(queue, sink).run()
    assert summary.written == 1 and summary.dead_lettered == 3 and queue.depth() == 0
    reasons = [attributes["reason"] for _, attributes in queue.dead_letters]
    assert any("not valid JSON" in r for r in reasons) and any("Id" in r for r in reasons)


def test_two_messages_of_one_key_make_one_row_and_both_are_deleted(
    make_drain: DrainFactory,
) -> None:
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    queue.send(donation(1, DonationAmount=5.0))
    queue.send(donation(1, DonationAmount=7.0))  # sent later: it wins
    summary = make_drain(queue, sink).run()
    assert [r["fields"]["Donation Amount"] for r in sink.rows] == [7.0]
    assert (summary.superseded, summary.deleted, queue.depth()) == (1, 2, 0)


def test_two_messages_of_one_key_rejected_by_airtable_are_not_counted_superseded(
    make_drain: DrainFactory,
) -> None:
    # GIVEN two messages of one key, whose record Airtable rejects
    queue = MemoryQueue()
    sink = MemorySink(merge_on=("Id",), reject=lambda fields: "cannot accept the value")
    queue.send(donation(1, DonationAmount=5.0))
    queue.send(donation(1, DonationAmount=7.0))
    # WHEN they are drained
    summary = make_drain(queue, sink).run()
    # THEN both are dead letters, and neither is counted as superseded (nothing was written)
    assert (summary.superseded, summary.dead_lettered, summary.written) == (0, 2, 0)


def test_only_what_the_base_can_write_before_the_deadline_is_received(
    make_drain: DrainFactory,
) -> None:
    # GIVEN 300 donations, a base paced at 1 request/s and a run with 6 usable seconds
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    for n in range(300):
        queue.send(donation(n))
    pacer = Pacer(Capacity(1.0), lockout_seconds=0.3)
    # WHEN it runs
    summary = make_drain(queue, sink, seconds=6.5, margin=0.5, pacer=pacer).run()
    # THEN it received no more than it could write, and wrote all it received
    assert summary.received <= 10 * (6 + 1) + 10
    assert summary.written == summary.received and summary.released == 0
    assert queue.depth() == 300 - summary.written


def test_a_base_locked_out_past_the_deadline_receives_nothing(make_drain: DrainFactory) -> None:
    # GIVEN a warm container whose pacer is waiting out a 60 s lockout, and a 10 s run
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    for n in range(20):
        queue.send(donation(n))
    pacer = Pacer(Capacity(5.0), lockout_seconds=60)
    sent = pacer.send(pacer.reserve(), not_after=float("inf"))
    assert sent is not None
    pacer.throttled(sent)
    # WHEN it runs
    summary = make_drain(queue, sink, seconds=10, pacer=pacer).run()
    # THEN it received nothing: no receive count was spent
    assert summary.received == 0 and all(c[0] != "receive" for c in queue.calls)


class LockedSink(MemorySink):
    """A base that answers 429 to every request while `locked()` holds (another client
    locked it out); a refused request is counted, and kept in `requests` too."""

    locked: Callable[[], bool]  # set by each test
    refused: int = 0

    def write(self, records):  # type: ignore[no-untyped-def]
        if self.locked():
            self.refused += 1
            self.requests.append([dict(r.fields) for r in records])
            raise ThrottledError("429", status=429)
        return super().write(records)


def test_lockouts_in_a_warm_container_never_push_a_message_to_the_dlq(
    make_drain: DrainFactory,
) -> None:
    # GIVEN a queue whose redrive policy moves a message on its 4th receive, and a base that
    # answers 429 to everything for the next 8 s, far longer than one run
    queue = MemoryQueue(max_receive_count=3)
    for n in range(15):
        queue.send(donation(n))
    sink = LockedSink(merge_on=("Id",))
    until = time.monotonic() + 8
    sink.locked = lambda: time.monotonic() < until
    pacer = Pacer(Capacity(5.0), lockout_seconds=2.0)
    # WHEN runs of 2.5 s are scheduled every 0.5 s in one container, until all is written
    summaries = []
    while time.monotonic() < until + 3 or queue.depth():
        summaries.append(make_drain(queue, sink, seconds=2.5, margin=0.5, pacer=pacer).run())
        assert len(summaries) < 60
        time.sleep(0.5)
    # THEN every donation landed once and none went to the DLQ; a receive was spent only
    # where a request was sent for it
    assert queue.redriven == [] and len(sink.rows) == 15 and queue.depth() == 0
    assert sum(s.received for s in summaries) <= 10 * len(sink.requests)


def test_a_base_locked_out_mid_run_does_not_stall_the_other_base(
    make_drain: DrainFactory,
) -> None:
    # GIVEN donations for two routes on two bases, interleaved in one queue, and a base A
    # that answers 429 until base B has every one of its rows (another client locked it)
    queue = MemoryQueue()
    for n in range(120):
        queue.send(donation(n, Base="a" if n % 12 == 0 else "b"))
    field_map = FieldMap.parse(DONATION_FIELD_MAP_JSON)
    routes = [
        Route(
            name, base, "Donations", field_map, ("Id",), (Condition("Base", "equals", f'"{name}"'),)
        )
        for name, base in (("a", "appDonations0000A"), ("b", "appDonations0000B"))
    ]
    sink_b = MemorySink(merge_on=("Id",))
    sink_a = LockedSink(merge_on=("Id",))
    sink_a.locked = lambda: len(sink_b.rows) < 110
    deadline = Deadline(Budget(10), 0.5)
    writer = Writer(deadline, max_attempts=3, suspect=lambda m, e: False)
    destinations = {
        name: Destination(name, sink, Pacer(Capacity(1000.0), lockout_seconds=3.0))
        for name, sink in (("a", sink_a), ("b", sink_b))
    }
    # WHEN one run drains the queue
    limits = Limits(wait_time_seconds=0, linger_seconds=0.05, poll_seconds=0.005)
    summary = Drain(queue, Router(routes), destinations, deadline, writer, limits=limits).run()
    # THEN B was received and written while A was locked out, and then A was written too
    assert sink_a.refused > 0
    assert (len(sink_b.rows), len(sink_a.rows)) == (110, 10)
    assert (summary.deleted, summary.dead_lettered, queue.depth()) == (120, 0, 0)


def test_a_route_refused_mid_run_stops_receiving_and_releases_what_it_holds(
    make_drain: DrainFactory,
) -> None:
    # GIVEN 50 donations and a base that refuses its second request (the token lost access)
    queue = MemoryQueue()
    for n in range(50):
        queue.send(donation(n))
    sink = MemorySink(
        merge_on=("Id",), faults=[None, SystemicSinkError("403", Cause.PERMISSION, status=403)]
    )
    # WHEN it runs
    summary = make_drain(queue, sink).run()
    # THEN it stopped as systemic, naming the route and cause; nothing is a dead letter
    assert summary.stopped_because == "systemic" and "default" in summary.stopped_routes
    assert summary.dead_lettered == 0 and queue.dead_letters == []
    assert summary.written + queue.depth() == 50 and queue.visible() == queue.depth()


def test_fifo_a_group_keeps_its_order_when_a_write_fails(make_drain: DrainFactory) -> None:
    # GIVEN a FIFO queue with two groups, and a base that refuses group a's first request
    queue, sink = MemoryQueue(fifo=True), MemorySink(merge_on=("Id",))
    for n in range(3):
        queue.send(donation(n), group_id="a")
        queue.send(donation(10 + n), group_id="b")
    from poller.drain import Limits

    limits = Limits(
        wait_time_seconds=0, linger_seconds=0.01, poll_seconds=0.005, in_flight=1, fifo=True
    )
    summary = make_drain(queue, sink, limits=limits).run()
    # THEN each group's rows were written in sending order
    order = [json.loads(json.dumps(r["fields"]["Id"])) for r in sink.rows]
    a = [donation(n)["Id"] for n in range(3)]
    assert [i for i in order if i in a] == a and summary.stopped_because == "empty"


def test_fifo_without_a_dlq_poison_does_not_take_its_group_to_the_redrive(
    make_drain: DrainFactory,
) -> None:
    # GIVEN a FIFO queue without a DLQ whose group a starts with a message no route can map,
    # then a valid donation, and a group b of one valid donation
    queue, sink = MemoryQueue(fifo=True, with_dlq=False), MemorySink(merge_on=("Id",))
    queue.send("not json", group_id="a")
    queue.send(donation(1), group_id="a")
    queue.send(donation(10), group_id="b")
    from poller.drain import Limits

    limits = Limits(
        wait_time_seconds=0, linger_seconds=0.01, poll_seconds=0.005, in_flight=1, fifo=True
    )
    # WHEN it runs
    summary = make_drain(queue, sink, limits=limits).run()
    # THEN only the poison stays, for the redrive policy: group a's donation was written
    # rather than held, where it would have shared the poison's receive count
    assert sorted(r["fields"]["Id"] for r in sink.rows) == [donation(1)["Id"], donation(10)["Id"]]
    assert (summary.failed, summary.released, queue.depth()) == (1, 0, 1)
