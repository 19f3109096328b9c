"""Cell validation and normalisation by Airtable field type.

The poller's mapping turns SQS messages into Airtable cells; the only way to know in tests
that it sends what Airtable accepts is to reject what Airtable rejects. ``normalize_cell``
either returns the value as Airtable would store it (e.g. a dateTime in UTC with
milliseconds) or raises :class:`CellError` carrying Airtable's error type and message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from poller.fieldtypes import (
    ATTACHMENT_TYPE,
    CHECKBOX_TYPE,
    COMPUTED_TYPES,
    LINK_TYPE,
    NUMBER_TYPES,
    TEXT_TYPES,
)

from .cellrefs import CellContext, InvalidRef, attachment_cell, link_cell

#: Airtable's documented maximum for a single-line or long-text cell.
MAX_TEXT_LENGTH = 100_000

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)
_TRUE_STRINGS = frozenset({"true", "1", "yes", "y", "on", "checked"})
_FALSE_STRINGS = frozenset({"false", "0", "no", "n", "off", "unchecked", ""})


class CellError(Exception):
    """A value Airtable would refuse; carries the 422 error type and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


#: Called when typecast creates a select option: (field, option name).
NewChoice = Callable[[dict[str, Any], str], None]


def is_empty(value: Any) -> bool:
    """Airtable treats these as an empty cell and leaves them out of responses."""
    return value is None or value is False or value == "" or value == []


def normalize_cell(
    field: dict[str, Any],
    value: Any,
    *,
    typecast: bool,
    new_choice: NewChoice,
    context: CellContext | None = None,
) -> Any:
    """Validate ``value`` for ``field`` and return it as Airtable would store it.

    ``None`` clears a cell. ``new_choice`` is told about select options that typecast
    would create; the caller applies them only if the whole request is valid. ``context``
    resolves links and attachments (without it their shape alone is checked).
    """
    field_type = field.get("type", "")
    name = field.get("name", "")
    if field_type in COMPUTED_TYPES:
        raise CellError(
            "INVALID_VALUE_FOR_COLUMN",
            f'Field "{name}" cannot accept a value because the field is computed',
        )
    if value is None:
        return None
    try:
        if field_type == LINK_TYPE:
            return link_cell(field, value, typecast, context)
        if field_type == ATTACHMENT_TYPE:
            return attachment_cell(field, value, context)
    except InvalidRef:
        raise invalid_value(name) from None
    converter = _CONVERTERS.get(field_type)
    if converter is None:
        return value  # a type the emulator does not model: accepted as-is (see README)
    try:
        return converter(field, value, typecast, new_choice)
    except _Invalid:
        raise invalid_value(name) from None


def invalid_value(name: str) -> CellError:
    """Airtable's INVALID_VALUE_FOR_COLUMN for field ``name``."""
    return CellError("INVALID_VALUE_FOR_COLUMN", f'Field "{name}" cannot accept the provided value')


class _Invalid(Exception):
    """Internal signal: the value does not fit the field type."""


def _text(field: dict[str, Any], value: Any, typecast: bool, _: NewChoice) -> str:
    if isinstance(value, str):
        text = value
    elif typecast and isinstance(value, bool):
        text = "true" if value else "false"
    elif typecast and isinstance(value, int | float):
        text = _number_to_text(value)
    else:
        raise _Invalid
    if len(text) > MAX_TEXT_LENGTH:
        raise _Invalid
    return text


def _number_to_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(field: dict[str, Any], value: Any, typecast: bool, _: NewChoice) -> int | float:
    """A number, currency, percent, duration or rating cell: stored as a double (a
    rating as the whole number it must be)."""
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, int | float):
        number: int | float = value
    elif typecast and isinstance(value, str):
        number = _parse_number(value, field)
    else:
        raise _Invalid
    try:
        stored = float(number)  # Airtable stores IEEE doubles: 2**53 + 1 becomes 2**53
    except OverflowError:
        raise _Invalid from None
    if not math.isfinite(stored):
        raise _Invalid
    if field.get("type") == "rating":
        maximum = (field.get("options") or {}).get("max", 5)
        if stored != int(stored) or not 1 <= stored <= maximum:
            raise _Invalid
        return int(stored)
    return stored


