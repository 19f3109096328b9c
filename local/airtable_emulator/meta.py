"""Schema writes: the meta API's create-table and create-field, and schemas defined at runtime.

Airtable's meta API (scope ``schema.bases:write``) creates tables
(``POST /v0/meta/bases/{baseId}/tables``) and fields
(``POST /v0/meta/bases/{baseId}/tables/{tableIdOrName}/fields``). The checks below are
as strict as what is known of Airtable, and stricter where it is unknown:

* a field or table name that is empty, or equal to another one ignoring case, is refused
  (``DUPLICATE_OR_EMPTY_FIELD_NAME``, ``DUPLICATE_TABLE_NAME``: the error types clients
  of the real API match on);
* options are required for the types that need them, refused for the types that take
  none, and checked key by key (``INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE``; Airtable
  answers it, e.g., for a checkbox without ``icon`` and ``color``);
* a type the emulator cannot create (computed, linked, attachments...) or a malformed
  body gets ``INVALID_REQUEST_UNKNOWN``.

The package README lists which of these are verified. Pure functions: the caller holds
the emulator lock and passes a ``new_id(prefix)`` that draws ids from the seeded RNG.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from .errors import invalid_request, unprocessable
from .fields import COMPUTED_TYPES, NUMBER_TYPES, SELECT_TYPES, TEXT_TYPES

#: ``new_id("fld")`` returns a fresh ``fld`` + 14 alphanumerics.
NewId = Callable[[str], str]

#: Types the emulator creates through the meta API (and validates options for).
CREATABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | SELECT_TYPES | {"checkbox", "date", "dateTime"}
#: Types Airtable has that the emulator does not create (stored as given if a schema has them).
OTHER_TYPES = COMPUTED_TYPES | {
    "multipleRecordLinks",
    "multipleAttachments",
    "singleCollaborator",
    "multipleCollaborators",
    "barcode",
    "externalSyncSource",
    "aiText",
}
#: Types a table's primary field (the first field of a new table) may have.
PRIMARY_TYPES = TEXT_TYPES - {"richText"} | {
    "number",
    "currency",
    "percent",
    "duration",
    "date",
    "dateTime",
}

CHECKBOX_ICONS = frozenset({"check", "xCheckbox", "star", "heart", "thumbsUp", "flag", "dot"})
COLORS = frozenset(
    f"{hue}Bright"
    for hue in (
        "green",
        "teal",
        "cyan",
        "blue",
        "purple",
        "pink",
        "red",
        "orange",
        "yellow",
        "gray",
    )
)
DATE_FORMATS = {
    "local": "l",
    "friendly": "LL",
    "us": "M/D/YYYY",
    "european": "D/M/YYYY",
    "iso": "YYYY-MM-DD",
}
TIME_FORMATS = {"12hour": "h:mma", "24hour": "HH:mm"}
DURATION_FORMATS = frozenset({"h:mm", "h:mm:ss", "h:mm:ss.S", "h:mm:ss.SS", "h:mm:ss.SSS"})
#: Precision bounds per type (the field model's documented ranges).
PRECISION = {"number": 8, "percent": 8, "currency": 7}

#: Options the control API uses when a retype names a type that needs options but gives none.
DEFAULT_OPTIONS: Mapping[str, dict[str, Any]] = {
    "number": {"precision": 0},
    "percent": {"precision": 0},
    "currency": {"precision": 2, "symbol": "$"},
    "rating": {"max": 5, "icon": "star", "color": "yellowBright"},
    "duration": {"durationFormat": "h:mm"},
    "checkbox": {"icon": "check", "color": "greenBright"},
    "date": {"dateFormat": {"name": "iso"}},
    "dateTime": {
        "dateFormat": {"name": "iso"},
        "timeFormat": {"name": "24hour"},
        "timeZone": "utc",
    },
    "singleSelect": {"choices": []},
    "multipleSelects": {"choices": []},
}


class OptionsError(ValueError):
    """The options do not fit the type; the message says which key and why."""


def _options_error(table: str, name: str, problem: str) -> Exception:
    return unprocessable(
        "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE", f"Invalid options for {table}.{name}: {problem}"
    )


def normalize_options(field_type: str, options: Any, new_id: NewId) -> dict[str, Any] | None:
    """Check ``options`` for ``field_type`` and return them as the field model shows them
    (date formats get their ``format``, select choices their ``id``). Raise OptionsError."""
    required, optional = _option_keys(field_type)
    if not required and not optional:
        if options is not None:
            raise OptionsError(f"options is not included in the (type={field_type}) schema")
        return None
    if options is None:
        raise OptionsError("options is missing")
    if not isinstance(options, dict):
        raise OptionsError("options must be an object")
    missing = sorted(set(required) - set(options))
    if missing:
        raise OptionsError(f"options.{missing[0]} is missing")
    unknown = sorted(set(options) - set(required) - set(optional))
    if unknown:
        raise OptionsError(f"options.{unknown[0]} is not allowed for type {field_type}")
    result = copy.deepcopy(options)
    _check_values(field_type, result, new_id)
    return result


def _option_keys(field_type: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) option keys of a creatable type."""
    return {
        "number": (("precision",), ()),
        "percent": (("precision",), ()),
        "currency": (("precision", "symbol"), ()),
        "rating": (("max", "icon", "color"), ()),
        "duration": (("durationFormat",), ()),
        "checkbox": (("icon", "color"), ()),
        "date": (("dateFormat",), ()),
        "dateTime": (("dateFormat", "timeFormat", "timeZone"), ()),
        "singleSelect": (("choices",), ()),
        "multipleSelects": (("choices",), ()),
    }.get(field_type, ((), ()))


