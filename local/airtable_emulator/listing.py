"""List records: parameters (query string or listRecords body), paging and iterators.

Airtable pages with an opaque ``offset`` that names a server-side iterator; the emulator
does the same (a snapshot of the matching record ids), so records created while a client
pages do not shift or duplicate pages, and a made-up offset fails as it would for real.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid_request, unprocessable
from .formula import compile_formula, truthy
from .schema import find_field, find_view
from .table import StoredRecord, Table

MAX_PAGE_SIZE = 100
MAX_ITERATORS = 1000

_BODY_KEYS = {
    "pageSize",
    "offset",
    "maxRecords",
    "fields",
    "sort",
    "view",
    "filterByFormula",
    "cellFormat",
    "returnFieldsByFieldId",
    "recordMetadata",
    "timeZone",
    "userLocale",
}
_SORT_RE = re.compile(r"^sort\[(\d+)\]\[(field|direction)\]$")


@dataclass
class ListParams:
    """The list-records options the emulator honours."""

    page_size: int = MAX_PAGE_SIZE
    max_records: int | None = None
    offset: str | None = None
    fields: list[str] | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)
    view: str | None = None
    formula: str | None = None
    by_field_id: bool = False
    comment_count: bool = False


def _positive_int(raw: Any, *, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid_request() from None
    if isinstance(raw, bool) or value < 1 or (maximum is not None and value > maximum):
        raise invalid_request()
    return value


def _flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("1", "true"):
        return True
    if str(raw).lower() in ("0", "false", ""):
        return False
    raise invalid_request()


def _cell_format(raw: Any) -> None:
    if raw not in (None, "json"):
        raise invalid_request("The emulator supports only cellFormat=json")


def params_from_query(query: dict[str, list[str]]) -> ListParams:
    """Parse GET query parameters; unknown ones are ignored, like harmless extras."""
    params = ListParams()

    def last(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    if (raw := last("pageSize")) is not None:
        params.page_size = _positive_int(raw, maximum=MAX_PAGE_SIZE)
    if (raw := last("maxRecords")) is not None:
        params.max_records = _positive_int(raw)
    params.offset = last("offset")
    if "fields[]" in query or "fields" in query:
        params.fields = query.get("fields[]", []) + query.get("fields", [])
    sort: dict[int, dict[str, str]] = {}
    for name, values in query.items():
        if match := _SORT_RE.match(name):
            sort.setdefault(int(match.group(1)), {})[match.group(2)] = values[-1]
    params.sort = [_sort_entry(sort[index]) for index in sorted(sort)]
    params.view = last("view")
    params.formula = last("filterByFormula")
    _cell_format(last("cellFormat"))
    if (raw := last("returnFieldsByFieldId")) is not None:
        params.by_field_id = _flag(raw)
    params.comment_count = "commentCount" in query.get("recordMetadata[]", [])
    return params


def params_from_body(body: Any) -> ListParams:
    """Parse a ``POST .../listRecords`` body; unknown keys are a 422 like any body."""
    if not isinstance(body, dict) or not set(body) <= _BODY_KEYS:
        raise invalid_request()
    params = ListParams()
    if "pageSize" in body:
        params.page_size = _positive_int(body["pageSize"], maximum=MAX_PAGE_SIZE)
    if "maxRecords" in body:
        params.max_records = _positive_int(body["maxRecords"])
    if body.get("offset") is not None:
        params.offset = str(body["offset"])
    if "fields" in body:
        if not isinstance(body["fields"], list):
            raise invalid_request()
        params.fields = [str(name) for name in body["fields"]]
    if "sort" in body:
        if not isinstance(body["sort"], list):
            raise invalid_request()
        params.sort = [_sort_entry(entry) for entry in body["sort"]]
    params.view = body.get("view")
    params.formula = body.get("filterByFormula")
    _cell_format(body.get("cellFormat"))
    params.by_field_id = _flag(body.get("returnFieldsByFieldId", False))
    params.comment_count = "commentCount" in (body.get("recordMetadata") or [])
    return params


def _sort_entry(entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict) or "field" not in entry:
        raise invalid_request()
    direction = entry.get("direction", "asc")
    if direction not in ("asc", "desc"):
        raise invalid_request()
    return str(entry["field"]), direction


class Iterators:
    """Snapshots of matching record ids, addressed by the opaque ``offset`` strings."""

    def __init__(self) -> None:
        self._snapshots: OrderedDict[str, tuple[str, str, list[str]]] = OrderedDict()
        self._counter = 0

    def new(self, base_id: str, table_id: str, record_ids: list[str]) -> str:
        self._counter += 1
        token = f"itr{self._counter:014d}"
        self._snapshots[token] = (base_id, table_id, record_ids)
        while len(self._snapshots) > MAX_ITERATORS:
            self._snapshots.popitem(last=False)
        return token

    def resume(self, offset: str, base_id: str, table_id: str) -> tuple[str, list[str], int]:
        """The iterator token, its ids and the index the offset points at."""
        token, _, next_id = offset.partition("/")
        snapshot = self._snapshots.get(token)
        if snapshot is None or snapshot[:2] != (base_id, table_id) or next_id not in snapshot[2]:
            raise unprocessable(
                "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
                "The offset is not valid (unknown or expired iterator)",
            )
        return token, snapshot[2], snapshot[2].index(next_id)


#: A record's cells by field name as a formula sees them.
Display = Callable[[Table, StoredRecord], dict[str, Any]]


def list_page(
    base_id: str,
    table: Table,
    params: ListParams,
    iterators: Iterators,
    display: Display | None = None,
) -> dict[str, Any]:
    """One page of records, with an ``offset`` when more remain. ``display`` gives the
    cells a formula sees (by default the stored cells by name)."""
    only = _selected_fields(table, params.fields)
    if params.offset:
        token, ids, start = iterators.resume(params.offset, base_id, table.id)
    else:
        ids = [record.id for record in _matching(table, params, display or _by_name)]
        token, start = "", 0
    page: list[dict[str, Any]] = []
    index = start
    while index < len(ids) and len(page) < params.page_size:
        record = table.records.get(ids[index])
        index += 1
        if record is None:
            continue  # deleted since the iterator was made
        rendered = table.render(record, by_field_id=params.by_field_id, only=only)
        if params.comment_count:
            rendered["commentCount"] = 0
        page.append(rendered)
    response: dict[str, Any] = {"records": page}
    if index < len(ids):
        token = token or iterators.new(base_id, table.id, ids)
        response["offset"] = f"{token}/{ids[index]}"
    return response


def _selected_fields(table: Table, names: list[str] | None) -> set[str] | None:
    if names is None:
        return None
    selected: set[str] = set()
    for name in names:
        spec = find_field(table.schema, name)
        if spec is None:
            raise unprocessable("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        selected.add(spec["id"])
    return selected


def _matching(table: Table, params: ListParams, display: Display) -> list[StoredRecord]:
    if params.view is not None and find_view(table.schema, params.view) is None:
        raise unprocessable("VIEW_NAME_NOT_FOUND", f'Could not find view "{params.view}"')
    records = list(table.records.values())
    if params.formula:
        names = {spec["name"] for spec in table.schema["fields"]}
        predicate = compile_formula(params.formula, names)
        records = [r for r in records if truthy(predicate(display(table, r), r.id))]
    for field_name, direction in reversed(params.sort):
        spec = find_field(table.schema, field_name)
        if spec is None:
            raise unprocessable("UNKNOWN_FIELD_NAME", f'Unknown field name: "{field_name}"')
        records.sort(
            key=lambda r, fid=spec["id"]: _sort_key(r.fields.get(fid)),
            reverse=direction == "desc",
        )
    if params.max_records is not None:
        records = records[: params.max_records]
    return records


def _by_name(table: Table, record: StoredRecord) -> dict[str, Any]:
    return {
        spec["name"]: record.fields.get(spec["id"])
        for spec in table.schema["fields"]
        if spec["id"] in record.fields
    }


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))