def json_number(value: float) -> int | float:
    """A stored double as Airtable's JSON writes it (JavaScript's number formatting): an
    integral value below 1e21 in plain digits, shortest round-trip digits padded with zeros
    (``1234567890123456789`` is stored as 1234567890123456768.0 and written as
    ``1234567890123456800``), anything else as the float itself."""
    if value.is_integer() and abs(value) < 1e21:
        return int(Decimal(repr(value)))
    return value


def _parse_number(text: str, field: dict[str, Any]) -> int | float:
    cleaned = text.strip().replace(",", "")
    symbol = (field.get("options") or {}).get("symbol")
    if symbol and cleaned.startswith(symbol):
        cleaned = cleaned[len(symbol) :].strip()
    if field.get("type") == "percent" and cleaned.endswith("%"):
        cleaned = cleaned[:-1].strip()
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        return float(cleaned)
    except ValueError:
        raise _Invalid from None


def _checkbox(field: dict[str, Any], value: Any, typecast: bool, _: NewChoice) -> bool:
    if isinstance(value, bool):
        return value
    if typecast and isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS:
        return True
    if typecast and isinstance(value, str) and value.strip().lower() in _FALSE_STRINGS:
        return False
    if typecast and isinstance(value, int | float):
        return bool(value)
    raise _Invalid


def _date(field: dict[str, Any], value: Any, typecast: bool, _: NewChoice) -> str:
    if not isinstance(value, str):
        raise _Invalid
    if _DATE_RE.match(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise _Invalid from None
    if typecast and _DATETIME_RE.match(value):
        return _parse_datetime(value, _field_zone(field), allow_naive=True).date().isoformat()
    raise _Invalid


def _date_time(field: dict[str, Any], value: Any, typecast: bool, _: NewChoice) -> str:
    if not isinstance(value, str):
        raise _Invalid
    zone = _field_zone(field)
    if _DATE_RE.match(value):
        try:
            moment = datetime.combine(date.fromisoformat(value), time(), zone)
        except ValueError:
            raise _Invalid from None
    elif _DATETIME_RE.match(value):
        moment = _parse_datetime(value, zone, allow_naive=typecast)
    else:
        raise _Invalid
    return format_datetime(moment)


def _parse_datetime(text: str, zone: tzinfo, *, allow_naive: bool) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid from None
    if moment.tzinfo is None:
        if not allow_naive:
            raise _Invalid  # ambiguous instant: Airtable wants a zone (or typecast)
        moment = moment.replace(tzinfo=zone)
    return moment


def _field_zone(field: dict[str, Any]) -> tzinfo:
    name = (field.get("options") or {}).get("timeZone", "utc")
    if name in ("utc", "client", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def format_datetime(moment: datetime) -> str:
    """Airtable's canonical dateTime form: UTC with milliseconds and a ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _choice_names(field: dict[str, Any]) -> list[str]:
    choices = (field.get("options") or {}).get("choices") or []
    return [choice.get("name") for choice in choices]


def _select_one(field: dict[str, Any], name: str, typecast: bool, new_choice: NewChoice) -> str:
    if name in _choice_names(field):
        return name
    if typecast and name != "":
        new_choice(field, name)
        return name
    raise CellError(
        "INVALID_MULTIPLE_CHOICE_OPTIONS",
        f'Insufficient permissions to create new select option ""{name}""',
    )


def _single_select(field: dict[str, Any], value: Any, typecast: bool, new_choice: NewChoice) -> str:
    if not isinstance(value, str):
        raise _Invalid
    return _select_one(field, value, typecast, new_choice)


def _multiple_selects(
    field: dict[str, Any], value: Any, typecast: bool, new_choice: NewChoice
) -> list[str]:
    if typecast and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid
    chosen: list[str] = []
    for item in value:
        name = _select_one(field, item, typecast, new_choice)
        if name not in chosen:
            chosen.append(name)
    return chosen


_Converter = Callable[[dict[str, Any], Any, bool, NewChoice], Any]
_CONVERTERS: dict[str, _Converter] = {
    **dict.fromkeys(TEXT_TYPES, _text),
    **dict.fromkeys(NUMBER_TYPES, _number),
    CHECKBOX_TYPE: _checkbox,
    "date": _date,
    "dateTime": _date_time,
    "singleSelect": _single_select,
    "multipleSelects": _multiple_selects,
}
