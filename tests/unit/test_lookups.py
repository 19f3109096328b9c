"""The resolver's lookups: one request reads the keys of many, a key is read once even by
requests in flight together, a stale version is dropped, and each request's first call
takes the slot reserved when it was picked."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from poller.batching import Entry, KeyLocks
from poller.capacity import Capacity
from poller.directory import Directory, Row, Table
from poller.mirror import Mirror, Resolver
from poller.model import Action, Fate, Message, Record
from poller.pacing import Deadline, Pacer, Slots

TABLE = "tblDonations0001"
KEY, VERSION = "fldId", "fldVersion"


class Rows:
    """A table's `find`: the stored rows; each `find` is one lookup request. `hold` keeps
    every lookup's answer back until it is set."""

    def __init__(self, rows: dict[str, float] | None = None) -> None:
        self.rows = rows or {}
        self.lookups: list[list[str]] = []
        self.started = threading.Event()
        self.hold = threading.Event()
        self.hold.set()

    def find(
        self, keys: Sequence[tuple[Any, ...]], key_fields: Sequence[str], fields: Sequence[str]
    ) -> Iterator[list[dict[str, Any]]]:
        asked = [k[0] for k in keys]

        def pages() -> Iterator[list[dict[str, Any]]]:
            self.lookups.append(asked)
            self.started.set()
            self.hold.wait(timeout=10)
            yield [
                {"id": f"rec{k}", "fields": {KEY: k, VERSION: self.rows[k]}}
                for k in asked
                if k in self.rows
            ]

        return pages()


