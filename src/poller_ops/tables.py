"""`init-tables`: create each destination's table, and the fields it lacks, from the routes.

`plan` reads each base's schema once; `plan_from_schemas` is the pure planner; `apply` makes
the changes through Airtable's meta API (`POST /v0/meta/bases/{baseId}/tables` and
`POST .../tables/{tableId}/fields`, token scope `schema.bases:write`), one request per
change, each taking a slot of the base's `poller.pacing.Pacer`. Nothing here ever changes
or deletes an existing field: an existing field that does not fit is reported as a misfit
and left alone, for a person to decide.

A field's type comes from its mapping entry (`FieldSpec.type`); an untyped entry becomes a
single line text. The options are the ones Airtable requires when creating a field of each
type (its field model; a create without them is refused with 422
`INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE`):

    text             singleLineText
    number           number     {"precision": 8}    (the most digits Airtable keeps on display)
    integer          number     {"precision": 0}
    currency         currency   {"precision": 2, "symbol": "$"}
    percent          percent    {"precision": 8}
    checkbox         checkbox   {"icon": "check", "color": "greenBright"}  (allowed on every plan)
    date             date       {"dateFormat": {"name": "iso", "format": "YYYY-MM-DD"}}
    dateTime         dateTime   ISO date, 24-hour time, time zone "utc"
    singleSelect     singleSelect     {"choices": the entry's `choices`}
    multipleSelects  multipleSelects  {"choices": the entry's `choices`}
    attachment       multipleAttachments (no options)
    link             multipleRecordLinks {"linkedTableId": the id of the entry's `table`}

What a route needs beyond its entries:

* a **version** field (`"version": {"source", "field"}`) is a number field
  (`{"precision": 8}`), unless its entry declares another type: `"type": "dateTime"` makes
  a dateTime field, for versions that are ISO date-times;
* a soft delete's **deleted field** (`"deleted_field"`) is a checkbox;
* a **link** entry's linked table must exist with its key field (`"key"`, a text field):
  the linked table is created first (with the key as its primary field) when no route
  creates it, and the link fields are added once every table exists.

Whether the result fits is decided by `poller.schema.fit`, the rules of the check before
every run, applied to each route against the base as it will be after the plan.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from poller.capacity import Capacity
from poller.errors import PollerError
from poller.fieldmap import FieldMap, FieldSpec
from poller.fieldtypes import (
    ATTACHMENT_TYPE,
    CHECKBOX_TYPE,
    LINK_TYPE,
    PRIMARY_TYPES,
)
from poller.model import DEFAULT_ROUTE, Action
from poller.pacing import Pacer
from poller.routing import Route
from poller.schema import find, fit

if TYPE_CHECKING:
    from pyairtable import Api

log = logging.getLogger(__name__)

#: Airtable's per-base limit; every meta request counts against it.
BASE_RPS = 5.0
#: The longest a change waits for its base's slot (a 30 s lockout included).
MAX_WAIT_SECONDS = 60.0
#: What a new table's primary field is when no mapped field can be primary.
FALLBACK_PRIMARY = "Name"
CHECKBOX_OPTIONS: Mapping[str, Any] = {"icon": "check", "color": "greenBright"}
_ISO_DATE = {"name": "iso", "format": "YYYY-MM-DD"}
#: The types whose new field is created with its entry's declared choices.
_SELECTS = ("singleSelect", "multipleSelects")


class InitTablesError(PollerError):
    """Airtable refused to read a schema or to make a change. The message says which, why,
    and what was already done; fix the token's scopes or the mapping and run again (what
    exists is never created twice)."""


@dataclass(frozen=True)
class TableSpec:
    """One destination: a table of a base, the mapping that writes to it, its merge fields.

    `source` is the route it comes from (`TableSpec.of`): its version and deleted fields,
    and its action, are planned too."""

    base_id: str
    table: str
    field_map: FieldMap
    merge_on: tuple[str, ...] = ()
    #: The route's name, to name it in misfits ("" or "default": the single-table variables).
    route: str = ""
    source: Route | None = None

    @classmethod
    def of(cls, route: Route) -> TableSpec:
        return cls(route.base_id, route.table, route.field_map, route.merge_on, route.name, route)

    def as_route(self) -> Route:
        """The route `poller.schema.fit` checks the planned table against."""
        if self.source is not None:
            return self.source
        return Route(
            name=self.route or DEFAULT_ROUTE,
            base_id=self.base_id,
            table=self.table,
            field_map=self.field_map,
            merge_on=self.merge_on,
            action=Action.UPSERT if self.merge_on else Action.CREATE,
        )

    def label(self, variable: str) -> str:
        """Who a problem is about: the route by name, else the single-table `variable`."""
        if self.route and self.route != DEFAULT_ROUTE:
            suffix = " merge_on" if variable == "MERGE_ON" else ""
            return f'route "{self.route}"{suffix}'
        return variable

    def wanted(self) -> Iterator[NewField]:
        """Every field the route writes: its entries, its version and its deleted field."""
        route = self.as_route()
        version = route.version[1] if route.version else None
        for spec in self.field_map.specs:
            yield field_for(spec, version=spec.field == version)
        if route.deleted_field and self.field_map.spec(route.deleted_field) is None:
            yield NewField(route.deleted_field, CHECKBOX_TYPE, CHECKBOX_OPTIONS)


@dataclass(frozen=True)
class NewField:
    """A field to create: the meta API's field model without an id. A link field names the
    table it links to (`links_to`); its `linkedTableId` is known once that table exists."""

    name: str
    type: str
    options: Mapping[str, Any] | None = None
    #: The mapping entry it comes from ("" for a fallback primary, a deleted field or a key).
    source: str = ""
    links_to: str = ""

    def body(self, linked_table_id: str | None = None) -> dict[str, Any]:
        """The JSON the meta API takes: `{"name", "type", "options"?}`."""
        data: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == LINK_TYPE:
            data["options"] = {"linkedTableId": linked_table_id}
        elif self.options is not None:
            data["options"] = _plain(self.options)
        return data

    def to_dict(self) -> dict[str, Any]:
        data = self.body()
        if self.links_to:
            data["links_to"] = self.links_to
        return data

    def describe(self) -> str:
        target = f' to "{self.links_to}"' if self.links_to else ""
        return f'"{self.name}" ({self.type}{target})'


@dataclass(frozen=True)
class CreateTable:
    """A table to create; `fields[0]` is its primary field. Its link fields are `AddField`s,
    made once every table exists."""

    base_id: str
    table: str
    fields: tuple[NewField, ...]


@dataclass(frozen=True)
class AddField:
    """A field to add to a table (`table_id`: its id, "" for a table the plan creates)."""

    base_id: str
    table: str
    field: NewField
    table_id: str = ""
    #: for a link field: the id of the table it links to, "" when the plan creates that table
    linked_table_id: str = ""


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
    #: Things worth knowing that are no misfit (a select created without options).
    notes: list[str] = field(default_factory=list)

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
        """JSON-friendly: `{"create_tables", "add_fields", "misfits", "complete", "notes"}`."""
        return {
            "create_tables": [
                {"base": c.base_id, "table": c.table, "fields": [f.to_dict() for f in c.fields]}
                for c in self.create_tables
            ],
            "add_fields": [
                {"base": a.base_id, "table": a.table, "field": a.field.to_dict()}
                for a in self.add_fields
            ],
            "misfits": [
                {"base": m.base_id, "table": m.table, "problem": m.problem} for m in self.misfits
            ],
            "complete": [{"base": b, "table": t} for b, t in self.complete],
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------- planning


def field_for(spec: FieldSpec, *, version: bool = False) -> NewField:
    """The Airtable field a mapping entry needs (see the module docstring for the table).
    `version`: the entry stores the route's version (an untyped one becomes a number)."""
    kind = spec.type or ("number" if version else "text")
    options: dict[str, Any] | None
    links_to = ""
    if kind == "text":
        airtable_type, options = "singleLineText", None
    elif kind in ("number", "percent"):
        airtable_type, options = kind, {"precision": 8}
    elif kind == "integer":
        airtable_type, options = "number", {"precision": 0}
    elif kind == "currency":
        airtable_type, options = "currency", {"precision": 2, "symbol": "$"}
    elif kind == "checkbox":
        airtable_type, options = CHECKBOX_TYPE, dict(CHECKBOX_OPTIONS)
    elif kind == "date":
        airtable_type, options = "date", {"dateFormat": dict(_ISO_DATE)}
    elif kind == "dateTime":
        airtable_type = "dateTime"
        options = {
            "dateFormat": dict(_ISO_DATE),
            "timeFormat": {"name": "24hour", "format": "HH:mm"},
            "timeZone": "utc",
        }
    elif kind in _SELECTS:
        airtable_type = kind
        options = {"choices": [{"name": choice} for choice in spec.options.choices]}
    elif kind == "attachment":
        airtable_type, options = ATTACHMENT_TYPE, None
    elif kind == "link":
        airtable_type, options, links_to = LINK_TYPE, None, spec.options.table
    else:  # a mapping type added later: fail loudly rather than guess
        raise ValueError(f"no Airtable field type is known for mapping type {kind!r}")
    return NewField(spec.field, airtable_type, options, spec.source, links_to)


