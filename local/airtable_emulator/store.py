"""The record operations, each applied all-or-nothing.

Every operation validates the whole request before touching anything, so a request that
fails with 422 leaves no trace. That is the strict reading of Airtable's (unverified)
behaviour that the field notes ask clients to be safe against: one bad record blocks
the other nine. The caller holds the emulator lock around each call.

Links and attachments are resolved through the base (a :class:`WriteContext`), which may
plan records of its own (a typecast link to a name no record has creates one); the
``room`` check (the base's record cap) sees every record the request would create before
anything is applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from poller.fieldtypes import MERGEABLE_TYPES

from .cellrefs import CellContext
from .errors import invalid_request, not_found, unprocessable
from .fields import CellError, is_empty, normalize_cell
from .schema import find_field
from .table import StoredRecord, Table

#: Airtable's cap on records per create, update, upsert or delete request.
MAX_RECORDS_PER_REQUEST = 10
MAX_MERGE_FIELDS = 3


class WriteContext(CellContext, Protocol):
    """A base's side of a write: references, and the records it plans for them."""

    def planned_records(self) -> int:
        """How many records the references planned so far would create."""
        ...

    def commit(self, now: str) -> list[tuple[Table, str]]:
        """Create the planned records; return them as ``(table, record id)``."""
        ...


@dataclass
class WriteEnv:
    """What one write request runs with."""

    typecast: bool
    new_id: Callable[[], str]
    now: str
    context: WriteContext | None = None
    #: Called with the number of records the request would create, before anything is
    #: applied; raises to refuse the request.
    room: Callable[[int], None] | None = None


@dataclass
class WriteOutcome:
    """What a write did, in request order, for the response, stats and write log."""

    records: list[StoredRecord]
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    #: Records created in linked tables (typecast links), as ``(table, record id)``.
    linked_created: list[tuple[Table, str]] = field(default_factory=list)


class _Writer:
    """Validates one request's records against a table and collects pending changes."""

    def __init__(self, table: Table, env: WriteEnv) -> None:
        self.table = table
        self.env = env
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
                    spec,
                    value,
                    typecast=self.env.typecast,
                    new_choice=self._remember_choice,
                    context=self.env.context,
                )
            except CellError as exc:
                raise unprocessable(exc.error_type, exc.message) from None
        return cells

    def _remember_choice(self, spec: dict[str, Any], name: str) -> None:
        if (spec, name) not in self._new_choices:
            self._new_choices.append((spec, name))

    def commit(self, creating: int, outcome: WriteOutcome) -> None:
        """Once the request is valid: check the room for ``creating`` records (plus those
        the references planned), then add the select options and records typecast asked
        for. Nothing is changed when the room check raises."""
        context = self.env.context
        planned = context.planned_records() if context is not None else 0
        if self.env.room is not None:
            self.env.room(creating + planned)
        for spec, name in self._new_choices:
            options = spec.setdefault("options", {})
            choices = options.setdefault("choices", [])
            if all(choice.get("name") != name for choice in choices):
                choices.append({"id": "sel" + self.env.new_id()[3:], "name": name})
        if context is not None:
            outcome.linked_created = context.commit(self.env.now)


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


def create_records(table: Table, entries: list[Any], env: WriteEnv) -> WriteOutcome:
    """POST: create every record, or none."""
    writer = _Writer(table, env)
    cells = [writer.cells(_check_keys(e, {"fields"}, ["fields"])["fields"]) for e in entries]
    outcome = WriteOutcome(records=[])
    writer.commit(len(cells), outcome)
    for record_cells in cells:
        record = StoredRecord(id=env.new_id(), created_time=env.now)
        table.insert(record)
        table.write_cells(record, record_cells, replace=True)
        outcome.records.append(record)
        outcome.created.append(record.id)
    return outcome


def update_records(
    table: Table,
    entries: list[Any],
    env: WriteEnv,
    *,
    replace: bool,
    missing_is_404: bool = False,
) -> WriteOutcome:
    """PATCH/PUT by record id: update every record, or none."""
    writer = _Writer(table, env)
    planned: list[tuple[StoredRecord, dict[str, Any]]] = []
    for entry in entries:
        _check_keys(entry, {"id", "fields"}, ["id", "fields"])
        record = _existing(table, entry["id"], missing_is_404)
        if any(record is other for other, _ in planned):
            raise unprocessable(
                "INVALID_RECORDS", f"Record {record.id} appears more than once in the request"
            )
        planned.append((record, writer.cells(entry["fields"])))
    outcome = WriteOutcome(records=[r for r, _ in planned], updated=[r.id for r, _ in planned])
    writer.commit(0, outcome)
    for record, cells in planned:
        table.write_cells(record, cells, replace=replace)
    return outcome


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
    env: WriteEnv,
    *,
    replace: bool,
) -> WriteOutcome:
    """PATCH/PUT with performUpsert: match on the merge fields, then create or update.

    Strict where Airtable is unverified: two records with the same merge key in one
    request, or a key matching several existing records, fail the whole request.
    """
    writer = _Writer(table, env)
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
    outcome = WriteOutcome(records=[])
    writer.commit(sum(1 for target, _ in plan if target is None), outcome)
    for target, cells in plan:
        if target is None:
            target = StoredRecord(id=env.new_id(), created_time=env.now)
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