def _check_values(field_type: str, options: dict[str, Any], new_id: NewId) -> None:
    if "precision" in options:
        precision = options["precision"]
        top = PRECISION[field_type]
        if (
            isinstance(precision, bool)
            or not isinstance(precision, int)
            or not 0 <= precision <= top
        ):
            raise OptionsError(f"options.precision must be a whole number from 0 to {top}")
    if "symbol" in options and not (isinstance(options["symbol"], str) and options["symbol"]):
        raise OptionsError("options.symbol must be a non-empty string")
    if field_type == "rating":
        maximum = options["max"]
        if isinstance(maximum, bool) or not isinstance(maximum, int) or not 1 <= maximum <= 10:
            raise OptionsError("options.max must be a whole number from 1 to 10")
    if field_type in ("checkbox", "rating"):
        if field_type == "checkbox" and options["icon"] not in CHECKBOX_ICONS:
            raise OptionsError(f"options.icon must be one of {sorted(CHECKBOX_ICONS)}")
        if options["color"] not in COLORS:
            raise OptionsError(f"options.color must be one of {sorted(COLORS)}")
    if field_type == "duration" and options["durationFormat"] not in DURATION_FORMATS:
        raise OptionsError(f"options.durationFormat must be one of {sorted(DURATION_FORMATS)}")
    if "dateFormat" in options:
        options["dateFormat"] = _named_format(options["dateFormat"], DATE_FORMATS, "dateFormat")
    if "timeFormat" in options:
        options["timeFormat"] = _named_format(options["timeFormat"], TIME_FORMATS, "timeFormat")
    if "timeZone" in options and not (isinstance(options["timeZone"], str) and options["timeZone"]):
        raise OptionsError("options.timeZone must be a time zone name, 'utc' or 'client'")
    if "choices" in options:
        options["choices"] = _choices(options["choices"], new_id)


def _named_format(value: Any, known: Mapping[str, str], key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not set(value) <= {"name", "format"}:
        raise OptionsError(f"options.{key} must be {{'name': ..., 'format'?: ...}}")
    name = value.get("name")
    if name not in known:
        raise OptionsError(f"options.{key}.name must be one of {sorted(known)}")
    if "format" in value and value["format"] != known[name]:
        raise OptionsError(f"options.{key}.format must be {known[name]!r} for {name!r}")
    return {"name": name, "format": known[name]}


def _choices(choices: Any, new_id: NewId) -> list[dict[str, Any]]:
    if not isinstance(choices, list):
        raise OptionsError("options.choices must be a list")
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for choice in choices:
        if not isinstance(choice, dict) or not set(choice) <= {"id", "name", "color"}:
            raise OptionsError("each choice must be {'name': ..., 'color'?: ...}")
        name = choice.get("name")
        if not isinstance(name, str) or not name.strip() or name in seen:
            raise OptionsError("choice names must be non-empty and distinct")
        seen.add(name)
        result.append({"id": choice.get("id") or new_id("sel"), **choice} | {"name": name})
    return result


def _name_taken(name: str, names: list[str]) -> bool:
    return name.casefold() in {other.casefold() for other in names}


def field_model(body: Any, table_name: str, taken: list[str], new_id: NewId) -> dict[str, Any]:
    """A new field from a create-field body (or one entry of a create-table body).

    ``taken`` holds the names already in the table. Raises the ApiError Airtable would."""
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
    except OptionsError as exc:
        raise _options_error(table_name, name, str(exc)) from None
    model: dict[str, Any] = {"id": new_id("fld"), "name": name, "type": field_type}
    if body.get("description"):
        model["description"] = body["description"]
    if options is not None:
        model["options"] = options
    return model


def table_model(body: Any, taken: list[str], new_id: NewId) -> dict[str, Any]:
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
        models.append(field_model(entry, name, [m["name"] for m in models], new_id))
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
