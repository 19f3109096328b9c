"""The emulator: state, the request pipeline and the Python control API.

The pipeline mirrors what a client of the real service experiences, in this order:
route (404) -> token (401) -> base (403) -> rate limit and lockout (429, counted at the
arrival time plus the seeded arrival jitter) -> latency -> scope and table (403) -> fault
draw for record writes (503 / lost) -> body and records (422) -> apply. ``whoami`` stops
after the token. One lock guards all state; latency is slept outside it so concurrent
requests overlap as they do against the real service.

Imports go one way: this module builds the server (``server``) and answers control
requests (``control``); neither of them imports this module.
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
from datetime import UTC, datetime
from typing import Any

from .config import (
    ALL_SCOPES,
    EmulatorConfig,
    Faults,
    check_jitter,
    check_latency,
    check_lockout,
    check_rps,
    check_scopes,
)
from .control import handle_control
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
from .meta import PRIMARY_TYPES, complete_schema, field_model, retype_options, table_model
from .routes import Kind, Route, match_route
from .schema import find_field, find_table, validate_schema
from .server import EmulatorHTTPServer
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
from .wire import ApiRequest, Reply

__all__ = ["USER_ID", "ApiRequest", "Emulator", "Reply", "parse_body"]

_ID_ALPHABET = string.ascii_letters + string.digits
_UNSET: Any = object()
#: The user every token belongs to (``GET /v0/meta/whoami``).
USER_ID = "usrEmulatorUser01"
#: Largest magnitude a JSON number may have: Airtable parses numbers as doubles.
_MAX_DOUBLE = 1.7976931348623157e308


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


def _double_int(text: str) -> int:
    value = int(text)
    if abs(value) > _MAX_DOUBLE:
        raise ValueError(f"{text} is out of range")
    return value


def parse_body(body: bytes) -> Any:
    """Strict JSON: NaN, Infinity, numbers beyond a double's range (integers too) and text
    that is not Unicode (an escaped lone surrogate such as "\\ud800") are 422
    INVALID_REQUEST_BODY."""
    try:
        data = json.loads(
            body.decode("utf-8") or "null",
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_double_int,
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


def _free_name(name: Any, others: list[str], what: str) -> str:
    """``name`` if it is a non-empty string no other table/field has (ignoring case)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a {what} name must be a non-empty string")
    if name.casefold() in {other.casefold() for other in others}:
        raise ValueError(f'another {what} is already named "{name}" (ignoring case)')
    return name


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
        self._jitter_ms = self.config.arrival_jitter_ms
        self._limiter = RateLimiter(
            self.config.rate_limit_rps,
            self.config.lockout_seconds,
            reorder_seconds=self._jitter_ms / 1000.0,
        )
        self._latency = self.config.latency
        self._faults = self.config.faults
        seed = self.config.seed
        # One RNG per concern, all from the seed, so turning one on changes no other sequence.
        self._latency_rng = random.Random(f"{seed}:latency")
        self._fault_rng = random.Random(f"{seed}:faults")
        self._id_rng = random.Random(f"{seed}:ids")
        self._jitter_rng = random.Random(f"{seed}:jitter")
        self._schema_id_rng = random.Random(f"{seed}:schema-ids")
        self._issued_ids: set[str] = set()
        self._issued_schema_ids: set[str] = set()
        self._counters = Counters()
        self._write_log: list[WriteLogEntry] = []
        self._iterators = Iterators()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # ----------------------------------------------------------------- serving

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port) in a daemon thread; return the URL."""
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
        arrival_jitter_ms: float = _UNSET,
    ) -> None:
        """Change behaviour at runtime; arguments left out stay as they are.

        ``arrival_jitter_ms``: from now on each API request is counted by the rate limiter
        at its arrival plus a seeded uniform ``0..arrival_jitter_ms`` ms."""
        if faults is not _UNSET and not isinstance(faults, Faults):
            raise TypeError("faults must be a Faults instance")
        checked_jitter = _UNSET if arrival_jitter_ms is _UNSET else check_jitter(arrival_jitter_ms)
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
            if checked_jitter is not _UNSET:
                self._jitter_ms = checked_jitter
                self._limiter.reorder_seconds = checked_jitter / 1000.0

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
                "arrival_jitter_ms": self._jitter_ms,
            }

    def trigger_lockout(self, base_id: str) -> None:
        """Start a lockout of ``base_id`` now, as if a request had just been throttled."""
        with self._lock:
            if base_id not in self._bases:
                raise KeyError(base_id)
            self._limiter.start_lockout(base_id, time.monotonic())
            self._counters.lockouts += 1

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer one ``/__emulator/...`` request (see ``control``)."""
        return handle_control(self, method, path, body)

    # ------------------------------------------------------- world changes

    def define_base(self, base_id: str, schema: dict[str, Any]) -> dict[str, Any]:
        """Serve ``base_id`` with ``schema`` (the meta endpoint's shape), replacing any base
        of that id and its records. Missing ids (``tbl…``, ``fld…``, ``viw…``, ``sel…``),
        ``primaryFieldId`` (the first field) and views (a "Grid view") are generated from
        the seed. Every token may use the new base (tokens are not tied to bases).
        Returns the schema as served. Raises ValueError for a malformed schema."""
        if not base_id.startswith("app") or len(base_id) < 4:
            raise ValueError(f"base ids look like appXXXXXXXXXXXXXX, got {base_id!r}")
        with self._lock:
            completed = complete_schema(schema, self._new_schema_id)
            validate_schema(base_id, completed)
            self._bases[base_id] = _Base(completed)
            return copy.deepcopy(completed)

    def rename_table(self, base_id: str, table: str, new_name: str) -> dict[str, Any]:
        """Rename a table (by id or name); its id, fields and records stay. Returns its
        schema. KeyError if unknown, ValueError if the name is empty or taken."""
        with self._lock:
            base = self._bases[base_id]
            found = self._table_or_key_error(base_id, table)
            others = [t["name"] for t in base.schema["tables"] if t["id"] != found.id]
            found.schema["name"] = _free_name(new_name, others, "table")
            return copy.deepcopy(found.schema)

    def rename_field(self, base_id: str, table: str, field: str, new_name: str) -> dict[str, Any]:
        """Rename a field (by id or name). Its id and cells stay, so writes by id keep
        working, while writes by the old name get 422 UNKNOWN_FIELD_NAME. Returns the field."""
        with self._lock:
            found, spec = self._field_or_key_error(base_id, table, field)
            others = [f["name"] for f in found.schema["fields"] if f["id"] != spec["id"]]
            spec["name"] = _free_name(new_name, others, "field")
            return copy.deepcopy(spec)

    def retype_field(
        self,
        base_id: str,
        table: str,
        field: str,
        new_type: str,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change a field's type (e.g. currency -> checkbox), keeping its id and name.

        Existing cells of the field are cleared (see README: the emulator does not guess
        Airtable's conversions). ``options`` are checked like the meta API's; left out, a
        type that needs options gets defaults. Returns the field. KeyError if unknown,
        ValueError for a bad type or options, or a type the primary field cannot have."""
        with self._lock:
            found, spec = self._field_or_key_error(base_id, table, field)
            checked = retype_options(new_type, options, self._new_schema_id)
            if spec["id"] == found.schema.get("primaryFieldId") and new_type not in PRIMARY_TYPES:
                raise ValueError(f"the primary field cannot be of type {new_type}")
            spec["type"] = new_type
            spec.pop("options", None)
            if checked is not None:
                spec["options"] = checked
            found.drop_field(spec["id"])
            return copy.deepcopy(spec)

    def delete_field(self, base_id: str, table: str, field: str) -> None:
        """Delete a field and its cells. KeyError if unknown; ValueError for the primary
        field (Airtable cannot delete it either)."""
        with self._lock:
            found, spec = self._field_or_key_error(base_id, table, field)
            if spec["id"] == found.schema.get("primaryFieldId"):
                raise ValueError("the primary field cannot be deleted")
            found.schema["fields"].remove(spec)
            found.drop_field(spec["id"])

    def add_token(self, token: str, scopes: tuple[str, ...] = ALL_SCOPES) -> None:
        """Accept ``token`` with ``scopes`` from now on (ValueError if it exists already)."""
        checked = check_scopes(scopes)
        if not isinstance(token, str) or not token:
            raise ValueError("a token must be a non-empty string")
        with self._lock:
            if token in self._tokens:
                raise ValueError("that token exists already")
            self._tokens[token] = frozenset(checked)

    def rotate_token(self, old: str, new: str) -> None:
        """From now on ``old`` gets 401 AUTHENTICATION_REQUIRED and ``new`` has its scopes.
        KeyError if ``old`` is unknown; ValueError if ``new`` exists already."""
        if not isinstance(new, str) or not new:
            raise ValueError("a token must be a non-empty string")
        with self._lock:
            if old not in self._tokens:
                raise KeyError("unknown token")
            if new in self._tokens:
                raise ValueError("the new token exists already")
            self._tokens[new] = self._tokens.pop(old)

    def _table_or_key_error(self, base_id: str, table: str) -> Table:
        found = self._bases[base_id].table(table)
        if found is None:
            raise KeyError(f"{base_id}/{table}")
        return found

    def _field_or_key_error(
        self, base_id: str, table: str, field: str
    ) -> tuple[Table, dict[str, Any]]:
        found = self._table_or_key_error(base_id, table)
        spec = find_field(found.schema, field)
        if spec is None:
            raise KeyError(f"{base_id}/{table}/{field}")
        return found, spec

    def _new_schema_id(self, prefix: str) -> str:
        """A fresh ``tbl``/``fld``/``viw``/``sel`` id from the seed (caller holds the lock)."""
        while True:
            new_id = prefix + "".join(self._schema_id_rng.choice(_ID_ALPHABET) for _ in range(14))
            if new_id not in self._issued_schema_ids:
                self._issued_schema_ids.add(new_id)
                return new_id

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
        with self._lock:
            scopes = self._tokens.get(_bearer(request.authorization) or "")
        if scopes is None:
            raise authentication_required()
        if route.kind is Kind.WHOAMI:  # no base, so no per-base limit (per-token: not modelled)
            return Reply(200, {"id": USER_ID, "scopes": sorted(scopes)})
        base = self._bases.get(route.base_id)
        if base is None:
            raise forbidden()
        with self._lock:
            jitter = self._jitter_rng.uniform(0.0, self._jitter_ms) if self._jitter_ms else 0.0
            admission = self._limiter.admit(route.base_id, request.arrived + jitter / 1000.0)
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
        if route.kind is Kind.CREATE_TABLE:
            return Reply(200, self._create_table(base, parse_body(request.body)))
        with self._lock:
            table = base.table(route.table or "")
        if table is None:
            raise forbidden()
        if route.kind is Kind.CREATE_FIELD:
            return Reply(200, self._create_field(table, parse_body(request.body)))
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

    def _create_table(self, base: _Base, body: Any) -> dict[str, Any]:
        with self._lock:
            taken = [table["name"] for table in base.schema["tables"]]
            model = table_model(body, taken, self._new_schema_id)
            base.schema["tables"].append(model)
            base.tables[model["id"]] = Table(model)
            return copy.deepcopy(model)

    def _create_field(self, table: Table, body: Any) -> dict[str, Any]:
        with self._lock:
            taken = [field["name"] for field in table.schema["fields"]]
            model = field_model(body, table.name, taken, self._new_schema_id)
            table.schema["fields"].append(model)
            return copy.deepcopy(model)

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
