"""Routes: which table (and base) a message goes to, with which action, and its record there.

Matching: every condition of a route's `when` must hold, and the first route that matches
wins; an empty or missing `when` matches everything. A condition's key is a source in
FIELD_MAP syntax (a dotted payload path, `$MessageAttributes.x`, `$MessageGroupId`, ...) or
`$Envelope.<key>`, read from the message as unwrapped by the route's envelope mode. Its value:
    a literal             JSON-equal (1 == 1.0, but true != 1 and "1" != 1; null matches
                          a present null only)
    {"exists": true}      the source has a value (present and not null)
    {"exists": false}     the source is missing or null
    {"in": [a, b, ...]}   JSON-equal to one of the literals
A message that no route matches is poison: "no route matched (top-level keys: [...])".

Mapping: each entry of the route's `FieldMap` reads its source and converts the value
(`convert`) for Airtable; every problem of one message is reported in one reason.

The single-table configuration (AIRTABLE_BASE_ID, AIRTABLE_TABLE, FIELD_MAP, MERGE_ON) is
one route named `model.DEFAULT_ROUTE` that matches everything (`single_route`). The ROUTES
setting is parsed by `routes`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .convert import convert, key_text, utc_text, version_number
from .doubles import check_safe_number
from .envelopes import (
    MISSING,
    MODES,
    EnvelopeMismatchError,
    Unwrapped,
    key_list,
    parse_json_object,
    read_source,
    unwrap,
)
from .errors import ConfigError, MappingError
from .fieldmap import FieldMap, FieldSpec
from .fieldtypes import NUMBER_TYPES
from .model import DEFAULT_ROUTE, Action, Message, Record


@dataclass(frozen=True)
class Condition:
    """One condition of a route's `when`: `source` compared by `op` ("equals", "exists",
    "in") with `value_json` (the operand as JSON text, so that a Route stays hashable)."""

    source: str
    op: str
    value_json: str

    def holds(self, unwrapped: Unwrapped, message: Message) -> bool:
        value = read_source(self.source, unwrapped, message)
        operand = json.loads(self.value_json)
        if self.op == "exists":
            return (value is not MISSING and value is not None) == operand
        if value is MISSING:
            return False
        if self.op == "in":
            return any(json_equal(value, candidate) for candidate in operand)
        return json_equal(value, operand)

    def describe(self) -> str:
        return f"{self.source} {self.op} {self.value_json}"


@dataclass(frozen=True)
class Route:
    """One destination: a table of a base, the mapping to it, and when a message goes there.

    `merge_on` names fields of `field_map` (names, or ids once resolved); `envelope` None
    means the Router's default (ENVELOPE)."""

    name: str
    base_id: str
    table: str
    field_map: FieldMap
    merge_on: tuple[str, ...] = ()
    when: tuple[Condition, ...] = ()
    envelope: str | None = None
    action: Action = Action.UPSERT
    #: (source, field): where a message's version is read, and the field that stores it
    version: tuple[str, str] | None = None
    #: action delete: the checkbox ticked instead of removing the row (a soft delete)
    deleted_field: str | None = None
    #: the id the schema resolved `deleted_field` to
    deleted_field_id: str | None = None

    def matches(self, unwrapped: Unwrapped, message: Message) -> bool:
        return all(condition.holds(unwrapped, message) for condition in self.when)

    @property
    def variable(self) -> str:
        """The variable an operator fixes for this route's mistakes."""
        return "FIELD_MAP" if self.name == DEFAULT_ROUTE else "ROUTES"

    def resolved(
        self,
        field_ids: Mapping[str, str],
        fields: Sequence[Mapping[str, Any]],
    ) -> Route:
        """This route writing by field id, as `schema.fit` resolved its table (`field_ids`:
        target name to id; `fields`: the table's fields). Records are then keyed by field id,
        and `merge_on` holds ids; reasons keep the field names."""
        field_map = self.field_map.resolved(field_ids, fields)
        merge_on = tuple(field_ids.get(name, name) for name in self.merge_on)
        deleted = field_ids.get(self.deleted_field) if self.deleted_field else None
        return replace(self, field_map=field_map, merge_on=merge_on, deleted_field_id=deleted)

    def record(self, unwrapped: Unwrapped, message: Message) -> Record:
        """The record for a message this route matched; raise MappingError for poison."""
        single = self.name == DEFAULT_ROUTE
        label = "FIELD_MAP" if single else f'route "{self.name}"'
        fields = map_fields(self.field_map, unwrapped, message, label)
        variable = "MERGE_ON" if single else f'route "{self.name}" merge_on'
        key = merge_key(fields, self.merge_on, self.field_map, variable)
        action, version = self.action, None
        if self.version:
            source, name = self.version
            spec = self.field_map.spec(name)
            version = _version(source, fields.get(spec.key) if spec else None)
        if action is Action.DELETE and self.deleted_field:  # a soft delete is an upsert
            fields = {
                **{k: fields[k] for k in self.merge_on},
                self.deleted_field_id or self.deleted_field: True,
            }
            if version is not None:  # a version was read, so its field is mapped
                if spec.airtable_type == "dateTime":
                    fields[spec.key] = utc_text(datetime.fromtimestamp(version, UTC))
                else:
                    fields[spec.key] = version
            action = Action.UPSERT
        return Record(fields=fields, key=key, route=self.name, action=action, version=version)


