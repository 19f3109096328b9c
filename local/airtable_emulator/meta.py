"""Schema writes: the meta API's create-table and create-field, and schemas defined at runtime.

Airtable's meta API (scope ``schema.bases:write``) creates tables
(``POST /v0/meta/bases/{baseId}/tables``) and fields
(``POST /v0/meta/bases/{baseId}/tables/{tableIdOrName}/fields``). The checks below are
as strict as what is known of Airtable, and stricter where it is unknown:

* a field or table name that is empty, or equal to another one ignoring case, is refused
  (``DUPLICATE_OR_EMPTY_FIELD_NAME``, ``DUPLICATE_TABLE_NAME``: the error types clients
  of the real API match on);
* options are checked by ``options`` (``INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE``; Airtable
  answers it, e.g., for a checkbox without ``icon`` and ``color``); a link field's
  ``linkedTableId`` must name a table of the same base;
* a type the emulator cannot create (computed, collaborators...) or a malformed body gets
  ``INVALID_REQUEST_UNKNOWN``.

The package README lists which of these are verified. Pure functions: the caller holds
the emulator lock and passes a ``new_id(prefix)`` that draws ids from the seeded RNG.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from poller.fieldtypes import (
    ATTACHMENT_TYPE,
    CHECKBOX_TYPE,
    COMPUTED_TYPES,
    DATE_TYPES,
    LINK_TYPE,
    NUMBER_TYPES,
    PRIMARY_TYPES,
    SELECT_TYPES,
    TEXT_TYPES,
)

from .errors import invalid_request, unprocessable
from .options import DEFAULT_OPTIONS, NewId, OptionsError, normalize_options
from .schema import find_view

__all__ = ["PRIMARY_TYPES", "complete_schema", "field_model", "retype_options", "table_model"]

#: Types the emulator creates through the meta API (and validates options for).
CREATABLE_TYPES = (
    TEXT_TYPES
    | NUMBER_TYPES
    | SELECT_TYPES
    | DATE_TYPES
    | {CHECKBOX_TYPE, LINK_TYPE, ATTACHMENT_TYPE}
)
#: Types Airtable has that the emulator does not create (stored as given if a schema has them).
OTHER_TYPES = COMPUTED_TYPES | {
    "singleCollaborator",
    "multipleCollaborators",
    "barcode",
    "externalSyncSource",
}
#: A table of the same base by id (None if there is none): where a link field may point.
TableLookup = Callable[[str], dict[str, Any] | None]


def _options_error(table: str, name: str, problem: str) -> Exception:
    return unprocessable(
        "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE", f"Invalid options for {table}.{name}: {problem}"
    )


def _name_taken(name: str, names: list[str]) -> bool:
    return name.casefold() in {other.casefold() for other in names}


def field_model(
    body: Any,
    table_name: str,
    taken: list[str],
    new_id: NewId,
    tables: TableLookup = lambda _id: None,
) -> dict[str, Any]:
    """A new field from a create-field body (or one entry of a create-table body).

    ``taken`` holds the names already in the table; ``tables`` finds a link field's linked
    table. Raises the ApiError Airtable would."""
    if not isinstance(body, dict) or not set(body) <= {"name", "type", "options", "description"}:
        raise invalid_request()
    name, field_type = body.get("name"), body.get("type")
    if not isinstance(field_type, str) or (
        "description" in body and not isinstance(body["description"], str)
    ):
        raise invalid_request()
    if not isinstance(name, str) or not name.strip() or _name_taken(name, taken):
        raise unprocessable(
            "DUPLICATE_OR_EMPTY_FIELD_NAME",
            f'Field name "{name}" is empty or already used in table "{table_name}"'
            " (names are compared ignoring case)",
        )
    if field_type not in CREATABLE_TYPES:
        raise invalid_request(
            f"Field type {field_type!r} cannot be created"
            + (" through the API" if field_type in OTHER_TYPES else " (unknown type)")
        )
    try:
        options = normalize_options(field_type, body.get("options"), new_id)
        if field_type == LINK_TYPE and options is not None:
            _check_link_target(options, tables)
    except OptionsError as exc:
        raise _options_error(table_name, name, str(exc)) from None
    model: dict[str, Any] = {"id": new_id("fld"), "name": name, "type": field_type}
    if body.get("description"):
        model["description"] = body["description"]
    if options is not None:
        model["options"] = options
    return model


def _check_link_target(options: dict[str, Any], tables: TableLookup) -> None:
    linked = tables(options["linkedTableId"])
    if linked is None:
        raise OptionsError("options.linkedTableId must be the id of a table of this base")
    view = options.get("viewIdForRecordSelection")
    if view is not None and (find_view(linked, view) or {}).get("id") != view:
        raise OptionsError("options.viewIdForRecordSelection must be a view id of the linked table")


def table_model(
    body: Any, taken: list[str], new_id: NewId, tables: TableLookup = lambda _id: None
) -> dict[str, Any]:
    """A new table from a create-table body; its first field is the primary field."""
    if not isinstance(body, dict) or not set(body) <= {"name", "description", "fields"}:
        raise invalid_request()
    name, fields = body.get("name"), body.get("fields")
    if not isinstance(name, str) or not name.strip():
        raise invalid_request("A table needs a non-empty name")
    if "description" in body and not isinstance(body["description"], str):
        raise invalid_request()
    if _name_taken(name, taken):
        raise unprocessable(
            "DUPLICATE_TABLE_NAME", f'A table named "{name}" already exists (ignoring case)'
        )
    if not isinstance(fields, list) or not fields:
        raise invalid_request("A table needs at least one field; the first is the primary field")
    models: list[dict[str, Any]] = []
    for entry in fields:
        models.append(field_model(entry, name, [m["name"] for m in models], new_id, tables))
    if models[0]["type"] not in PRIMARY_TYPES:
        raise invalid_request(
            f'Field "{models[0]["name"]}" of type {models[0]["type"]} cannot be the primary'
            f" field (the first field); use one of {sorted(PRIMARY_TYPES)}"
        )
    table: dict[str, Any] = {"id": new_id("tbl"), "name": name}
    if body.get("description"):
        table["description"] = body["description"]
    table["primaryFieldId"] = models[0]["id"]
    table["fields"] = models
    table["views"] = [{"id": new_id("viw"), "name": "Grid view", "type": "grid"}]
    return table


def retype_options(field_type: str, options: Any, new_id: NewId) -> dict[str, Any] | None:
    """Options for a control-API retype: given ones are checked (ValueError), missing ones
    default to :data:`DEFAULT_OPTIONS`. Types the emulator does not create take any options."""
    if field_type not in CREATABLE_TYPES:
        if field_type not in OTHER_TYPES:
            raise ValueError(f"unknown field type {field_type!r}")
        return copy.deepcopy(options) if options is not None else None
    if options is None and field_type in DEFAULT_OPTIONS:
        options = DEFAULT_OPTIONS[field_type]
    return normalize_options(field_type, options, new_id)


def complete_schema(schema: Any, new_id: NewId) -> dict[str, Any]:
    """A copy of a schema given to ``define_base`` with every missing id filled in.

    Tables, fields, views and select choices without an ``id`` get one of Airtable's shape;
    a table without ``primaryFieldId`` gets its first field; a table without views gets a
    "Grid view". Options are taken as given (``define_base`` trusts its caller)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("tables"), list):
        raise ValueError("schema must be an object with a 'tables' list")
    result = copy.deepcopy(schema)
    for table in result["tables"]:
        if not isinstance(table, dict) or not isinstance(table.get("fields"), list):
            raise ValueError("every table needs a 'fields' list")
        table.setdefault("id", new_id("tbl"))
        for field in table["fields"]:
            if not isinstance(field, dict):
                raise ValueError("every field must be an object")
            field.setdefault("id", new_id("fld"))
            choices = (field.get("options") or {}).get("choices")
            for choice in choices if isinstance(choices, list) else []:
                if isinstance(choice, dict):
                    choice.setdefault("id", new_id("sel"))
        if table["fields"]:
            table.setdefault("primaryFieldId", table["fields"][0]["id"])
        table.setdefault("views", [{"id": new_id("viw"), "name": "Grid view", "type": "grid"}])
    return result
