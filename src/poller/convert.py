"""Convert one message value to what an Airtable field type accepts. Pure functions, no I/O.

A value that cannot be converted raises `ConversionError`, which the mapper turns into a
per-message reason such as `field "Donation Amount": cannot convert str 'twenty' to currency`.
Why not Airtable's `typecast`: docs/field-mapping.md.

Types (the mapping's `"type"`), and what each produces:
    text          str (numbers are stringified, see below; at most 100,000 characters)
    number        int or float (currency and percent are the same conversion)
    integer       int (a float with a fractional part is refused)
    checkbox      bool, from true/false, "true"/"false" or 0/1
    date          "YYYY-MM-DD"
    dateTime      ISO 8601 in UTC with milliseconds, "2018-05-01T12:00:00.000Z"
    singleSelect  str, optionally one of the declared `choices`
    multipleSelects  list of str (a string alone is one), each one of `choices` if declared
    attachment    [{"url": ...}] from one or more https URLs
    link          `Links`: the keys of rows in the linked table (the writer finds their ids)
A percent is a fraction (0.25 shows as 25%) unless `scale` is 100; an integer bound for a
rating field must lie within the field's `max`.

Numbers: `doubles` (Airtable stores them as IEEE doubles).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .doubles import InexactFloat, check_safe_number, json_float, number_text, shorten
from .errors import ConversionError
from .fieldtypes import TEXT_TYPES

#: Airtable's documented maximum for a single-line or long-text cell.
MAX_TEXT_LENGTH = 100_000
#: Airtable's own type names, accepted as synonyms so a schema can be copied as-is.
ALIASES = {t: "text" for t in TEXT_TYPES}
EPOCH_UNITS = {"s": 1.0, "ms": 1000.0}

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)?$"
)
_PREVIEW_CHARS = 40


@dataclass(frozen=True)
class Options:
    """Per-entry conversion options (all optional in the mapping)."""

    #: Accept numeric strings ("25.50") for number, currency, percent and integer.
    coerce: bool = False
    #: The zone of naive date-times, and the zone whose calendar day `date` takes: the
    #: entry's, else the dateTime field's own `timeZone`, else UTC.
    timezone: str | None = None
    #: Accept numbers for date and dateTime as seconds ("s") or milliseconds ("ms") since 1970.
    epoch: str | None = None
    #: For selects: the only values allowed (checked against the table by the schema check).
    choices: tuple[str, ...] = ()
    #: A local time that happens twice, or not at all, at a daylight-saving change: take the
    #: "earlier" or the "later" instant (unset: such a time is poison).
    dst: str | None = None
    #: percent: 100 when values are sent as percentages (25 for 25%) rather than fractions.
    scale: float = 1.0
    #: rating: the field's `max` (from the schema).
    max: int | None = None
    #: link: the linked table, its key field, and what a key with no row does.
    table: str = ""
    link_key: str = ""
    if_missing: str = "create"


class Links(tuple[str, ...]):
    """The keys of a link entry's records in the linked table; the writer puts their record
    ids in the cell."""


def canonical_type(name: str) -> str | None:
    """The mapping type for `name` (an alias is resolved), or None if unknown."""
    name = ALIASES.get(name, name)
    return name if name in TYPES else None


def zone(name: str | None) -> tzinfo:
    """The tzinfo for an IANA name (None: UTC); UTC without needing the tz database."""
    if name is None or name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConversionError(
            f"unknown timezone {name!r} (use an IANA name such as Europe/Paris)"
        ) from exc


def convert(kind: str, value: Any, options: Options = Options()) -> Any:
    """`value` converted for a field of mapping type `kind`; raise `ConversionError` if it can't be."""
    return _CONVERTERS[canonical_type(kind) or kind](kind, value, options)


