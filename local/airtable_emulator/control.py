"""``/__emulator/*``: control endpoints for out-of-process users (devstack, benchmarks).

They mirror the Python API, need no token and are neither rate-limited nor counted, so
observing or changing the world never changes what the emulator measures. Answers:
200 with JSON; 404 ``{"error": "NOT_FOUND"}`` for an unknown path, base, table, field or
token; 400 ``{"error": "<why>"}`` for a bad body or a change that cannot be made.

This module knows the emulator only through the :class:`Controlled` protocol, so it does
not import ``emulator`` (which imports it).
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import unquote

from .config import Faults
from .stats import EmulatorStats, WriteLogEntry
from .wire import CONTROL_PREFIX

PREFIX = CONTROL_PREFIX
_CONFIG_KEYS = {"latency", "faults", "lockout_seconds", "rate_limit_rps", "arrival_jitter_ms"}


class Controlled(Protocol):
    """The part of :class:`~airtable_emulator.Emulator` the control endpoints drive."""

    @property
    def stats(self) -> EmulatorStats: ...
    @property
    def write_log(self) -> list[WriteLogEntry]: ...
    def reset_stats(self) -> None: ...
    def records(self, base_id: str, table: str) -> list[dict[str, Any]]: ...
    def clear(self, base_id: str, table: str) -> int: ...
    def schema(self, base_id: str) -> dict[str, Any]: ...
    def configure(self, **changes: Any) -> None: ...
    def current_settings(self) -> dict[str, Any]: ...
    def trigger_lockout(self, base_id: str) -> None: ...
    def define_base(self, base_id: str, schema: dict[str, Any]) -> dict[str, Any]: ...
    def rename_table(self, base_id: str, table: str, new_name: str) -> dict[str, Any]: ...
    def rename_field(
        self, base_id: str, table: str, field: str, new_name: str
    ) -> dict[str, Any]: ...
    def retype_field(
        self,
        base_id: str,
        table: str,
        field: str,
        new_type: str,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def delete_field(self, base_id: str, table: str, field: str) -> None: ...
    def add_token(self, token: str, scopes: tuple[str, ...] = ...) -> None: ...
    def rotate_token(self, old: str, new: str) -> None: ...
    def set_permission(self, token: str, base_id: str, level: str) -> None: ...
    def set_capacity(self, base_id: str, rps: int | None) -> None: ...
    def capacity(self, base_id: str) -> int | None: ...
    def start_neighbour(self, base_id: str, rps: float) -> None: ...
    def stop_neighbour(self, base_id: str) -> None: ...
    def neighbour_stats(self, base_id: str) -> dict[str, int]: ...
    def set_billing_block(self, base_id: str, on: bool, shape: str | None = None) -> None: ...
    def set_outage(self, base_id: str, on: bool, status: int = ..., scope: str = ...) -> None: ...
    def set_record_cap(self, base_id: str, cap: int | None) -> None: ...
    def conditions(self) -> dict[str, Any]: ...


def handle_control(emulator: Controlled, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Answer one control request: ``(status, JSON payload)``."""
    parts = [unquote(part) for part in path[len(PREFIX) :].strip("/").split("/")]
    try:
        return _route(emulator, method, parts, body)
    except (KeyError, IndexError):
        return 404, {"error": "NOT_FOUND"}
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return 400, {"error": str(exc)}


