"""Does a table fit its route? Pure functions over the meta endpoint's payload
(`GET /v0/meta/bases/{baseId}/tables`: `{"tables": [{"id", "name", "fields": [{"id",
"name", "type", "options"}]}]}`), as plain dicts. A table or field is found by the id it last
resolved to, else by its name, so a rename is no failure."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .fieldmap import FieldSpec
from .fieldtypes import (
    ATTACHMENT_TYPE,
    CHECKBOX_TYPE,
    COMPUTED_TYPES,
    DATE_TYPES,
    LINK_TYPE,
    MERGEABLE_TYPES,
    NUMBER_TYPES,
    SELECT_TYPES,
    TEXT_TYPES,
    VERSION_TYPES,
)
from .routing import Route

#: For each mapping type, the Airtable field types that accept what it produces.
ACCEPTS: Mapping[str, frozenset[str]] = {
    "text": TEXT_TYPES | {"singleSelect"},
    "number": NUMBER_TYPES - {"rating"},
    "currency": NUMBER_TYPES - {"rating"},
    "percent": NUMBER_TYPES - {"rating"},
    "integer": NUMBER_TYPES,
    "checkbox": frozenset({CHECKBOX_TYPE}),
    "date": TEXT_TYPES | DATE_TYPES,
    "dateTime": TEXT_TYPES | {"dateTime"},
    "singleSelect": TEXT_TYPES | {"singleSelect"},
    "multipleSelects": frozenset({"multipleSelects"}),
    "attachment": frozenset({ATTACHMENT_TYPE}),
    "link": frozenset({LINK_TYPE}),
}


class SchemaProblem(ConfigError):
    """One way a table misfits its route: `kind` is "table", "field", "type" or "merge"."""

    def __init__(self, variable: str, problem: str, kind: str) -> None:
        super().__init__(variable, problem)
        self.kind = kind


@dataclass
class Fit:
    """A table checked against a route: its id, the field id each target resolved to, the
    fields as the schema describes them, and the problems (empty when it fits)."""

    table_id: str = ""
    field_ids: dict[str, str] = field(default_factory=dict)
    fields: tuple[Mapping[str, Any], ...] = ()
    problems: list[SchemaProblem] = field(default_factory=list)
    #: each link entry: (its field id, the linked table's id, the linked key field as the
    #: schema describes it)
    links: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)
    #: the ids each link's table and key field resolved to (`"link:<field>"`, `"key:<field>"`),
    #: kept with the route's own ids so that a rename of either is no failure
    link_ids: dict[str, str] = field(default_factory=dict)


def find(items: Sequence[Mapping[str, Any]], id_or_name: str) -> Mapping[str, Any] | None:
    """A table or field by id, then by name (as Airtable resolves them)."""
    for key in ("id", "name"):
        for item in items:
            if item.get(key) == id_or_name:
                return item
    return None


def resolve(
    items: Sequence[Mapping[str, Any]], known_id: str | None, name: str
) -> Mapping[str, Any] | None:
    """A table or field by the id it last resolved to, else by its name."""
    return (find(items, known_id) if known_id else None) or find(items, name)


def fit(
    schema: Mapping[str, Any], route: Route, known: Mapping[str, str] = {}, typecast: bool = False
) -> Fit:
    """Check `route` against the base's schema. `known` maps the route's table and target
    names to the ids they last resolved to (`"": table id`). With `typecast`, Airtable would
    turn a plain value in a link field into a new linked record: refused."""
    tables = schema.get("tables") or []
    variable = route.variable
    table = resolve(tables, known.get(""), route.table)
    if table is None:
        names = [t.get("name", "") for t in tables]
        problem = f'table "{route.table}" is not in the base{_hint(route.table, names)}'
        return Fit(problems=[SchemaProblem(_where(route, "AIRTABLE_TABLE"), problem, "table")])
    fields = tuple(table.get("fields") or ())
    names = [f.get("name", "") for f in fields]
    result = Fit(table_id=str(table.get("id", "")), fields=fields)
    for spec in route.field_map.specs:
        found = resolve(fields, known.get(spec.field), spec.field)
        if found is None:
            problem = (
                f'targets "{spec.field}" (from "{spec.source}"), which the table does not have'
                f"{_hint(spec.field, names)}"
            )
            result.problems.append(SchemaProblem(variable, problem, "field"))
            continue
        result.field_ids[spec.field] = str(found["id"])
        problem = type_problem(spec, found, typecast) or _link_problem(
            spec, found, tables, result, known
        )
        if (
            route.version
            and spec.field == route.version[1]
            and found.get("type") not in VERSION_TYPES
        ):
            problem = f'stores the version in "{spec.field}", a {found.get("type")} field; it must be a number or dateTime field'
        if problem:
            result.problems.append(SchemaProblem(variable, problem, "type"))
    if route.deleted_field:
        found = resolve(fields, known.get(route.deleted_field), route.deleted_field)
        if found is None or found.get("type") != CHECKBOX_TYPE:
            what = "the table does not have" if found is None else f"a {found.get('type')} field"
            problem = (
                f'marks deletes in "{route.deleted_field}", {what}; it must be a checkbox field'
            )
            result.problems.append(
                SchemaProblem(variable, problem, "field" if found is None else "type")
            )
        else:
            result.field_ids[route.deleted_field] = str(found["id"])
    filled = set(result.field_ids.values())
    for name in route.merge_on:
        found = find(fields, result.field_ids.get(name, name))
        if found is None:
            problem = f'merges on "{name}", which the table does not have{_hint(name, names)}'
        elif str(found.get("id")) not in filled:
            problem = f'merges on "{name}" ({found.get("name")}), a field the route\'s "fields" never fill'
        elif found.get("type") not in MERGEABLE_TYPES:
            problem = (
                f'merges on "{name}", a {found.get("type")} field; merge fields must be text, '
                "number, date or select fields (not computed ones)"
            )
        else:
            result.field_ids.setdefault(name, str(found["id"]))
            continue
        result.problems.append(SchemaProblem(_where(route, "MERGE_ON"), problem, "merge"))
    return result


def type_problem(spec: FieldSpec, field: Mapping[str, Any], typecast: bool = False) -> str | None:
    field_type = str(field.get("type", ""))
    name = spec.field
    if field_type in COMPUTED_TYPES:
        return f'targets "{name}", a computed {field_type} field that cannot be written'
    if spec.type is None:  # a plain entry sends values as they come: only the field is checked
        if field_type == ATTACHMENT_TYPE:
            return f'writes plain values to "{name}", an attachment field; declare "type": "attachment"'
        if field_type == LINK_TYPE and typecast:
            return (
                f'writes plain values to "{name}", a link field, with AIRTABLE_TYPECAST on: Airtable '
                'would create a linked record for every name it does not find; declare "type": "link"'
            )
        return None
    accepted = ACCEPTS[spec.type]
    if field_type not in accepted:
        return (
            f'writes {spec.type} to "{name}", a {field_type} field (a {spec.type} value fits '
            f'{", ".join(sorted(accepted))}); change the entry\'s "type" or the target field'
        )
    if spec.options.choices and field_type in SELECT_TYPES:
        options = [c.get("name") for c in (field.get("options") or {}).get("choices") or []]
        missing = [c for c in spec.options.choices if c not in options]
        if missing:
            return f'declares choices {missing} for "{name}", which are not options of the field (options: {options})'
    return None


def _link_problem(
    spec: FieldSpec,
    field: Mapping[str, Any],
    tables: Sequence[Mapping[str, Any]],
    result: Fit,
    known: Mapping[str, str],
) -> str | None:
    """A link entry's field must link to its `table`, which must have its `key` field (each
    found by the id it last resolved to, else by name)."""
    if spec.type != "link":
        return None
    linked = resolve(tables, known.get(f"link:{spec.field}"), spec.options.table)
    if linked is None or (field.get("options") or {}).get("linkedTableId") != linked.get("id"):
        return f'links "{spec.field}" to table "{spec.options.table}", but the field links another table'
    key = resolve(linked.get("fields") or [], known.get(f"key:{spec.field}"), spec.options.link_key)
    if key is None or key.get("type") not in MERGEABLE_TYPES:
        return f'finds linked records by "{spec.options.link_key}", which table "{spec.options.table}" does not have as a text or number field'
    result.links.append((str(field["id"]), str(linked["id"]), key))
    result.link_ids |= {
        f"link:{spec.field}": str(linked["id"]),
        f"key:{spec.field}": str(key["id"]),
    }
    return None


def _where(route: Route, single: str) -> str:
    return single if route.variable != "ROUTES" else "ROUTES"


def _hint(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    listed = ", ".join(f'"{n}"' for n in names)
    suggestion = f'; did you mean "{close[0]}"?' if close else ""
    return f" (it has {listed}){suggestion}"
