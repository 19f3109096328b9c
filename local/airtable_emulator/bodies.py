"""Reading a request: strict JSON bodies, body keys, query flags and the bearer token."""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import invalid_request, unprocessable

#: Largest magnitude a JSON number may have: Airtable parses numbers as doubles.
_MAX_DOUBLE = 1.7976931348623157e308


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _double_int(text: str) -> int:
    value = int(text)
    if abs(value) > _MAX_DOUBLE:
        raise ValueError(f"{text} is out of range")
    return value


def parse_body(body: bytes) -> Any:
    """Strict JSON: NaN, Infinity, numbers beyond a double's range (integers too) and text
    that is not Unicode (an escaped lone surrogate such as "\\ud800") are 422
    INVALID_REQUEST_BODY."""
    try:
        data = json.loads(
            body.decode("utf-8") or "null",
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_double_int,
        )
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be stored
        return data
    except (ValueError, UnicodeError):
        raise unprocessable("INVALID_REQUEST_BODY", "Could not parse request body") from None


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def body_dict(body: Any, allowed: set[str]) -> dict[str, Any]:
    """A JSON object with only ``allowed`` keys (and boolean flags where flags go)."""
    if not isinstance(body, dict) or not set(body) <= allowed:
        raise invalid_request()
    for key in ("typecast", "returnFieldsByFieldId"):
        if key in body and not isinstance(body[key], bool):
            raise invalid_request()
    return body


def query_flag(query: dict[str, list[str]], name: str) -> bool:
    values = query.get(name)
    return bool(values) and values[-1].lower() in ("1", "true")


def query_value(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None
