"""The batcher: records waiting to be written, and the requests made of them (the Kafka
producer's accumulator).

It keeps the received entries in arrival order and collapses the entries of one route with
the same merge key into one (the later message wins: by version on a versioned route, else
by `SentTimestamp` then `SequenceNumber`). What it guards when it hands out a request:

* a merge key is in at most one request at a time (two concurrent upserts of a new key could
  both create it);
* on FIFO queues a group has at most one request in flight, and nothing of a group is taken
  past an earlier entry of it that waits, nor past a group the settler `block`ed (a message
  of it was released, and a later one must not overtake it).

Single-threaded: only the drain loop calls it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from .model import Message, Record

#: A key's values with what they belong to: (route, values) in the buffer, (scope, values)
#: in `KeyLocks` (a scope is a table and its key fields: `directory.scope`).
Key = tuple[str, tuple[str, ...]]


@dataclass(eq=False)
class Entry:
    """One record waiting to be written, and every message it stands for: `winner` is the
    message whose record it holds."""

    record: Record
    messages: list[Message]
    since: float
    winner: Message
    rank: tuple[float, int, int]

    @property
    def route(self) -> str:
        return self.record.route

    @property
    def key(self) -> Key | None:
        """The merge key, scoped to the route (two tables may use the same values)."""
        return None if self.record.key is None else (self.record.route, self.record.key)

    @property
    def groups(self) -> set[str]:
        return {m.group_id for m in self.messages if m.group_id is not None}


def rank(record: Record, message: Message) -> tuple[float, int, int]:
    """Which of two messages of one key wins: the higher version, then the later
    `SentTimestamp`, then the later FIFO sequence number."""
    version = record.version if record.version is not None else float("-inf")
    return (version, message.sent_at_ms, message.sequence)


class KeyLocks:
    """Keys in flight, per scope (a table and its key fields); thread-safe."""

    def __init__(self) -> None:
        self._held: set[Key] = set()
        self._cond = threading.Condition()

    def try_lock(self, keys: Iterable[Key]) -> bool:
        keys = set(keys)
        with self._cond:
            if keys & self._held:
                return False
            self._held |= keys
            return True

    def lock(self, keys: Iterable[Key], timeout: float) -> bool:
        keys, ends = set(keys), time.monotonic() + timeout
        with self._cond:
            while keys & self._held:
                if (
                    not self._cond.wait(timeout=ends - time.monotonic())
                    and time.monotonic() >= ends
                ):
                    return False
            self._held |= keys
            return True

    def unlock(self, keys: Iterable[Key]) -> None:
        with self._cond:
            self._held -= set(keys)
            self._cond.notify_all()


class Batcher:
    """`locks` hold each key in flight, scoped by `scope(route)` (the route's table): shared
    with the writers, so that a link stub never writes a key a request holds."""

    def __init__(self, locks: KeyLocks | None = None, scope: Callable[[str], str] = str) -> None:
        self._entries: list[Entry] = []
        self._by_key: dict[Key, Entry] = {}
        self._locks = locks or KeyLocks()
        self._scope = scope
        self._groups_in_flight: set[str] = set()
        self._blocked: set[str] = set()

    def add(self, record: Record, message: Message, now: float) -> Message | None:
        """Buffer a record. When a waiting entry has the same key, the two collapse and the
        losing message is returned; it shares the entry's verdict (once the entry is written,
        it is deleted and counted superseded, or stale on a versioned route); else None."""
        order = rank(record, message)
        key = None if record.key is None else (record.route, record.key)
        waiting = self._by_key.get(key) if key is not None else None
        if waiting is None:
            entry = Entry(record, [message], now, message, order)
            self._entries.append(entry)
            if key is not None:
                self._by_key[key] = entry
            return None
        waiting.messages.append(message)
        if order <= waiting.rank:
            return message
        loser = waiting.winner
        waiting.record, waiting.winner, waiting.rank = record, message, order
        return loser

    def take(
        self, route: str, limit: int, closed: Iterable[str] = (), *, peek: bool = False
    ) -> list[Entry]:
        """Up to `limit` entries of `route` that may be written now, in arrival order, taken
        out of the buffer and marked in flight (give them back with `done`); with `peek`,
        only looked at."""
        closed = set(closed)
        skipped: set[str] = set()
        taken: list[Entry] = []
        for entry in self._entries:
            if len(taken) == limit:
                break
            groups = entry.groups
            busy = groups & (self._groups_in_flight | self._blocked | skipped)
            if busy or entry.route in closed or entry.route != route or not self._free(entry, peek):
                skipped |= groups  # a later entry of its group must not overtake it
                continue
            taken.append(entry)
        if peek:
            return taken
        for entry in taken:
            self._remove(entry)
            self._groups_in_flight |= entry.groups
        return taken

    def done(self, entries: Iterable[Entry]) -> None:
        """A request of these entries has ended: their keys and groups are free again."""
        for entry in entries:
            if entry.record.key is not None:
                self._locks.unlock([(self._scope(entry.route), entry.record.key)])
            self._groups_in_flight -= entry.groups

    def _free(self, entry: Entry, peek: bool) -> bool:
        """Take the entry's key lock (peek: only look); False when another request holds it."""
        if entry.record.key is None:
            return True
        key = [(self._scope(entry.route), entry.record.key)]
        if peek:
            if not self._locks.try_lock(key):
                return False
            self._locks.unlock(key)
            return True
        return self._locks.try_lock(key)

    def block(self, groups: Iterable[str]) -> None:
        """FIFO: nothing more of these groups is written in this run."""
        self._blocked |= set(groups)

    def waiting(self, route: str | None = None) -> list[Entry]:
        return [e for e in self._entries if route is None or e.route == route]

    def oldest(self, routes: Collection[str]) -> str | None:
        """Of `routes`, the one whose oldest waiting entry has waited longest."""
        entries = [e for e in self._entries if e.route in routes]
        return min(entries, key=lambda e: e.since).route if entries else None

    def messages(self, route: str | None = None) -> int:
        return sum(len(e.messages) for e in self.waiting(route))

    def take_all(self) -> list[Entry]:
        """Everything still waiting (the run is over)."""
        entries, self._entries, self._by_key = self._entries, [], {}
        return entries

    def _remove(self, entry: Entry) -> None:
        self._entries.remove(entry)
        if entry.key is not None and self._by_key.get(entry.key) is entry:
            del self._by_key[entry.key]