def _version(source: str, value: Any) -> float:
    """A message's version as a number: a number, or an ISO date-time (its instant)."""
    if value is None or value == "":
        raise MappingError(f'the version "{source}" is missing')
    try:
        return version_number(value)
    except ValueError:
        raise MappingError(
            f'the version "{source}" is neither a number nor an ISO date-time: {str(value)[:40]!r}'
        ) from None


def single_route(
    base_id: str,
    table: str,
    field_map: FieldMap,
    merge_on: Sequence[str] = (),
    envelope: str | None = None,
) -> Route:
    """The single-table configuration as a route named DEFAULT_ROUTE that matches everything."""
    return Route(
        name=DEFAULT_ROUTE,
        base_id=base_id,
        table=table,
        field_map=field_map,
        merge_on=tuple(merge_on),
        envelope=envelope,
        action=Action.UPSERT if merge_on else Action.CREATE,
    )


class Router:
    """Maps a message to a `Record` for the first route that matches; raises `MappingError`
    for poison. What the core calls for every message (a `Callable[[Message], Record]`).

    The body is parsed once (strictly: duplicate keys and NaN/Infinity are poison), and
    unwrapped at most once per envelope mode."""

    def __init__(self, routes: Sequence[Route], envelope: str = "auto") -> None:
        if not routes:
            raise ValueError("a Router needs at least one route")
        if envelope not in MODES:
            raise ValueError(f"envelope must be one of {MODES}, got {envelope!r}")
        for route in routes:
            # parse_routes lets merge_on name a field by id; only the schema can say which.
            by_id = [m for m in route.merge_on if route.field_map.spec(m) is None]
            if by_id:
                variable = "MERGE_ON" if route.name == DEFAULT_ROUTE else "ROUTES"
                prefix = "" if route.name == DEFAULT_ROUTE else f'route "{route.name}" '
                raise ConfigError(
                    variable,
                    f"{prefix}merges on field id(s) {by_id}, which only the table's schema can "
                    "resolve (grant schema.bases:read, or name the fields instead)",
                )
        self.routes = tuple(routes)
        self.envelope = envelope

    def __call__(self, message: Message) -> Record:
        data = parse_json_object(message.body, "body")
        unwrapped: dict[str, Unwrapped] = {}
        mismatched: dict[str, EnvelopeMismatchError] = {}
        skipped: list[str] = []
        for route in self.routes:
            mode = route.envelope or self.envelope
            if mode not in unwrapped and mode not in mismatched:
                try:
                    unwrapped[mode] = unwrap(data, mode)
                except EnvelopeMismatchError as exc:
                    if len(self.routes) == 1:
                        raise
                    mismatched[mode] = exc
            if mode in mismatched:
                skipped.append(f'route "{route.name}" skipped: body is not {mismatched[mode].what}')
                continue
            if route.matches(unwrapped[mode], message):
                return route.record(unwrapped[mode], message)
        raise MappingError(self._no_match(data, unwrapped, skipped))

    def _no_match(
        self, data: dict[str, Any], unwrapped: Mapping[str, Unwrapped], skipped: list[str]
    ) -> str:
        """The reason: the payload's top-level keys (never values), as the default envelope
        mode reads it, and the routes skipped for another envelope."""
        view = unwrapped.get(self.envelope)
        if view is None:
            try:
                view = unwrap(data, self.envelope)
            except MappingError:
                view = Unwrapped(data)
        reason = f"no route matched (top-level keys{view.where}: {key_list(view.payload)})"
        return "; ".join([reason, *skipped])


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
    field_map: FieldMap, unwrapped: Unwrapped, message: Message, label: str
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


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON means it: 1 == 1.0, but true != 1 and "1" != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
