"""Base schemas: the Donations example and the lookups the emulator needs.

A schema is the dict ``GET /v0/meta/bases/{baseId}/tables`` returns:
``{"tables": [{"id", "name", "primaryFieldId", "fields": [...], "views": [...]}]}``.
Keeping the emulator's notion of a table identical to that payload means the meta
endpoint and the validators can never disagree.
"""

from __future__ import annotations

import copy
from typing import Any

DONATIONS_BASE_ID = "appDonations00001"
DONATIONS_TABLE_ID = "tblDonations00001"

_DONATIONS_SCHEMA: dict[str, Any] = {
    "tables": [
        {
            "id": DONATIONS_TABLE_ID,
            "name": "Donations",
            "description": "One record per DonationCreatedIntegrationEvent",
            "primaryFieldId": "fldDonationId0001",
            "fields": [
                {"id": "fldDonationId0001", "name": "Id", "type": "singleLineText"},
                {
                    "id": "fldCreationDate01",
                    "name": "Creation Date",
                    "type": "dateTime",
                    "options": {
                        "timeZone": "utc",
                        "dateFormat": {"name": "iso", "format": "YYYY-MM-DD"},
                        "timeFormat": {"name": "24hour", "format": "HH:mm"},
                    },
                },
                {"id": "fldDonorId0000001", "name": "Donor Id", "type": "singleLineText"},
                {"id": "fldFundraiserId01", "name": "Fundraiser Id", "type": "singleLineText"},
                {
                    "id": "fldDonationAmt001",
                    "name": "Donation Amount",
                    "type": "currency",
                    "options": {"precision": 2, "symbol": "$"},
                },
                {
                    "id": "fldDonorDisplay01",
                    "name": "Donor Display Name",
                    "type": "singleLineText",
                },
            ],
            "views": [{"id": "viwDonationsGrid1", "name": "Grid view", "type": "grid"}],
        }
    ]
}


def donations_schema() -> dict[str, Any]:
    """A fresh deep copy of the Donations base schema (callers may mutate it)."""
    return copy.deepcopy(_DONATIONS_SCHEMA)


class SchemaError(ValueError):
    """A schema given to the emulator is not shaped like Airtable's."""


def validate_schema(base_id: str, schema: Any) -> None:
    """Fail fast on a malformed schema, rather than with a confusing 500 later."""
    if not isinstance(schema, dict) or not isinstance(schema.get("tables"), list):
        raise SchemaError(f"{base_id}: schema must be a dict with a 'tables' list")
    seen: set[str] = set()
    for table in schema["tables"]:
        for key in ("id", "name", "fields"):
            if key not in table:
                raise SchemaError(f"{base_id}: every table needs {key!r}")
        if table["id"] in seen or table["name"] in seen:
            raise SchemaError(f"{base_id}: duplicate table {table['name']!r}")
        seen.update((table["id"], table["name"]))
        names: set[str] = set()
        for field in table["fields"]:
            if not {"id", "name", "type"} <= field.keys():
                raise SchemaError(f"{base_id}/{table['name']}: fields need id, name and type")
            if field["name"] in names or field["id"] in names:
                raise SchemaError(f"{base_id}/{table['name']}: duplicate field {field['name']!r}")
            names.update((field["id"], field["name"]))
        if table.get("primaryFieldId") not in names:
            raise SchemaError(f"{base_id}/{table['name']}: primaryFieldId must name a field")


def find_table(schema: dict[str, Any], id_or_name: str) -> dict[str, Any] | None:
    """The table with this id or name (ids first, as Airtable resolves them)."""
    tables = schema["tables"]
    for table in tables:
        if table["id"] == id_or_name:
            return table
    for table in tables:
        if table["name"] == id_or_name:
            return table
    return None


def find_field(table: dict[str, Any], id_or_name: str) -> dict[str, Any] | None:
    """The field with this name or id: Airtable accepts either as a cell key."""
    for field in table["fields"]:
        if field["name"] == id_or_name:
            return field
    for field in table["fields"]:
        if field["id"] == id_or_name:
            return field
    return None


def find_view(table: dict[str, Any], id_or_name: str) -> dict[str, Any] | None:
    """The view with this id or name, if the schema lists it."""
    for view in table.get("views") or []:
        if id_or_name in (view.get("id"), view.get("name")):
            return view
    return None