#: Gives the pacer of one base's requests.
PacerFor = Callable[[str], Pacer]


def per_base_limiters(rps: float = BASE_RPS) -> PacerFor:
    """One `Pacer` per base, made on first use and kept: pass the same one to `plan` and
    `apply`, so that the schema read and the changes share the base's requests/s."""
    pacers: dict[str, Pacer] = {}

    def pacer_for(base_id: str) -> Pacer:
        if base_id not in pacers:
            pacers[base_id] = Pacer(Capacity(rps))
        return pacers[base_id]

    return pacer_for


per_base_pacers = per_base_limiters


def plan(api: Api, specs: Sequence[TableSpec], *, limiter_for: PacerFor | None = None) -> Plan:
    """Read each base's schema once (`GET /v0/meta/bases/{baseId}/tables`, scope
    `schema.bases:read`, one slot of the base's pacer) and plan every destination against
    it. Raises InitTablesError when a schema cannot be read."""
    pace = limiter_for or per_base_limiters()
    schemas: dict[str, Mapping[str, Any]] = {}
    for spec in specs:
        if spec.base_id not in schemas:
            schemas[spec.base_id] = _read_schema(api, spec.base_id, pace(spec.base_id))
    return plan_from_schemas(schemas, specs)


def plan_from_schemas(schemas: Mapping[str, Mapping[str, Any]], specs: Sequence[TableSpec]) -> Plan:
    """The pure planner: `schemas` maps a base id to its meta payload `{"tables": [...]}`.

    Specs naming the same table are planned together (their fields are merged, first
    mapping first), so two routes into one table make one table."""
    result = Plan()
    for base_id in dict.fromkeys(s.base_id for s in specs):
        _BasePlan(base_id, schemas[base_id], [s for s in specs if s.base_id == base_id]).plan(
            result
        )
    return result


