"""The request pipeline: what a client of the real service meets, in this order.

URL length (414, an HTML page) -> route (404) -> outage (an HTML page) -> token (401;
``whoami`` and the bases list answer here) -> base and permission level ``none`` (403) ->
billing block for data requests (429) -> neighbour catch-up, then rate limit and lockout
(429, at the arrival time plus the seeded arrival jitter) -> latency -> scope and
permission level (403) -> table (403) -> fault draw for record writes (503 / lost) -> body
and records (422) -> apply. Latency is slept outside the lock, so concurrent requests
overlap as they do against the real service.
"""

from __future__ import annotations

import time
import traceback

from .access import Grant
from .base import Base
from .bodies import bearer, parse_body
from .errors import (
    ApiError,
    authentication_required,
    billing_limited,
    forbidden,
    not_found,
    proxy_page,
    rate_limited,
    service_unavailable,
    too_large,
)
from .limits import Admission
from .metaops import create_field, create_table, list_bases, schema_payload
from .records import dispatch
from .routes import Kind, Route, match_route
from .state import State
from .wire import ApiRequest, Reply

#: Airtable refuses request URLs longer than this (path and query string here).
MAX_URL_LENGTH = 16_000
#: The user every token belongs to (``GET /v0/meta/whoami``).
USER_ID = "usrEmulatorUser01"


def handle(state: State, request: ApiRequest) -> Reply:
    """Run one API request through the pipeline and count its outcome."""
    with state.lock:
        state.counters.requests += 1
    try:
        reply = _process(state, request)
    except ApiError as error:
        reply = Reply(error.status, error.body, content_type=error.content_type)
    except Exception as error:  # an emulator bug: say so rather than drop the connection
        traceback.print_exc()
        reply = Reply(500, {"error": {"type": "EMULATOR_INTERNAL_ERROR", "message": repr(error)}})
    with state.lock:
        if reply.drop:
            state.counters.lost_responses += 1
        else:
            state.counters.by_status[reply.status] += 1
    return reply


def reject_too_large(state: State) -> Reply:
    """Count and answer a request whose body exceeds ``max_body_bytes`` (refused at the
    edge, before the limiter, as a proxy would)."""
    error = too_large(state.config.max_body_bytes)
    with state.lock:
        state.counters.requests += 1
        state.counters.by_status[error.status] += 1
    return Reply(error.status, error.body)


def _process(state: State, request: ApiRequest) -> Reply:
    if request.url_length > MAX_URL_LENGTH:
        raise proxy_page(414)
    route = match_route(request.method, request.path)
    if route is None:
        raise not_found()
    grant = _edge(state, route, request)
    if grant is None:
        raise authentication_required()
    if route.kind is Kind.WHOAMI:  # no base, so no per-base limit (per-token: not modelled)
        return Reply(200, {"id": USER_ID, "scopes": sorted(grant.scopes)})
    if route.kind is Kind.BASES:
        if route.scope not in grant.scopes:
            raise forbidden()
        return Reply(200, list_bases(state, grant, request.query))
    base = state.bases.get(route.base_id)
    if base is None or not grant.reaches(route.base_id):
        raise forbidden()
    _admit(state, route, request)
    if route.scope not in grant.scopes or not grant.allows(route.base_id, route.kind):
        raise forbidden()
    return _operate(state, route, base, request)


def _edge(state: State, route: Route, request: ApiRequest) -> Grant | None:
    """Count the request against its base, answer an outage, and find the token's grant."""
    with state.lock:
        counters = state.counters.of(route.base_id) if route.base_id in state.bases else None
        if counters is not None:
            if route.is_data:
                counters.data_requests += 1
            else:
                counters.meta_requests += 1
            counters.operations[route.kind.value] += 1
        outage = state.conditions.outage_for(route.base_id or None, route.is_data)
        if outage is not None:
            if counters is not None:
                counters.outage_answers += 1
            raise proxy_page(outage.status)
        return state.grants.get(bearer(request.authorization) or "")


def _admit(state: State, route: Route, request: ApiRequest) -> None:
    """The billing block, then the limiter (after the neighbour's earlier requests), then
    the latency; raises the 429s."""
    base_id = route.base_id
    with state.lock:
        counters = state.counters.of(base_id)
        if route.is_data and state.conditions.billing_blocked(base_id):
            counters.billing_blocked += 1
            state.counters.billing_blocked += 1
            raise billing_limited(state.conditions.billing_shape)
        jitter = state.jitter_rng.uniform(0.0, state.jitter_ms) if state.jitter_ms else 0.0
        counted_at = request.arrived + jitter / 1000.0
        state.catch_up(base_id, counted_at)
        admission = state.limiter.admit(base_id, counted_at)
        if admission is Admission.ACCEPTED:
            counters.accepted += 1
        else:
            state.counters.throttled += 1
            counters.rate_limited += 1
        if admission is Admission.LOCKOUT_STARTED:
            state.counters.lockout(base_id)
        low, high = state.latency
        delay = state.latency_rng.uniform(low, high) if high > 0 else 0.0
    if delay > 0:
        time.sleep(delay)
    if admission is not Admission.ACCEPTED:
        raise rate_limited()


def _operate(state: State, route: Route, base: Base, request: ApiRequest) -> Reply:
    if route.kind is Kind.META:
        return Reply(200, schema_payload(state, base, request.query))
    if route.kind is Kind.CREATE_TABLE:
        return Reply(200, create_table(state, base, parse_body(request.body)))
    with state.lock:
        table = base.table(route.table or "")
    if table is None:
        raise forbidden()
    if route.kind is Kind.CREATE_FIELD:
        return Reply(200, create_field(state, base, table, parse_body(request.body)))
    lost = route.is_write and _draw_fault(state)
    try:
        body = dispatch(state, route, base, table, request)
    except ApiError as error:
        if lost:
            return Reply(error.status, error.body, drop=True)
        raise
    return Reply(200, body, drop=lost)


def _draw_fault(state: State) -> bool:
    """Count a write and draw its fault: raises for a 503, returns True to lose it."""
    with state.lock:
        state.counters.write_requests += 1
        draw = state.fault_rng.random()
        faults = state.faults
        if draw < faults.error_5xx_rate:
            state.counters.injected_5xx += 1
            raise service_unavailable()
    return draw < faults.error_5xx_rate + faults.lost_response_rate
