"""Sample messages and events for the operator CLI (`poller send --sample`, `poller run`,
`poller check-config`). Shipped with the function, so it must not depend on `devstack`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from poller.fieldmap import ENVELOPE_PREFIX, FieldMap, FieldSpec
from poller_ops.advice import SUGGESTED_TYPE

#: What EventBridge Scheduler sends (sam local generate-event cloudwatch scheduled-event).
SCHEDULED_EVENT: dict[str, Any] = {
    "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "1970-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/poller-schedule"],
    "detail": {},
}


def donation_event(n: int, now: datetime | None = None) -> dict[str, Any]:
    """A DonationCreatedIntegrationEvent body; `n` varies the donor and the amount."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "Id": str(uuid.uuid4()),
        "CreationDate": moment.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}Z",
        "UserId": f"user-{n}",
        "FundraiserId": str(uuid.UUID(int=10_000_000 + n % 7)),
        "DonationAmount": round(5 + (n % 200) * 1.25, 2),
        "DonorDisplayName": f"Sample donor {n}",
    }


def synthetic_body(
    field_map: FieldMap,
    airtable_fields: Sequence[Mapping[str, Any]] = (),
    now: datetime | None = None,
    *,
    version_field: str | None = None,
) -> dict[str, Any]:
    """A message body that fills every body source of the map with a value of its type (or,
    for a plain entry, of its target field's type when the schema is known), so
    `check-config` can show what would be written without a real message.
    `version_field`: the field that stores the route's version (a number unless typed)."""
    by_name = {str(f.get("name")): f for f in airtable_fields}
    body: dict[str, Any] = {}
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    for spec in field_map.specs:
        if spec.source.startswith(ENVELOPE_PREFIX):
            continue
        field = by_name.get(spec.field) or {}
        if spec.field == version_field and spec.type is None:
            field = {"type": "number"}
        _put(body, spec.source.split("."), _example(spec, field, moment))
    return body


def _example(spec: FieldSpec, field: Mapping[str, Any], moment: datetime) -> Any:
    kind = spec.type or SUGGESTED_TYPE.get(str(field.get("type")))
    if kind == "multipleSelects":
        options = [c.get("name") for c in (field.get("options") or {}).get("choices") or []]
        return (list(spec.options.choices) or options or ["Option"])[:1]
    if kind == "attachment":
        return "https://example.com/receipt.pdf"
    if kind == "link":
        return f"example {spec.options.link_key or spec.source}"
    if kind in ("number", "currency", "percent"):
        return 12.5
    if kind == "integer":
        return 3
    if kind == "checkbox":
        return True
    if kind == "date":
        return moment.date().isoformat()
    if kind == "dateTime":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "singleSelect":
        options = [c.get("name") for c in (field.get("options") or {}).get("choices") or []]
        return (spec.options.choices or options or ["Option"])[0]
    return f"example {spec.source}"


def _put(node: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `value` at a dotted path, creating objects on the way (list indexes become keys
    of an object, which is enough for a sample)."""
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    node.setdefault(path[-1], value)
