"""The rows a container knows, per table and key: the record id (None: no row) and the
stored version. Fed by the poller's own writes and by bulk lookups (`mirror.Resolver`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

DIRECTORY_ROWS = 200_000
Key = tuple[str, ...]


def scope(table_id: str, key_ids: Sequence[str]) -> str:
    """Which rows a key names: a table, by the fields its key is made of."""
    return f"{table_id}:{','.join(key_ids)}"


@dataclass(frozen=True)
class Row:
    record_id: str | None  # None: the table has no row with this key
    version: float | None = None
    ambiguous: bool = False  # several rows have this key


class Directory:
    """Thread-safe, bounded (the oldest entries are forgotten first)."""

    def __init__(self, limit: int = DIRECTORY_ROWS) -> None:
        self._rows: OrderedDict[tuple[str, Key], Row] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, table: str, key: Key) -> Row | None:
        with self._lock:
            return self._rows.get((table, key))

    def put(self, table: str, key: Key, row: Row) -> None:
        with self._lock:
            self._rows[(table, key)] = row
            self._rows.move_to_end((table, key))
            while len(self._rows) > self._limit:
                self._rows.popitem(last=False)

    def forget(self, table: str, key: Key) -> None:
        with self._lock:
            self._rows.pop((table, key), None)
