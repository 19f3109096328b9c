"""In-memory tables and the record operations, each applied all-or-nothing.

Every operation validates the whole request before touching anything, so a request that
fails with 422 leaves no trace. That is the strict reading of Airtable's (unverified)
behaviour that the field notes ask clients to be safe against: one bad record blocks
the other nine. The caller holds the emulator lock around each call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid_request, not_found, unprocessable
from .fields import MERGEABLE_TYPES, CellError, is_empty, json_number, normalize_cell
from .schema import find_field

#: Airtable's cap on records per create, update, upsert or delete request.
MAX_RECORDS_PER_REQUEST = 10
MAX_MERGE_FIELDS = 3


@dataclass
class StoredRecord:
    """One record; ``fields`` is keyed by field id and never holds empty values."""

    id: str
    created_time: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class WriteOutcome:
    """What a write did, in request order, for the response, stats and write log."""

    records: list[StoredRecord]
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


class Table:
    """A table's schema (shared with the base's meta payload) and its records.

    Records change only through :meth:`insert`, :meth:`write_cells`, :meth:`remove` and
    :meth:`clear`, which keep per-field value indexes current: upsert matching is then a
    lookup rather than a scan, so large benchmark tables do not make the lock a bottleneck.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.records: dict[str, StoredRecord] = {}
        self._indexes: dict[str, dict[Any, set[str]]] = {}

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
        self._unindex(record)
        if replace:
            record.fields = {}
        for field_id, value in cells.items():
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
        self._unindex(self.records.pop(record_id))

    def clear(self) -> None:
        self.records.clear()
        self._indexes.clear()

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
            value = record.fields[spec["id"]]
            if isinstance(value, list):
                value = list(value)
            elif isinstance(value, float):
                value = json_number(value)
            cells[spec["id"] if by_field_id else spec["name"]] = value
        return {"id": record.id, "createdTime": record.created_time, "fields": cells}


class _Writer:
    """Validates one request's records against a table and collects pending changes."""

    def __init__(self, table: Table, typecast: bool, new_id: Callable[[], str]) -> None:
        self.table = table
        self.typecast = typecast
        self.new_id = new_id
        self._new_choices: list[tuple[dict[str, Any], str]] = []

    def cells(self, payload: Any) -> dict[str, Any]:
        """Normalise one record's ``fields`` object into ``{field_id: value}``."""
        if not isinstance(payload, dict):
            raise invalid_request()
        cells: dict[str, Any] = {}
        for key, value in payload.items():
            spec = find_field(self.table.schema, key)
            if spec is None:
                raise unprocessable("UNKNOWN_FIELD_NAME", f'Unknown field name: "{key}"')
            try:
                cells[spec["id"]] = normalize_cell(
                    spec, value, typecast=self.typecast, new_choice=self._remember_choice
                )
            except CellError as exc:
                raise unprocessable(exc.error_type, exc.message) from None
        return cells

    def _remember_choice(self, spec: dict[str, Any], name: str) -> None:
        if (spec, name) not in self._new_choices:
            self._new_choices.append((spec, name))

    def commit_choices(self) -> None:
        """Add the select options typecast asked for (only once the request is valid)."""
        for spec, name in self._new_choices:
            options = spec.setdefault("options", {})
            choices = options.setdefault("choices", [])
            if all(choice.get("name") != name for choice in choices):
                choices.append({"id": "sel" + self.new_id()[3:], "name": name})


def check_count(records: Any, verb: str) -> list[Any]:
    """The ``records`` array must hold 1 to 10 entries."""
    if not isinstance(records, list):
        raise invalid_request()
    if len(records) > MAX_RECORDS_PER_REQUEST:
        raise unprocessable(
            "INVALID_RECORDS",
            f"A maximum of {MAX_RECORDS_PER_REQUEST} records can be {verb} per request"
            f" but you have provided {len(records)}.",
        )
    if not records:
        raise unprocessable("INVALID_RECORDS", f"At least one record must be {verb}.")
    return records


def _check_keys(entry: Any, allowed: set[str], required: Iterable[str]) -> dict[str, Any]:
    if not isinstance(entry, dict) or not set(entry) <= allowed:
        raise invalid_request()
    for key in required:
        if key not in entry:
            raise unprocessable("INVALID_REQUEST_MISSING_FIELDS", f'Could not find field "{key}"')
    return entry


def create_records(
    table: Table, entries: list[Any], *, typecast: bool, new_id: Callable[[], str], now: str
) -> WriteOutcome:
    """POST: create every record, or none."""
    writer = _Writer(table, typecast, new_id)
    cells = [writer.cells(_check_keys(e, {"fields"}, ["fields"])["fields"]) for e in entries]
    writer.commit_choices()
    outcome = WriteOutcome(records=[])
    for record_cells in cells:
        record = StoredRecord(id=new_id(), created_time=now)
        table.insert(record)
        table.write_cells(record, record_cells, replace=True)
        outcome.records.append(record)
        outcome.created.append(record.id)
    return outcome


