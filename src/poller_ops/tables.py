"""`init-tables`: create each destination's table, and the fields it lacks, from the mapping.

`plan` is pure apart from one schema read per base; `apply` is the thin edge that makes the
changes through Airtable's meta API with pyairtable (`Base.create_table`,
`Table.create_field`; token scope `schema.bases:write`). Nothing here ever changes or
deletes an existing field: an existing field that does not fit the mapping is reported as
a misfit and left alone, for a person to decide.

Field types come from the typed mapping (`FieldSpec.type`); an untyped entry becomes a
single line text. The options are the ones Airtable requires when creating a field of
each type (its field model; a create without them is refused with 422
`INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE`):

    text          singleLineText
    number        number     {"precision": 8}    (the most digits Airtable keeps on display)
    integer       number     {"precision": 0}
    currency      currency   {"precision": 2, "symbol": "$"}
    percent       percent    {"precision": 8}
    checkbox      checkbox   {"icon": "check", "color": "greenBright"}  (allowed on every plan)
    date          date       {"dateFormat": {"name": "iso", "format": "YYYY-MM-DD"}}
    dateTime      dateTime   ISO date, 24-hour time, time zone "utc"
    singleSelect  singleSelect {"choices": the entry's `choices`}

Whether the fit is right is decided by `poller.schema.schema_problems`, the same rules the
cold-start schema check applies, run on the table as it will be after the plan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from poller.errors import PollerError
from poller.mapping import FieldMap, FieldSpec
from poller.model import DEFAULT_ROUTE
from poller.policies import RateLimiter
from poller.schema import find, schema_problems

if TYPE_CHECKING:
    from pyairtable import Api

log = logging.getLogger(__name__)

#: Airtable's per-base limit; every meta request counts against it.
BASE_RPS = 5.0
#: Types Airtable lets a table's primary field (the first field of a new table) have, among
#: those this module creates (checkbox and select fields cannot be primary).
PRIMARY_TYPES = frozenset({"singleLineText", "number", "currency", "percent", "date", "dateTime"})
#: What a new table's primary field is when no mapped field can be primary.
FALLBACK_PRIMARY = "Name"


class InitTablesError(PollerError):
    """Airtable refused to read a schema or to make a change. The message says which, why,
    and what was already done; fix the token's scopes or the mapping and run again (what
    exists is never created twice)."""


@dataclass(frozen=True)
class TableSpec:
    """One destination: a table of a base, the mapping that writes to it, its merge fields."""

    base_id: str
    table: str
    field_map: FieldMap
    merge_on: tuple[str, ...] = ()
    #: The route's name, to name it in misfits ("" or "default": the single-table variables).
    route: str = ""

    def label(self, variable: str) -> str:
        """Who a problem is about: the route by name, else the single-table `variable`."""
        if self.route and self.route != DEFAULT_ROUTE:
            suffix = " merge_on" if variable == "MERGE_ON" else ""
            return f'route "{self.route}"{suffix}'
        return variable


@dataclass(frozen=True)
class NewField:
    """A field to create: the meta API's field model without an id."""

    name: str
    type: str
    options: Mapping[str, Any] | None = None
    #: The mapping entry it comes from ("" for the fallback primary field).
    source: str = ""

    def body(self) -> dict[str, Any]:
        """The JSON the meta API takes: `{"name", "type", "options"?}`."""
        data: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.options is not None:
            data["options"] = _plain(self.options)
        return data

    def describe(self) -> str:
        return f'"{self.name}" ({self.type})'


@dataclass(frozen=True)
class CreateTable:
    """A table to create; `fields[0]` is its primary field."""

    base_id: str
    table: str
    fields: tuple[NewField, ...]


@dataclass(frozen=True)
class AddField:
    """A field to add to an existing table (`table_id`: its id, when the schema gave one)."""

    base_id: str
    table: str
    field: NewField
    table_id: str = ""


@dataclass(frozen=True)
class Misfit:
    """Something the plan will not fix: an existing field of the wrong type, a merge field
    that cannot be one, a table named by an id that does not exist... Left alone."""

    base_id: str
    table: str
    problem: str


