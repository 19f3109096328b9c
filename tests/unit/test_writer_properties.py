"""Property: whatever Airtable answers, one request gives every message it carries exactly
one verdict, and a message is deleted only when its record was written, found stale, or
found already deleted.

The answers are drawn per request (a 429, a 5xx, a refusal every record would meet, or an
answer), with records rejected on one field or not, a recheck that holds the route or not,
stored rows newer or older than the messages, collapsed entries, and deletes. Deterministic
(derandomize) and bounded (max_examples), so the verdict never depends on luck or on machine
speed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from devstack.memory import FakeClock, MemorySink
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poller.batching import Entry, KeyLocks
from poller.capacity import Capacity
from poller.directory import Directory, Table
from poller.errors import (
    RecordsRejectedError,
    SystemicSinkError,
    ThrottledError,
    TransientSinkError,
)
from poller.mirror import Mirror, Resolver
from poller.model import Action, Fate, Message, Record
from poller.pacing import Backoff, Deadline, Pacer
from poller.systemic import Cause, SystemicFailure
from poller.writer import Destination, Request, Writer

SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FAULTS = {
    "answer": None,
    "429": ThrottledError("429", status=429),
    "503": TransientSinkError("503", status=503),
    "permission": SystemicSinkError("403", Cause.PERMISSION, status=403),
}


class Stored:
    """The lookups of one table: its rows by "Id", each with a record id and a version."""

    def __init__(self, versions: dict[str, float]) -> None:
        self.versions = versions

    def find(self, keys: Any, names: Any, fields: Any) -> Iterator[list[dict[str, Any]]]:
        yield [
            {"id": f"rec{k[0]}", "fields": {"Id": k[0], "Version": self.versions[k[0]]}}
            for k in keys
            if k[0] in self.versions
        ]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
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


def entries(drawn: dict[str, Any], action: Action) -> list[Entry]:
    out = []
    pairs = zip(drawn["versions"], drawn["collapsed"], strict=True)
    for n, (version, collapsed) in enumerate(pairs):
        messages = [Message(id=f"m{n}-{i}", receipt="r", body="{}") for i in range(1 + collapsed)]
        record = Record({"Id": str(n), "Amount": n}, key=(str(n),), action=action, version=version)
        out.append(Entry(record, messages, 0.0, messages[-1], (version, 0, 0)))
    return out


@SETTINGS
@given(requests())
def test_every_message_of_a_request_gets_exactly_one_verdict(drawn: dict[str, Any]) -> None:
    # GIVEN a request, a table, and Airtable's answers as drawn
    mirrored = drawn["mirrored"] or drawn["delete"]
    action = Action.DELETE if drawn["delete"] else Action.UPSERT
    batch = entries(drawn, action)
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
    mirror = None
    if mirrored:
        stored = Stored({str(n): v for n, v in drawn["stored"].items()})
        table = Table(stored, ("Id",), {"Id": "Id"}, {"Id": "singleLineText"}, "Version")  # type: ignore[arg-type]
        resolver = Resolver(Directory(), KeyLocks(), {"tbl:Id": table}, pacer, deadline)
        mirror = Mirror(resolver, "tbl:Id", versioned=True)
    held = SystemicFailure("default", Cause.TYPE, "Amount is now text")
    writer = Writer(
        deadline,
        max_attempts=3,
        suspect=lambda message, error: drawn["suspect"],
        recheck=lambda route, error: held if drawn["held"] else None,
        backoff=Backoff(rng=random.Random(0)),
        clock=clock,
        sleep=clock.sleep,
    )
    destination = Destination("default", sink, pacer, mirror, "tbl:Id")
    # WHEN it is written
    outcome = writer.write(Request(destination, batch, pacer.reserve()))
    # THEN every message has one verdict
    carried = sorted(m.id for e in batch for m in e.messages)
    assert sorted(v.message.id for v in outcome.verdicts) == carried, drawn
    # AND a message is deleted only as written, superseded or stale (or, on a delete route,
    # as a delete of a key that has no row: already done)
    deleted = sum(1 for v in outcome.verdicts if v.fate is Fate.DELETE)
    confirmed = outcome.written + outcome.superseded + outcome.stale
    assert deleted == confirmed if action is Action.UPSERT else deleted >= confirmed, drawn