class _BasePlan:
    """The plan of one base: its tables as they are, and as they will be (`after`), with
    placeholder ids for what the plan creates, so that `fit` can check links too."""

    def __init__(self, base_id: str, schema: Mapping[str, Any], specs: list[TableSpec]) -> None:
        self.base_id = base_id
        self.specs = specs
        self.after: list[dict[str, Any]] = copy.deepcopy(list(schema.get("tables") or []))
        self._count = itertools.count()
        self.planned: set[str] = set()  # the placeholder ids
        self.new_links: list[tuple[dict[str, Any], str]] = []  # (planned field, links to)
        self.reported: set[str] = set()  # fields a misfit already explains

    def _id(self, prefix: str) -> str:
        planned = f"{prefix}Planned{next(self._count):07d}"
        self.planned.add(planned)
        return planned

    def _known(self, table: Mapping[str, Any] | None) -> str:
        """A table's id, or "" for none or one the plan creates (known once created)."""
        table_id = str((table or {}).get("id") or "")
        return "" if table_id in self.planned else table_id

    def plan(self, result: Plan) -> None:
        groups: dict[str, list[TableSpec]] = {}
        for spec in self.specs:
            groups.setdefault(spec.table, []).append(spec)
        keys = self._link_keys()
        for table, group in groups.items():
            self._table(result, table, group, keys.pop(table.casefold(), (table, []))[1])
        for table, key_fields in keys.values():  # linked tables that no route writes to
            self._table(result, table, [], key_fields)
        for planned, links_to in self.new_links:
            linked = find(self.after, links_to)
            planned["options"] = {"linkedTableId": linked.get("id") if linked else None}
        self._check(result)

    def _link_keys(self) -> dict[str, tuple[str, list[str]]]:
        """The key fields each linked table must have: {folded name: (name, [keys])}."""
        keys: dict[str, tuple[str, list[str]]] = {}
        for spec in self.specs:
            for entry in spec.field_map.specs:
                if entry.type == "link":
                    table = entry.options.table
                    _, names = keys.setdefault(table.casefold(), (table, []))
                    if entry.options.link_key not in names:
                        names.append(entry.options.link_key)
        return keys

    def _table(self, result: Plan, table: str, group: list[TableSpec], keys: Sequence[str]) -> None:
        existing = find(self.after, table)
        if existing is None and _looks_like(table, "tbl"):
            result.misfits.append(
                Misfit(
                    self.base_id, table, "no table has this id; name the table to have it created"
                )
            )
            return
        fields = list((existing or {}).get("fields") or [])
        wanted: list[NewField] = []
        problems: list[str] = []
        candidates = [f for spec in group for f in spec.wanted()]
        candidates += [NewField(key, "singleLineText") for key in keys]
        for new in candidates:
            if find(fields, new.name) is not None or any(
                w.name.casefold() == new.name.casefold() for w in wanted
            ):
                continue
            clash = _same_name_ignoring_case(new.name, fields)
            if clash or _looks_like(new.name, "fld"):
                self.reported.add(new.name)
            if clash:
                problems.append(
                    f'the mapping writes "{new.name}", but the table has "{clash}" (Airtable '
                    "field names are unique ignoring case); rename one of them"
                )
            elif _looks_like(new.name, "fld"):
                problems.append(f'no field has the id "{new.name}" (from "{new.source}")')
            else:
                wanted.append(new)
        name = str(existing.get("name")) if existing else table
        result.notes += [
            f'base {self.base_id}, table "{name}": "{new.name}" is created without options: '
            'declare its entry\'s "choices", or add the options in Airtable before the first '
            "write (a value that is not an option is refused unless AIRTABLE_TYPECAST is on)"
            for new in wanted
            if new.type in _SELECTS and not (new.options or {}).get("choices")
        ]
        result.misfits += [Misfit(self.base_id, name, p) for p in dict.fromkeys(problems)]
        merge_on = tuple(dict.fromkeys(n for spec in group for n in spec.merge_on))
        columns = [w for w in wanted if w.type != LINK_TYPE]
        links = [w for w in wanted if w.type == LINK_TYPE]
        if existing is None:
            columns = _primary_first(columns, merge_on)
            existing = {"id": self._id("tbl"), "name": table, "fields": []}
            self.after.append(existing)
            result.create_tables.append(CreateTable(self.base_id, table, tuple(columns)))
        else:
            result.add_fields += [
                AddField(self.base_id, name, w, self._known(existing)) for w in columns
            ]
        for new in columns + links:
            planned = {"id": self._id("fld"), **new.body()}
            existing.setdefault("fields", []).append(planned)
            if new.type == LINK_TYPE:
                self.new_links.append((planned, new.links_to))
        result.add_fields += [
            AddField(
                self.base_id,
                name,
                new,
                self._known(existing),
                self._known(find(self.after, new.links_to)),
            )
            for new in links
        ]
        if group and not wanted and not problems:
            result.complete.append((self.base_id, name))

    def _check(self, result: Plan) -> None:
        """Each route against the base as the plan leaves it, by the run's own rules."""
        after = {"tables": self.after}
        for spec in self.specs:
            if _looks_like(spec.table, "tbl") and find(self.after, spec.table) is None:
                continue  # reported: no table has this id
            for problem in fit(after, spec.as_route()).problems:
                if any(problem.problem.startswith(f'targets "{n}"') for n in self.reported):
                    continue
                misfit = Misfit(
                    self.base_id, spec.table, f"{spec.label(problem.variable)} {problem.problem}"
                )
                if misfit not in result.misfits:
                    result.misfits.append(misfit)


