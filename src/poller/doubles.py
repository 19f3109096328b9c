"""Airtable stores number, currency and percent values as IEEE doubles.

So is every JSON number in its API (as reported on Airtable's own client tracker for
colliding merge keys): an integer beyond +/-2^53
(9,007,199,254,740,991, `MAX_SAFE_INTEGER`) would be rounded, so that two different ids
become one value and merge keys collide. Such an integer (a JSON integer, an integral
numeric string with `coerce`, or an integral JSON float literal with more digits than a
double holds) is refused for number, currency, percent and integer, with a reason that
says so. `check_safe_number` applies the same rule to a plain entry once the schema says
its field is numeric.

Numbers into text: an integral float is written without ".0" (`1234.0` -> "1234", so it
matches the row an integer `1234` made); any other float is Python's shortest round-trip
repr (`2.5` -> "2.5", `0.1` -> "0.1"), which uses an exponent only below 1e-4 and from 1e16
on (`1e-05`, `1e+16`), never for ordinary amounts or ids.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from .errors import ConversionError

#: The largest integer an IEEE double holds exactly (2^53 - 1); Airtable numbers are doubles.
MAX_SAFE_INTEGER = 2**53 - 1
#: Integral floats below this are written into text as integers ("1234", not "1234.0").
_PLAIN_FLOAT_LIMIT = 1e16


class InexactFloat(float):
    """A float parsed from an integral JSON literal that a double cannot hold exactly
    (`12345678901234567891.0`): the digits the producer wrote are already lost."""

    __slots__ = ("literal",)

    def __new__(cls, value: float, literal: str) -> InexactFloat:
        self = super().__new__(cls, value)
        self.literal = literal
        return self


def json_float(literal: str) -> float:
    """`parse_float` for `json.loads`: a float, or an `InexactFloat` for an integral literal
    beyond 2^53 whose digits the double does not keep."""
    value = float(literal)
    big_integer = math.isfinite(value) and value.is_integer() and abs(value) > MAX_SAFE_INTEGER
    if big_integer and Decimal(literal) != Decimal(value):
        return InexactFloat(value, literal)
    return value


def check_safe_number(value: Any, kind: str) -> None:
    """Raise ConversionError if Airtable would round `value` (an int or float bound for a
    field of Airtable type `kind`): an integer beyond +/-2^53, or an `InexactFloat`."""
    if isinstance(value, bool):
        return
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise _unsafe(kind, value)
    if isinstance(value, InexactFloat):
        raise _unsafe(kind, value.literal)


def _unsafe(kind: str, shown: Any) -> ConversionError:
    return ConversionError(
        f"cannot convert {shorten(str(shown))} "
        f"to {kind} (beyond +/-2^53 = {MAX_SAFE_INTEGER:,}: Airtable stores numbers as IEEE "
        "doubles and would round it)"
    )


def number_text(value: int | float) -> str:
    """A number as text: integers and integral floats as digits, other floats by repr."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _PLAIN_FLOAT_LIMIT:
        return str(int(value))
    return repr(float(value)) if isinstance(value, float) else str(value)


def shorten(text: str, limit: int = 40) -> str:
    """`text` as reasons quote it: at most `limit` characters, ending in "..." when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
