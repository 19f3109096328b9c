"""What one warm Lambda container keeps between runs, and the checks it makes before each.

A `Runtime` is built once per container (per configuration) at cold start:

* one pyairtable `Api` for the token (`credentials.TokenSource`): every route's table hangs off
  it, so a rotated token is installed once for all;
* one rate limiter per base, shared by every route of that base, chained with one limiter for
  the token across all bases (Airtable's 5 requests/s per base and 50 per token);
* per route, the table and the mapping resolved to Airtable's ids at the cold start's schema
  check, so a renamed field or table stops being a failure at all;
* a `systemic.Breaker`, so a failure that every message of a route would meet is remembered
  and re-checked before the next receive instead of being met again by every message.

The handler asks it for the core's destinations, router and guard, and calls `precheck()`
before each run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from .airtable import AirtableSink, make_api
from .config import Config
from .credentials import SecretUnavailableError, TokenSource
from .errors import ConfigError, RecordsRejectedError
from .policies import PacerChain, RateLimiter
from .ports import Destination, Pacer
from .routing import Route, Router, field_index
from .schema import (
    SchemaMismatchError,
    fetch_schema,
    find,
    schema_problems,
    type_drift,
    verify_at_start,
)
from .systemic import (
    Breaker,
    Cause,
    Report,
    RunGuard,
    SystemicFailure,
    cause_of_misfit,
    recheck_open,
)

log = logging.getLogger(__name__)


@dataclass
class RouteState:
    """A route as configured, and as resolved against the table's schema."""

    route: Route
    table: Any  # pyairtable Table, by table id once the schema was read
    resolved: Route
    #: the table's id (`tbl…`) once the schema was read, else the configured name
    table_id: str = ""
    #: the table's fields (by field id) when the schema last fitted the mapping
    fields_seen: dict[str, Mapping[str, Any]] = field(default_factory=dict)


