"""Field options: what each type the meta API creates takes, checked key by key.

The checks are as strict as what is known of Airtable, and stricter where it is unknown:
options are required for the types that need them, refused for the types that take none,
and checked key by key; the package README lists which of these are verified. Pure
functions: ``new_id(prefix)`` draws ids (select choices) from the emulator's seeded RNG.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from poller.fieldtypes import ATTACHMENT_TYPE, CHECKBOX_TYPE, LINK_TYPE

#: ``new_id("fld")`` returns a fresh ``fld`` + 14 alphanumerics.
NewId = Callable[[str], str]

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
    CHECKBOX_TYPE: {"icon": "check", "color": "greenBright"},
    "date": {"dateFormat": {"name": "iso"}},
    "dateTime": {
        "dateFormat": {"name": "iso"},
        "timeFormat": {"name": "24hour"},
        "timeZone": "utc",
    },
    "singleSelect": {"choices": []},
    "multipleSelects": {"choices": []},
    ATTACHMENT_TYPE: {},
}
#: Types whose options are all optional: no options is the same as ``{}``.
_OPTIONAL_ONLY = frozenset({ATTACHMENT_TYPE})


class OptionsError(ValueError):
    """The options do not fit the type; the message says which key and why."""


def normalize_options(field_type: str, options: Any, new_id: NewId) -> dict[str, Any] | None:
    """Check ``options`` for ``field_type`` and return them as the field model shows them
    (date formats get their ``format``, select choices their ``id``). Raise OptionsError."""
    required, optional = _option_keys(field_type)
    if not required and not optional:
        if options is not None:
            raise OptionsError(f"options is not included in the (type={field_type}) schema")
        return None
    if options is None and field_type in _OPTIONAL_ONLY:
        options = {}
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
        CHECKBOX_TYPE: (("icon", "color"), ()),
        LINK_TYPE: (("linkedTableId",), ("prefersSingleRecordLink", "viewIdForRecordSelection")),
        ATTACHMENT_TYPE: ((), ("isReversed",)),
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
    if field_type in (CHECKBOX_TYPE, "rating"):
        if field_type == CHECKBOX_TYPE and options["icon"] not in CHECKBOX_ICONS:
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
    for flag in ("isReversed", "prefersSingleRecordLink"):
        if flag in options and not isinstance(options[flag], bool):
            raise OptionsError(f"options.{flag} must be true or false")
    for key in ("linkedTableId", "viewIdForRecordSelection"):
        if key in options and not isinstance(options[key], str):
            raise OptionsError(f"options.{key} must be an id")
    if field_type == ATTACHMENT_TYPE:
        options.setdefault("isReversed", False)
    if field_type == LINK_TYPE:
        options.setdefault("isReversed", False)
        options.setdefault("prefersSingleRecordLink", False)


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
