"""Routes: which table (and base) a message goes to, and with which mapping.

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
from datetime import UTC, datetime
from typing import Any

from .envelopes import MODES, EnvelopeMismatchError, Unwrapped, key_list, parse_json_object, unwrap
from .errors import ConfigError, MappingError
from .fieldmap import FieldMap, FieldSpec, load_config_json
from .mapping import map_fields, merge_key
from .model import DEFAULT_ROUTE, Action, Message, Record
from .sources import check_source, is_missing, read_source

_BASE_ID = re.compile(r"^app[A-Za-z0-9]{14}$")
#: An Airtable field id (`fld` + 14 letters/digits); MERGE_ON may name fields by id.
FIELD_ID = re.compile(r"^fld[A-Za-z0-9]{14}$")
ROUTE_KEYS = frozenset(
    {"name", "description", "when", "base", "table", "fields", "merge_on", "envelope"}
    | {"action", "version", "deleted_field"}
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
    action: Action = Action.UPSERT
    #: (source, field): where a message's version is read, and the field that stores it
    version: tuple[str, str] | None = None
    #: action delete: the checkbox ticked instead of removing the row (a soft delete)
    deleted_field: str | None = None
    #: the ids the schema resolved: of `deleted_field`, and of each link's table and key
    deleted_field_id: str | None = None
    links: tuple[tuple[str, str, str], ...] = ()  # (link field id, table id, key field id)

    def matches(self, unwrapped: Unwrapped, message: Message) -> bool:
        return all(condition.holds(unwrapped, message) for condition in self.when)

    @property
    def is_resolved(self) -> bool:
        return all(spec.field_id for spec in self.field_map.specs)

    @property
    def variable(self) -> str:
        """The variable an operator fixes for this route's mistakes."""
        return "FIELD_MAP" if self.name == DEFAULT_ROUTE else "ROUTES"

    def resolved(
        self,
        field_ids: Mapping[str, str],
        fields: Sequence[Mapping[str, Any]],
        links: Sequence[tuple[str, str, str]] = (),
    ) -> Route:
        """This route writing by field id, as `schema.fit` resolved its table (`field_ids`:
        target name to id; `fields`: the table's fields; `links`: each link field's id with
        its linked table's id and key field id). Records are then keyed by field id, and
        `merge_on` holds ids; reasons keep the field names."""
        field_map = self.field_map.resolved(field_ids, fields)
        merge_on = tuple(field_ids.get(name, name) for name in self.merge_on)
        deleted = field_ids.get(self.deleted_field) if self.deleted_field else None
        return replace(
            self,
            field_map=field_map,
            merge_on=merge_on,
            deleted_field_id=deleted,
            links=tuple(links),
        )

    def record(self, unwrapped: Unwrapped, message: Message) -> Record:
        """The record for a message this route matched; raise MappingError for poison."""
        label = "FIELD_MAP" if self.name == DEFAULT_ROUTE else f'route "{self.name}"'
        fields = map_fields(self.field_map, unwrapped, message, label=label)
        variable = "MERGE_ON" if self.name == DEFAULT_ROUTE else f'route "{self.name}" merge_on'
        key = merge_key(fields, self.merge_on, self.field_map, variable)
        version = self._version(fields) if self.version else None
        action = self.action
        if action is Action.DELETE and self.deleted_field:  # a soft delete is an upsert
            fields = {
                **{k: fields[k] for k in self.merge_on},
                self.deleted_field_id or self.deleted_field: True,
            }
            if self.version:
                spec = self.field_map.spec(self.version[1])
                fields[spec.key if spec else self.version[1]] = self._stored(version)
            action = Action.UPSERT
        return Record(fields=fields, key=key, route=self.name, action=action, version=version)

    def _version(self, fields: Mapping[str, Any]) -> float:
        """The message's version as a number: a number, or an ISO date-time (its instant)."""
        spec = self.field_map.spec(self.version[1]) if self.version else None
        value = fields.get(spec.key) if spec else None
        if value is None or value == "":
            raise MappingError(
                f'the version "{self.version[0]}" is missing' if self.version else ""
            )
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:  # a naive date-time is read in UTC
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        except ValueError:
            raise MappingError(
                f'the version "{self.version[0]}" is neither a number nor an ISO date-time: {str(value)[:40]!r}'
            ) from None

    def _stored(self, version: float | None) -> Any:
        spec = self.field_map.spec(self.version[1]) if self.version else None
        if version is None or spec is None or spec.airtable_type != "dateTime":
            return version
        return datetime.fromtimestamp(version, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
    action = entry.get("action", "upsert" if merge_on else "create")
    if action not in ("upsert", "create", "delete"):
        problem(f'"action" must be upsert, create or delete, got {action!r}')
    elif action != "create" and "merge_on" in entry and not merge_on:
        pass  # _merge_on reported it
    elif action in ("upsert", "delete") and not merge_on:
        problem(f'action {action} needs "merge_on": the key of the rows it finds')
    version = _version(entry.get("version"), problem) if "version" in entry else None
    deleted = entry.get("deleted_field")
    if deleted is not None and (
        action != "delete" or not isinstance(deleted, str) or not deleted.strip()
    ):
        problem('"deleted_field" names the checkbox of a soft delete, on action delete')
    if problems or field_map is None:
        return None, problems
    if version is not None and field_map.spec(version[1]) is None:
        field_map = FieldMap(
            (*field_map.specs, FieldSpec(version[0], version[1], required=True)),
            field_map.description,
        )
    route = Route(
        name=name.strip(),
        base_id=base,
        table=table.strip(),
        field_map=field_map,
        merge_on=merge_on,
        when=when,
        envelope=envelope,
        action=Action(action),
        version=version,
        deleted_field=deleted,
    )
    return route, []


def _version(value: Any, problem: Callable[[str], None]) -> tuple[str, str] | None:
    if (
        not isinstance(value, dict)
        or set(value) != {"source", "field"}
        or not all(isinstance(v, str) and v.strip() for v in value.values())
    ):
        problem(f'"version" must be {{"source": ..., "field": ...}}, got {value!r}')
        return None
    try:
        check_source(value["source"])
    except ValueError as exc:
        problem(f'"version" {exc}')
        return None
    return value["source"], value["field"]


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
