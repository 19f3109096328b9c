"""What one base can take, learned from its lockouts, and what the poller keeps of it.

Airtable allows 5 requests/s per base, but the base's capacity for this poller can be less:
another client of the base (the app's own pages, a script, a second poller) uses part of it,
and a workspace over its monthly quota is slowed (to 2 requests/s on Team plans, per
Airtable's support article "Managing API call limits"). Going over costs a 30 s lockout, so
the capacity is learned from the lockouts themselves:

* **Learning.** Airtable counts requests in a strict 1 s window. When a request is refused,
  the window before it held every request this poller sent in that second, and the refused
  one did not fit: the base takes at most `ours - 1` of ours per second. The pace drops to
  that at once (never below 1 request/s). After a lockout the window starts empty, so the
  next refusal, if any, measures the capacity exactly: it converges in at most 2 lockouts.
* **Jitter.** A refusal when this poller's own requests filled its window (`ours` was the
  burst) may instead mean that they arrived closer together than they left (the network, a
  busy CPU). The limit is learned all the same, and the next probe is made at the wider
  guard `WIDE_GUARD`: if it holds, jitter it was, and the wide guard stays; if it is
  refused, the guard goes back, as the limit does.
* **Probing.** A learned limit may be stale: the neighbour stopped, the month turned. Going
  back up costs a lockout when wrong, so the limit is raised by one request/s only while a
  backlog waits for it (`probe`), no earlier than `probe_interval` after it was learned
  (2 minutes, doubled by each failed probe up to 6 hours), and at once when a new month
  starts. A probe that runs `PROBE_HOLD_SECONDS` without a lockout has succeeded.
* **Keeping.** `to_json` / `from_json` carry it across containers (see `paces.PaceStore`),
  with the base's Airtable requests this month.

Times here are wall-clock seconds (`time.time`): they outlive a container.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Airtable: after a 429, every request to the base fails for 30 s.
LOCKOUT_SECONDS = 30.0
#: Each interval is stretched by 2%: five requests then span 1.02 s, which tolerates 20 ms
#: of arrival jitter on the way to Airtable, at 98% of the limit.
PACING_GUARD = 0.02
#: The guard a probe tries after a refusal that jitter could explain: 80 ms, at 93%.
WIDE_GUARD = 0.08
#: The pace never goes below one request per second.
MIN_LIMIT = 1.0
PROBE_FIRST_SECONDS = 120.0
PROBE_MAX_SECONDS = 6 * 3600.0
PROBE_HOLD_SECONDS = 60.0


def month_of(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m")


@dataclass
class Capacity:
    """One base's learned limit (requests/s of this poller the base accepts), below
    `ceiling` (AIRTABLE_MAX_RPS, within the token's share)."""

    ceiling: float
    limit: float = 0.0
    #: each interval is stretched by this share: `PACING_GUARD`, or `WIDE_GUARD` once a
    #: probe at it held after a refusal that jitter could explain (`jitter_suspected`)
    guard: float = PACING_GUARD
    jitter_suspected: bool = False
    probe_interval: float = PROBE_FIRST_SECONDS
    next_probe_at: float = 0.0
    probing_since: float | None = None
    month: str = ""
    #: Airtable requests this poller sent to the base in `month`
    requests: int = 0
    wall: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    #: set when something worth keeping changed
    changed: bool = field(default=False, compare=False)
    #: the probe under way is at the wide guard, which it is also a trial of
    _guard_trial: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.limit = min(self.limit or self.ceiling, self.ceiling)
        self._turn_month()

    @property
    def rate(self) -> float:
        """Requests/s let through: the limit, less the pacing guard."""
        return self.limit / (1.0 + self.guard)

    @property
    def burst(self) -> int:
        """Requests allowed inside one window."""
        return max(1, math.floor(self.limit))

    def locked_out(self, ours: int, *, first: bool) -> None:
        """A 429 RATE_LIMIT_REACHED, with `ours` of this poller's requests (the refused one
        included) sent in the second before it. `first`: the first 429 of this lockout."""
        if first:
            if self.probing_since is not None:  # the probe went over: back, and wait longer
                self.probing_since = None
                self.probe_interval = min(self.probe_interval * 2, PROBE_MAX_SECONDS)
                if self._guard_trial:
                    self.guard, self._guard_trial = PACING_GUARD, False
            elif ours >= self.burst and self.guard < WIDE_GUARD:
                self.jitter_suspected = True
            self.next_probe_at = self.wall() + self.probe_interval
        self.limit = max(MIN_LIMIT, min(self.limit, float(ours - 1)))
        self.changed = True

    def probe(self) -> bool:
        """A backlog waits for this base: raise the limit by one if a probe is due."""
        now = self.wall()
        self._turn_month()
        if self.limit >= self.ceiling or self.probing_since is not None or now < self.next_probe_at:
            return False
        self.limit = min(self.ceiling, math.floor(self.limit) + 1.0)
        self.probing_since = now
        if self.jitter_suspected:
            self.guard, self._guard_trial, self.jitter_suspected = WIDE_GUARD, True, False
        self.changed = True
        return True

    def settle_probe(self) -> None:
        """Called as requests succeed: a probe without a lockout for PROBE_HOLD_SECONDS
        stands, and the next one may follow after PROBE_FIRST_SECONDS."""
        if self.probing_since is None:
            return
        now = self.wall()
        if now - self.probing_since >= PROBE_HOLD_SECONDS:
            self.probing_since, self._guard_trial = None, False
            self.probe_interval = PROBE_FIRST_SECONDS
            self.next_probe_at = now + PROBE_FIRST_SECONDS
            self.changed = True

    def count(self, requests: int = 1) -> None:
        self._turn_month()
        self.requests += requests
        self.changed = True

    def _turn_month(self) -> None:
        """A new month resets the count, and lets a learned limit be probed at once (a
        workspace's monthly slowdown lifts when the month turns)."""
        month = month_of(self.wall())
        if month != self.month:
            if self.month:
                self.next_probe_at = 0.0
                self.probe_interval = PROBE_FIRST_SECONDS
            self.month, self.requests, self.changed = month, 0, True

    # -- kept across containers -----------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "guard": PACING_GUARD if self._guard_trial else self.guard,
            "jitter_suspected": self.jitter_suspected or self._guard_trial,
            "probe_interval": self.probe_interval,
            "next_probe_at": round(self.next_probe_at, 3),
            "month": self.month,
            "requests": self.requests,
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], ceiling: float, wall: Callable[[], float] = time.time
    ) -> Capacity:
        """A kept capacity, under today's ceiling; raise ValueError if it is malformed."""
        limit, guard = float(data["limit"]), float(data.get("guard", PACING_GUARD))
        if not math.isfinite(limit) or limit <= 0:
            raise ValueError(f"limit {limit!r}")
        if not math.isfinite(guard):
            raise ValueError(f"guard {guard!r}")
        return cls(
            ceiling=ceiling,
            limit=max(MIN_LIMIT, limit),
            guard=min(max(guard, PACING_GUARD), WIDE_GUARD),
            jitter_suspected=data.get("jitter_suspected") is True,
            probe_interval=min(
                float(data.get("probe_interval", PROBE_FIRST_SECONDS)), PROBE_MAX_SECONDS
            ),
            next_probe_at=float(data.get("next_probe_at", 0.0)),
            month=str(data.get("month", "")),
            requests=int(data.get("requests", 0)),
            wall=wall,
        )