class Runtime:
    """Clients, limiters, resolved routes and the breaker of one container."""

    def __init__(
        self,
        config: Config,
        tokens: TokenSource,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.clock = clock
        tuning = config.tuning
        self.api = make_api(
            token=tokens.current(),
            api_url=config.api_url,
            timeout=tuning.airtable_timeout_seconds,
        )
        self.breaker = Breaker(clock)
        self.token_limiter = RateLimiter(tuning.token_max_rps)
        self.pacers: dict[str, Pacer] = {}
        self.routes: dict[str, RouteState] = {}
        for route in config.routes:
            if route.base_id not in self.pacers:
                self.pacers[route.base_id] = PacerChain(
                    RateLimiter(tuning.max_rps), self.token_limiter
                )
            table = self.api.table(route.base_id, route.table)
            self.routes[route.name] = RouteState(route, table, route, route.table)

    # ------------------------------------------------------------------ cold start
    def check_all_at_start(self) -> None:
        """Run the schema check of every route before the first receive; raise one error
        listing every problem of every route. Resolves each route to Airtable's ids."""
        problems: list[ConfigError] = []
        several = len(self.routes) > 1
        for state in self.routes.values():
            try:
                self._check_at_start(state)
            except SchemaMismatchError as exc:
                prefix = f'route "{state.route.name}": ' if several else ""
                problems += [ConfigError(e.variable, prefix + e.problem) for e in exc.errors]
        if problems:
            tables = ", ".join(sorted({s.route.table for s in self.routes.values()}))
            raise SchemaMismatchError(tables, problems)

    def _check_at_start(self, state: RouteState) -> None:
        route = state.route
        check = verify_at_start(
            state.table,
            route.table,
            route.field_map,
            route.merge_on,
            self.config.schema_check,
            limiter=self.pacers[route.base_id],
        )
        if check.checked:
            self._resolve(state, check.table_id, check.airtable_fields)

    def _resolve(
        self, state: RouteState, table_id: str, fields: tuple[Mapping[str, Any], ...] | list[Any]
    ) -> None:
        route = state.route
        if table_id:
            state.table = self.api.table(route.base_id, table_id)
            state.table_id = table_id
        state.resolved = route.resolved(*field_index(fields))
        state.fields_seen = {str(f["id"]): f for f in fields if f.get("id")}

    # ------------------------------------------------------------------ per run
    def destinations(self) -> dict[str, Destination]:
        tuning = self.config.tuning
        out = {}
        for name, state in self.routes.items():
            pacer = self.pacers[state.route.base_id]
            sink = AirtableSink(
                state.table,
                state.resolved.merge_on,
                typecast=tuning.typecast,
                on_sent=pacer.mark_sent,
            )
            out[name] = Destination(name, sink, pacer)
        return out

    def router(self) -> Router:
        return Router(tuple(s.resolved for s in self.routes.values()), self.config.envelope)

    def guard(self, report: Report) -> RunGuard:
        return RunGuard(
            self.breaker,
            refresh_token=self.refresh_token,
            recheck_field=self.recheck_field,
            report=report,
        )

    def precheck(self) -> list[SystemicFailure]:
        """Before the run's first receive: re-check every open breaker; what is returned is
        still broken, and the run must not receive."""
        return recheck_open(self.breaker, self.recheck)

    # ------------------------------------------------------------------ re-checks
    def refresh_token(self) -> bool:
        """Read the secret past every cache; install the token if it changed."""
        token, changed = self.tokens.refresh()
        if changed:
            self.api.api_key = token
        return changed

    def recheck(self, failure: SystemicFailure) -> SystemicFailure | None:
        """None if `failure` is gone; else the failure as it stands now."""
        state = self.routes[failure.route]
        if failure.cause in (Cause.AUTH, Cause.SECRET):
            try:
                self.refresh_token()
            except SecretUnavailableError as exc:
                return SystemicFailure(failure.route, Cause.SECRET, str(exc))
            probe = self._auth_probe(failure.route)
            if probe is not None:
                return probe
            # Airtable takes the token again; the table is checked too when it can be read.
            return self._recheck_schema(state, failure, unreadable_means_fixed=True)
        return self._recheck_schema(state, failure)

    def _auth_probe(self, route: str) -> SystemicFailure | None:
        """`GET /v0/meta/whoami`: answers any valid token, whatever its scopes."""
        self.token_limiter.acquire()
        try:
            self.api.whoami()
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status == 401:
                return SystemicFailure(
                    route, Cause.AUTH, "Airtable still refuses the token (401), re-read just now"
                )
            raise
        return None

    def _recheck_schema(
        self, state: RouteState, failure: SystemicFailure, *, unreadable_means_fixed: bool = False
    ) -> SystemicFailure | None:
        """The route's table checked against its mapping as the base is now; when it fits,
        the route is resolved again (a field deleted and made again has a new id)."""
        route = state.route
        schema = self._read_schema(state)
        if schema is None:
            if unreadable_means_fixed:
                return None
            # The token cannot read the schema: nothing to check with. Try writing again
            # once SYSTEMIC_RETRY_SECONDS have passed since the failure was first seen.
            waited = self.clock() - failure.since
            if waited >= self.config.tuning.systemic_retry_seconds:
                return None
            return failure
        found = _table_in(schema, state)
        if found is None:
            return _table_gone(state)
        name = str(found.get("name") or route.table)
        problems = schema_problems({"tables": [found]}, name, route.field_map, route.merge_on)
        if problems:
            cause = cause_of_misfit({getattr(p, "kind", "") for p in problems})
            return SystemicFailure(route.name, cause, "; ".join(p.problem for p in problems))
        fields = tuple(found.get("fields") or ())
        # An untyped entry sends values as they come, so the schema check cannot judge its
        # field's type: it fits only while the type is the one the values were written to.
        # (A field deleted and made again has a new id: it is found by its name.)
        for field_id, seen in state.fields_seen.items():
            spec = route.field_map.spec(str(seen.get("name")))
            if spec is None or spec.type is not None:
                continue
            now = find(fields, field_id) or find(fields, str(seen.get("name")))
            drift = type_drift(route.field_map, field_id, now, seen)
            if drift is not None:
                return _drifted(state, drift, now)
        self._resolve(state, str(found.get("id") or ""), fields)
        return None

    def recheck_field(self, route: str, error: RecordsRejectedError) -> SystemicFailure | None:
        """Every record of a request was rejected on one field: has its type changed?"""
        state = self.routes[route]
        if not error.field:
            return None
        schema = self._read_schema(state)
        if schema is None:
            log.warning(
                "every record was rejected on field %r and the schema cannot be read to tell "
                "a retyped field from bad data; treating them as poison (grant the token "
                "schema.bases:read to tell them apart)",
                error.field,
            )
            return None
        found = _table_in(schema, state)
        if found is None:
            return _table_gone(state)
        fields = tuple(found.get("fields") or ())
        seen = find(tuple(state.fields_seen.values()), error.field)
        now = find(fields, str(seen["id"])) if seen else find(fields, error.field)
        drift = type_drift(state.route.field_map, error.field, now, seen)
        return None if drift is None else _drifted(state, drift, now)

    def _read_schema(self, state: RouteState) -> dict[str, Any] | None:
        """The base's schema now, or None when the token may not read it (403)."""
        self.pacers[state.route.base_id].acquire()
        try:
            return fetch_schema(state.table)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status == 403:
                return None
            raise


def _table_in(schema: Mapping[str, Any], state: RouteState) -> Mapping[str, Any] | None:
    """The route's table in a schema: by the id seen at cold start, else by its name."""
    tables = schema.get("tables") or []
    return find(tables, state.table_id) or find(tables, state.route.table)


def _table_gone(state: RouteState) -> SystemicFailure:
    return SystemicFailure(
        state.route.name, Cause.TABLE, f'table "{state.route.table}" is not in the base'
    )


def _drifted(state: RouteState, drift: str, now: Mapping[str, Any] | None) -> SystemicFailure:
    """A field that changed type (or, when `now` is None, is gone) since it was seen."""
    return SystemicFailure(state.route.name, Cause.TYPE if now is not None else Cause.FIELD, drift)
