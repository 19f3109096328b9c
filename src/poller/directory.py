"""The rows a container knows, per table and key: the record id (None: no row) and the
stored version. Fed by the poller's own writes and by bulk lookups (`mirror.Resolver`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .airtable import AirtableTable

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


@dataclass(frozen=True)
class Table:
    """A table the resolver reads: its sink, and the names and types of its key fields (a
    formula names fields, never ids)."""

    sink: AirtableTable
    key_ids: tuple[str, ...]
    names: Mapping[str, str]  # field id -> name
    types: Mapping[str, str]  # field id -> type
    version_id: str | None = None
    name: str = ""  # as the mapping names it, for reasons


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

    def start_run(self) -> None:
        """A run begins: forget every row but a delete's tombstone (no row, and the delete's
        version), so that rows changed in Airtable between runs are read again, as a new
        container would."""
        with self._lock:
            for at, row in list(self._rows.items()):
                if row.record_id is not None or row.version is None or row.ambiguous:
                    del self._rows[at]

    def forget(self, table: str, key: Key) -> None:
        with self._lock:
            self._rows.pop((table, key), None)
