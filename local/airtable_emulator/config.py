"""Configuration of an emulator instance: bases, tokens, limits, latency and faults."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .schema import DONATIONS_BASE_ID, donations_schema

DEFAULT_TOKEN = "patLocalDevToken"
SCOPE_READ = "data.records:read"
SCOPE_WRITE = "data.records:write"
SCOPE_SCHEMA = "schema.bases:read"
#: Needed by the meta API's writes (create a table, create a field).
SCOPE_SCHEMA_WRITE = "schema.bases:write"
ALL_SCOPES: tuple[str, ...] = (SCOPE_READ, SCOPE_WRITE, SCOPE_SCHEMA, SCOPE_SCHEMA_WRITE)

#: Airtable does not document its body limit. 2 MiB holds ten records with a full
#: 100,000-character cell each, yet makes a runaway payload fail loudly in tests.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
#: Bases per page of ``GET /v0/meta/bases`` (Airtable's page size).
DEFAULT_BASES_PAGE_SIZE = 1000


def _check_rate(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class Faults:
    """Injected failures of record writes (POST/PATCH/PUT), drawn once per request.

    ``error_5xx_rate``: answer 503 without applying the write.
    ``lost_response_rate``: apply the write, then close the connection without answering,
    which is what a client sees when a response is lost after the server committed.
    """

    error_5xx_rate: float = 0.0
    lost_response_rate: float = 0.0

    def __post_init__(self) -> None:
        _check_rate("error_5xx_rate", self.error_5xx_rate)
        _check_rate("lost_response_rate", self.lost_response_rate)
        if self.error_5xx_rate + self.lost_response_rate > 1.0:
            raise ValueError("error_5xx_rate + lost_response_rate must not exceed 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        unknown = set(data) - {"error_5xx_rate", "lost_response_rate"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        return cls(**data)


def check_latency(latency: Any) -> tuple[float, float]:
    """Validate a ``(min, max)`` latency in seconds."""
    low, high = (float(v) for v in latency)
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 <= low <= high):
        raise ValueError(f"latency must be (min, max) with 0 <= min <= max, got {latency!r}")
    return (low, high)


def check_rps(rps: Any) -> int | None:
    """Validate a requests-per-second limit (None disables the limiter)."""
    if rps is None:
        return None
    if isinstance(rps, bool) or not isinstance(rps, int | float) or rps < 1 or rps != int(rps):
        raise ValueError(f"rate_limit_rps must be a positive whole number or None, got {rps!r}")
    return int(rps)


def check_jitter(milliseconds: Any) -> float:
    """Validate an arrival jitter bound in milliseconds."""
    if isinstance(milliseconds, bool):
        raise ValueError(f"arrival_jitter_ms must be a number >= 0, got {milliseconds!r}")
    value = float(milliseconds)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"arrival_jitter_ms must be a number >= 0, got {milliseconds!r}")
    return value


def check_scopes(scopes: Any) -> tuple[str, ...]:
    """Validate a token's scopes: a list of the scopes the emulator knows (typos fail)."""
    if isinstance(scopes, str) or not all(isinstance(scope, str) for scope in scopes):
        raise ValueError(f"scopes must be a list of scope names, got {scopes!r}")
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {list(ALL_SCOPES)}")
    return tuple(dict.fromkeys(scopes))


def check_lockout(seconds: Any) -> float:
    """Validate a lockout length in seconds."""
    value = float(seconds)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"lockout_seconds must be >= 0, got {seconds!r}")
    return value


@dataclass
class EmulatorConfig:
    """Everything an :class:`~airtable_emulator.Emulator` needs; defaults mirror Airtable.

    The defaults give one Donations base and one token with all scopes, the real
    5 requests/s limit and 30 s lockout, no latency, no arrival jitter and no faults.

    ``arrival_jitter_ms``: each API request is counted by the rate limiter at its real
    arrival plus a seeded uniform delay in ``[0, arrival_jitter_ms]`` ms, as a network
    that delays packets unevenly would make Airtable see it.

    ``clock``: what arriving requests are stamped with and what lockouts, neighbour clients
    and ``trigger_lockout`` measure time by (``time.monotonic`` by default; tests pass a fake
    clock to make timing exact). ``bases_page_size``: bases per page of ``GET /v0/meta/bases``.
    """

    bases: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {DONATIONS_BASE_ID: donations_schema()}
    )
    tokens: dict[str, tuple[str, ...]] = field(default_factory=lambda: {DEFAULT_TOKEN: ALL_SCOPES})
    rate_limit_rps: int | None = 5
    lockout_seconds: float = 30.0
    latency: tuple[float, float] = (0.0, 0.0)
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    arrival_jitter_ms: float = 0.0
    clock: Callable[[], float] = time.monotonic
    bases_page_size: int = DEFAULT_BASES_PAGE_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.faults, Faults):
            raise TypeError("faults must be a Faults instance")
        self.rate_limit_rps = check_rps(self.rate_limit_rps)
        self.lockout_seconds = check_lockout(self.lockout_seconds)
        self.latency = check_latency(self.latency)
        self.arrival_jitter_ms = check_jitter(self.arrival_jitter_ms)
        self.tokens = {token: check_scopes(scopes) for token, scopes in self.tokens.items()}
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        if not callable(self.clock):
            raise TypeError("clock must be a callable returning seconds")
        if isinstance(self.bases_page_size, bool) or not (
            isinstance(self.bases_page_size, int) and self.bases_page_size >= 1
        ):
            raise ValueError("bases_page_size must be a whole number >= 1")
