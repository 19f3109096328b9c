"""The emulator: state, the request pipeline and the Python control API.

The pipeline mirrors what a client of the real service experiences, in this order:
route (404) -> token (401) -> base (403) -> rate limit and lockout (429) -> latency ->
scope and table (403) -> fault draw for writes (503 / lost) -> body and records (422)
-> apply. One lock guards all state; latency is slept outside it so concurrent requests
overlap as they do against the real service.
"""

from __future__ import annotations

import copy
import json
import math
import random
import string
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .config import EmulatorConfig, Faults, check_latency, check_lockout, check_rps
from .errors import (
    ApiError,
    authentication_required,
    forbidden,
    invalid_request,
    not_found,
    rate_limited,
    service_unavailable,
    too_large,
    unprocessable,
)
from .fields import format_datetime
from .limits import Admission, RateLimiter
from .listing import Iterators, list_page, params_from_body, params_from_query
from .routes import Kind, Route, match_route
from .schema import find_table, validate_schema
from .stats import Counters, EmulatorStats, WriteLogEntry
from .store import (
    Table,
    WriteOutcome,
    check_count,
    create_records,
    delete_records,
    merge_fields,
    update_records,
    upsert_records,
)

_ID_ALPHABET = string.ascii_letters + string.digits
_UNSET: Any = object()


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request, as the server hands it over."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: bytes
    #: ``time.monotonic()`` when the request was fully read: what the limiter counts.
    arrived: float


@dataclass(frozen=True)
class Reply:
    """The answer; ``drop`` means close the connection without sending anything."""

    status: int
    body: Any
    drop: bool = False