def utc_text(moment: datetime) -> str:
    """An aware datetime as a dateTime value: ISO 8601 in UTC with milliseconds."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def version_number(value: Any) -> float:
    """A version as a number (the order of a route's `version`, in the message or as stored):
    a number as it is, else ISO 8601 date-time text as its instant in epoch seconds (a naive
    one is read in UTC); raise ValueError for anything else."""
    if is_number(value):
        return float(value)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def key_text(value: Any) -> str:
    """A key value as keys are compared: a string as it is, a number as a double (25 and
    25.0 are one key, as in Airtable), anything else as JSON."""
    if is_number(value):
        return repr(float(value))
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def preview(value: Any) -> str:
    """A short repr for reasons: enough to recognise the value, never a whole body."""
    return shorten(repr(value))


def _refuse(kind: str, value: Any, why: str = "") -> ConversionError:
    detail = f" ({why})" if why else ""
    return ConversionError(
        f"cannot convert {type(value).__name__} {preview(value)} to {kind}{detail}"
    )


def is_number(value: Any) -> bool:
    """True for a JSON number (an int or float, never a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(kind: str, value: Any, options: Options) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, InexactFloat):
        raise ConversionError(
            f"cannot convert number {value.literal[:_PREVIEW_CHARS]} to {kind} (more digits "
            "than a JSON double holds; send it as a string)"
        )
    elif is_number(value) and math.isfinite(value):
        text = number_text(value)
    else:
        raise _refuse(kind, value)
    if len(text) > MAX_TEXT_LENGTH:
        raise ConversionError(
            f"text of {len(text):,} characters is longer than Airtable's {MAX_TEXT_LENGTH:,}"
        )
    return text


def _parse_number(kind: str, value: Any, options: Options) -> int | float:
    if is_number(value):
        if not math.isfinite(value):
            raise _refuse(kind, value, "not a finite number")
        number = value
    elif isinstance(value, str):
        if not options.coerce:
            raise _refuse(kind, value, 'numeric strings need "coerce": true')
        text = value.strip()
        if not _NUMBER.match(text):
            raise _refuse(kind, value)
        number = float(text)
        if not math.isfinite(number):
            raise _refuse(kind, value, "not a finite number")
        if text.lstrip("+-").isdigit():
            number = int(text)
        elif number.is_integer():
            number = json_float(text)
    else:
        raise _refuse(kind, value)
    check_safe_number(number, kind)
    return number


def _integer(kind: str, value: Any, options: Options) -> int:
    number = _parse_number(kind, value, options)
    if isinstance(number, float) and not number.is_integer():
        raise _refuse(kind, value, "has a fractional part")
    number = int(number)
    if options.max is not None and not 0 <= number <= options.max:
        raise ConversionError(f"{number} is outside the rating field's 0 to {options.max}")
    return number


def _checkbox(kind: str, value: Any, options: Options) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _refuse(kind, value, "expected true/false or 0/1")


def _moment(kind: str, value: Any, options: Options) -> datetime | date:
    """A date (for a bare "YYYY-MM-DD") or an aware datetime (naive ones get the entry's zone)."""
    local = zone(options.timezone)
    if is_number(value):
        if options.epoch not in EPOCH_UNITS or not math.isfinite(value):
            raise _refuse(kind, value, 'numbers need "epoch": "s" or "ms"')
        try:
            return datetime.fromtimestamp(value / EPOCH_UNITS[options.epoch], UTC)
        except (OverflowError, OSError, ValueError):
            raise _refuse(kind, value, "out of range") from None
    if not isinstance(value, str):
        raise _refuse(kind, value)
    text = value.strip()
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
        if _DATETIME.match(text):
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
            return moment if moment.tzinfo else _local(moment, local, options)
    except ConversionError:
        raise
    except ValueError:
        raise _refuse(kind, value, "not a valid date") from None
    raise _refuse(kind, value, "expected ISO 8601")


def _date(kind: str, value: Any, options: Options) -> str:
    moment = _moment(kind, value, options)
    if isinstance(moment, datetime):
        moment = moment.astimezone(zone(options.timezone)).date()
    return moment.isoformat()


def _date_time(kind: str, value: Any, options: Options) -> str:
    moment = _moment(kind, value, options)
    if not isinstance(moment, datetime):  # a bare date: midnight in the entry's zone
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=zone(options.timezone))
    return utc_text(moment)


def _single_select(kind: str, value: Any, options: Options) -> str:
    if isinstance(value, str):
        name = value
    elif is_number(value) and isinstance(value, int):
        name = str(value)
    else:
        raise _refuse(kind, value)
    if options.choices and name not in options.choices:
        raise ConversionError(f"{preview(name)} is not one of the options {list(options.choices)}")
    return name


def _local(naive: datetime, local: tzinfo, options: Options) -> datetime:
    """A naive time in `local`: one instant, or the one `dst` picks when a daylight-saving
    change makes the time happen twice (an overlap) or not at all (a gap)."""
    instants = {naive.replace(tzinfo=local, fold=f).astimezone(UTC) for f in (0, 1)}
    if len(instants) == 1:
        return naive.replace(tzinfo=local)
    if options.dst not in ("earlier", "later"):
        first = naive.replace(tzinfo=local, fold=0)
        gap = first.astimezone(UTC).astimezone(local).replace(tzinfo=None) != naive
        what = "does not exist" if gap else "happens twice"
        raise ConversionError(
            f"{naive.isoformat()} {what} in {options.timezone} (a daylight-saving change); "
            'set "dst": "earlier" or "later" on the entry to say which instant is meant'
        )
    return (min if options.dst == "earlier" else max)(instants)


def _percent(kind: str, value: Any, options: Options) -> int | float:
    number = _parse_number(kind, value, options) / options.scale
    if options.scale == 1.0 and abs(number) > 10:
        raise ConversionError(
            f"{preview(value)} would be {number:,.0%}: a percent field stores a fraction "
            '(0.25 shows as 25%); send fractions, or set "scale": 100 to send percentages'
        )
    return number


def _many(kind: str, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise _refuse(kind, value, "expected a non-empty string or a list of them")
    return values


def _multiple_selects(kind: str, value: Any, options: Options) -> list[str]:
    names = _many(kind, value)
    unknown = [n for n in names if options.choices and n not in options.choices]
    if unknown:
        raise ConversionError(
            f"{preview(unknown)} are not among the options {list(options.choices)}"
        )
    return list(dict.fromkeys(names))


def _attachment(kind: str, value: Any, options: Options) -> list[dict[str, str]]:
    urls = _many(kind, value)
    bad = [u for u in urls if not re.match(r"^https://[^\s/]+\S*$", u)]
    if bad:
        raise ConversionError(
            f"{preview(bad[0])} is not an https URL (Airtable fetches attachments from public URLs)"
        )
    return [{"url": u} for u in urls]


def _link(kind: str, value: Any, options: Options) -> Links:
    values = value if isinstance(value, list) else [value]
    keys = [_text(kind, v, options) for v in values if v is not None and v != ""]
    if not keys:
        raise _refuse(kind, value, "expected a key or a list of keys of the linked table")
    return Links(dict.fromkeys(keys))


_CONVERTERS: dict[str, Callable[[str, Any, Options], Any]] = {
    "text": _text,
    "number": _parse_number,
    "currency": _parse_number,
    "percent": _percent,
    "integer": _integer,
    "checkbox": _checkbox,
    "date": _date,
    "dateTime": _date_time,
    "singleSelect": _single_select,
    "multipleSelects": _multiple_selects,
    "attachment": _attachment,
    "link": _link,
}
#: Every type a mapping entry may declare.
TYPES = tuple(_CONVERTERS)
