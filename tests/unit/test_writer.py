"""The writer: one request to verdicts. Written records are deleted, a bad record is found
by bisection and dead-lettered alone, a lockout is waited out, a refusal every record would
meet stops the route and releases, a transient failure is retried.

The property test at the end draws Airtable's answers per request (a 429, a 5xx, a refusal
every record would meet, or an answer), records rejected on one field or not, a recheck that
holds the route or not, stored rows newer or older than the messages, collapsed entries, and
deletes. It is deterministic (derandomize), bounded (max_examples), and on a fake clock, so
its verdict never depends on luck or on machine speed."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack.memory import FakeClock, MemorySink
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poller.batching import Entry, KeyLocks
from poller.capacity import Capacity
from poller.directory import Directory, Table
from poller.errors import (
    RecordsRejectedError,
    SinkError,
    SystemicSinkError,
    ThrottledError,
    TransientSinkError,
)
from poller.mirror import Mirror, Resolver
from poller.model import Action, Fate, Message, Record
from poller.pacing import Backoff, Deadline, Pacer
from poller.systemic import Cause, SystemicFailure
from poller.writer import Destination, Request, Writer


def entry(n: int, receives: int = 1, group: str | None = None) -> Entry:
    message = Message(
        id=f"m{n}", receipt=f"r{n}", body="{}", receive_count=receives, group_id=group, sequence=n
    )
    record = Record({"Id": str(n), "Amount": n}, key=(str(n),))
    return Entry(record, [message], 0.0, message, (0, 0, 0))


def request(sink: MemorySink, entries: list[Entry], pacer: Pacer | None = None) -> Request:
    pacer = pacer or Pacer(Capacity(1000.0), lockout_seconds=0.2)
    return Request(Destination("default", sink, pacer), entries, pacer.reserve())


def writer(
    seconds: float = 30,
    suspect: Callable[[Message, SinkError], bool] = lambda m, e: False,
    deadline: Deadline | None = None,
    **options: object,
) -> Writer:
    return Writer(
        deadline or Deadline(lambda: int(seconds * 1000), 0.5),
        max_attempts=3,
        suspect=suspect,
        **{"backoff": Backoff(0.01, 0.02), **options},
    )  # type: ignore[arg-type]


def fates(outcome: object) -> dict[str, Fate]:
    return {v.message.id: v.fate for v in outcome.verdicts}  # type: ignore[attr-defined]


def test_a_written_request_deletes_every_message() -> None:
    sink = MemorySink(merge_on=("Id",))
    outcome = writer().write(request(sink, [entry(n) for n in range(10)]))
    assert (
        set(fates(outcome).values()) == {Fate.DELETE}
        and outcome.written == 10
        and outcome.created == 10
    )
    assert len(sink.requests) == 1


def test_one_bad_record_is_found_by_bisection_and_dead_lettered_alone() -> None:
    # GIVEN a request of ten records, one of which Airtable rejects
    sink = MemorySink(
        merge_on=("Id",), reject=lambda f: "cannot accept" if f["Amount"] == 7 else None
    )
    # WHEN it is written
    outcome = writer().write(request(sink, [entry(n) for n in range(10)]))
    # THEN the nine others are written and only the bad one is a dead letter, with the reason
    assert [m for m, f in fates(outcome).items() if f is Fate.DEAD_LETTER] == ["m7"]
    assert sum(1 for r in sink.rows) == 9 and outcome.requests <= 1 + 2 * 4
    assert "cannot accept" in next(v.reason for v in outcome.verdicts if v.fate is Fate.DEAD_LETTER)


def test_a_lockout_is_waited_out_and_the_request_written_after_it() -> None:
    # GIVEN a request answered 429 once
    sink = MemorySink(merge_on=("Id",), faults=[ThrottledError("429", status=429)])
    pacer = Pacer(Capacity(5.0), lockout_seconds=0.2)
    # WHEN it is written
    outcome = writer().write(request(sink, [entry(1)], pacer))
    # THEN it waited for the lockout and was written; the pacer learned
    assert fates(outcome) == {"m1": Fate.DELETE} and outcome.throttled == 1 and pacer.lockouts == 1


def test_a_lockout_longer_than_the_time_left_releases_without_hammering() -> None:
    sink = MemorySink(merge_on=("Id",), faults=[ThrottledError("429", status=429)] * 5)
    pacer = Pacer(Capacity(5.0), lockout_seconds=30)
    outcome = writer(seconds=5).write(request(sink, [entry(1), entry(2)], pacer))
    assert set(fates(outcome).values()) == {Fate.RELEASE} and outcome.out_of_time
    assert len(sink.requests) == 1


@pytest.mark.parametrize("cause", [Cause.BILLING, Cause.PERMISSION, Cause.BASE_FULL, Cause.FIELD])
def test_a_refusal_every_record_would_meet_stops_the_route_and_releases(cause: Cause) -> None:
    sink = MemorySink(merge_on=("Id",), faults=[SystemicSinkError("refused", cause, status=403)])
    outcome = writer().write(request(sink, [entry(n) for n in range(3)]))
    assert outcome.failure is not None and outcome.failure.cause is cause
    assert set(fates(outcome).values()) == {Fate.RELEASE}
    assert all(v.blameless for v in outcome.verdicts)


def test_a_401_reads_the_token_again_once_and_writes_with_the_new_one() -> None:
    sink = MemorySink(merge_on=("Id",), faults=[SystemicSinkError("401", Cause.TOKEN, status=401)])
    reads: list[int] = []
    outcome = writer(refresh_token=lambda: reads.append(1) or True).write(request(sink, [entry(1)]))
    assert fates(outcome) == {"m1": Fate.DELETE} and reads == [1]


def test_a_transient_failure_is_retried_then_released_or_dead_lettered_when_suspect() -> None:
    # GIVEN a request that fails with 503 every time, of a message on its 4th receive
    sink = MemorySink(merge_on=("Id",), faults=[TransientSinkError("503", status=503)] * 9)
    suspect = lambda m, e: m.receive_count >= 4  # noqa: E731
    outcome = writer(suspect=suspect).write(request(sink, [entry(1, receives=4), entry(2)]))
    # THEN it was tried 3 times; the suspect one is a dead letter with its last error
    assert outcome.retries == 2 and outcome.requests == 3
    assert fates(outcome) == {"m1": Fate.DEAD_LETTER, "m2": Fate.RELEASE}
    released = next(v for v in outcome.verdicts if v.fate is Fate.RELEASE)
    assert not released.blameless  # its own write failed: it may be at fault


def test_every_record_rejected_alike_after_a_field_changed_is_held_not_dead_lettered() -> None:
    # GIVEN every record rejected on one field, and a check that finds the field retyped
    error = RecordsRejectedError(
        'Field "Amount" cannot accept the provided value',
        error_type="INVALID_VALUE_FOR_COLUMN",
        field="Amount",
    )
    sink = MemorySink(merge_on=("Id",), reject=lambda f: error)
    failure = SystemicFailure("default", Cause.TYPE, "Amount is now text")
    outcome = writer(recheck=lambda route, e: failure).write(
        request(sink, [entry(n) for n in range(4)])
    )
    # THEN nothing is a dead letter: the route is stopped and every message released
    assert outcome.failure == failure and set(fates(outcome).values()) == {Fate.RELEASE}


def test_every_record_rejected_alike_with_the_field_unchanged_is_poison() -> None:
    error = RecordsRejectedError(
        'Field "Amount" cannot accept the provided value',
        error_type="INVALID_VALUE_FOR_COLUMN",
        field="Amount",
    )
    sink = MemorySink(merge_on=("Id",), reject=lambda f: error)
    outcome = writer(recheck=lambda route, e: None).write(
        request(sink, [entry(n) for n in range(4)])
    )
    assert outcome.failure is None and set(fates(outcome).values()) == {Fate.DEAD_LETTER}


def test_fifo_a_later_message_of_a_group_whose_earlier_one_was_released_is_kept_back() -> None:
    # GIVEN a request [g1, h2, g3] that Airtable rejects for h2, and g1's own request
    # (the first half of the bisection) failing transiently until its attempts run out
    transient = TransientSinkError("503", status=503)
    sink = MemorySink(
        merge_on=("Id",),
        reject=lambda f: "no" if f["Amount"] == 2 else None,
        faults=[None, transient, transient, transient],
    )
    entries = [entry(1, group="g"), entry(2, group="h"), entry(3, group="g")]
    # WHEN it is written
    outcome = writer().write(request(sink, entries))
    # THEN g1 is released, g3 is kept back behind it (not written past it), h2 is poison
    assert fates(outcome) == {"m1": Fate.RELEASE, "m2": Fate.DEAD_LETTER, "m3": Fate.RELEASE}
    assert all("Amount" not in r or r["Amount"] != 3 for r in (row["fields"] for row in sink.rows))


class Stored:
    """A mirror's lookups of one table (`find`): the stored rows, keyed by "Id", each with
    its record id and version."""

    def __init__(self, rows: dict[str, tuple[str, float]]) -> None:
        self.rows = rows

    def find(self, keys: Any, names: Any, fields: Any) -> Iterator[list[dict[str, Any]]]:
        asked = [k[0] for k in keys]
        yield [
            {"id": self.rows[k][0], "fields": {"Id": k, "Version": self.rows[k][1]}}
            for k in asked
            if k in self.rows
        ]


def mirrored(
    sink: MemorySink,
    stored: dict[str, tuple[str, float]],
    entries: list[Entry],
    pacer: Pacer | None = None,
    deadline: Deadline | None = None,
) -> Request:
    """A request of a versioned route whose stored rows are `stored`."""
    pacer = pacer or Pacer(Capacity(1000.0), lockout_seconds=0.2)
    table = Table(Stored(stored), ("Id",), {"Id": "Id"}, {"Id": "singleLineText"}, "Version")  # type: ignore[arg-type]
    deadline = deadline or Deadline(lambda: 30_000, 0.5)
    resolver = Resolver(Directory(), KeyLocks(), {"tbl:Id": table}, pacer, deadline)
    mirror = Mirror(resolver, "tbl:Id", versioned=True)
    return Request(Destination("default", sink, pacer, mirror, "tbl:Id"), entries, pacer.reserve())


def versioned(n: int, version: float, action: Action = Action.UPSERT) -> Entry:
    message = Message(id=f"m{n}", receipt=f"r{n}", body="{}")
    record = Record({"Id": str(n), "Amount": n}, key=(str(n),), action=action, version=version)
    return Entry(record, [message], 0.0, message, (version, 0, 0))


def test_a_stale_message_keeps_its_verdict_when_the_rest_of_its_request_is_held() -> None:
    # GIVEN a versioned request whose m0 is older than its stored row, and whose other
    # records Airtable rejects alike on a field that the check then finds retyped
    error = RecordsRejectedError("bad", error_type="INVALID_VALUE_FOR_COLUMN", field="Amount")
    sink = MemorySink(merge_on=("Id",), reject=lambda f: error)
    failure = SystemicFailure("default", Cause.TYPE, "Amount is now text")
    entries = [versioned(0, 1.0), versioned(1, 2.0), versioned(2, 2.0)]
    # WHEN it is written
    outcome = writer(recheck=lambda route, e: failure).write(
        mirrored(sink, {"0": ("rec0", 5.0)}, entries)
    )
    # THEN every message has a verdict: the stale one is deleted, the others released
    assert fates(outcome) == {"m0": Fate.DELETE, "m1": Fate.RELEASE, "m2": Fate.RELEASE}
    assert outcome.stale == 1 and outcome.failure == failure


@pytest.mark.parametrize(
    "fault", [ThrottledError("429", status=429), TransientSinkError("503", status=503)]
)
def test_a_delete_waits_out_a_lockout_and_retries_a_transient_failure(fault: SinkError) -> None:
    # GIVEN a delete of a stored row, whose first request is answered 429 or 503
    sink = MemorySink(merge_on=("Id",), faults=[fault])
    sink.rows = [{"id": "rec1", "fields": {"Id": "1"}}]
    # WHEN it is written
    outcome = writer().write(
        mirrored(sink, {"1": ("rec1", 1.0)}, [versioned(1, 2.0, Action.DELETE)])
    )
    # THEN the row is gone after a second request, and the message is deleted
    assert fates(outcome) == {"m1": Fate.DELETE} and outcome.failure is None
    assert sink.rows == [] and len(sink.requests) == 2 and outcome.written == 1


def test_a_delete_that_keeps_failing_is_dead_lettered_when_suspect() -> None:
    # GIVEN a delete whose every request fails with 503, of a message on its 4th receive
    sink = MemorySink(merge_on=("Id",), faults=[TransientSinkError("503", status=503)] * 9)
    suspect = lambda m, e: m.receive_count >= 4  # noqa: E731
    entry = versioned(1, 2.0, Action.DELETE)
    entry.messages[0] = entry.winner = Message(id="m1", receipt="r1", body="{}", receive_count=4)
    # WHEN it is written
    outcome = writer(suspect=suspect).write(mirrored(sink, {"1": ("rec1", 1.0)}, [entry]))
    # THEN it was retried while attempts allowed, then dead-lettered with the last error,
    # as a failed write is; the route is not stopped
    assert fates(outcome) == {"m1": Fate.DEAD_LETTER} and outcome.failure is None
    assert len(sink.requests) == 3 and "503" in outcome.verdicts[0].reason


FAULTS = {
    "answer": None,
    "429": ThrottledError("429", status=429),
    "503": TransientSinkError("503", status=503),
    "permission": SystemicSinkError("403", Cause.PERMISSION, status=403),
}


@st.composite
def drawn_requests(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 10))
    return {
        "versions": draw(st.lists(st.sampled_from([1.0, 2.0, 3.0]), min_size=size, max_size=size)),
        "collapsed": draw(st.lists(st.booleans(), min_size=size, max_size=size)),
        "stored": draw(st.dictionaries(st.integers(0, size - 1), st.sampled_from([1.0, 2.0]))),
        "bad": draw(st.just(set(range(size))) | st.sets(st.integers(0, size - 1))),
        "alike": draw(st.booleans()),
        "faults": draw(st.lists(st.sampled_from(sorted(FAULTS)), max_size=6)),
        "mirrored": draw(st.booleans()),
        "delete": draw(st.booleans()),
        "held": draw(st.booleans()),
        "suspect": draw(st.booleans()),
    }


def drawn_entries(drawn: dict[str, Any], action: Action) -> list[Entry]:
    out = []
    pairs = zip(drawn["versions"], drawn["collapsed"], strict=True)
    for n, (version, collapsed) in enumerate(pairs):
        messages = [Message(id=f"m{n}-{i}", receipt="r", body="{}") for i in range(1 + collapsed)]
        record = Record({"Id": str(n), "Amount": n}, key=(str(n),), action=action, version=version)
        out.append(Entry(record, messages, 0.0, messages[-1], (version, 0, 0)))
    return out


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(drawn_requests())
def test_every_message_of_a_request_gets_exactly_one_verdict(drawn: dict[str, Any]) -> None:
    # GIVEN a request, a table, and Airtable's answers as drawn
    action = Action.DELETE if drawn["delete"] else Action.UPSERT
    batch = drawn_entries(drawn, action)
    field = "Amount" if drawn["alike"] else None
    sink = MemorySink(
        merge_on=("Id",),
        faults=[FAULTS[name] for name in drawn["faults"]],
        reject=lambda f: (
            RecordsRejectedError("bad", field=field) if f["Amount"] in drawn["bad"] else None
        ),
    )
    sink.rows = [{"id": f"rec{n}", "fields": {"Id": str(n)}} for n in drawn["stored"]]
    clock = FakeClock()  # lockouts, spacing and backoff take no real time
    pacer = Pacer(Capacity(1000.0, wall=clock.wall), clock=clock, sleep=clock.sleep)
    start = clock.now
    deadline = Deadline(lambda: int(300_000 - (clock.now - start) * 1000), 0.5)
    if drawn["mirrored"] or drawn["delete"]:
        stored = {str(n): (f"rec{n}", v) for n, v in drawn["stored"].items()}
        made = mirrored(sink, stored, batch, pacer, deadline)
    else:
        made = request(sink, batch, pacer)
    held = SystemicFailure("default", Cause.TYPE, "Amount is now text")
    chosen = writer(
        suspect=lambda message, error: drawn["suspect"],
        deadline=deadline,
        recheck=lambda route, error: held if drawn["held"] else None,
        backoff=Backoff(rng=random.Random(0)),
        clock=clock,
        sleep=clock.sleep,
    )
    # WHEN it is written
    outcome = chosen.write(made)
    # THEN every message has one verdict
    carried = sorted(m.id for e in batch for m in e.messages)
    assert sorted(v.message.id for v in outcome.verdicts) == carried, drawn
    # AND a message is deleted only as written, superseded or stale (or, on a delete route,
    # as a delete of a key that has no row: already done)
    deleted = sum(1 for v in outcome.verdicts if v.fate is Fate.DELETE)
    confirmed = outcome.written + outcome.superseded + outcome.stale
    assert deleted == confirmed if action is Action.UPSERT else deleted >= confirmed, drawn
