"""The schema check: does the Airtable table fit FIELD_MAP and MERGE_ON? Run once at cold start.

Without it, a renamed field or a changed type is discovered by the first write, after
messages were received, and a wrong type dead-letters every message one by one. With it,
a misconfigured deployment stops before receiving anything, with one error that lists
every problem. The check needs `schema.bases:read`; a token without that scope gets a
403 from the meta endpoint, and then (SCHEMA_CHECK=auto) the check is skipped, logged once.

`schema_problems` is pure (a schema dict in, problems out); `fetch_schema` and
`verify_at_start` are the thin edge that reads the schema through pyairtable.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, ConfigErrors, PollerError
from .mapping import FieldMap, FieldSpec
from .policies import RateLimiter

log = logging.getLogger(__name__)

TEXT_TYPES = frozenset(
    {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber"}
)
NUMBER_TYPES = frozenset({"number", "currency", "percent", "duration"})
#: Fields Airtable computes; a write to them is always refused.
COMPUTED_TYPES = frozenset(
    {
        "formula",
        "autoNumber",
        "createdTime",
        "lastModifiedTime",
        "createdBy",
        "lastModifiedBy",
        "rollup",
        "count",
        "lookup",
        "multipleLookupValues",
        "button",
        "aiText",
    }
)
#: Airtable's rule for performUpsert.fieldsToMergeOn: text, number, date or select fields.
MERGEABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | {"singleSelect", "date", "dateTime"}
#: For each mapping type, the Airtable field types that accept what it produces.
ACCEPTS: Mapping[str, frozenset[str]] = {
    "text": TEXT_TYPES | {"singleSelect"},
    "number": NUMBER_TYPES,
    "currency": NUMBER_TYPES,
    "percent": NUMBER_TYPES,
    "integer": NUMBER_TYPES | {"rating"},
    "checkbox": frozenset({"checkbox"}),
    "date": TEXT_TYPES | {"date", "dateTime"},
    "dateTime": TEXT_TYPES | {"dateTime"},
    "singleSelect": TEXT_TYPES | {"singleSelect"},
}


class SchemaMismatchError(ConfigErrors):
    """The table does not fit the mapping. Fix FIELD_MAP / MERGE_ON or the table, then rerun;
    no message was received."""

    def __init__(self, table: str, errors: list[ConfigError]) -> None:
        super().__init__(errors)
        lines = "\n".join(f"  - {e}" for e in errors)
        self.args = (
            f'table "{table}" does not fit the mapping ({len(errors)} problem(s)); '
            f"no message was received:\n{lines}",
        )


class SchemaProblem(ConfigError):
    """One way a table misfits the mapping. `kind` says which: "table" (not in the base),
    "field" (a mapped field is missing), "type" (a field's type does not fit) or "merge"."""

    def __init__(self, variable: str, problem: str, kind: str) -> None:
        super().__init__(variable, problem)
        self.kind = kind


class SchemaUnavailableError(PollerError):
    """The schema could not be read (SCHEMA_CHECK=on). Retry later, or grant schema.bases:read."""


@dataclass(frozen=True)
class SchemaCheck:
    """The outcome of a check that ran or was skipped (a mismatch raises instead)."""

    checked: bool
    table: str
    fields: int = 0
    skipped_because: str = ""
    #: The table's fields as the meta endpoint describes them (for `check-config`'s preview).
    airtable_fields: tuple[Mapping[str, Any], ...] = ()
    #: The table's id (`tbl…`), to address it by id from then on (a rename changes only names).
    table_id: str = ""


def find(items: Sequence[Mapping[str, Any]], id_or_name: str) -> Mapping[str, Any] | None:
    """A table or field by id, then by name (as Airtable resolves them)."""
    for key in ("id", "name"):
        for item in items:
            if item.get(key) == id_or_name:
                return item
    return None


def schema_problems(
    schema: Mapping[str, Any], table: str, field_map: FieldMap, merge_on: Sequence[str] = ()
) -> list[ConfigError]:
    """Every way the table in `schema` (the meta endpoint's payload) misfits the mapping."""
    tables = schema.get("tables") or []
    found = find(tables, table)
    if found is None:
        names = [t.get("name", "") for t in tables]
        return [
            SchemaProblem(
                "AIRTABLE_TABLE", f'"{table}" is not in the base{_hint(table, names)}', "table"
            )
        ]
    fields = found.get("fields") or []
    names = [f.get("name", "") for f in fields]
    problems: list[ConfigError] = []
    for spec in field_map.specs:
        field = find(fields, spec.field)
        if field is None:
            problems.append(
                SchemaProblem(
                    "FIELD_MAP",
                    f'targets "{spec.field}" (from "{spec.source}"), which the table does not '
                    f"have{_hint(spec.field, names)}",
                    "field",
                )
            )
            continue
        problem = _type_problem(spec, field)
        if problem:
            problems.append(SchemaProblem("FIELD_MAP", problem, "type"))
    for name in merge_on:
        field = find(fields, name)
        if field is not None and field.get("type") not in MERGEABLE_TYPES:
            problems.append(
                SchemaProblem(
                    "MERGE_ON",
                    f'names "{name}", a {field.get("type")} field; merge fields must be text, '
                    "number, date or select fields (not computed ones)",
                    "type",
                )
            )
    return problems


def _type_problem(spec: FieldSpec, field: Mapping[str, Any]) -> str | None:
    field_type = str(field.get("type", ""))
    name = spec.field
    if field_type in COMPUTED_TYPES:
        return f'targets "{name}", a computed {field_type} field that cannot be written'
    if spec.type is None:
        return None  # a plain entry sends values as they come: only the field can be checked
    accepted = ACCEPTS[spec.type]
    if field_type not in accepted:
        return (
            f'writes {spec.type} to "{name}", a {field_type} field (a {spec.type} value fits '
            f'{", ".join(sorted(accepted))}); change the entry\'s "type" or the target field'
        )
    if spec.options.choices and field_type == "singleSelect":
        options = [c.get("name") for c in (field.get("options") or {}).get("choices") or []]
        missing = [c for c in spec.options.choices if c not in options]
        if missing:
            return (
                f'declares choices {missing} for "{name}", which are not options of the field '
                f"(options: {options})"
            )
    return None


#: For `advice`: the mapping type that converts values for an Airtable field type.
SUGGESTED_TYPE: Mapping[str, str] = {
    "number": "number",
    "currency": "currency",
    "percent": "percent",
    "duration": "number",
    "rating": "integer",
    "checkbox": "checkbox",
    "date": "date",
    "dateTime": "dateTime",
    "singleSelect": "singleSelect",
}


def advice(field_map: FieldMap, airtable_fields: Sequence[Mapping[str, Any]]) -> list[str]:
    """Not errors, but worth telling the operator: plain entries that write to typed fields
    send values unconverted, so a bad value is found by Airtable (a 422 and a bisection)
    instead of by the mapper."""
    notes = []
    for spec in field_map.specs:
        field = find(airtable_fields, spec.field)
        suggested = SUGGESTED_TYPE.get(str(field.get("type"))) if field else None
        if spec.type is None and field is not None and suggested:
            notes.append(
                f'"{spec.field}" is a {field.get("type")} field but its entry has no "type": '
                f'values are sent as they come; declare "type": "{suggested}" to convert them '
                "and dead-letter bad ones before Airtable sees them"
            )
    return notes


def _hint(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6) or [
        n for n in names if name.lower() in n.lower() or n.lower() in name.lower()
    ]
    listed = ", ".join(f'"{n}"' for n in names)
    suggestion = f'; did you mean "{close[0]}"?' if close else ""
    return f" (it has {listed}){suggestion}"


def fetch_schema(table: Any) -> dict[str, Any]:
    """The base's schema through pyairtable (`GET /v0/meta/bases/{baseId}/tables`), as the raw
    payload: the check reads plain dicts, so a new Airtable field type cannot break it."""
    data = table.api.get(table.base.urls.tables)
    return data if isinstance(data, dict) else {}


def verify_at_start(
    table: Any,
    table_name: str,
    field_map: FieldMap,
    merge_on: Sequence[str],
    mode: str,
    *,
    limiter: RateLimiter | None = None,
) -> SchemaCheck:
    """Run the check as SCHEMA_CHECK says; raise before any message is received if the
    table does not fit, or if Airtable says the token or the base is wrong.

    The meta request counts against the base's 5 requests/s like any other, so it takes a
    slot of the same `limiter` as the writes that follow it (a 6th request inside a second
    costs a 30 s lockout)."""
    if mode == "off":
        return SchemaCheck(checked=False, table=table_name, skipped_because="SCHEMA_CHECK=off")
    import requests

    try:
        if limiter is not None:
            limiter.acquire()
        schema = fetch_schema(table)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status == 403 and mode == "auto":
            return _skipped(
                table_name,
                "the token cannot read the base schema (403); grant it schema.bases:read "
                "to check FIELD_MAP against the table at start",
            )
        refused = _REFUSED.get(status)
        if refused:
            raise _logged(ConfigErrors([ConfigError(*refused)])) from None
        return _unavailable(table_name, mode, f"Airtable answered {status}")
    except (requests.ConnectionError, requests.Timeout) as exc:
        return _unavailable(table_name, mode, f"no answer from Airtable ({type(exc).__name__})")
    problems = schema_problems(schema, table_name, field_map, merge_on)
    if problems:
        raise _logged(SchemaMismatchError(table_name, problems))
    found = find(schema.get("tables") or [], table_name) or {}
    check = SchemaCheck(
        checked=True,
        table=table_name,
        fields=len(field_map.specs),
        airtable_fields=tuple(found.get("fields") or ()),
        table_id=str(found.get("id") or ""),
    )
    log.info(
        "schema check passed",
        extra={"table": table_name, "table_id": found.get("id"), "mapped_fields": check.fields},
    )
    return check


#: Answers of the meta endpoint that no run can succeed with, and the variable to fix.
_REFUSED = {
    401: ("AIRTABLE_TOKEN", "was refused by Airtable (401); check the token"),
    403: (
        "SCHEMA_CHECK",
        "is on, but the token cannot read the base schema (403); grant it "
        "schema.bases:read, or set SCHEMA_CHECK=auto",
    ),
    404: (
        "AIRTABLE_BASE_ID",
        "names no base Airtable knows (404); check it and AIRTABLE_API_URL",
    ),
}


def _logged(error: ConfigErrors) -> ConfigErrors:
    """Log the problems as one structured line (the error itself goes to the runtime)."""
    log.error(
        "schema check failed; no message was received",
        extra={"problems": [str(e) for e in error.errors]},
    )
    return error


def _skipped(table_name: str, why: str) -> SchemaCheck:
    log.warning("schema check skipped: %s", why, extra={"table": table_name})
    return SchemaCheck(checked=False, table=table_name, skipped_because=why)


def _unavailable(table_name: str, mode: str, why: str) -> SchemaCheck:
    if mode == "on":
        raise SchemaUnavailableError(
            f"SCHEMA_CHECK=on, but the schema could not be read: {why}; no message was received"
        )
    return _skipped(table_name, f"the schema could not be read: {why}")


def type_drift(
    field_map: FieldMap,
    field: str,
    now: Mapping[str, Any] | None,
    at_start: Mapping[str, Any] | None = None,
) -> str | None:
    """Why the table no longer fits `field` (an id or name a 422 named), or None if it does.

    `now` is the field as the meta endpoint describes it now (None: it is gone), `at_start`
    the same field at cold start. A field fits when its type accepts the mapping entry's type
    (`ACCEPTS`) and, for an untyped entry, when its type is the one seen at cold start."""
    ident = (at_start or now or {}).get("id") or ""
    name = (now or at_start or {}).get("name") or field
    spec = field_map.spec(name) or (
        field_map.spec(str(at_start.get("name"))) if at_start is not None else None
    )
    label = f'field {ident} "{name}"'.replace("field  ", "field ")
    if now is None:
        return f"{label} is no longer in the table"
    new_type = str(now.get("type", ""))
    old_type = str(at_start.get("type", "")) if at_start is not None else ""
    sends = spec.type if spec is not None and spec.type else "values as they come"
    if spec is not None and spec.type is not None and new_type not in ACCEPTS[spec.type]:
        return f"{label} is now {new_type}; the mapping sends {sends}"
    if old_type and new_type != old_type:
        return f"{label} is now {new_type} (was {old_type}); the mapping sends {sends}"
    return None