class _Base:
    """A base: its schema payload (mutable: typecast adds select options) and tables."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = copy.deepcopy(schema)
        self.tables = {table["id"]: Table(table) for table in self.schema["tables"]}

    def table(self, id_or_name: str) -> Table | None:
        found = find_table(self.schema, id_or_name)
        return self.tables[found["id"]] if found else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_body(body: bytes) -> Any:
    """Strict JSON: NaN, Infinity, overflowing numbers and text that is not Unicode (an
    escaped lone surrogate such as "\\ud800") are 422 INVALID_REQUEST_BODY."""
    try:
        data = json.loads(
            body.decode("utf-8") or "null",
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be stored
        return data
    except (ValueError, UnicodeError):
        raise unprocessable("INVALID_REQUEST_BODY", "Could not parse request body") from None


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _body_dict(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict) or not set(body) <= allowed:
        raise invalid_request()
    for key in ("typecast", "returnFieldsByFieldId"):
        if key in body and not isinstance(body[key], bool):
            raise invalid_request()
    return body


def _query_flag(query: dict[str, list[str]], name: str) -> bool:
    values = query.get(name)
    return bool(values) and values[-1].lower() in ("1", "true")


class Emulator:
    """A local Airtable REST API; see the package README for what it enforces."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        for base_id, schema in self.config.bases.items():
            validate_schema(base_id, schema)
        self._lock = threading.Lock()
        self._bases = {base_id: _Base(schema) for base_id, schema in self.config.bases.items()}
        self._tokens = {token: frozenset(scopes) for token, scopes in self.config.tokens.items()}
        self._limiter = RateLimiter(self.config.rate_limit_rps, self.config.lockout_seconds)
        self._latency = self.config.latency
        self._faults = self.config.faults
        seed = self.config.seed
        self._latency_rng = random.Random(f"{seed}:latency")
        self._fault_rng = random.Random(f"{seed}:faults")
        self._id_rng = random.Random(f"{seed}:ids")
        self._issued_ids: set[str] = set()
        self._counters = Counters()
        self._write_log: list[WriteLogEntry] = []
        self._iterators = Iterators()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # ----------------------------------------------------------------- serving

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port) in a daemon thread; return the URL."""
        from .server import EmulatorHTTPServer

        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = EmulatorHTTPServer((host, port), self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long stop() may wait
            name="airtable-emulator",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        bound_host, bound_port = server.server_address[:2]
        self._url = f"http://{bound_host}:{bound_port}"
        return self._url

    def stop(self) -> None:
        """Stop serving and drop open connections (records and stats are kept)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = self._url = None

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """``with emu.serve() as url:`` runs the server for the block."""
        url = self.start(host, port)
        try:
            yield url
        finally:
            self.stop()

    @property
    def url(self) -> str | None:
        """The base URL while serving, else None."""
        return self._url

    # ------------------------------------------------------------ control API

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and empty the write log (records stay)."""
        with self._lock:
            self._counters = Counters()
            self._write_log = []

    @property
    def write_log(self) -> list[WriteLogEntry]:
        """Applied writes in order: ``(time, base, table, method, record_ids, kind)``."""
        with self._lock:
            return [entry._replace(record_ids=list(entry.record_ids)) for entry in self._write_log]

    def records(self, base_id: str, table: str) -> list[dict[str, Any]]:
        """The table's records (by table name or id) in creation order, as the API shows them."""
        with self._lock:
            found = self._table_or_key_error(base_id, table)
            return [found.render(record) for record in found.records.values()]

    def clear(self, base_id: str, table: str) -> int:
        """Delete every record of a table; returns how many there were."""
        with self._lock:
            found = self._table_or_key_error(base_id, table)
            count = len(found.records)
            found.clear()
            return count

    def schema(self, base_id: str) -> dict[str, Any]:
        """The base's current schema (including select options typecast added)."""
        with self._lock:
            return copy.deepcopy(self._bases[base_id].schema)

    def configure(
        self,
        *,
        latency: tuple[float, float] = _UNSET,
        faults: Faults = _UNSET,
        lockout_seconds: float = _UNSET,
        rate_limit_rps: int | None = _UNSET,
    ) -> None:
        """Change behaviour at runtime; arguments left out stay as they are."""
        if faults is not _UNSET and not isinstance(faults, Faults):
            raise TypeError("faults must be a Faults instance")
        checked_latency = _UNSET if latency is _UNSET else check_latency(latency)
        checked_rps = _UNSET if rate_limit_rps is _UNSET else check_rps(rate_limit_rps)
        checked_lockout = _UNSET if lockout_seconds is _UNSET else check_lockout(lockout_seconds)
        with self._lock:
            if checked_latency is not _UNSET:
                self._latency = checked_latency
            if checked_rps is not _UNSET:
                self._limiter.rps = checked_rps
            if checked_lockout is not _UNSET:
                self._limiter.lockout_seconds = checked_lockout
            if faults is not _UNSET:
                self._faults = faults

    def current_settings(self) -> dict[str, Any]:
        """The runtime-configurable settings, JSON-friendly."""
        with self._lock:
            return {
                "latency": list(self._latency),
                "faults": {
                    "error_5xx_rate": self._faults.error_5xx_rate,
                    "lost_response_rate": self._faults.lost_response_rate,
                },
                "lockout_seconds": self._limiter.lockout_seconds,
                "rate_limit_rps": self._limiter.rps,
                "max_body_bytes": self.config.max_body_bytes,
            }

    def trigger_lockout(self, base_id: str) -> None:
        """Start a lockout of ``base_id`` now, as if a request had just been throttled."""
        with self._lock:
            if base_id not in self._bases:
                raise KeyError(base_id)
            self._limiter.start_lockout(base_id, time.monotonic())
            self._counters.lockouts += 1

    def _table_or_key_error(self, base_id: str, table: str) -> Table:
        found = self._bases[base_id].table(table)
        if found is None:
            raise KeyError(f"{base_id}/{table}")
        return found

    # ------------------------------------------------------------ API pipeline

    @property
    def max_body_bytes(self) -> int:
        return self.config.max_body_bytes

    def reject_too_large(self) -> Reply:
        """Count and answer a request whose body exceeds ``max_body_bytes``.

        The server calls this before reading the body, so such a request never reaches
        the limiter: it is refused at the edge, as a proxy would.
        """
        error = too_large(self.config.max_body_bytes)
        with self._lock:
            self._counters.requests += 1
            self._counters.by_status[error.status] += 1
        return Reply(error.status, error.body)

    def handle(self, request: ApiRequest) -> Reply:
        """Run one API request through the pipeline and count its outcome."""
        with self._lock:
            self._counters.requests += 1
        try:
            reply = self._process(request)
        except ApiError as error:
            reply = Reply(error.status, error.body)
        except Exception as error:  # an emulator bug: say so rather than drop the connection
            traceback.print_exc()
            reply = Reply(
                500, {"error": {"type": "EMULATOR_INTERNAL_ERROR", "message": repr(error)}}
            )
        with self._lock:
            if reply.drop:
                self._counters.lost_responses += 1
            else:
                self._counters.by_status[reply.status] += 1
        return reply

    def _process(self, request: ApiRequest) -> Reply:
        route = match_route(request.method, request.path)
        if route is None:
            raise not_found()
        scopes = self._tokens.get(_bearer(request.authorization) or "")
        if scopes is None:
            raise authentication_required()
        base = self._bases.get(route.base_id)
        if base is None:
            raise forbidden()
        with self._lock:
            admission = self._limiter.admit(route.base_id, request.arrived)
            if admission is not Admission.ACCEPTED:
                self._counters.throttled += 1
            if admission is Admission.LOCKOUT_STARTED:
                self._counters.lockouts += 1
            low, high = self._latency
            delay = self._latency_rng.uniform(low, high) if high > 0 else 0.0
        if delay > 0:
            time.sleep(delay)
        if admission is not Admission.ACCEPTED:
            raise rate_limited()
        if route.scope not in scopes:
            raise forbidden()
        if route.kind is Kind.META:
            return Reply(200, self._meta(base, request.query))
        with self._lock:
            table = base.table(route.table or "")
        if table is None:
            raise forbidden()
        lost = route.is_write and self._draw_fault()
        try:
            body = self._dispatch(route, table, request)
        except ApiError as error:
            if lost:
                return Reply(error.status, error.body, drop=True)
            raise
        return Reply(200, body, drop=lost)

    def _draw_fault(self) -> bool:
        """Count a write and draw its fault: raises for a 503, returns True to lose it."""
        with self._lock:
            self._counters.write_requests += 1
            draw = self._fault_rng.random()
            faults = self._faults
            if draw < faults.error_5xx_rate:
                self._counters.injected_5xx += 1
                raise service_unavailable()
        return draw < faults.error_5xx_rate + faults.lost_response_rate

    def _meta(self, base: _Base, query: dict[str, list[str]]) -> dict[str, Any]:
        with self._lock:
            payload = copy.deepcopy(base.schema)
        if "visibleFieldIds" in query.get("include", []) + query.get("include[]", []):
            for table in payload["tables"]:
                for view in table.get("views") or []:
                    view.setdefault("visibleFieldIds", [f["id"] for f in table["fields"]])
        return payload

    def _dispatch(self, route: Route, table: Table, request: ApiRequest) -> Any:
        kind, query = route.kind, request.query
        if kind is Kind.LIST:
            params = params_from_query(query)
            with self._lock:
                return list_page(route.base_id, table, params, self._iterators)
        if kind is Kind.LIST_POST:
            params = params_from_body(parse_body(request.body) or {})
            with self._lock:
                return list_page(route.base_id, table, params, self._iterators)
        if kind is Kind.GET_RECORD:
            with self._lock:
                record = table.records.get(route.record_id or "")
                if record is None:
                    raise not_found()
                return table.render(record, by_field_id=_query_flag(query, "returnFieldsByFieldId"))
        if kind is Kind.DELETE or kind is Kind.DELETE_RECORD:
            return self._delete(route, table, query)
        return self._write(route, table, request.method, parse_body(request.body))

    def _delete(self, route: Route, table: Table, query: dict[str, list[str]]) -> Any:
        single = route.kind is Kind.DELETE_RECORD
        ids = [route.record_id] if single else check_count(query.get("records[]", []), "deleted")
        with self._lock:
            deleted = delete_records(table, ids, missing_is_404=single)
            self._counters.records_deleted += len(deleted)
            self._log(route.base_id, table, "DELETE", deleted, "deleted")
        if single:
            return {"id": deleted[0], "deleted": True}
        return {"records": [{"id": record_id, "deleted": True} for record_id in deleted]}

    def _write(self, route: Route, table: Table, method: str, body: Any) -> Any:
        common = {"typecast", "returnFieldsByFieldId"}
        replace = method == "PUT"
        if route.kind is Kind.CREATE:
            body = _body_dict(body, common | {"records", "fields"})
            if ("records" in body) == ("fields" in body):
                raise invalid_request()
            single = "fields" in body
            entries = [{"fields": body["fields"]}] if single else body["records"]
            entries = check_count(entries, "created")
        elif route.kind is Kind.UPDATE_RECORD:
            body = _body_dict(body, common | {"fields"})
            if "fields" not in body:
                raise unprocessable(
                    "INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "fields"'
                )
            single = True
            entries = [{"id": route.record_id, "fields": body["fields"]}]
        else:
            body = _body_dict(body, common | {"records", "performUpsert"})
            if "records" not in body:
                raise unprocessable(
                    "INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "records"'
                )
            single = False
            entries = check_count(body["records"], "updated")
        typecast = body.get("typecast", False)
        upsert = route.kind is Kind.UPDATE and body.get("performUpsert") is not None
        with self._lock:
            now = format_datetime(datetime.now(UTC))
            if route.kind is Kind.CREATE:
                outcome = create_records(
                    table, entries, typecast=typecast, new_id=self._new_id, now=now
                )
            elif upsert:
                merge_on = merge_fields(table, body["performUpsert"])
                outcome = upsert_records(
                    table,
                    entries,
                    merge_on,
                    typecast=typecast,
                    replace=replace,
                    new_id=self._new_id,
                    now=now,
                )
            else:
                outcome = update_records(
                    table,
                    entries,
                    typecast=typecast,
                    replace=replace,
                    new_id=self._new_id,
                    missing_is_404=route.kind is Kind.UPDATE_RECORD,
                )
            self._record_write(route.base_id, table, method, outcome)
            by_id = body.get("returnFieldsByFieldId", False)
            rendered = [table.render(r, by_field_id=by_id) for r in outcome.records]
        if single:
            return rendered[0]
        response: dict[str, Any] = {"records": rendered}
        if upsert:
            response["createdRecords"] = outcome.created
            response["updatedRecords"] = outcome.updated
        return response

    def _record_write(self, base_id: str, table: Table, method: str, outcome: WriteOutcome) -> None:
        """Stats and write log for an applied write (caller holds the lock)."""
        self._counters.records_per_write.append(len(outcome.records))
        self._counters.records_created += len(outcome.created)
        self._counters.records_updated += len(outcome.updated)
        self._log(base_id, table, method, outcome.created, "created")
        self._log(base_id, table, method, outcome.updated, "updated")

    def _log(self, base_id: str, table: Table, method: str, ids: list[str], kind: str) -> None:
        if ids:
            entry = WriteLogEntry(time.monotonic(), base_id, table.name, method, list(ids), kind)
            self._write_log.append(entry)

    def _new_id(self) -> str:
        """A fresh ``rec`` + 14 alphanumerics, reproducible from the seed (caller holds lock)."""
        while True:
            record_id = "rec" + "".join(self._id_rng.choice(_ID_ALPHABET) for _ in range(14))
            if record_id not in self._issued_ids:
                self._issued_ids.add(record_id)
                return record_id
