"""A base: its schema, its tables, and the cells that depend on other records.

A link field may have an inverse field in the linked table (``inverseLinkFieldId``): the
base keeps the two sides in step after every write. Deleting a record removes it from
every link cell that pointed at it, as Airtable does. Attachments written to the base are
remembered by id, so that a client can keep one by sending its id back.
"""

from __future__ import annotations

import copy
from typing import Any

from poller.fieldtypes import ATTACHMENT_TYPE, LINK_TYPE

from .fields import json_number
from .schema import find_field, find_table
from .table import StoredRecord, Table


def link_specs(table: Table) -> list[dict[str, Any]]:
    return [spec for spec in table.schema["fields"] if spec.get("type") == LINK_TYPE]


def linked_table_id(spec: dict[str, Any]) -> str | None:
    return (spec.get("options") or {}).get("linkedTableId")


class Base:
    """One base. ``schema`` is the meta payload (mutable: typecast adds select options and
    the meta API adds tables and fields); ``name`` is what ``GET /v0/meta/bases`` lists."""

    def __init__(self, base_id: str, schema: dict[str, Any]) -> None:
        self.schema = copy.deepcopy(schema)
        self.name = str(self.schema.pop("name", None) or base_id)
        self.tables: dict[str, Table] = {}
        self.attachments: dict[str, dict[str, Any]] = {}
        for table_schema in self.schema["tables"]:
            self.add_table(table_schema)

    def add_table(self, table_schema: dict[str, Any]) -> Table:
        table = Table(table_schema)
        table.observer = self
        self.tables[table.id] = table
        return table

    def table(self, id_or_name: str) -> Table | None:
        found = find_table(self.schema, id_or_name)
        return self.tables[found["id"]] if found else None

    def record_count(self) -> int:
        """Records in every table of the base (what a plan's record cap counts)."""
        return sum(len(table.records) for table in self.tables.values())

    # ------------------------------------------------------- the observer side

    def written(self, table: Table, record: StoredRecord, before: dict[str, Any]) -> None:
        """Keep inverse link cells in step with ``record``'s link cells."""
        for spec in link_specs(table):
            inverse_id = (spec.get("options") or {}).get("inverseLinkFieldId")
            other = self.tables.get(linked_table_id(spec) or "")
            if not inverse_id or other is None:
                continue
            old, new = before.get(spec["id"], []), record.fields.get(spec["id"], [])
            for linked_id in [i for i in old if i not in new]:
                linked = other.records.get(linked_id)
                if linked is not None:
                    cell = [i for i in linked.fields.get(inverse_id, []) if i != record.id]
                    other.set_cell(linked, inverse_id, cell)
            for linked_id in [i for i in new if i not in old]:
                linked = other.records.get(linked_id)
                if linked is None:
                    continue
                cell = linked.fields.get(inverse_id, [])
                if record.id not in cell:
                    other.set_cell(linked, inverse_id, [*cell, record.id])

    def removed(self, table: Table, record: StoredRecord) -> None:
        """Take a deleted record out of every link cell that points at it."""
        for other in self.tables.values():
            for spec in link_specs(other):
                if linked_table_id(spec) != table.id:
                    continue
                for holder in other.records.values():
                    cell = holder.fields.get(spec["id"])
                    if cell and record.id in cell:
                        other.set_cell(holder, spec["id"], [i for i in cell if i != record.id])

    # ---------------------------------------------------------- formula values

    def display_cells(self, table: Table, record: StoredRecord) -> dict[str, Any]:
        """A record's cells by field name, as a formula sees them: a link cell is the
        linked records' primary values, an attachment cell ``filename (url)`` per file."""
        cells: dict[str, Any] = {}
        for spec in table.schema["fields"]:
            value = record.fields.get(spec["id"])
            if value is None:
                continue
            if spec.get("type") == LINK_TYPE:
                value = self._primary_values(spec, value)
            elif spec.get("type") == ATTACHMENT_TYPE:
                value = [f"{item['filename']} ({item['url']})" for item in value]
            cells[spec["name"]] = value
        return cells

    def _primary_values(self, spec: dict[str, Any], ids: list[str]) -> list[Any]:
        other = self.tables.get(linked_table_id(spec) or "")
        if other is None:
            return []
        primary = find_field(other.schema, other.schema.get("primaryFieldId", ""))
        values: list[Any] = []
        for linked_id in ids:
            linked = other.records.get(linked_id)
            value = linked.fields.get(primary["id"]) if linked and primary else None
            values.append(json_number(value) if isinstance(value, float) else value or "")
        return values