class WatchedCondition(threading.Condition):
    """A condition that says when a thread began to wait on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def entry(key: str, version: float) -> Entry:
    message = Message(id=f"m-{key}-{version}", receipt="r", body="{}")
    record = Record({KEY: key}, key=(key,), version=version)
    return Entry(record, [message], 0.0, message, (version, 0, 0))


def resolver(rows: Rows, pacer: Pacer | None = None) -> Mirror:
    table = Table(rows, (KEY,), {KEY: "Id"}, {KEY: "singleLineText"}, VERSION)  # type: ignore[arg-type]
    pacer = pacer or Pacer(Capacity(1000.0))
    deadline = Deadline(lambda: 30_000, 0.5)
    found = Resolver(Directory(), KeyLocks(), {TABLE: table}, pacer, deadline)
    return Mirror(found, TABLE, versioned=True)


def slots(mirror: Mirror) -> Slots:
    return Slots(mirror.resolver.pacer, mirror.resolver.pacer.reserve())


def test_one_lookup_reads_the_waiting_entries_keys_too() -> None:
    # GIVEN a versioned table with no rows, a request of 10 keys and 90 more waiting
    rows = Rows()
    mirror = resolver(rows)
    own = [entry(f"k{n}", 1) for n in range(10)]
    waiting = [entry(f"k{n}", 1) for n in range(10, 100)]
    # WHEN the request is prepared, and then the waiting ones are
    first = mirror.prepare(own, slots(mirror).take, waiting)
    later = mirror.prepare(waiting[:10], slots(mirror).take, waiting[10:])
    # THEN one lookup read all 100 keys, and the later request needed none
    assert len(rows.lookups) == 1 and len(rows.lookups[0]) == 100
    assert (first.requests, later.requests) == (1, 0)
    assert len(first.entries) == 10 and len(later.entries) == 10


def test_a_key_that_a_lookup_in_flight_reads_is_not_read_again() -> None:
    # GIVEN request A's lookup in flight, reading B's keys too (they were waiting)
    rows = Rows({"k12": 5.0})
    rows.hold.clear()
    mirror = resolver(rows)
    watched = WatchedCondition()
    mirror.resolver._read = watched
    a = [entry(f"k{n}", 1) for n in range(10)]
    b = [entry(f"k{n}", 1) for n in range(10, 20)]
    results: dict[str, Any] = {}
    thread_a = threading.Thread(
        target=lambda: results.setdefault("a", mirror.prepare(a, slots(mirror).take, b))
    )
    thread_a.start()
    assert rows.started.wait(timeout=10)
    # WHEN B is prepared while A's answer is still on its way
    thread_b = threading.Thread(
        target=lambda: results.setdefault("b", mirror.prepare(b, slots(mirror).take))
    )
    thread_b.start()
    assert watched.waiting.wait(timeout=10)  # B waits for A's answer
    rows.hold.set()
    thread_a.join(timeout=10)
    thread_b.join(timeout=10)
    # THEN one lookup was made, and B used its answer: k12's stored version 5 makes B's
    # version 1 of it stale
    assert len(rows.lookups) == 1
    assert results["b"].requests == 0
    assert results["b"].stale == 1
    assert [e.record.key for e in results["b"].entries] == [
        (f"k{n}",) for n in range(10, 20) if n != 12
    ]


class CountingPacer(Pacer):
    def __init__(self) -> None:
        super().__init__(Capacity(1000.0))
        self.reserved = 0

    def reserve(self) -> float:
        self.reserved += 1
        return super().reserve()


def test_the_first_lookup_takes_the_slot_reserved_when_the_request_was_picked() -> None:
    # GIVEN a request whose slot was reserved when it was picked
    rows = Rows()
    pacer = CountingPacer()
    mirror = resolver(rows, pacer)
    reserved = Slots(pacer, pacer.reserve())
    # WHEN its lookup is made
    mirror.prepare([entry("k1", 1)], reserved.take)
    # THEN it left in that slot (no other was reserved, so none goes unused); the write
    # that follows reserves the next
    assert (pacer.requests, pacer.reserved) == (1, 1)
    reserved.take()
    assert pacer.reserved == 2


def test_a_stored_version_is_read_by_the_message_version_rule(monkeypatch):
    # GIVEN a machine whose local zone is not UTC
    import time
    from datetime import UTC, datetime

    from poller import mirror
    from poller.convert import version_number

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        midnight = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        # WHEN stored versions are read THEN a naive date-time is UTC, as in a message,
        # a number is itself, and a row without a version has none
        assert (
            mirror._version("2026-01-01T00:00:00")
            == midnight
            == version_number("2026-01-01T00:00:00")
        )
        assert mirror._version("2026-01-01T00:00:00.000Z") == midnight
        assert mirror._version(7) == 7.0 and mirror._version(None) is None
        assert mirror._version("") is None
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_forgotten_row_is_read_again_by_the_next_request() -> None:
    # GIVEN a delete of key k1, whose row a lookup found (the directory remembers its id)
    rows = Rows({"k1": 1.0})
    mirror = resolver(rows)
    message = Message(id="m-del", receipt="r", body="{}")
    record = Record({KEY: "k1"}, key=("k1",), action=Action.DELETE, version=2.0)
    delete = Entry(record, [message], 0.0, message, (2.0, 0, 0))
    assert mirror.prepare([delete], slots(mirror).take).entries == [delete]
    # WHEN the row is deleted in Airtable, the mirror forgets it, and the delete is prepared
    # again
    rows.rows.clear()
    mirror.forget([delete])
    again = mirror.prepare([delete], slots(mirror).take)
    # THEN a second lookup read k1, found no row, and the delete is done without a request
    assert rows.lookups == [["k1"], ["k1"]]
    assert again.entries == [] and [v.fate for v in again.verdicts] == [Fate.DELETE]


def test_a_run_begins_knowing_only_the_tombstones_of_hard_deletes() -> None:
    # GIVEN a directory that knows a row, a key with no row, a duplicated key and a deleted key
    directory = Directory()
    directory.put(TABLE, ("live",), Row("rec1", 3.0))
    directory.put(TABLE, ("none",), Row(None))
    directory.put(TABLE, ("twice",), Row("rec2", None, ambiguous=True))
    directory.put(TABLE, ("gone",), Row(None, 4.0))
    # WHEN a run begins
    directory.start_run()
    # THEN only the delete's tombstone (no row, the delete's version) is still known
    known = {k: directory.get(TABLE, (k,)) for k in ("live", "none", "twice", "gone")}
    assert known == {"live": None, "none": None, "twice": None, "gone": Row(None, 4.0)}
