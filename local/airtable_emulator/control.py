"""``/__emulator/*``: control endpoints for out-of-process users (devstack, benchmarks).

They mirror the Python API, need no token and are neither rate-limited nor counted, so
observing the emulator never changes what it measures.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .config import Faults

if TYPE_CHECKING:
    from .emulator import Emulator

PREFIX = "/__emulator/"
_CONFIG_KEYS = {"latency", "faults", "lockout_seconds", "rate_limit_rps"}


def handle_control(emulator: Emulator, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Answer one control request: ``(status, JSON payload)``."""
    parts = [unquote(part) for part in path[len(PREFIX) :].strip("/").split("/")]
    try:
        return _route(emulator, method, parts, body)
    except (KeyError, IndexError):
        return 404, {"error": "NOT_FOUND"}
    except (ValueError, TypeError) as exc:
        return 400, {"error": str(exc)}


def _route(emulator: Emulator, method: str, parts: list[str], body: bytes) -> tuple[int, Any]:
    head = parts[0]
    if (method, head, len(parts)) == ("GET", "health", 1):
        return 200, {"ok": True}
    if (method, head, len(parts)) == ("GET", "stats", 1):
        return 200, emulator.stats.to_json()
    if (method, head, len(parts)) in (("POST", "stats", 2), ("DELETE", "stats", 1)):
        if method == "POST" and parts[1] != "reset":
            raise KeyError(parts[1])
        emulator.reset_stats()
        return 200, emulator.stats.to_json()
    if head == "records" and len(parts) == 3 and method in ("GET", "DELETE"):
        if method == "GET":
            return 200, emulator.records(parts[1], parts[2])
        return 200, {"deleted": emulator.clear(parts[1], parts[2])}
    if (method, head, len(parts)) == ("GET", "write-log", 1):
        return 200, [entry._asdict() for entry in emulator.write_log]
    if (method, head, len(parts)) == ("GET", "config", 1):
        return 200, emulator.current_settings()
    if (method, head, len(parts)) == ("POST", "config", 1):
        _apply_config(emulator, json.loads(body or b"{}"))
        return 200, emulator.current_settings()
    if (method, head, len(parts)) == ("POST", "lockout", 2):
        emulator.trigger_lockout(parts[1])
        return 200, {
            "base": parts[1],
            "lockout_seconds": emulator.current_settings()["lockout_seconds"],
        }
    raise KeyError(head)


def _apply_config(emulator: Emulator, data: Any) -> None:
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
    for key in ("lockout_seconds", "rate_limit_rps"):
        if key in data:
            changes[key] = data[key]
    emulator.configure(**changes)
