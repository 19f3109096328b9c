"""The record endpoints: list, get, create, update, upsert and delete.

Called by the pipeline once the request has passed auth, the limiter and the scope and
permission checks. Each operation takes the state's lock for its own work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .base import Base
from .bodies import body_dict, parse_body, query_flag
from .errors import invalid_request, not_found, record_cap_reached, unprocessable
from .fields import format_datetime
from .links import RequestRefs
from .listing import list_page, params_from_body, params_from_query
from .routes import Kind, Route
from .state import State
from .store import (
    WriteEnv,
    WriteOutcome,
    check_count,
    create_records,
    delete_records,
    merge_fields,
    update_records,
    upsert_records,
)
from .table import Table
from .wire import ApiRequest

_COMMON_KEYS = {"typecast", "returnFieldsByFieldId"}


def dispatch(state: State, route: Route, base: Base, table: Table, request: ApiRequest) -> Any:
    """Answer one record request (the body of a 200)."""
    kind, query = route.kind, request.query
    if kind is Kind.LIST or kind is Kind.LIST_POST:
        params = (
            params_from_query(query)
            if kind is Kind.LIST
            else params_from_body(parse_body(request.body) or {})
        )
        with state.lock:
            return list_page(route.base_id, table, params, state.iterators, base.display_cells)
    if kind is Kind.GET_RECORD:
        with state.lock:
            record = table.records.get(route.record_id or "")
            if record is None:
                raise not_found()
            return table.render(record, by_field_id=query_flag(query, "returnFieldsByFieldId"))
    if kind is Kind.DELETE or kind is Kind.DELETE_RECORD:
        return _delete(state, route, table, query)
    return _write(state, route, base, table, request.method, parse_body(request.body))


def _delete(state: State, route: Route, table: Table, query: dict[str, list[str]]) -> Any:
    single = route.kind is Kind.DELETE_RECORD
    ids = [route.record_id] if single else check_count(query.get("records[]", []), "deleted")
    with state.lock:
        deleted = delete_records(table, ids, missing_is_404=single)
        state.counters.records_deleted += len(deleted)
        state.log(route.base_id, table, "DELETE", deleted, "deleted")
    if single:
        return {"id": deleted[0], "deleted": True}
    return {"records": [{"id": record_id, "deleted": True} for record_id in deleted]}


def _entries(route: Route, body: Any) -> tuple[dict[str, Any], list[Any], bool]:
    """The checked body, its record entries and whether it was a single-record request."""
    if route.kind is Kind.CREATE:
        body = body_dict(body, _COMMON_KEYS | {"records", "fields"})
        if ("records" in body) == ("fields" in body):
            raise invalid_request()
        single = "fields" in body
        entries = [{"fields": body["fields"]}] if single else body["records"]
        return body, check_count(entries, "created"), single
    if route.kind is Kind.UPDATE_RECORD:
        body = body_dict(body, _COMMON_KEYS | {"fields"})
        if "fields" not in body:
            raise unprocessable("INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "fields"')
        return body, [{"id": route.record_id, "fields": body["fields"]}], True
    body = body_dict(body, _COMMON_KEYS | {"records", "performUpsert"})
    if "records" not in body:
        raise unprocessable("INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "records"')
    return body, check_count(body["records"], "updated"), False


def _write(state: State, route: Route, base: Base, table: Table, method: str, body: Any) -> Any:
    body, entries, single = _entries(route, body)
    replace = method == "PUT"
    upsert = route.kind is Kind.UPDATE and body.get("performUpsert") is not None
    with state.lock:
        refs = RequestRefs(base, state.new_id, state.new_attachment_id)

        def room(adding: int) -> None:
            if state.conditions.over_cap(route.base_id, base.record_count(), adding):
                raise record_cap_reached()

        env = WriteEnv(
            typecast=body.get("typecast", False),
            new_id=state.new_id,
            now=format_datetime(datetime.now(UTC)),
            context=refs,
            room=room,
        )
        if route.kind is Kind.CREATE:
            outcome = create_records(table, entries, env)
        elif upsert:
            merge_on = merge_fields(table, body["performUpsert"])
            outcome = upsert_records(table, entries, merge_on, env, replace=replace)
        else:
            outcome = update_records(
                table,
                entries,
                env,
                replace=replace,
                missing_is_404=route.kind is Kind.UPDATE_RECORD,
            )
        _record_write(state, route.base_id, table, method, outcome)
        by_id = body.get("returnFieldsByFieldId", False)
        rendered = [table.render(r, by_field_id=by_id) for r in outcome.records]
    if single:
        return rendered[0]
    response: dict[str, Any] = {"records": rendered}
    if upsert:
        response["createdRecords"] = outcome.created
        response["updatedRecords"] = outcome.updated
    return response


def _record_write(
    state: State, base_id: str, table: Table, method: str, outcome: WriteOutcome
) -> None:
    """Stats and write log for an applied write (caller holds the lock)."""
    counters = state.counters
    counters.records_per_write.append(len(outcome.records))
    counters.records_created += len(outcome.created) + len(outcome.linked_created)
    counters.records_updated += len(outcome.updated)
    for linked_table, record_id in outcome.linked_created:
        state.log(base_id, linked_table, method, [record_id], "created")
    state.log(base_id, table, method, outcome.created, "created")
    state.log(base_id, table, method, outcome.updated, "updated")
