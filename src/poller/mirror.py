"""What a faithful mirror needs before it writes: each row's stored version, the record ids
that links and deletes take, and one writer per key at a time.

* Lookups: one `listRecords` request reads up to `LOOKUP_KEYS` keys into the `Directory`,
  ahead of the requests that need them; a key is read once per run (`Directory.start_run`).
* `KeyLocks`: a key of a table is in one request at a time, whichever route or link stub
  writes it (two concurrent upserts of a new key could both create it).
* `Resolver.prepare`: for one request, on a writer thread: drops what is stale (a version
  not newer than the row's), finds the rows a delete removes, and puts record ids in link
  fields, creating a stub row holding only the key where a linked record is missing (or
  dead-lettering the message, with `if_missing: dead_letter`). Airtable has no conditional
  write: the check holds because this poller is the only writer of the version field.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .airtable import PAGE_SIZE
from .batching import Entry, KeyLocks
from .convert import Links, is_number, key_text, version_number
from .directory import Directory, Key, Row, Table
from .errors import OutOfTimeError, SystemicSinkError, ThrottledError, TransientSinkError
from .fieldtypes import NUMBER_TYPES
from .model import Action, Record, Verdict
from .pacing import Deadline, Pacer
from .systemic import Cause

#: Keys one lookup request asks for (formulas of 100 keys stay far below 16,000 characters
#: in the POST body pyairtable switches to).
LOOKUP_KEYS = 100
#: A request whose own keys are known reads ahead when one of the next this many waiting
#: keys is unknown, so that the requests after it find theirs known and need not wait.
READ_AHEAD_KEYS = 20
LOCK_WAIT_SECONDS = 5.0
#: attempts of a lookup or stub request that fails transiently
ATTEMPTS = 3
T = TypeVar("T")
#: gives the slot of each request made (`pacing.Slots.take`)
Slot = Callable[[], float]


@dataclass(frozen=True)
class Mirror:
    """What one route needs resolved before it writes: its table's `scope`, whether it is
    versioned, and each link entry's (field id, the linked table's scope, `if_missing`)."""

    resolver: Resolver
    scope: str
    versioned: bool = False
    links: tuple[tuple[str, str, str], ...] = ()

    def prepare(self, entries: list[Entry], slot: Slot, waiting: Sequence[Entry] = ()) -> Prepared:
        return self.resolver.prepare(self, entries, slot, waiting)

    def wrote(self, entries: Sequence[Entry], record_ids: Sequence[str]) -> None:
        self.resolver.wrote(self.scope, entries, record_ids)

    def forget(self, entries: Sequence[Entry]) -> None:
        """Forget the rows whose record ids the entries' request sent (deletes, links)."""
        for entry in entries:
            if entry.record.action is Action.DELETE:
                key = self.resolver.key_of(self.scope, entry.record.fields)
                self.resolver.directory.forget(self.scope, key)
            for link_id, linked, _ in self.links:
                for key in _links(entry, link_id):
                    self.resolver.directory.forget(linked, (key_text(key),))


@dataclass
class Prepared:
    entries: list[Entry]
    verdicts: list[Verdict] = field(default_factory=list)
    requests: int = 0
    stale: int = 0
    #: rows a message was made poison for (none, several): read again, in case they are fixed
    doubted: set[tuple[str, Key]] = field(default_factory=set)


