"""References during one write request: link targets, typecast-created records, attachments.

:class:`RequestRefs` is the base's :class:`~airtable_emulator.store.WriteContext` for one
request. It checks that linked ids exist, turns typecast names into records (the first
record of the linked table whose primary field equals the name, else a new record planned
with that primary value; the same name twice in a request plans one record), and gives new
attachments their ``att…`` ids. Nothing is applied until :meth:`RequestRefs.commit`.

:func:`add_inverse_field` is the meta API's side: a new link field gets an inverse field in
the linked table, as Airtable creates one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from poller.fieldtypes import LINK_TYPE

from .base import Base, linked_table_id
from .cellrefs import RECORD_ID_RE
from .fields import CellError, invalid_value, is_empty, normalize_cell
from .schema import find_field
from .table import StoredRecord, Table


class RequestRefs:
    """The references of one write request to ``base``."""

    def __init__(
        self, base: Base, new_record_id: Callable[[], str], new_attachment_id: Callable[[], str]
    ) -> None:
        self.base = base
        self._new_record_id = new_record_id
        self._new_attachment_id = new_attachment_id
        #: (table id, primary value) -> (table, record id, cells) of records to create
        self._planned: dict[tuple[str, Any], tuple[Table, str, dict[str, Any]]] = {}
        self._attachments: dict[str, dict[str, Any]] = {}

    def linked_ids(self, field: dict[str, Any], items: list[str], typecast: bool) -> list[str]:
        linked = self.base.tables.get(linked_table_id(field) or "")
        if linked is None:
            raise invalid_value(field.get("name", ""))
        ids: list[str] = []
        for item in items:
            if RECORD_ID_RE.match(item):
                if item not in linked.records:
                    raise CellError(
                        "ROW_DOES_NOT_EXIST",
                        f"Record ID {item} does not exist in table {linked.name}"
                        f' (field "{field.get("name", "")}")',
                    )
                ids.append(item)
            elif typecast:
                found = self._by_primary(field, linked, item)
                if found is not None:
                    ids.append(found)
            else:
                raise invalid_value(field.get("name", ""))
        return ids

    def _by_primary(self, field: dict[str, Any], linked: Table, text: str) -> str | None:
        primary = find_field(linked.schema, linked.schema.get("primaryFieldId", ""))
        if primary is None:
            raise invalid_value(field.get("name", ""))
        try:
            value = normalize_cell(primary, text, typecast=True, new_choice=_no_choice)
        except CellError:
            raise invalid_value(field.get("name", "")) from None
        if is_empty(value):
            return None
        matches = linked.ids_with(primary["id"], value)
        if matches:
            return next(record_id for record_id in linked.records if record_id in matches)
        key = (linked.id, value)
        if key not in self._planned:
            self._planned[key] = (linked, self._new_record_id(), {primary["id"]: value})
        return self._planned[key][1]

    def attachment(self, field: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        if "url" not in item:
            known = self.base.attachments.get(item["id"]) or self._attachments.get(item["id"])
            if known is None:
                raise invalid_value(field.get("name", ""))
            return dict(known)
        stored = {"id": self._new_attachment_id(), "url": item["url"], "filename": item["filename"]}
        self._attachments[stored["id"]] = stored
        return dict(stored)

    def planned_records(self) -> int:
        return len(self._planned)

    def commit(self, now: str) -> list[tuple[Table, str]]:
        created: list[tuple[Table, str]] = []
        for table, record_id, cells in self._planned.values():
            record = StoredRecord(id=record_id, created_time=now)
            table.insert(record)
            table.write_cells(record, cells, replace=True)
            created.append((table, record_id))
        self.base.attachments.update(self._attachments)
        self._planned.clear()
        self._attachments.clear()
        return created


def _no_choice(_field: dict[str, Any], _name: str) -> None:
    """A primary field is never a select: no option can be created."""


def add_inverse_field(
    base: Base, table: Table, model: dict[str, Any], new_id: Callable[[str], str]
) -> dict[str, Any] | None:
    """Give a new link field ``model`` of ``table`` its inverse field in the linked table
    (named after ``table``, with " 2", " 3"... if that name is taken). A link to the field's
    own table gets none. Returns the inverse field, or None."""
    other = base.tables.get(linked_table_id(model) or "")
    if model.get("type") != LINK_TYPE or other is None or other is table:
        return None
    taken = {spec["name"].casefold() for spec in other.schema["fields"]}
    name, suffix = table.name, 1
    while name.casefold() in taken:
        suffix += 1
        name = f"{table.name} {suffix}"
    inverse = {
        "id": new_id("fld"),
        "name": name,
        "type": LINK_TYPE,
        "options": {
            "linkedTableId": table.id,
            "isReversed": False,
            "prefersSingleRecordLink": False,
            "inverseLinkFieldId": model["id"],
        },
    }
    model.setdefault("options", {})["inverseLinkFieldId"] = inverse["id"]
    other.schema["fields"].append(inverse)
    return inverse
