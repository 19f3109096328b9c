"""Turn a message into Airtable fields, or say precisely why it cannot be done: each entry
of the `FieldMap` (`fieldmap`) reads its source, converts the value (`convert`) and checks
that Airtable can receive it; every problem of one message is reported in one reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .convert import convert, is_number
from .doubles import check_safe_number
from .envelopes import MISSING, Unwrapped, key_list, read_source
from .errors import MappingError
from .fieldmap import FieldMap, FieldSpec
from .fieldtypes import NUMBER_TYPES
from .model import Message


def _absent(value: Any) -> bool:
    return value is MISSING or value is None or value == ""


def map_value(spec: FieldSpec, value: Any) -> Any:
    """The value to send for `spec`, `MISSING` to leave the field out; raise ValueError
    (a `ConversionError` for a value its type refuses)."""
    if spec.type is None:  # plain entry: the value as-is
        if value is MISSING:
            value = spec.default
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f'"{spec.source}" is not a finite number')
        if spec.required and _absent(value):
            raise ValueError(f'required, but "{spec.source}" is missing or empty')
        if spec.airtable_type in NUMBER_TYPES:
            check_safe_number(value, spec.airtable_type)
        return value
    if _absent(value):
        if spec.default_json is not None:
            return spec.default
        if spec.required:
            raise ValueError(f'required, but "{spec.source}" is missing or empty')
        return MISSING
    return convert(spec.type, value, spec.options)


def _check_sendable(value: Any) -> None:
    """Raise ValueError if Airtable could not receive `value` as strict JSON in UTF-8."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "value is not valid Unicode (it holds a lone surrogate such as \\ud800)"
        ) from None
    except RecursionError:
        raise ValueError("value is nested too deeply") from None
    except TypeError:
        raise ValueError(
            "value is binary (a Binary message attribute); map it to nothing, or send it as a String"
        ) from None
    except ValueError:
        raise ValueError("value holds a number that is not finite") from None


def map_fields(
    field_map: FieldMap,
    unwrapped: Unwrapped,
    message: Message,
    *,
    label: str = "FIELD_MAP",
) -> dict[str, Any]:
    """The record's fields (keyed by `FieldSpec.key`) for one unwrapped message; raise a
    MappingError naming every problem, or "no <label> source found" when no body source of
    the map has a value (`$` sources and defaults do not count)."""
    values = [(spec, read_source(spec.source, unwrapped, message)) for spec in field_map.specs]
    if not any(spec.reads_body and not _absent(value) for spec, value in values):
        keys = key_list(unwrapped.payload)
        raise MappingError(f"no {label} source found (top-level keys{unwrapped.where}: {keys})")
    fields: dict[str, Any] = {}
    problems: list[str] = []
    for spec, raw in values:
        try:
            value = map_value(spec, raw)
            if value is not MISSING:
                _check_sendable(value)
                fields[spec.key] = value
        except ValueError as exc:
            problems.append(f'field "{spec.field}": {exc}')
    if problems:
        raise MappingError("; ".join(problems))
    return fields


def merge_key(
    fields: Mapping[str, Any], merge_on: Sequence[str], field_map: FieldMap, variable: str
) -> tuple[str, ...] | None:
    """The record's merge key (one `key_text` per merge field), None without `merge_on`;
    raise MappingError naming the field (by name; `variable` is what sets `merge_on`) when a
    merge field is missing or empty."""
    if not merge_on:
        return None
    key = []
    for name in merge_on:
        value = fields.get(name)
        if value is None or value == "":
            spec = field_map.spec(name)
            shown = spec.field if spec is not None else name
            raise MappingError(f'merge key field "{shown}" ({variable}) is missing or empty')
        key.append(key_text(value))
    return tuple(key)


def key_text(value: Any) -> str:
    """A key value as keys are compared: a string as it is, a number as a double (25 and
    25.0 are one key, as in Airtable), anything else as JSON."""
    if is_number(value):
        return repr(float(value))
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