class Resolver:
    """`tables` by `scope`: every table a route of the base writes or a link points into."""

    def __init__(
        self,
        directory: Directory,
        locks: KeyLocks,
        tables: Mapping[str, Table],
        pacer: Pacer,
        deadline: Deadline,
    ):
        self.directory, self.locks, self.tables = directory, locks, tables
        self.pacer, self.deadline = pacer, deadline
        #: keys a lookup in flight reads: another request waits for its answer
        self._reading: set[tuple[str, Key]] = set()
        self._read = threading.Condition()

    def key_of(self, table_id: str, fields: Mapping[str, Any]) -> Key:
        return tuple(key_text(fields.get(f)) for f in self.tables[table_id].key_ids)

    def prepare(
        self, mirror: Mirror, entries: list[Entry], slot: Slot, waiting: Sequence[Entry] = ()
    ) -> Prepared:
        """What of `entries` is written (links' keys made record ids, in `entry.record`) and
        the verdicts of the rest; `waiting`: the route's waiting entries, read by one lookup."""
        out = Prepared(list(entries))
        table_id = mirror.scope
        if mirror.versioned or entries[0].record.action is Action.DELETE:
            own = [self.key_of(table_id, e.record.fields) for e in entries]
            more = [self.key_of(table_id, e.record.fields) for e in waiting]
            out.requests += self._look_up(table_id, slot, own, more)
            out.entries = [
                e for e in out.entries if not self._no_write(table_id, e, mirror.versioned, out)
            ]
        for link_id, linked, if_missing in mirror.links:
            own = [(key_text(k),) for e in out.entries for k in _links(e, link_id)]
            more = [(key_text(k),) for e in waiting for k in _links(e, link_id)]
            out.requests += self._look_up(linked, slot, own, more)
            if if_missing == "create":
                out.requests += self._stub(
                    linked, slot, {k for e in out.entries for k in _links(e, link_id)}
                )
            out.entries = [e for e in out.entries if self._link(linked, link_id, e, out)]
        for table_id, key in out.doubted:
            self.directory.forget(table_id, key)
        return out

    def wrote(self, table_id: str, entries: Sequence[Entry], record_ids: Sequence[str]) -> None:
        for entry, record_id in zip(entries, record_ids, strict=False):
            deleted = entry.record.action is Action.DELETE
            row = Row(None if deleted else record_id, entry.record.version)
            self.directory.put(table_id, self.key_of(table_id, entry.record.fields), row)

    def delete_ids(self, table_id: str, entries: Sequence[Entry]) -> list[str]:
        rows = [
            self.directory.get(table_id, self.key_of(table_id, e.record.fields)) for e in entries
        ]
        return [r.record_id for r in rows if r is not None and r.record_id]

    # -- reading ----------------------------------------------------------------------
    def _look_up(self, table_id: str, slot: Slot, own: Sequence[Key], more: Sequence[Key]) -> int:
        """Read the rows of the keys the directory does not know, when `own` (the request's
        keys) has one; `more` (the waiting entries' keys) fills the same request. A key that
        another request's lookup is reading is waited for, not read twice. Return the
        requests made."""
        requests = 0
        while unknown := self._claim(table_id, own, more):
            try:
                requests += self._read_rows(table_id, slot, unknown)
            finally:
                with self._read:
                    self._reading.difference_update((table_id, k) for k in unknown)
                    self._read.notify_all()
        return requests

    def _claim(self, table_id: str, own: Sequence[Key], more: Sequence[Key]) -> list[Key]:
        """The keys this request reads (at most `LOOKUP_KEYS`, marked as being read): none
        once every key of `own` is known (after waiting for the lookups that read them),
        unless one of the first `READ_AHEAD_KEYS` of `more` is unknown and unread."""
        known = self.directory.get
        unread = lambda k: known(table_id, k) is None and (table_id, k) not in self._reading  # noqa: E731
        with self._read:
            while True:
                missing = [k for k in own if known(table_id, k) is None]
                if not missing:
                    if not any(unread(k) for k in more[:READ_AHEAD_KEYS]):
                        return []
                    break
                if any((table_id, k) not in self._reading for k in missing):
                    break
                if self.deadline.expired():
                    raise OutOfTimeError("no time left in this run for the lookup")
                self._read.wait(timeout=0.1)
            unknown = [k for k in dict.fromkeys((*missing, *more)) if unread(k)][:LOOKUP_KEYS]
            self._reading.update((table_id, k) for k in unknown)
            return unknown

    def _read_rows(self, table_id: str, slot: Slot, unknown: list[Key]) -> int:
        """Read the rows of `unknown` into the directory; return the requests made."""
        table = self.tables[table_id]
        names = [table.names[f] for f in table.key_ids]
        typed = [
            tuple(_typed(v, table.types[f]) for v, f in zip(key, table.key_ids, strict=True))
            for key in unknown
        ]
        typed = [t for t in typed if None not in t]  # a key its field cannot hold has no row
        wanted = [*table.key_ids, *([table.version_id] if table.version_id else [])]
        found: dict[Key, list[dict[str, Any]]] = {}
        requests = 0

        def read() -> None:
            nonlocal requests
            found.clear()
            pages = table.sink.find(typed, names, wanted)
            while True:
                requests += 1
                page = self.pacer.call(slot(), self.deadline, lambda: next(pages, None))
                for record in page or ():
                    found.setdefault(self.key_of(table_id, record["fields"]), []).append(record)
                if page is None or len(page) < PAGE_SIZE:
                    return  # a short page is the last

        if typed:
            self._retrying(read)
        for key in unknown:
            rows = found.get(key, [])
            version = (
                _version(rows[0]["fields"].get(table.version_id))
                if rows and table.version_id
                else None
            )
            self.directory.put(
                table_id, key, Row(rows[0]["id"] if rows else None, version, len(rows) > 1)
            )
        return requests

    def _no_write(self, table_id: str, entry: Entry, versioned: bool, out: Prepared) -> bool:
        """The entry needs no write: its verdict is in `out` (ambiguous, stale, or no row)."""
        key = self.key_of(table_id, entry.record.fields)
        row = self.directory.get(table_id, key)
        if row is not None and row.ambiguous:
            out.doubted.add((table_id, key))
            out.verdicts += _poison(
                entry,
                f"several rows of the table have the key {list(entry.record.key or ())}",
                "AMBIGUOUS_KEY",
            )
            return True
        stored = row.version if row is not None else None
        if (
            versioned
            and stored is not None
            and entry.record.version is not None
            and entry.record.version <= stored
        ):
            out.stale += len(entry.messages)
            out.verdicts += [Verdict.delete(m) for m in entry.messages]
            return True
        if entry.record.action is Action.DELETE and (row is None or row.record_id is None):
            out.verdicts += [Verdict.delete(m) for m in entry.messages]  # no row: already done
            self.directory.put(table_id, key, Row(None, entry.record.version))
            return True
        return False

    def _stub(self, table_id: str, slot: Slot, wanted: set[str]) -> int:
        """Create the missing linked rows of a link with `if_missing: create`, holding only
        their key; a later event for the record fills it in (its route upserts the same key)."""
        table = self.tables[table_id]
        missing = sorted(
            k
            for k in wanted
            if (r := self.directory.get(table_id, (key_text(k),))) is not None
            and r.record_id is None
            and not r.ambiguous
        )
        key_id = table.key_ids[0]
        if unfit := [k for k in missing if _typed(k, table.types[key_id]) is None]:
            raise SystemicSinkError(  # the key field was retyped: the table's fault
                f'the linked key field "{table.names.get(key_id)}" is {table.types[key_id]}, '
                f"which cannot hold {unfit[0]!r}",
                Cause.TYPE,
            )
        requests = 0
        for start in range(0, len(missing), 10):
            chunk = missing[start : start + 10]
            locked = [(table_id, (key_text(k),)) for k in chunk]
            if not self.locks.lock(locked, LOCK_WAIT_SECONDS):
                raise TransientSinkError("a linked record is being written by another request")
            try:
                requests += 1
                records = [
                    _stub_record(table.key_ids[0], k, table.types[table.key_ids[0]]) for k in chunk
                ]
                result = self._retrying(
                    lambda r=records: self.pacer.call(
                        slot(), self.deadline, lambda: table.sink.write(r)
                    )
                )
                for key, record_id in zip(chunk, result.record_ids, strict=True):
                    self.directory.put(table_id, (key_text(key),), Row(record_id))
            finally:
                self.locks.unlock(locked)
        return requests

    def _link(self, table_id: str, link_id: str, entry: Entry, out: Prepared) -> bool:
        keys = entry.record.fields.get(link_id)
        if not isinstance(keys, Links):
            return True
        ids = []
        for key in keys:
            row = self.directory.get(table_id, (key_text(key),))
            if row is None or row.record_id is None or row.ambiguous:
                out.doubted.add((table_id, (key_text(key),)))
                linked = self.tables[table_id]
                name = linked.names.get(linked.key_ids[0], "")
                why = "several records" if row is not None and row.ambiguous else "no record"
                where = f'the linked table "{linked.name}"' if linked.name else "the linked table"
                out.verdicts += _poison(
                    entry, f"{why} of {where} has {name} {key!r}", "LINK_NOT_FOUND"
                )
                return False
            ids.append(row.record_id)
        entry.record = replace(entry.record, fields={**entry.record.fields, link_id: ids})
        return True

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """A lookup or stub is started again, from its first request, after a lockout (the
        pacer waits it out, when the run has time for it) or a transient failure."""
        tries = 0
        while True:
            try:
                return attempt()
            except ThrottledError:
                continue  # the next slot is after the lockout, or there is no time left
            except TransientSinkError:
                tries += 1
                if tries == ATTEMPTS or not self.deadline.allows(1.0):
                    raise
                time.sleep(0.5 * tries)


def _typed(value: str, field_type: str) -> Any:
    """A key as its field holds it; None when it cannot (text in a number field)."""
    try:
        return float(value) if field_type in NUMBER_TYPES or field_type == "autoNumber" else value
    except ValueError:
        return None


def _stub_record(key_id: str, key: str, field_type: str) -> Record:
    return Record({key_id: _typed(key, field_type)}, key=(key,), action=Action.UPSERT)


def _links(entry: Entry, link_id: str) -> tuple[str, ...]:
    keys = entry.record.fields.get(link_id)
    return keys if isinstance(keys, Links) else ()


def _version(value: Any) -> float | None:
    """A stored version, read as a message's is; None when the row has none."""
    if is_number(value) or (isinstance(value, str) and value):
        return version_number(value)
    return None


def _poison(entry: Entry, reason: str, error_type: str) -> list[Verdict]:
    return [Verdict.dead_letter(m, reason, error_type) for m in entry.messages]
