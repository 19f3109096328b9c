"""Routes: which table (and base) a message goes to, and with which mapping (issue 10, section 1).

ROUTES (or the file named by ROUTES_FILE) is the public contract:

    {"routes": [
      {"name": "donations", "when": {"DonationAmount": {"exists": true}},
       "base": "appXXXXXXXXXXXXXX", "table": "Donations",
       "fields": {"Id": "Id", "DonationAmount": {"field": "Donation Amount", "type": "currency"}},
       "merge_on": ["Id"]},
      {"name": "fundraisers", "when": {"$Envelope.detail-type": "FundraiserCreated"},
       "base": "appYYYYYYYYYYYYYY", "table": "Fundraisers",
       "fields": {"FundraiserId": "Fundraiser Id", "Name": "Name"}, "merge_on": ["Fundraiser Id"]}
    ]}

A route may also set "envelope" (auto, raw, sns, eventbridge; default: ENVELOPE) and a
"description". `fields` takes everything FIELD_MAP takes. `merge_on` (optional: without it
the route creates rows) names 1 to 3 of the route's target fields, by name or field id.

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

The single-table configuration (AIRTABLE_BASE_ID, AIRTABLE_TABLE, FIELD_MAP, MERGE_ON) is
one route named `model.DEFAULT_ROUTE` that matches everything (`single_route`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .envelopes import MODES, EnvelopeMismatchError, Unwrapped, key_list, parse_json_object, unwrap
from .errors import ConfigError, MappingError
from .mapping import FieldMap, load_config_json, map_fields, merge_key
from .model import DEFAULT_ROUTE, Message, Record
from .sources import check_source, is_missing, read_source

_BASE_ID = re.compile(r"^app[A-Za-z0-9]{14}$")
#: An Airtable field id (`fld` + 14 letters/digits); MERGE_ON may name fields by id.
FIELD_ID = re.compile(r"^fld[A-Za-z0-9]{14}$")
ROUTE_KEYS = frozenset(
    {"name", "description", "when", "base", "table", "fields", "merge_on", "envelope"}
)
OPERATORS = ("exists", "in")
MAX_MERGE_FIELDS = 3  # Airtable's performUpsert.fieldsToMergeOn takes 1 to 3 fields
EXAMPLE = (
    '{"routes": [{"name": "donations", "when": {"DonationAmount": {"exists": true}}, '
    '"base": "appXXXXXXXXXXXXXX", "table": "Donations", "fields": {"Id": "Id"}, '
    '"merge_on": ["Id"]}]}'
)


@dataclass(frozen=True)
class Condition:
    """One condition of a route's `when`: `source` compared by `op` ("equals", "exists",
    "in") with `value_json` (the operand as JSON text, so that a Route stays hashable)."""

    source: str
    op: str
    value_json: str

    def holds(self, unwrapped: Unwrapped, message: Message) -> bool:
        value = read_source(self.source, unwrapped.payload, message, unwrapped.envelope)
        operand = json.loads(self.value_json)
        if self.op == "exists":
            return (not is_missing(value) and value is not None) == operand
        if is_missing(value):
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

    def matches(self, unwrapped: Unwrapped, message: Message) -> bool:
        return all(condition.holds(unwrapped, message) for condition in self.when)

    @property
    def is_resolved(self) -> bool:
        return all(spec.field_id for spec in self.field_map.specs)

    @property
    def variable(self) -> str:
        """The variable an operator fixes for this route's mistakes."""
        return "FIELD_MAP" if self.name == DEFAULT_ROUTE else "ROUTES"

    def resolved(self, field_ids: Mapping[str, str], field_types: Mapping[str, str]) -> Route:
        """This route writing by field id: `field_ids` maps field name (and id) to id,
        `field_types` name or id to Airtable type, as `field_index` builds them from the
        schema (the meta endpoint's `tables[].fields`). Records are then keyed by field id
        and `merge_on` holds ids; reasons keep the field names. Raise a `ConfigError` for a
        target or merge field the table does not have."""
        prefix = "" if self.name == DEFAULT_ROUTE else f'route "{self.name}" '
        try:
            field_map = self.field_map.resolved(field_ids, field_types, self.variable)
        except ConfigError as exc:
            raise ConfigError(exc.variable, prefix + exc.problem) from None
        merge_on = []
        for name in self.merge_on:
            spec = field_map.spec(name) or field_map.spec(field_ids.get(name, name))
            if spec is None or spec.field_id is None:
                variable = "MERGE_ON" if self.name == DEFAULT_ROUTE else "ROUTES"
                raise ConfigError(
                    variable, f"{prefix}merges on {name!r}, which the route's fields do not fill"
                )
            merge_on.append(spec.field_id)
        return replace(self, field_map=field_map, merge_on=tuple(merge_on))

    def record(self, unwrapped: Unwrapped, message: Message) -> Record:
        """The record for a message this route matched; raise MappingError for poison."""
        label = "FIELD_MAP" if self.name == DEFAULT_ROUTE else f'route "{self.name}"'
        fields = map_fields(self.field_map, unwrapped, message, label=label)
        variable = "MERGE_ON" if self.name == DEFAULT_ROUTE else f'route "{self.name}" merge_on'
        key = merge_key(fields, self.merge_on, self.field_map, variable)
        return Record(fields=fields, key=key, route=self.name)


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
    )


