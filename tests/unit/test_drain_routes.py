"""Routes: several destinations in one run, each with its table and the pacer of its base.

Each body names its route in a "Table" key (see conftest.routed). No socket is opened.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from devstack.factories import Budget, donation
from devstack.memory import GatedPacer, MemoryQueue, MemorySink

from poller.drain import Destination, Drain
from poller.errors import ThrottledError, TransientSinkError
from poller.model import Record, WriteResult
from poller.policies import Deadline, RateLimiter


def send(queue: MemoryQueue, table: str, numbers: Sequence[int], **kwargs: Any) -> None:
    for n in numbers:
        queue.send(donation(n, Table=table), **kwargs)


def ids(sink: MemorySink) -> list[str]:
    return [row["fields"]["Id"] for row in sink.rows]


def _id(n: int) -> str:
    return donation(n)["Id"]


def test_each_request_holds_one_route_and_is_filled_per_route(make_routed_drain):
    # GIVEN 30 donations for table A and 30 for table B, interleaved, two bases
    queue = MemoryQueue()
    for n in range(30):
        send(queue, "A", [n])
        send(queue, "B", [100 + n])
    a, b = MemorySink(merge_on=("Id",)), MemorySink(merge_on=("Id",))
    # WHEN drained (a long linger: only full requests, or the last ones, leave)
    summary = make_routed_drain(
        queue,
        {"A": (a, RateLimiter(1000)), "B": (b, RateLimiter(1000))},
        batch_linger_seconds=5,
    ).run()
    # THEN each table got its own records only, in three full requests each
    assert sorted(ids(a)) == sorted(_id(n) for n in range(30))
    assert sorted(ids(b)) == sorted(_id(100 + n) for n in range(30))
    assert [len(r) for r in a.requests] == [10, 10, 10] == [len(r) for r in b.requests]
    assert summary.written == summary.deleted == 60 and queue.depth() == 0
    assert summary.stopped_because == "empty" and summary.stopped_routes == {}


def test_duplicate_keys_collapse_within_a_route_but_not_across_routes(make_routed_drain):
    # GIVEN donation 7 twice for table A (amount corrected) and once for table B
    queue = MemoryQueue()
    queue.send(donation(7, Table="A", DonationAmount=10.0))
    queue.send(donation(7, Table="A", DonationAmount=12.5))
    queue.send(donation(7, Table="B", DonationAmount=3.0))
    a, b = MemorySink(merge_on=("Id",)), MemorySink(merge_on=("Id",))
    # WHEN drained
    summary = make_routed_drain(
        queue, {"A": (a, RateLimiter(1000)), "B": (b, RateLimiter(1000))}
    ).run()
    # THEN A got one record with the latest amount, B its own record: one superseded message
    assert [len(r) for r in a.requests] == [1] and a.values("Donation Amount") == [12.5]
    assert b.values("Donation Amount") == [3.0]
    assert summary.superseded == 1 and summary.deleted == 3


def test_a_lockout_on_one_base_does_not_stall_another(make_routed_drain):
    # GIVEN two bases with their own pacers, 30 donations for each, and base A answering its
    # first request with 429; B's first write waits until A's 429 has been answered, and A's
    # lockout ends only when B has written everything (or at the deadline)
    queue = MemoryQueue()
    for n in range(30):
        send(queue, "A", [n])
        send(queue, "B", [100 + n])
    pacer_a, pacer_b = GatedPacer(), GatedPacer()
    a = MemorySink(merge_on=("Id",), faults=[ThrottledError("429", error_type="RATE_LIMIT")])
    b = MemorySink(merge_on=("Id",))
    a_throttled = threading.Event()
    order: list[str] = []
    write_a, write_b = a.write, b.write

    def into_a(records: Sequence[Record]) -> WriteResult:
        order.append("A")
        try:
            return write_a(records)
        finally:
            a_throttled.set()

    def into_b(records: Sequence[Record]) -> WriteResult:
        a_throttled.wait(5)
        order.append("B")
        try:
            return write_b(records)
        finally:
            if len(b.rows) == 30:
                pacer_a.resume()

    a.write, b.write = into_a, into_b  # type: ignore[method-assign]
    # WHEN drained, one request in flight per base, with a lockout the run has time to wait out
    summary = make_routed_drain(
        queue,
        {"A": (a, pacer_a), "B": (b, pacer_b)},
        max_in_flight=1,
        lockout_seconds=2,
        batch_linger_seconds=5,
        budget=Budget(10),
    ).run()
    # THEN B wrote all its records while A was locked out: its requests all came between A's
    # 429 and A's retry
    assert order[0] == "A" and order[1:4] == ["B", "B", "B"] and order[4] == "A"
    # AND A paused its own pacer, then reported the 429 to it; B's pacer was never paused
    assert pacer_a.calls.index("pause_until") < pacer_a.calls.index("on_throttled")
    assert "pause_until" not in pacer_b.calls
    # AND after the lockout A wrote everything too
    assert len(a.rows) == 30 and len(b.rows) == 30 and queue.depth() == 0
    assert summary.throttled == 1 and summary.stopped_because == "empty"


def test_a_locked_out_base_s_messages_do_not_fill_the_buffer_of_the_other(make_routed_drain):
    # GIVEN two bases and a queue far deeper than the buffer (100 messages for each, mixed),
    # base A answering its first request with 429, and a lockout that ends only once B has
    # written all 100 (or at the deadline)
    queue = MemoryQueue()
    for n in range(100):
        send(queue, "A", [n])
        send(queue, "B", [1000 + n])
    pacer_a, pacer_b = GatedPacer(), GatedPacer()
    a = MemorySink(merge_on=("Id",), faults=[ThrottledError("429", error_type="RATE_LIMIT")])
    b = MemorySink(merge_on=("Id",))
    write_b = b.write

    def into_b(records: Sequence[Record]) -> WriteResult:
        try:
            return write_b(records)
        finally:
            if len(b.rows) == 100:
                pacer_a.resume()

    b.write = into_b  # type: ignore[method-assign]
    # WHEN drained with room for only 20 messages
    summary = make_routed_drain(
        queue,
        {"A": (a, pacer_a), "B": (b, pacer_b)},
        max_buffered=20,
        lockout_seconds=30,
        budget=Budget(40),
    ).run()
    # THEN A's messages waited for A's lockout without holding up B: B wrote all 100, which
    # ended the lockout, and then A wrote its 100 too
    assert len(b.rows) == 100 and len(a.rows) == 100
    assert queue.depth() == 0 and summary.stopped_because == "empty"


def test_a_base_whose_slots_are_slow_does_not_hold_up_the_other(make_routed_drain):
    # GIVEN two bases; base A's pacer lets nothing through until B has written all of its 50
    queue = MemoryQueue()
    send(queue, "A", range(20))
    send(queue, "B", range(100, 150))
    pacer_a, pacer_b = GatedPacer(), GatedPacer()
    pacer_a.hold()
    a, b = MemorySink(merge_on=("Id",)), MemorySink(merge_on=("Id",))
    write_b = b.write

    def into_b(records: Sequence[Record]) -> WriteResult:
        try:
            return write_b(records)
        finally:
            if len(b.rows) == 50:
                pacer_a.resume()

    b.write = into_b  # type: ignore[method-assign]
    # WHEN drained with up to four requests in flight per base
    summary = make_routed_drain(
        queue, {"A": (a, pacer_a), "B": (b, pacer_b)}, batch_linger_seconds=5, budget=Budget(10)
    ).run()
    # THEN B went at its own pace in full requests (it did not wait for A), and then A wrote
    assert [len(r) for r in b.requests] == [10] * 5
    assert len(a.rows) == 20 and summary.deleted == 70 and summary.stopped_because == "empty"
    # AND A never had more than one request waiting for its slot
    assert pacer_a.max_waiting == 1


def resume_once_received(queue: MemoryQueue, pacer: GatedPacer) -> None:
    """Open the pacer a moment after the run has received every message."""
    for _ in range(200):
        if queue.visible() == 0:
            break
        time.sleep(0.01)
    time.sleep(0.2)
    pacer.resume()


def test_routes_sharing_a_pacer_have_one_request_waiting_for_it_at_a_time(make_routed_drain):
    # GIVEN two tables of one base (one pacer), whose slots are held back for a while
    queue = MemoryQueue()
    send(queue, "X", range(20))
    send(queue, "Y", range(100, 120))
    pacer = GatedPacer()
    pacer.hold()
    x, y = MemorySink(merge_on=("Id",)), MemorySink(merge_on=("Id",))
    threading.Thread(target=resume_once_received, args=(queue, pacer), daemon=True).start()
    # WHEN drained with up to four requests in flight
    summary = make_routed_drain(
        queue, {"X": (x, pacer), "Y": (y, pacer)}, batch_linger_seconds=0.0
    ).run()
    # THEN only one request at a time waited for the shared slot, and everything was written
    # to its own table
    assert pacer.max_waiting == 1
    assert sorted(ids(x)) == sorted(_id(n) for n in range(20))
    assert sorted(ids(y)) == sorted(_id(n) for n in range(100, 120))
    assert summary.deleted == 40


def test_a_fifo_group_keeps_its_order_across_routes(make_routed_drain):
    # GIVEN FIFO group G: g0 for table X, g1 for table Y, g2 for X, and group H for Y; X's
    # base is locked out at first, so Y could go ahead
    queue = MemoryQueue(fifo=True)
    send(queue, "X", [0], group_id="G")
    send(queue, "Y", [1], group_id="G")
    send(queue, "X", [2], group_id="G")
    send(queue, "Y", [10], group_id="H")
    x, y = MemorySink(merge_on=("Id",)), MemorySink(merge_on=("Id",))
    pacer_x = GatedPacer()
    pacer_x.pause_until(time.monotonic() + 0.3)
    timer = threading.Timer(0.3, pacer_x.resume)
    timer.start()
    # WHEN drained
    try:
        summary = make_routed_drain(
            queue, {"X": (x, pacer_x), "Y": (y, GatedPacer())}, fifo=True, max_in_flight=1
        ).run()
    finally:
        timer.cancel()
    # THEN G was written in its order across the two tables: g1 waited for g0, g2 for g1
    confirmed = sorted([(at, key) for key, at in x.confirmed_log + y.confirmed_log])
    written = [key for _, key in confirmed]
    assert [k for k in written if k != _id(10)] == [_id(0), _id(1), _id(2)]
    assert summary.deleted == 4 and queue.depth() == 0


def test_a_fifo_group_failing_in_one_route_is_not_written_further_in_another(make_routed_drain):
    # GIVEN FIFO group G: g0 for table X, g1 for table Y, g2 for X; X fails its first request
    queue = MemoryQueue(fifo=True)
    send(queue, "X", [0], group_id="G")
    send(queue, "Y", [1], group_id="G")
    send(queue, "X", [2], group_id="G")
    send(queue, "Y", [10], group_id="H")
    x = MemorySink(merge_on=("Id",), faults=[TransientSinkError("503")])
    y = MemorySink(merge_on=("Id",))
    # WHEN drained one attempt per request
    summary = make_routed_drain(
        queue,
        {"X": (x, RateLimiter(1000)), "Y": (y, RateLimiter(1000))},
        fifo=True,
        max_in_flight=1,
        max_attempts=1,
    ).run()
    # THEN g1 was not written to Y past g0's failure in X; G is released whole, in order,
    # and group H went on
    assert ids(y) == [_id(10)] and x.rows == []
    assert [json.loads(b)["Id"] for b in queue.bodies()] == [_id(0), _id(1), _id(2)]
    assert summary.released == 3


def test_a_route_without_a_destination_stops_the_run_loudly(make_routed_drain):
    # GIVEN a message routed to a table that has no destination
    queue = MemoryQueue()
    send(queue, "A", range(3))
    send(queue, "Nowhere", [9])
    a = MemorySink(merge_on=("Id",))
    # WHEN drained
    summary = make_routed_drain(queue, {"A": (a, RateLimiter(1000))}).run()
    # THEN the run stops on an error naming the route; nothing is dead-lettered, and every
    # message it holds is released
    assert summary.stopped_because == "error" and "'Nowhere'" in (summary.error or "")
    assert queue.dead_letters == [] and a.rows == []
    assert queue.depth() == 4 and queue.visible() == 4


def test_the_summary_reports_the_slowest_pacing(make_routed_drain):
    # GIVEN two bases paced at 4.9 and 2.5 requests/s
    queue = MemoryQueue()
    sinks = {"A": MemorySink(), "B": MemorySink()}
    pacers = {"A": GatedPacer(effective_rps=4.9), "B": GatedPacer(effective_rps=2.5)}
    # WHEN an empty queue is drained
    summary = make_routed_drain(queue, {k: (sinks[k], pacers[k]) for k in sinks}).run()
    # THEN the pacing rate is the lowest of them, for the PacingRate metric
    assert summary.pacing_rps == 2.5 and summary.to_dict()["pacing_rps"] == 2.5


def test_a_drain_needs_destinations_keyed_by_their_names():
    # GIVEN / WHEN a core is built without destinations, or with a misnamed one
    # THEN it refuses at once
    deadline = Deadline(lambda: 30_000, 0.5)
    with pytest.raises(ValueError, match="at least one destination"):
        Drain(MemoryQueue(), lambda m: Record({}), deadline, {})
    with pytest.raises(ValueError, match="another name"):
        Drain(
            MemoryQueue(),
            lambda m: Record({}),
            deadline,
            {"a": Destination("b", MemorySink(), GatedPacer())},
        )


def _assembler_with(routes: dict[str, int], *, parked: str | None = None):
    """An assembler over one GatedPacer per route, holding `routes[name]` messages each."""
    from poller.drain.assembler import Assembler
    from poller.drain.state import RunState, Settings
    from poller.model import Message

    pacers = {name: GatedPacer() for name in routes}
    if parked is not None:
        pacers[parked].pause_until(time.monotonic() + 30)  # a lockout
    destinations = {name: Destination(name, MemorySink(), pacers[name]) for name in routes}
    assembler = Assembler(
        destinations,
        RunState(fifo=False),
        Settings(max_buffered=100),
        Deadline(Budget(30), 0.5),
        time.monotonic,
    )
    for name, count in routes.items():
        for n in range(count):
            message = Message(f"{name}-{n}", "r", "{}")
            assembler.add(Record({"Id": n}, route=name), message, time.monotonic())
    return assembler


def test_a_route_s_backlog_beyond_its_share_does_not_count_against_the_buffer():
    # GIVEN two routes and max_buffered 100 (a share of 50 each): base A left 150 messages
    # behind after a lockout, base B has 10
    # THEN A's 100 beyond its share do not count, so the receiver keeps receiving for B
    assert _assembler_with({"A": 150, "B": 10}).uncounted() == 100
    # AND while A is still locked out, none of A's count
    assert _assembler_with({"A": 150, "B": 10}, parked="A").uncounted() == 150
    # AND one route has the whole buffer as its share: as before routes, 100 count
    assert _assembler_with({"A": 150}).uncounted() == 50
    assert _assembler_with({"A": 60, "B": 40}).uncounted() == 10
