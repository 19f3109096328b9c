"""The emulator: serving, and the Python control API over one :class:`~.state.State`.

The request pipeline is ``pipeline``; world changes (bases, fields, tokens, permission
levels) are ``world.WorldControls`` and account conditions (capacity, neighbour, billing
block, outages, record caps) ``account.AccountControls``, both parts of this class.

Imports go one way: this module builds the server (``server``) and answers control
requests (``control``); neither of them imports this module.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import pipeline
from .account import AccountControls
from .bodies import parse_body
from .config import (
    EmulatorConfig,
    Faults,
    check_jitter,
    check_latency,
    check_lockout,
    check_rps,
)
from .control import handle_control
from .pipeline import USER_ID
from .server import EmulatorHTTPServer
from .state import State
from .stats import Counters, EmulatorStats, WriteLogEntry
from .wire import ApiRequest, Reply
from .world import WorldControls

__all__ = ["USER_ID", "ApiRequest", "Emulator", "Reply", "parse_body"]

_UNSET: Any = object()


class Emulator(WorldControls, AccountControls):
    """A local Airtable REST API; see the package README for what it enforces."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._state = State(self.config)
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

    # ------------------------------------------------------ what the server calls

    @property
    def max_body_bytes(self) -> int:
        return self.config.max_body_bytes

    def clock(self) -> float:
        """The emulator's clock (``config.clock``): what arriving requests are stamped with."""
        return self._state.clock()

    def handle(self, request: ApiRequest) -> Reply:
        """Run one API request through the pipeline and count its outcome."""
        return pipeline.handle(self._state, request)

    def reject_too_large(self) -> Reply:
        """Count and answer a request whose body exceeds ``max_body_bytes``."""
        return pipeline.reject_too_large(self._state)

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer one ``/__emulator/...`` request (see ``control``)."""
        return handle_control(self, method, path, body)

    # ------------------------------------------------------------ observing

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters (neighbour requests due until now counted first)."""
        state = self._state
        with state.lock:
            state.catch_up()
            return state.counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and empty the write log (records stay)."""
        state = self._state
        with state.lock:
            state.catch_up()
            state.counters = Counters()
            state.write_log = []

    @property
    def write_log(self) -> list[WriteLogEntry]:
        """Applied writes in order: ``(time, base, table, method, record_ids, kind)``."""
        with self._state.lock:
            log = self._state.write_log
            return [entry._replace(record_ids=list(entry.record_ids)) for entry in log]

    def records(self, base_id: str, table: str) -> list[dict[str, Any]]:
        """The table's records (by table name or id) in creation order, as the API shows them."""
        with self._state.lock:
            found = self._state.table_or_key_error(base_id, table)
            return [found.render(record) for record in found.records.values()]

    def clear(self, base_id: str, table: str) -> int:
        """Delete every record of a table; returns how many there were."""
        with self._state.lock:
            found = self._state.table_or_key_error(base_id, table)
            count = len(found.records)
            found.clear()
            return count

    def schema(self, base_id: str) -> dict[str, Any]:
        """The base's current schema (including select options typecast added)."""
        with self._state.lock:
            return copy.deepcopy(self._state.base_or_key_error(base_id).schema)

    # ------------------------------------------------------------ settings

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

        ``rate_limit_rps`` is the default limit of every base without a capacity of its own
        (``set_capacity``). ``arrival_jitter_ms``: from now on each API request is counted
        by the rate limiter at its arrival plus a seeded uniform ``0..arrival_jitter_ms`` ms."""
        if faults is not _UNSET and not isinstance(faults, Faults):
            raise TypeError("faults must be a Faults instance")
        checked_jitter = _UNSET if arrival_jitter_ms is _UNSET else check_jitter(arrival_jitter_ms)
        checked_latency = _UNSET if latency is _UNSET else check_latency(latency)
        checked_rps = _UNSET if rate_limit_rps is _UNSET else check_rps(rate_limit_rps)
        checked_lockout = _UNSET if lockout_seconds is _UNSET else check_lockout(lockout_seconds)
        state = self._state
        with state.lock:
            state.catch_up()
            if checked_latency is not _UNSET:
                state.latency = checked_latency
            if checked_rps is not _UNSET:
                state.limiter.rps = checked_rps
            if checked_lockout is not _UNSET:
                state.limiter.lockout_seconds = checked_lockout
            if faults is not _UNSET:
                state.faults = faults
            if checked_jitter is not _UNSET:
                state.jitter_ms = checked_jitter
                state.limiter.reorder_seconds = checked_jitter / 1000.0

    def current_settings(self) -> dict[str, Any]:
        """The runtime-configurable settings, JSON-friendly."""
        state = self._state
        with state.lock:
            return {
                "latency": list(state.latency),
                "faults": {
                    "error_5xx_rate": state.faults.error_5xx_rate,
                    "lost_response_rate": state.faults.lost_response_rate,
                },
                "lockout_seconds": state.limiter.lockout_seconds,
                "rate_limit_rps": state.limiter.rps,
                "max_body_bytes": self.config.max_body_bytes,
                "arrival_jitter_ms": state.jitter_ms,
            }

    def trigger_lockout(self, base_id: str) -> None:
        """Start a lockout of ``base_id`` now, as if a request had just been throttled."""
        state = self._state
        with state.lock:
            state.base_or_key_error(base_id)
            now = state.clock()
            state.catch_up(base_id, now)
            state.limiter.start_lockout(base_id, now)
            state.counters.lockout(base_id)