def _primary_first(wanted: list[NewField], merge_on: tuple[str, ...]) -> list[NewField]:
    """Order a new table's fields so that the primary field comes first.

    The primary field is the first merge field, because it is the record's key and what a
    person looks a record up by; without merge fields, the first mapped field. A field of
    a type that cannot be primary (checkbox, select, attachment) is skipped for the next
    one. If no field can be primary, a single line text "Name" (or "Name 2"...) is added
    first, which the poller never writes."""
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


def apply(api: Api, plan: Plan, *, limiter_for: PacerFor | None = None) -> list[str]:
    """Make the plan's changes in order (tables first, then their fields, link fields once
    every table exists); return one line per change made. Misfits are not touched.

    Each change is one request, and takes one slot of its base's pacer (pass the
    `limiter_for` that `plan` used): a 6th request inside a second locks the base out for
    30 s. Raises InitTablesError on the first refusal, naming what was done before it."""
    pace = limiter_for or per_base_limiters()
    done: list[str] = []
    created: dict[tuple[str, str], str] = {}
    for create in plan.create_tables:
        answer = _send(
            api,
            pace(create.base_id),
            "POST",
            str(api.base(create.base_id).urls.tables),
            {"name": create.table, "fields": [f.body() for f in create.fields]},
            f'create table "{create.table}" in base {create.base_id}',
            done,
        )
        created[(create.base_id, create.table.casefold())] = str((answer or {}).get("id", ""))
        done.append(
            f'base {create.base_id}: created table "{create.table}" with {len(create.fields)} fields'
        )
    ordered = sorted(plan.add_fields, key=lambda a: a.field.type == LINK_TYPE)
    for add in ordered:
        table_id = add.table_id or created.get((add.base_id, add.table.casefold()), "")
        linked = add.linked_table_id or created.get(
            (add.base_id, add.field.links_to.casefold()), ""
        )
        what = f'add field "{add.field.name}" to table "{add.table}" in base {add.base_id}'
        if not table_id or (add.field.type == LINK_TYPE and not linked):
            raise InitTablesError(
                f"could not {what}: the table's id is unknown; {_done_so_far(done)}; run again"
            )
        _send(
            api,
            pace(add.base_id),
            "POST",
            str(api.table(add.base_id, table_id).urls.fields),
            add.field.body(linked or None),
            what,
            done,
        )
        done.append(f'base {add.base_id}, table "{add.table}": added field {add.field.describe()}')
    for line in done:
        log.info("init-tables: %s", line)
    return done