def _route(emulator: Controlled, method: str, parts: list[str], body: bytes) -> tuple[int, Any]:
    head, size = parts[0], len(parts)
    if head == "bases" and size >= 2:
        return _bases(emulator, method, parts[1:], body)
    if head == "tokens":
        return _tokens(emulator, method, parts[1:], body)
    if head in _CONDITIONS and size == 2:
        return _CONDITIONS[head](emulator, method, parts[1], body)
    if (method, head, size) == ("GET", "conditions", 1):
        return 200, emulator.conditions()
    if (method, head, size) == ("POST", "permissions", 1):
        data = _object(_json(body), "body", allowed={"token", "base", "level"})
        emulator.set_permission(data.get("token"), data.get("base"), data.get("level"))
        return 200, {"base": data.get("base"), "level": data.get("level")}
    if (method, head, size) == ("GET", "health", 1):
        return 200, {"ok": True}
    if (method, head, size) == ("GET", "stats", 1):
        return 200, emulator.stats.to_json()
    if (method, head, size) in (("POST", "stats", 2), ("DELETE", "stats", 1)):
        if method == "POST" and parts[1] != "reset":
            raise KeyError(parts[1])
        emulator.reset_stats()
        return 200, emulator.stats.to_json()
    if head == "records" and size == 3 and method in ("GET", "DELETE"):
        if method == "GET":
            return 200, emulator.records(parts[1], parts[2])
        return 200, {"deleted": emulator.clear(parts[1], parts[2])}
    if (method, head, size) == ("GET", "write-log", 1):
        return 200, [entry._asdict() for entry in emulator.write_log]
    if (method, head, size) == ("GET", "config", 1):
        return 200, emulator.current_settings()
    if (method, head, size) == ("POST", "config", 1):
        _apply_config(emulator, _json(body))
        return 200, emulator.current_settings()
    if (method, head, size) == ("POST", "lockout", 2):
        emulator.trigger_lockout(parts[1])
        return 200, {
            "base": parts[1],
            "lockout_seconds": emulator.current_settings()["lockout_seconds"],
        }
    raise KeyError(head)


def _bases(emulator: Controlled, method: str, parts: list[str], body: bytes) -> tuple[int, Any]:
    """``bases/{base}``, ``bases/{base}/tables/{table}``, ``.../fields/{field}``."""
    base = parts[0]
    if len(parts) == 1 and method == "PUT":
        return 200, emulator.define_base(base, _object(_json(body), "schema"))
    if len(parts) == 1 and method == "GET":
        return 200, emulator.schema(base)
    if len(parts) == 3 and parts[1] == "tables" and method == "PATCH":
        change = _object(_json(body), "body", allowed={"name"})
        if "name" not in change:
            raise ValueError('the body must hold "name"')
        return 200, emulator.rename_table(base, parts[2], change["name"])
    if len(parts) == 5 and parts[1] == "tables" and parts[3] == "fields":
        table, field = parts[2], parts[4]
        if method == "DELETE":
            emulator.delete_field(base, table, field)
            return 200, {"deleted": True, "field": field}
        if method == "PATCH":
            return 200, _change_field(emulator, base, table, field, _json(body))
    raise KeyError("/".join(parts))


def _change_field(
    emulator: Controlled, base: str, table: str, field: str, body: Any
) -> dict[str, Any]:
    change = _object(body, "body", allowed={"name", "type", "options"})
    if not change or ("options" in change and "type" not in change):
        raise ValueError('the body must hold "name" and/or "type" (with optional "options")')
    model: dict[str, Any] = {}
    if "type" in change:  # before a rename, so that a bad type changes nothing
        model = emulator.retype_field(base, table, field, change["type"], change.get("options"))
        field = model["id"]
    if "name" in change:
        model = emulator.rename_field(base, table, field, change["name"])
    return model


def _tokens(emulator: Controlled, method: str, parts: list[str], body: bytes) -> tuple[int, Any]:
    """``POST tokens`` adds a token; ``POST tokens/rotate`` rotates one. Tokens are never
    echoed back."""
    if method == "POST" and parts == []:
        data = _object(_json(body), "body", allowed={"token", "scopes"})
        if "scopes" in data:
            scopes = data["scopes"]
            if not isinstance(scopes, list):
                raise ValueError('"scopes" must be a list')
            emulator.add_token(data.get("token"), tuple(scopes))
        else:
            emulator.add_token(data.get("token"))
        return 200, {"added": True}
    if method == "POST" and parts == ["rotate"]:
        data = _object(_json(body), "body", allowed={"old", "new"})
        emulator.rotate_token(data.get("old"), data.get("new"))
        return 200, {"rotated": True}
    raise KeyError("tokens")


def _json(body: bytes) -> Any:
    return json.loads(body or b"{}")


