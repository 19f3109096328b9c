"""Systemic failures per route (issue 9 §1, issue 10 §1): a broken route releases its messages
and stops only itself; a guard tells a fixed cause or a systemic rejection from poison.
Also: a dead letter's reason does not repeat its error type. No socket is opened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from devstack.factories import Budget, donation
from devstack.memory import GatedPacer, MemoryQueue, MemorySink, RecordingGuard

from poller.drain.batch import Entry, Request
from poller.drain.state import Settings
from poller.drain.writer import Writer
from poller.errors import RecordsRejectedError, SinkConfigurationError
from poller.model import Message, Record
from poller.policies import Backoff, Deadline
from poller.ports import Destination

UNKNOWN_FIELD = SinkConfigurationError(
    'Airtable answered 422 UNKNOWN_FIELD_NAME: Unknown field name: "Donor Display Name"',
    error_type="UNKNOWN_FIELD_NAME",
    status=422,
)
UNAUTHORIZED = SinkConfigurationError(
    "Airtable answered 401 AUTHENTICATION_REQUIRED", error_type="AUTHENTICATION_REQUIRED"
)


def send(queue: MemoryQueue, table: str, numbers: Sequence[int], **overrides: Any) -> None:
    for n in numbers:
        queue.send(donation(n, Table=table, **overrides))


def wrong_type(fields: dict[str, Any]) -> RecordsRejectedError:
    """What Airtable answers once "Donation Amount" became a checkbox: every record fails."""
    return RecordsRejectedError(
        'Airtable answered 422 INVALID_VALUE_FOR_COLUMN: Field "Donation Amount" cannot '
        "accept the provided value",
        error_type="INVALID_VALUE_FOR_COLUMN",
        status=422,
        field="Donation Amount",
    )


def test_a_refusal_the_guard_fixed_is_sent_once_more_with_a_new_slot(make_routed_drain):
    # GIVEN a table that refuses the first request (the token rotated), and a guard that
    # re-reads the token and says it changed
    queue = MemoryQueue()
    send(queue, "A", range(10))
    sink, pacer = MemorySink(merge_on=("Id",), faults=[UNAUTHORIZED]), GatedPacer()
    guard = RecordingGuard(refused_fixed=True)
    # WHEN drained
    summary = make_routed_drain(queue, {"A": (sink, pacer)}, guard=guard).run()
    # THEN the guard was asked once, the request went again through a new slot, and all is written
    assert guard.calls == [("on_refused", "A", "AUTHENTICATION_REQUIRED", None)]
    assert pacer.granted == 2 and len(sink.requests) == 2
    assert summary.written == summary.deleted == 10 and summary.stopped_routes == {}
    assert summary.stopped_because == "empty"


def test_a_refusal_that_persists_after_the_guard_fixed_it_breaks_the_route(make_routed_drain):
    # GIVEN a table that refuses every request, and a guard that believes it fixed the cause
    queue = MemoryQueue()
    send(queue, "A", range(10))
    sink = MemorySink(merge_on=("Id",), faults=[UNAUTHORIZED] * 5)
    guard = RecordingGuard(refused_fixed=True)
    # WHEN drained
    summary = make_routed_drain(queue, {"A": (sink, GatedPacer())}, guard=guard).run()
    # THEN the request was sent twice only, the guard asked once, and the route is broken
    assert len(sink.requests) == 2 and len(guard.calls) == 1
    assert summary.stopped_because == "systemic"
    assert summary.stopped_routes == {"A": str(UNAUTHORIZED)}
    assert queue.dead_letters == [] and queue.visible() == 10


def test_a_broken_route_releases_its_messages_and_the_others_keep_writing(make_routed_drain):
    # GIVEN table A with a renamed field (every request refused) and table B that is fine,
    # 40 donations for each, already received 5 times, and a guard that cannot fix A
    queue = MemoryQueue()
    for n in range(40):
        send(queue, "A", [n])
        send(queue, "B", [100 + n])
    for stored in queue.messages:
        stored.receive_count = 5
    a = MemorySink(merge_on=("Id",), faults=[UNKNOWN_FIELD] * 20)
    b = MemorySink(merge_on=("Id",))
    guard = RecordingGuard(refused_fixed=False)
    # WHEN drained with the receive-count rule on, one request in flight per base, and room
    # for only 20 messages held at once
    summary = make_routed_drain(
        queue,
        {"A": (a, GatedPacer()), "B": (b, GatedPacer())},
        guard=guard,
        dead_letter_after_receives=4,
        max_in_flight=1,
        max_buffered=20,
        budget=Budget(10),
    ).run()
    # THEN A was asked about once and sent no request after its first refusal
    assert guard.calls == [("on_refused", "A", "UNKNOWN_FIELD_NAME", None)]
    assert len(a.requests) == 1
    # AND every A message is released: in flight, buffered or received later; none is
    # dead-lettered or counted as a failed message, and none took room from B's
    assert queue.dead_letters == [] and summary.dead_lettered == 0 and summary.failed == 0
    assert summary.released == 40 and queue.visible() == 40
    assert {json.loads(body)["Table"] for body in queue.bodies()} == {"A"}
    # AND B wrote everything; the run says which route stopped and why
    assert len(b.rows) == 40 and summary.deleted == 40
    assert summary.stopped_routes == {"A": str(UNKNOWN_FIELD)}
    assert summary.stopped_because == "empty"


def test_when_every_route_is_broken_the_run_stops_as_systemic(make_routed_drain):
    # GIVEN two tables that both refuse every request, and a guard that cannot fix them
    queue = MemoryQueue()
    send(queue, "A", range(12))
    send(queue, "B", range(100, 112))
    a = MemorySink(merge_on=("Id",), faults=[UNAUTHORIZED] * 5)
    b = MemorySink(merge_on=("Id",), faults=[UNAUTHORIZED] * 5)
    # WHEN drained
    summary = make_routed_drain(
        queue, {"A": (a, GatedPacer()), "B": (b, GatedPacer())}, guard=RecordingGuard()
    ).run()
    # THEN the run stops as systemic, touching no message: all are released
    assert summary.stopped_because == "systemic"
    assert set(summary.stopped_routes) == {"A", "B"}
    assert summary.written == summary.deleted == summary.failed == 0
    assert queue.dead_letters == [] and queue.visible() == 24 == summary.released


def test_a_uniform_rejection_judged_systemic_dead_letters_nothing(make_routed_drain):
    # GIVEN a field whose type changed in Airtable (every record rejected on that field) and
    # a guard whose fresh schema check confirms it
    queue = MemoryQueue()
    send(queue, "A", range(10))
    sink = MemorySink(merge_on=("Id",), reject=wrong_type)
    guard = RecordingGuard(uniform_systemic=True)
    # WHEN drained
    summary = make_routed_drain(queue, {"A": (sink, GatedPacer())}, guard=guard).run()
    # THEN the bisection ended with all ten rejected alike; the guard was asked once, and
    # nothing is dead-lettered: all ten are released and the route is stopped
    assert guard.calls == [
        ("on_uniform_rejection", "A", "INVALID_VALUE_FOR_COLUMN", "Donation Amount")
    ]
    assert queue.dead_letters == [] and summary.dead_lettered == 0
    assert summary.released == 10 and queue.visible() == 10 and summary.failed == 0
    assert (
        summary.stopped_because == "systemic" and "Donation Amount" in summary.stopped_routes["A"]
    )


def test_a_uniform_rejection_the_guard_calls_poison_is_dead_lettered(make_routed_drain):
    # GIVEN every record rejected on one field, but a guard whose schema check still fits
    queue = MemoryQueue()
    send(queue, "A", range(4))
    sink = MemorySink(merge_on=("Id",), reject=wrong_type)
    guard = RecordingGuard(uniform_systemic=False)
    # WHEN drained
    summary = make_routed_drain(queue, {"A": (sink, GatedPacer())}, guard=guard).run()
    # THEN they are poison as without a guard: dead-lettered with Airtable's reason
    assert len(guard.calls) == 1 and summary.dead_lettered == 4 and queue.depth() == 0
    assert summary.stopped_routes == {}


def test_rejections_on_different_fields_are_not_asked_about(make_routed_drain):
    # GIVEN two records rejected, each on a different field, among good ones
    queue = MemoryQueue()
    send(queue, "A", range(2))
    send(queue, "A", [2], DonationAmount=-1)
    send(queue, "A", [3], DonorDisplayName="")

    def reject(fields: dict[str, Any]) -> RecordsRejectedError | None:
        field = "Donation Amount" if fields["Donation Amount"] < 0 else None
        field = field or ("Donor Display Name" if fields["Donor Display Name"] == "" else None)
        if field is None:
            return None
        return RecordsRejectedError(
            f'Field "{field}" cannot accept it', error_type="INVALID_VALUE_FOR_COLUMN", field=field
        )

    sink = MemorySink(merge_on=("Id",), reject=reject)
    guard = RecordingGuard(uniform_systemic=True)
    # WHEN drained
    summary = make_routed_drain(queue, {"A": (sink, GatedPacer())}, guard=guard).run()
    # THEN the guard is not asked (not every record failed alike): the two are poison
    assert guard.calls == [] and summary.dead_lettered == 2 and len(sink.rows) == 2


def test_a_dead_letter_reason_does_not_repeat_its_error_type(make_routed_drain):
    # GIVEN a record Airtable rejects, with the adapter's text (which names the type once)
    queue = MemoryQueue()
    send(queue, "A", [1])
    sink = MemorySink(merge_on=("Id",), reject=wrong_type)
    # WHEN drained without a guard
    make_routed_drain(queue, {"A": (sink, GatedPacer())}).run()
    # THEN the reason is the error's own text, and the type is in error_type
    [(_, attributes)] = queue.dead_letters
    assert attributes == {
        "reason": str(wrong_type({})),
        "error_type": "INVALID_VALUE_FOR_COLUMN",
    }


def test_rejections_that_finish_after_the_route_broke_are_held_back_not_dead_lettered():
    # GIVEN a writer bisecting a request whose every record is rejected on a retyped field,
    # while a concurrent request breaks the route before this one's last rejection returns
    broken = {"A": False}
    entries = [
        Entry(Record({"Id": str(n)}, key=(str(n),), route="A"), [Message(str(n), "r", "{}")], 0.0)
        for n in range(4)
    ]

    def reject(fields: dict[str, Any]) -> RecordsRejectedError:
        if fields["Id"] == "3":
            broken["A"] = True
        return wrong_type(fields)

    writer = Writer(
        Settings(),
        Deadline(Budget(30), 0.5),
        Backoff(),
        time.monotonic,
        time.sleep,
        guard=RecordingGuard(uniform_systemic=True),
        is_broken=broken.__getitem__,
    )
    request = Request(Destination("A", MemorySink(reject=reject), GatedPacer()), entries)
    # WHEN it is written
    outcome = writer.write(request)
    # THEN nothing is poison: a broken route's rejections are held back, to be released
    assert outcome.rejected == [] and outcome.written == []
    assert [e.record.fields["Id"] for e in outcome.held_back] == ["0", "1", "2", "3"]