@dataclass
class Plan:
    """What `apply` would do, and what it would leave alone, per base and table."""

    create_tables: list[CreateTable] = field(default_factory=list)
    add_fields: list[AddField] = field(default_factory=list)
    misfits: list[Misfit] = field(default_factory=list)
    #: Destinations whose table already has every mapped field: (base id, table).
    complete: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.create_tables or self.add_fields)

    def describe(self) -> list[str]:
        """One human line per action, misfit and complete table, in that order."""
        lines = [
            f'base {c.base_id}: create table "{c.table}" with '
            + ", ".join(
                f.describe() + (" (primary)" if i == 0 else "") for i, f in enumerate(c.fields)
            )
            for c in self.create_tables
        ]
        lines += [
            f'base {a.base_id}, table "{a.table}": add field {a.field.describe()}'
            for a in self.add_fields
        ]
        lines += [
            f'base {m.base_id}, table "{m.table}": left as it is: {m.problem}' for m in self.misfits
        ]
        lines += [
            f'base {base_id}, table "{table}": every mapped field exists'
            for base_id, table in self.complete
        ]
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: `{"create_tables", "add_fields", "misfits", "complete"}`."""
        return {
            "create_tables": [
                {"base": c.base_id, "table": c.table, "fields": [f.body() for f in c.fields]}
                for c in self.create_tables
            ],
            "add_fields": [
                {"base": a.base_id, "table": a.table, "field": a.field.body()}
                for a in self.add_fields
            ],
            "misfits": [
                {"base": m.base_id, "table": m.table, "problem": m.problem} for m in self.misfits
            ],
            "complete": [{"base": b, "table": t} for b, t in self.complete],
        }


# ----------------------------------------------------------------------------- planning


def field_for(spec: FieldSpec) -> NewField:
    """The Airtable field a mapping entry needs (see the module docstring for the table)."""
    kind = spec.type or "text"
    options: dict[str, Any] | None
    if kind == "text":
        airtable_type, options = "singleLineText", None
    elif kind in ("number", "percent"):
        airtable_type, options = kind, {"precision": 8}
    elif kind == "integer":
        airtable_type, options = "number", {"precision": 0}
    elif kind == "currency":
        airtable_type, options = "currency", {"precision": 2, "symbol": "$"}
    elif kind == "checkbox":
        airtable_type, options = "checkbox", {"icon": "check", "color": "greenBright"}
    elif kind == "date":
        airtable_type, options = "date", {"dateFormat": dict(_ISO_DATE)}
    elif kind == "dateTime":
        airtable_type = "dateTime"
        options = {
            "dateFormat": dict(_ISO_DATE),
            "timeFormat": {"name": "24hour", "format": "HH:mm"},
            "timeZone": "utc",
        }
    elif kind == "singleSelect":
        airtable_type = "singleSelect"
        options = {"choices": [{"name": choice} for choice in spec.options.choices]}
    else:  # a mapping type added later: fail loudly rather than guess
        raise ValueError(f"no Airtable field type is known for mapping type {kind!r}")
    return NewField(spec.field, airtable_type, options, spec.source)


_ISO_DATE = {"name": "iso", "format": "YYYY-MM-DD"}


#: Gives the limiter that paces one base's requests.
LimiterFor = Callable[[str], RateLimiter]


def per_base_limiters(rps: float = BASE_RPS) -> LimiterFor:
    """One limiter per base, made on first use and kept: pass the same one to `plan` and
    `apply`, so that the schema read and the changes share the base's 5 requests/s."""
    limiters: dict[str, RateLimiter] = {}

    def limiter_for(base_id: str) -> RateLimiter:
        if base_id not in limiters:
            limiters[base_id] = RateLimiter(rps)
        return limiters[base_id]

    return limiter_for


def plan(api: Api, specs: Sequence[TableSpec], *, limiter_for: LimiterFor | None = None) -> Plan:
    """Read each base's schema once (`GET /v0/meta/bases/{baseId}/tables`, scope
    `schema.bases:read`) and plan every destination against it. Raises InitTablesError
    when a schema cannot be read. `limiter_for` paces the reads (see `per_base_limiters`)."""
    schemas: dict[str, Mapping[str, Any]] = {}
    for spec in specs:
        if spec.base_id not in schemas:
            if limiter_for is not None:
                limiter_for(spec.base_id).acquire()
            schemas[spec.base_id] = _read_schema(api, spec.base_id)
    return plan_from_schemas(schemas, specs)


