"""Advice for the operator from a route's schema: not errors, but plain entries that write
to typed fields (read by `check-config` and the samples)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from poller.fieldtypes import CHECKBOX_TYPE, DATE_TYPES, NUMBER_TYPES, SELECT_TYPES
from poller.routing import Route
from poller.schema import find

#: The mapping type that converts values for an Airtable field type (for advice).
SUGGESTED_TYPE: Mapping[str, str] = {
    **{t: "number" for t in NUMBER_TYPES},
    "currency": "currency",
    "percent": "percent",
    "rating": "integer",
    CHECKBOX_TYPE: "checkbox",
    **{t: t for t in DATE_TYPES},
    **{t: t for t in SELECT_TYPES},
}


def advice(route: Route, fields: Sequence[Mapping[str, Any]]) -> list[str]:
    """Not errors, but worth telling the operator: plain entries that write to typed fields
    send values unconverted, so a bad value is found by Airtable instead of the mapper."""
    notes = []
    for spec in route.field_map.specs:
        found = find(fields, spec.field)
        suggested = SUGGESTED_TYPE.get(str(found.get("type"))) if found else None
        if spec.type is None and found is not None and suggested:
            notes.append(
                f'"{spec.field}" is a {found.get("type")} field but its entry has no "type": '
                f'values are sent as they come; declare "type": "{suggested}" to convert them '
                "and dead-letter bad ones before Airtable sees them"
            )
    return notes
