"""Account conditions of a base: what a rate-limited sink meets in its real life.

* **Capacity:** the base's requests per second, changeable at run time (the limiter's own
  per-key limit).
* **A neighbour client:** another client of the same base (the app's own pages) whose
  requests share the base's window. It is simulated without a thread: its requests are
  virtual arrivals evenly spaced at its rate, admitted in time order, through the same
  limiter, before any real request counted at a later time (and whenever stats are read).
  A neighbour request that arrives during a lockout or overfills the window is refused,
  and an overfilling one starts a lockout, exactly as a real request would.
* **The monthly billing block**, **outages** (HTML pages from a proxy) and a **record cap**.

Pure state, not thread-safe: the emulator calls it under its lock, with times from its
clock. Tests drive it with plain numbers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from .errors import ERROR_SHAPE, ERRORS_SHAPE
from .limits import Admission, RateLimiter

#: ``set_billing_block`` and ``set_outage`` take this instead of a base id: every base.
ALL_BASES = "*"
OUTAGE_SCOPES = ("all", "data")
BILLING_SHAPES = (ERRORS_SHAPE, ERROR_SHAPE)


@dataclass
class Neighbour:
    """Another client of a base, sending one request every ``1/rps`` s from ``first``."""

    rps: float
    first: float
    sent: int = 0
    refused: int = 0

    def next_arrival(self) -> float:
        """When its next request arrives (computed from the start, so it never drifts)."""
        return self.first + self.sent / self.rps


@dataclass(frozen=True)
class Outage:
    """Requests in ``scope`` ("all" or "data") get ``status`` with an HTML page."""

    status: int
    scope: str

    def covers(self, is_data: bool) -> bool:
        return self.scope == "all" or is_data


def check_neighbour_rps(rps: Any) -> float:
    if isinstance(rps, bool) or not isinstance(rps, int | float):
        raise ValueError(f"a neighbour's rps must be a number > 0, got {rps!r}")
    if not (math.isfinite(rps) and rps > 0):
        raise ValueError(f"a neighbour's rps must be a number > 0, got {rps!r}")
    return float(rps)


def check_outage(status: Any, scope: Any) -> Outage:
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"an outage status must be an HTTP error status (400-599), got {status!r}")
    if scope not in OUTAGE_SCOPES:
        raise ValueError(f"an outage scope must be one of {list(OUTAGE_SCOPES)}, got {scope!r}")
    return Outage(status, scope)


def check_cap(cap: Any) -> int | None:
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise ValueError(f"a record cap must be a whole number >= 0 or None, got {cap!r}")
    return cap


class Conditions:
    """Capacity, neighbours, billing blocks, outages and record caps, per base."""

    def __init__(self, limiter: RateLimiter, seed: int) -> None:
        self.limiter = limiter
        self._seed = seed
        self._neighbours: dict[str, Neighbour] = {}
        self._phase_rngs: dict[str, random.Random] = {}
        self._billing: set[str] = set()
        self.billing_shape = ERRORS_SHAPE
        self._outages: dict[str, Outage] = {}
        self._caps: dict[str, int] = {}

    # --------------------------------------------------------------- neighbours

    def start_neighbour(self, base_id: str, rps: float, now: float) -> int:
        """Start (or replace) the base's neighbour; its first request comes after a seeded
        phase in ``[0, 1/rps)``. Returns the lockouts its earlier requests started."""
        started = self.catch_up(base_id, now)
        rng = self._phase_rngs.setdefault(
            base_id, random.Random(f"{self._seed}:neighbour:{base_id}")
        )
        self._neighbours[base_id] = Neighbour(rps=rps, first=now + rng.uniform(0.0, 1.0 / rps))
        return started

    def stop_neighbour(self, base_id: str, now: float) -> int:
        """Admit what it sent until ``now``, then forget it (its stats too)."""
        started = self.catch_up(base_id, now)
        self._neighbours.pop(base_id, None)
        return started

    def neighbour_stats(self, base_id: str) -> dict[str, int]:
        neighbour = self._neighbours.get(base_id)
        if neighbour is None:
            return {"sent": 0, "refused": 0}
        return {"sent": neighbour.sent, "refused": neighbour.refused}

    def next_neighbour_arrival(self, base_id: str) -> float | None:
        """When the base's neighbour sends its next request (None: no neighbour)."""
        neighbour = self._neighbours.get(base_id)
        return neighbour.next_arrival() if neighbour is not None else None

    def catch_up(self, base_id: str, until: float) -> int:
        """Admit the neighbour's requests due at times <= ``until``, in time order.
        Returns how many lockouts they started."""
        neighbour = self._neighbours.get(base_id)
        started = 0
        while neighbour is not None and neighbour.next_arrival() <= until:
            admission = self.limiter.admit(base_id, neighbour.next_arrival())
            neighbour.sent += 1
            if admission is not Admission.ACCEPTED:
                neighbour.refused += 1
            if admission is Admission.LOCKOUT_STARTED:
                started += 1
        return started

    def catch_up_all(self, until: float) -> dict[str, int]:
        """:meth:`catch_up` for every base with a neighbour: lockouts started, per base."""
        started = {base_id: self.catch_up(base_id, until) for base_id in list(self._neighbours)}
        return {base_id: n for base_id, n in started.items() if n}

    # ------------------------------------------------------ billing and outages

    def set_billing_block(self, base_id: str, on: bool, shape: str | None = None) -> None:
        """Block a base (or, with ``*``, every base). ``*`` off lifts every block."""
        if shape is not None:
            if shape not in BILLING_SHAPES:
                raise ValueError(f"shape must be one of {list(BILLING_SHAPES)}, got {shape!r}")
            self.billing_shape = shape
        if on:
            self._billing.add(base_id)
        elif base_id == ALL_BASES:
            self._billing.clear()
        else:
            self._billing.discard(base_id)

    def billing_blocked(self, base_id: str) -> bool:
        return ALL_BASES in self._billing or base_id in self._billing

    def set_outage(self, base_id: str, outage: Outage | None) -> None:
        """Start (``outage``) or end (None) an outage of a base or of ``*``; ``*`` ended
        ends every outage."""
        if outage is not None:
            self._outages[base_id] = outage
        elif base_id == ALL_BASES:
            self._outages.clear()
        else:
            self._outages.pop(base_id, None)

    def outage_for(self, base_id: str | None, is_data: bool) -> Outage | None:
        """The outage that answers a request (to ``base_id``, or to no base), if any."""
        for key in (ALL_BASES, base_id):
            outage = self._outages.get(key) if key else None
            if outage is not None and outage.covers(is_data):
                return outage
        return None

    # -------------------------------------------------------------- record cap

    def set_record_cap(self, base_id: str, cap: int | None) -> None:
        if cap is None:
            self._caps.pop(base_id, None)
        else:
            self._caps[base_id] = cap

    def over_cap(self, base_id: str, current: int, adding: int) -> bool:
        """Would ``adding`` new records take the base (holding ``current``) over its cap?"""
        cap = self._caps.get(base_id)
        return cap is not None and adding > 0 and current + adding > cap

    # ------------------------------------------------------------------ report

    def snapshot(self) -> dict[str, Any]:
        """JSON-friendly view of every condition in force."""
        return {
            "capacity": self.limiter.overrides(),
            "neighbours": {
                base_id: {"rps": n.rps, "sent": n.sent, "refused": n.refused}
                for base_id, n in self._neighbours.items()
            },
            "billing_block": sorted(self._billing),
            "billing_shape": self.billing_shape,
            "outages": {
                base_id: {"status": o.status, "scope": o.scope}
                for base_id, o in self._outages.items()
            },
            "record_caps": dict(self._caps),
        }