def plan_from_schemas(schemas: Mapping[str, Mapping[str, Any]], specs: Sequence[TableSpec]) -> Plan:
    """The pure planner: `schemas` maps a base id to its meta payload `{"tables": [...]}`.

    Specs naming the same table are planned together (their fields are merged, first
    mapping first), so two routes into one table make one table."""
    result = Plan()
    for (base_id, table), group in _by_table(specs).items():
        _plan_table(result, schemas[base_id], base_id, table, group)
    return result


def _by_table(specs: Sequence[TableSpec]) -> dict[tuple[str, str], list[TableSpec]]:
    grouped: dict[tuple[str, str], list[TableSpec]] = {}
    for spec in specs:
        grouped.setdefault((spec.base_id, spec.table), []).append(spec)
    return grouped


def _plan_table(
    result: Plan, schema: Mapping[str, Any], base_id: str, table: str, group: list[TableSpec]
) -> None:
    tables = list(schema.get("tables") or [])
    existing = find(tables, table)
    if existing is None and _looks_like(table, "tbl"):
        result.misfits.append(
            Misfit(base_id, table, "no table has this id; name the table to have it created")
        )
        return
    fields = list((existing or {}).get("fields") or [])
    wanted: list[NewField] = []
    misfits: list[str] = []
    reported: set[str] = set()  # fields already explained; schema_problems would repeat them
    for spec in (s for route in group for s in route.field_map.specs):
        if find(fields, spec.field) is not None or any(w.name == spec.field for w in wanted):
            continue
        clash = _same_name_ignoring_case(spec.field, fields)
        if clash or _looks_like(spec.field, "fld"):
            reported.add(spec.field)
        if clash:
            misfits.append(
                f'the mapping writes "{spec.field}", but the table has "{clash}" (Airtable '
                "field names are unique ignoring case); rename one of them"
            )
        elif _looks_like(spec.field, "fld"):
            misfits.append(f'no field has the id "{spec.field}" (from "{spec.source}")')
        else:
            wanted.append(field_for(spec))
    merge_on = tuple(dict.fromkeys(name for route in group for name in route.merge_on))
    if existing is None:
        wanted = _primary_first(wanted, merge_on)
        planned_table = {"name": table, "fields": [w.body() for w in wanted]}
        after = {"tables": [*tables, planned_table]}
    else:
        planned_table = {**existing, "fields": [*fields, *(w.body() for w in wanted)]}
        after = {"tables": [planned_table if t is existing else t for t in tables]}
    field_names = [f.get("name") for f in planned_table["fields"]] + [
        f.get("id") for f in planned_table["fields"]
    ]
    for name in merge_on:
        if name not in field_names:
            misfits.append(f'merge field "{name}" is neither in the table nor in the mapping')
    for route in group:
        for problem in schema_problems(after, table, route.field_map, route.merge_on):
            if not any(problem.problem.startswith(f'targets "{name}"') for name in reported):
                misfits.append(f"{route.label(problem.variable)} {problem.problem}")
    result.misfits += [Misfit(base_id, table, m) for m in dict.fromkeys(misfits)]
    if existing is None:
        result.create_tables.append(CreateTable(base_id, table, tuple(wanted)))
    elif wanted:
        table_id = str(existing.get("id") or "")
        result.add_fields += [AddField(base_id, table, w, table_id) for w in wanted]
    else:
        result.complete.append((base_id, table))


def _primary_first(wanted: list[NewField], merge_on: tuple[str, ...]) -> list[NewField]:
    """Order a new table's fields so that the primary field comes first.

    The primary field is the first merge field, because it is the record's key and what a
    person looks a record up by; without merge fields, the first mapped field. A field of
    a type that cannot be primary (checkbox, select) is skipped for the next one. If no
    field can be primary, a single line text "Name" (or "Name 2"...) is added first, which
    the poller never writes."""
    candidates = [w for name in merge_on for w in wanted if w.name == name] + wanted
    primary = next((w for w in candidates if w.type in PRIMARY_TYPES), None)
    if primary is None:
        taken = {w.name.casefold() for w in wanted}
        name, n = FALLBACK_PRIMARY, 1
        while name.casefold() in taken:
            n += 1
            name = f"{FALLBACK_PRIMARY} {n}"
        return [NewField(name, "singleLineText"), *wanted]
    return [primary, *(w for w in wanted if w is not primary)]


def _same_name_ignoring_case(name: str, fields: Sequence[Mapping[str, Any]]) -> str | None:
    for existing in fields:
        other = str(existing.get("name", ""))
        if other != name and other.casefold() == name.casefold():
            return other
    return None