def update_records(
    table: Table,
    entries: list[Any],
    *,
    typecast: bool,
    replace: bool,
    new_id: Callable[[], str],
    missing_is_404: bool = False,
) -> WriteOutcome:
    """PATCH/PUT by record id: update every record, or none."""
    writer = _Writer(table, typecast, new_id)
    planned: list[tuple[StoredRecord, dict[str, Any]]] = []
    for entry in entries:
        _check_keys(entry, {"id", "fields"}, ["id", "fields"])
        record = _existing(table, entry["id"], missing_is_404)
        if any(record is other for other, _ in planned):
            raise unprocessable(
                "INVALID_RECORDS", f"Record {record.id} appears more than once in the request"
            )
        planned.append((record, writer.cells(entry["fields"])))
    writer.commit_choices()
    for record, cells in planned:
        table.write_cells(record, cells, replace=replace)
    return WriteOutcome(
        records=[record for record, _ in planned], updated=[r.id for r, _ in planned]
    )


def _existing(table: Table, record_id: Any, missing_is_404: bool) -> StoredRecord:
    if not isinstance(record_id, str):
        raise invalid_request()
    record = table.records.get(record_id)
    if record is None:
        if missing_is_404:
            raise not_found()
        raise unprocessable(
            "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
        )
    return record


def merge_fields(table: Table, spec: Any) -> list[dict[str, Any]]:
    """Validate ``performUpsert`` and return the merge fields' schemas."""
    if not isinstance(spec, dict) or set(spec) != {"fieldsToMergeOn"}:
        raise invalid_request()
    names = spec["fieldsToMergeOn"]
    if (
        not isinstance(names, list)
        or not 1 <= len(names) <= MAX_MERGE_FIELDS
        or not all(isinstance(name, str) for name in names)
    ):
        raise invalid_request(
            f"fieldsToMergeOn must list 1 to {MAX_MERGE_FIELDS} field names or ids"
        )
    specs: list[dict[str, Any]] = []
    for name in names:
        found = find_field(table.schema, name)
        if found is None:
            raise unprocessable("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        if found["type"] not in MERGEABLE_TYPES:
            raise invalid_request(
                f'Field "{found["name"]}" of type {found["type"]} cannot be used in fieldsToMergeOn'
            )
        if found not in specs:
            specs.append(found)
    return specs


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def upsert_records(
    table: Table,
    entries: list[Any],
    merge_on: list[dict[str, Any]],
    *,
    typecast: bool,
    replace: bool,
    new_id: Callable[[], str],
    now: str,
) -> WriteOutcome:
    """PATCH/PUT with performUpsert: match on the merge fields, then create or update.

    Strict where Airtable is unverified: two records with the same merge key in one
    request, or a key matching several existing records, fail the whole request.
    """
    writer = _Writer(table, typecast, new_id)
    plan: list[tuple[StoredRecord | None, dict[str, Any]]] = []
    seen_keys: dict[tuple[Any, ...], int] = {}
    for position, entry in enumerate(entries, start=1):
        _check_keys(entry, {"id", "fields"}, ["fields"])
        cells = writer.cells(entry["fields"])
        if "id" in entry:
            target: StoredRecord | None = _existing(table, entry["id"], False)
        else:
            key = _merge_key(cells, merge_on, position)
            if key in seen_keys:
                raise unprocessable(
                    "INVALID_RECORDS",
                    f"Records {seen_keys[key]} and {position} have the same value for"
                    " fieldsToMergeOn; send each key at most once per request",
                )
            seen_keys[key] = position
            target = _match(table, merge_on, key)
        if target is not None and any(target is other for other, _ in plan):
            raise unprocessable(
                "INVALID_RECORDS", f"Record {target.id} would be written twice by this request"
            )
        plan.append((target, cells))
    writer.commit_choices()
    outcome = WriteOutcome(records=[])
    for target, cells in plan:
        if target is None:
            target = StoredRecord(id=new_id(), created_time=now)
            table.insert(target)
            table.write_cells(target, cells, replace=True)
            outcome.created.append(target.id)
        else:
            table.write_cells(target, cells, replace=replace)
            outcome.updated.append(target.id)
        outcome.records.append(target)
    return outcome


def _merge_key(
    cells: dict[str, Any], merge_on: list[dict[str, Any]], position: int
) -> tuple[Any, ...]:
    values = []
    for spec in merge_on:
        value = cells.get(spec["id"])
        if is_empty(value):
            raise unprocessable(
                "INVALID_REQUEST_MISSING_FIELDS",
                f'Record {position} has no value for the merge field "{spec["name"]}"',
            )
        values.append(_key(value))
    return tuple(values)


def _match(
    table: Table, merge_on: list[dict[str, Any]], key: tuple[Any, ...]
) -> StoredRecord | None:
    candidates: set[str] | None = None
    for spec, value in zip(merge_on, key, strict=True):
        ids = table.ids_with(spec["id"], value)
        candidates = set(ids) if candidates is None else candidates & ids
    matches = [table.records[record_id] for record_id in sorted(candidates or ())]
    if len(matches) > 1:
        raise unprocessable(
            "INVALID_RECORDS",
            f"fieldsToMergeOn matched {len(matches)} existing records"
            f" ({', '.join(r.id for r in matches)}); it must match at most one",
        )
    return matches[0] if matches else None


def delete_records(table: Table, record_ids: list[Any], *, missing_is_404: bool) -> list[str]:
    """DELETE: remove every listed record, or none."""
    targets = [_existing(table, record_id, missing_is_404) for record_id in record_ids]
    if len({record.id for record in targets}) != len(targets):
        raise unprocessable("INVALID_RECORDS", "A record id appears more than once")
    for record in targets:
        table.remove(record.id)
    return [record.id for record in targets]
