"""An in-memory table: its schema, its records and the per-field value indexes.

Records change only through :meth:`Table.insert`, :meth:`Table.write_cells`,
:meth:`Table.set_cell`, :meth:`Table.remove` and :meth:`Table.clear`, which keep the
indexes current (upsert matching is then a lookup rather than a scan). A table may have an
observer (its base), told after each write and removal so that cells elsewhere that depend
on the record (the inverse side of a link) follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .fields import is_empty, json_number


@dataclass
class StoredRecord:
    """One record; ``fields`` is keyed by field id and never holds empty values."""

    id: str
    created_time: str
    fields: dict[str, Any] = field(default_factory=dict)


class TableObserver(Protocol):
    """Told about changes that cells of other records may depend on."""

    def written(self, table: Table, record: StoredRecord, before: dict[str, Any]) -> None:
        """``record``'s cells changed from ``before``."""
        ...

    def removed(self, table: Table, record: StoredRecord) -> None:
        """``record`` was deleted."""
        ...


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def copy_cell(value: Any) -> Any:
    """A cell value as the API writes it (lists and attachment objects copied)."""
    if isinstance(value, list):
        return [dict(item) if isinstance(item, dict) else item for item in value]
    if isinstance(value, float):
        return json_number(value)
    return value


class Table:
    """A table's schema (shared with the base's meta payload) and its records."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.records: dict[str, StoredRecord] = {}
        self._indexes: dict[str, dict[Any, set[str]]] = {}
        self.observer: TableObserver | None = None

    @property
    def id(self) -> str:
        return str(self.schema["id"])

    @property
    def name(self) -> str:
        return str(self.schema["name"])

    def ids_with(self, field_id: str, value: Any) -> set[str]:
        """Ids of the records whose cell ``field_id`` equals ``value``."""
        index = self._indexes.get(field_id)
        if index is None:
            index = self._indexes[field_id] = {}
            for record in self.records.values():
                if field_id in record.fields:
                    index.setdefault(_key(record.fields[field_id]), set()).add(record.id)
        return index.get(_key(value), set())

    def insert(self, record: StoredRecord) -> None:
        self.records[record.id] = record
        self._index(record)

    def write_cells(self, record: StoredRecord, cells: dict[str, Any], *, replace: bool) -> None:
        """Apply normalised cells: empty values clear, ``replace`` drops unsent ones (PUT)."""
        before = dict(record.fields)
        self._unindex(record)
        if replace:
            record.fields = {}
        for field_id, value in cells.items():
            if is_empty(value):
                record.fields.pop(field_id, None)
            else:
                record.fields[field_id] = value
        self._index(record)
        if self.observer is not None:
            self.observer.written(self, record, before)

    def set_cell(self, record: StoredRecord, field_id: str, value: Any) -> None:
        """Set (or, with an empty value, clear) one cell without telling the observer: how
        the observer itself keeps dependent cells in step."""
        self._unindex(record)
        if is_empty(value):
            record.fields.pop(field_id, None)
        else:
            record.fields[field_id] = value
        self._index(record)

    def drop_field(self, field_id: str) -> int:
        """Clear field ``field_id`` in every record (a deleted or retyped field); return how
        many cells held a value."""
        self._indexes.pop(field_id, None)
        cleared = 0
        for record in self.records.values():
            if record.fields.pop(field_id, None) is not None:
                cleared += 1
        return cleared

    def remove(self, record_id: str) -> None:
        record = self.records.pop(record_id)
        self._unindex(record)
        if self.observer is not None:
            self.observer.removed(self, record)

    def clear(self) -> None:
        records = list(self.records.values())
        self.records.clear()
        self._indexes.clear()
        if self.observer is not None:
            for record in records:
                self.observer.removed(self, record)

    def _index(self, record: StoredRecord) -> None:
        for field_id, index in self._indexes.items():
            if field_id in record.fields:
                index.setdefault(_key(record.fields[field_id]), set()).add(record.id)

    def _unindex(self, record: StoredRecord) -> None:
        for field_id, index in self._indexes.items():
            if field_id in record.fields:
                key = _key(record.fields[field_id])
                ids = index.get(key, set())
                ids.discard(record.id)
                if not ids:
                    index.pop(key, None)

    def render(
        self, record: StoredRecord, *, by_field_id: bool = False, only: set[str] | None = None
    ) -> dict[str, Any]:
        """The API form of a record: empty cells omitted, fields in schema order."""
        cells: dict[str, Any] = {}
        for spec in self.schema["fields"]:
            if spec["id"] not in record.fields or (only is not None and spec["id"] not in only):
                continue
            cells[spec["id"] if by_field_id else spec["name"]] = copy_cell(
                record.fields[spec["id"]]
            )
        return {"id": record.id, "createdTime": record.created_time, "fields": cells}