def _looks_like(value: str, prefix: str) -> bool:
    return len(value) == 17 and value.startswith(prefix) and value[3:].isalnum()


# ----------------------------------------------------------------------------- applying


def apply(api: Api, plan: Plan, *, limiter_for: LimiterFor | None = None) -> list[str]:
    """Make the plan's changes in order (tables first, then fields); return one line per
    change made. Misfits are not touched.

    Each base's requests are paced by `limiter_for(base_id)` (default: fresh limiters at
    Airtable's 5 requests/s per base; pass the one `plan` used), since a 6th request inside
    a second locks the base out for 30 s. pyairtable's `Base.create_table` sends two
    requests (the POST, then a schema read), and so does `Table.create_field` on a table
    known only by name, so each takes two slots. Raises InitTablesError on the first
    refusal, naming what was done before it."""
    pace = limiter_for or per_base_limiters()

    def slot(base_id: str, requests: int = 1) -> None:
        for _ in range(requests):
            pace(base_id).acquire()

    done: list[str] = []
    for create in plan.create_tables:
        slot(create.base_id, 2)
        _call(
            lambda c=create: api.base(c.base_id).create_table(
                c.table, [f.body() for f in c.fields]
            ),
            f'create table "{create.table}" in base {create.base_id}',
            done,
        )
        done.append(
            f'base {create.base_id}: created table "{create.table}" with {len(create.fields)} fields'
        )
    for add in plan.add_fields:
        slot(add.base_id, 1 if add.table_id else 2)
        _call(
            lambda a=add: api.table(a.base_id, a.table_id or a.table).create_field(
                a.field.name,
                a.field.type,
                options=_plain(a.field.options) if a.field.options else None,
            ),
            f'add field "{add.field.name}" to table "{add.table}" in base {add.base_id}',
            done,
        )
        done.append(f'base {add.base_id}, table "{add.table}": added field {add.field.describe()}')
    for line in done:
        log.info("init-tables: %s", line)
    return done


def _call(action: Callable[[], Any], what: str, done: list[str]) -> Any:
    import requests

    try:
        return action()
    except requests.HTTPError as exc:
        raise InitTablesError(_refusal(exc, what, done)) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise InitTablesError(
            f"could not {what}: no answer from Airtable ({type(exc).__name__}); "
            f"{_done_so_far(done)}; run again to finish"
        ) from None


def _read_schema(api: Api, base_id: str) -> Mapping[str, Any]:
    """The base's meta payload as plain dicts (as the schema check reads it, so a field type
    pyairtable does not know cannot break the plan)."""
    import requests

    try:
        data = api.get(api.base(base_id).urls.tables)
    except requests.HTTPError as exc:
        raise InitTablesError(_refusal(exc, f"read the schema of base {base_id}", [])) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise InitTablesError(
            f"could not read the schema of base {base_id}: no answer from Airtable "
            f"({type(exc).__name__})"
        ) from None
    return data if isinstance(data, dict) else {}


#: What to do about each refusal, by HTTP status.
_ADVICE = {
    401: "the token was refused; check it",
    403: (
        "the token lacks the scope or access: reading a schema needs schema.bases:read, "
        "creating tables and fields needs schema.bases:write, and the token must have access "
        "to the base"
    ),
    404: "Airtable knows no such base or table; check the base id and AIRTABLE_API_URL",
    422: "Airtable refused the request's content",
    429: "the base is rate-limited (a 30 s lockout); wait and run again",
}


def _refusal(exc: Any, what: str, done: list[str]) -> str:
    response = exc.response
    status = response.status_code if response is not None else 0
    error_type, message = "", ""
    try:
        error = response.json().get("error") if response is not None else None
    except ValueError:
        error = None
    if isinstance(error, dict):
        error_type, message = str(error.get("type", "")), str(error.get("message", ""))
    elif isinstance(error, str):
        error_type = error
    detail = " ".join(part for part in (str(status), error_type) if part)
    advice = _ADVICE.get(status, "see Airtable's answer")
    said = f": {message}" if message else ""
    return f"could not {what} (Airtable answered {detail}{said}); {advice}; {_done_so_far(done)}"


def _done_so_far(done: list[str]) -> str:
    return "nothing was changed before this" if not done else "done before this: " + "; ".join(done)


def _plain(value: Any) -> Any:
    """A deep copy with plain dicts and lists (the plan holds read-only mappings)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