def _send(
    api: Api,
    pacer: Pacer,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    what: str,
    done: list[str],
) -> Any:
    """One request of a base, in a slot of its pacer; a refusal as InitTablesError."""
    import requests

    from poller.airtable import BILLING_LIMIT, error_of

    sent_at = pacer.send(pacer.reserve(), not_after=pacer.clock() + MAX_WAIT_SECONDS)
    if sent_at is None:
        raise InitTablesError(
            f"could not {what}: the base is locked out for longer than {MAX_WAIT_SECONDS:.0f} s; "
            f"{_done_so_far(done)}; run again later"
        )
    try:
        return api.request(method, url, json=body) if body is not None else api.request(method, url)
    except requests.HTTPError as exc:
        response = exc.response
        locked = response is not None and response.status_code == 429
        if locked and error_of(response)[0] != BILLING_LIMIT:  # a lockout, not the quota
            pacer.throttled(sent_at)
        raise InitTablesError(_refusal(exc, what, done)) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise InitTablesError(
            f"could not {what}: no answer from Airtable ({type(exc).__name__}); "
            f"{_done_so_far(done)}; run again to finish"
        ) from None


def _read_schema(api: Api, base_id: str, pacer: Pacer) -> Mapping[str, Any]:
    """The base's meta payload as plain dicts (as the check before every run reads it, so a
    field type pyairtable does not know cannot break the plan)."""
    data = _send(
        api,
        pacer,
        "GET",
        str(api.base(base_id).urls.tables),
        None,
        f"read the schema of base {base_id}",
        [],
    )
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
    429: "the base is rate-limited (a 30 s lockout) or the workspace's monthly calls are used up; wait and run again",
}


def _refusal(exc: Any, what: str, done: list[str]) -> str:
    from poller.airtable import error_of

    response = exc.response
    status = response.status_code if response is not None else 0
    error_type, message = error_of(response)
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