def _object(data: Any, what: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"the {what} must be a JSON object")
    if allowed is not None and not set(data) <= allowed:
        raise ValueError(f"unknown keys {sorted(set(data) - allowed)}; allowed: {sorted(allowed)}")
    return data


def _apply_config(emulator: Controlled, data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError("config body must be a JSON object")
    unknown = set(data) - _CONFIG_KEYS
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    changes: dict[str, Any] = {}
    if "latency" in data:
        latency = data["latency"]
        changes["latency"] = (latency, latency) if isinstance(latency, int | float) else latency
    if "faults" in data:
        current = emulator.current_settings()["faults"]
        changes["faults"] = Faults.from_dict({**current, **data["faults"]})
    for key in ("lockout_seconds", "rate_limit_rps", "arrival_jitter_ms"):
        if key in data:
            changes[key] = data[key]
    emulator.configure(**changes)


# ------------------------------------------------------------- account conditions


def _capacity(emulator: Controlled, method: str, base: str, body: bytes) -> tuple[int, Any]:
    """``POST capacity/{base}`` with ``{"rps": n or null}``; ``GET`` reads it."""
    if method == "POST":
        data = _object(_json(body), "body", allowed={"rps"})
        if "rps" not in data:
            raise ValueError('the body must hold "rps" (a whole number, or null for the default)')
        emulator.set_capacity(base, data["rps"])
    elif method != "GET":
        raise KeyError(method)
    return 200, {"base": base, "rps": emulator.capacity(base)}


def _neighbour(emulator: Controlled, method: str, base: str, body: bytes) -> tuple[int, Any]:
    """``POST neighbour/{base}`` with ``{"rps": x}`` starts it, ``DELETE`` stops it,
    ``GET`` reads its ``{"sent", "refused"}``."""
    if method == "POST":
        data = _object(_json(body), "body", allowed={"rps"})
        if "rps" not in data:
            raise ValueError('the body must hold "rps"')
        emulator.start_neighbour(base, data["rps"])
    elif method == "DELETE":
        stats = emulator.neighbour_stats(base)
        emulator.stop_neighbour(base)
        return 200, stats
    elif method != "GET":
        raise KeyError(method)
    return 200, emulator.neighbour_stats(base)


def _switch(body: bytes, allowed: set[str]) -> dict[str, Any]:
    data = _object(_json(body), "body", allowed=allowed | {"on"})
    if not isinstance(data.get("on"), bool):
        raise ValueError('the body must hold "on": true or false')
    return data


def _billing(emulator: Controlled, method: str, base: str, body: bytes) -> tuple[int, Any]:
    """``POST billing-block/{base or *}`` with ``{"on": bool, "shape"?: "errors"|"error"}``."""
    if method != "POST":
        raise KeyError(method)
    data = _switch(body, {"shape"})
    emulator.set_billing_block(base, data["on"], data.get("shape"))
    return 200, {"base": base, "on": data["on"]}


def _outage(emulator: Controlled, method: str, base: str, body: bytes) -> tuple[int, Any]:
    """``POST outage/{base or *}`` with ``{"on": bool, "status"?: int, "scope"?: "all"|"data"}``."""
    if method != "POST":
        raise KeyError(method)
    data = _switch(body, {"status", "scope"})
    options = {key: data[key] for key in ("status", "scope") if key in data}
    emulator.set_outage(base, data["on"], **options)
    return 200, {"base": base, "on": data["on"], **options}


def _record_cap(emulator: Controlled, method: str, base: str, body: bytes) -> tuple[int, Any]:
    """``POST record-cap/{base}`` with ``{"cap": n or null}``."""
    if method != "POST":
        raise KeyError(method)
    data = _object(_json(body), "body", allowed={"cap"})
    if "cap" not in data:
        raise ValueError('the body must hold "cap" (a whole number, or null for none)')
    emulator.set_record_cap(base, data["cap"])
    return 200, {"base": base, "cap": data["cap"]}


_CONDITIONS = {
    "capacity": _capacity,
    "neighbour": _neighbour,
    "billing-block": _billing,
    "outage": _outage,
    "record-cap": _record_cap,
}