def field_index(
    airtable_fields: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, str], dict[str, str]]:
    """(field_ids, field_types) for `Route.resolved`, from a table's fields as the meta
    endpoint lists them (`[{"id": "fld...", "name": "...", "type": "..."}]`, e.g.
    `schema.SchemaCheck.airtable_fields`). Both are keyed by name and by id."""
    field_ids: dict[str, str] = {}
    field_types: dict[str, str] = {}
    for field in airtable_fields:
        field_id, name, kind = field.get("id"), field.get("name"), field.get("type")
        if not isinstance(field_id, str):
            continue
        for key in (field_id, name):
            if isinstance(key, str):
                field_ids.setdefault(key, field_id)
                if isinstance(kind, str):
                    field_types.setdefault(key, kind)
    return field_ids, field_types


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


# -- parsing and validation ----------------------------------------------------------------


def parse_routes(raw: str, variable: str = "ROUTES") -> tuple[Route, ...]:
    """Parse and validate ROUTES; raise one `ConfigError` naming `variable` and listing every
    problem of every route."""
    data = load_config_json(raw, variable)
    if isinstance(data, dict) and set(data) <= {"routes", "description"}:
        routes = data.get("routes")
    else:
        routes = None
    if not isinstance(routes, list) or not routes:
        raise ConfigError(
            variable, f'must be {{"routes": [...]}} with at least one route, e.g. {EXAMPLE}'
        )
    problems: list[str] = []
    parsed: list[Route] = []
    names: list[str] = []
    for index, entry in enumerate(routes, start=1):
        route, route_problems = _route(index, entry, variable)
        problems.extend(route_problems)
        if route is not None:
            parsed.append(route)
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.append(entry["name"].strip())
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        problems.append(f"route names must be unique (repeated: {duplicates})")
    for earlier, route in itertools.pairwise(parsed):
        if not earlier.when and earlier.envelope not in ("sns", "eventbridge"):
            problems.append(
                f'route "{route.name}" can never match: route "{earlier.name}" before it has '
                'no "when" and takes every message'
            )
            break
    if problems:
        raise ConfigError(variable, "; ".join(problems))
    return tuple(parsed)


def _route(index: int, entry: Any, variable: str) -> tuple[Route | None, list[str]]:
    if not isinstance(entry, dict):
        return None, [f"route #{index} must be an object, got {type(entry).__name__}"]
    name = entry.get("name")
    label = f'route "{name}"' if isinstance(name, str) and name.strip() else f"route #{index}"
    problems: list[str] = []

    def problem(text: str) -> None:
        problems.append(f"{label} {text}")

    if not isinstance(name, str) or not name.strip():
        problem('needs a "name" (a non-empty string)')
    unknown = sorted(set(entry) - ROUTE_KEYS)
    if unknown:
        problem(f"has unknown key(s) {unknown}; allowed: {sorted(ROUTE_KEYS)}")
    base = entry.get("base")
    if not isinstance(base, str) or not _BASE_ID.match(base):
        problem(f'"base" must look like app + 14 letters/digits, got {base!r}')
    table = entry.get("table")
    if not isinstance(table, str) or not table.strip():
        problem('needs a "table" (the table name or id)')
    envelope = entry.get("envelope")
    if envelope is not None and envelope not in MODES:
        problem(f'"envelope" must be one of {list(MODES)}, got {envelope!r}')
    field_map = None
    if "fields" not in entry:
        problem('needs "fields" (a FIELD_MAP object, e.g. {"Id": "Id"})')
    else:
        try:
            field_map = FieldMap.from_data(entry["fields"], variable)
        except ConfigError as exc:
            problem(f'"fields" {exc.problem}')
    merge_on = _merge_on(entry.get("merge_on"), field_map, problem) if "merge_on" in entry else ()
    when = _when(entry.get("when"), problem)
    if problems or field_map is None:
        return None, problems
    route = Route(
        name=name.strip(),
        base_id=base,
        table=table.strip(),
        field_map=field_map,
        merge_on=merge_on,
        when=when,
        envelope=envelope,
    )
    return route, []


def _merge_on(
    value: Any, field_map: FieldMap | None, problem: Callable[[str], None]
) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_MERGE_FIELDS
        or not all(isinstance(v, str) and v.strip() for v in value)
        or len(set(value)) != len(value)
    ):
        problem(
            f'"merge_on" must list 1 to 3 distinct field names (Airtable\'s limit), got {value!r}'
        )
        return ()
    if field_map is not None:
        unknown = [v for v in value if v not in field_map.fields and not FIELD_ID.match(v)]
        if unknown:
            problem(
                f'"merge_on" names {unknown}, which its "fields" never fill; merge fields must '
                f"be targets (targets: {list(field_map.fields)})"
            )
    return tuple(value)


def _when(value: Any, problem: Callable[[str], None]) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        problem(f'"when" must be an object from source to condition, got {type(value).__name__}')
        return ()
    conditions = []
    for source, test in value.items():
        try:
            if not isinstance(source, str) or not source.strip():
                raise ValueError("has an empty source key")
            check_source(source)
        except ValueError as exc:
            problem(f'"when" {exc}')
            continue
        if not isinstance(test, dict):
            conditions.append(Condition(source, "equals", _json(test)))
            continue
        if len(test) != 1 or next(iter(test)) not in OPERATORS:
            problem(
                f'"when" has {source!r}: {_json(test)}, but a condition is a literal, '
                '{"exists": true|false} or {"in": [...]}'
            )
            continue
        op, operand = next(iter(test.items()))
        if op == "exists" and not isinstance(operand, bool):
            problem(f'"when" has {source!r}: "exists" takes true or false, got {_json(operand)}')
        elif op == "in" and (not isinstance(operand, list) or not operand):
            problem(f'"when" has {source!r}: "in" takes a non-empty list, got {_json(operand)}')
        else:
            conditions.append(Condition(source, op, _json(operand)))
    return tuple(conditions)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False)


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
