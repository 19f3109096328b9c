"""The ROUTES setting, parsed and validated into `routing.Route`s.

ROUTES (inline JSON, or a file's path) is the public contract:

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
`action` (upsert, create, delete), `version` and `deleted_field` make the table a faithful
mirror (docs/routes.md). Every problem of every route is reported in one `ConfigError`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

from .envelopes import MODES, check_source
from .errors import ConfigError
from .fieldmap import FieldMap, FieldSpec, load_config_json
from .model import Action
from .routing import Condition, Route

#: An Airtable base id (`app` + 14 letters/digits).
BASE_ID = re.compile(r"^app[A-Za-z0-9]{14}$")
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
    if (why := base_problem(base)) is not None:
        problem(f'"base" {why}')
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
    merge_on = entry.get("merge_on", ())
    if "merge_on" in entry and (why := merge_problem(merge_on, field_map, 'its "fields"')):
        problem(f'"merge_on" {why}')
    when = _when(entry.get("when"), problem)
    action = entry.get("action", "upsert" if merge_on else "create")
    if action not in ("upsert", "create", "delete"):
        problem(f'"action" must be upsert, create or delete, got {action!r}')
    elif action != "create" and "merge_on" not in entry:  # an invalid one is reported above
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
        merge_on=tuple(merge_on),
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


def base_problem(base_id: Any) -> str | None:
    """Why `base_id` is not an Airtable base id (`app` + 14 letters/digits), or None."""
    ok = isinstance(base_id, str) and BASE_ID.match(base_id)
    return None if ok else f"must look like app + 14 letters/digits, got {base_id!r}"


def merge_problem(names: Any, field_map: FieldMap | None, filler: str) -> str | None:
    """Why `names` cannot be the merge fields, as the rest of a sentence that names the
    setting, or None. Merge fields are 1 to 3 distinct names (Airtable's
    performUpsert.fieldsToMergeOn), each a target of `field_map` (which `filler` names, e.g.
    "FIELD_MAP"; None: not checked) or a field id (the schema checks those)."""
    if (
        not isinstance(names, list | tuple)
        or not 1 <= len(names) <= MAX_MERGE_FIELDS
        or not all(isinstance(n, str) and n.strip() for n in names)
        or len(set(names)) != len(names)
    ):
        return f"must name 1 to 3 distinct fields (Airtable's limit), got {names!r}"
    if field_map is None:
        return None
    unknown = [n for n in names if n not in field_map.fields and not FIELD_ID.match(n)]
    if not unknown:
        return None
    return (
        f"names {unknown}, which no entry of {filler} fills; merge fields must be targets "
        f"(targets: {list(field_map.fields)})"
    )


def _when(value: Any, problem: Callable[[str], None]) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        problem(f'"when" must be an object from source to condition, got {type(value).__name__}')
        return ()
    conditions = []
    for source, test in value.items():
        try:
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
