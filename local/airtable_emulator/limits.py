"""Airtable's per-base rate limit: a 1 s sliding window, then a lockout.

Real Airtable answers 429 to the 6th request inside a second and then to *every* request
for 30 s. That lockout, not the 429 itself, is what hurts a client (1,500 records of
throughput lost), so it is modelled exactly, with a configurable length for tests.

The class is not thread-safe on purpose: the emulator calls it under its own lock, and
tests drive it with a fake clock.
"""

from __future__ import annotations

import bisect
from collections import deque
from enum import Enum


class Admission(Enum):
    """What the limiter decided for one request."""

    ACCEPTED = "accepted"
    #: Over the limit: a 429, and a new lockout starts now.
    LOCKOUT_STARTED = "lockout_started"
    #: Inside a running lockout: a 429 that does not extend it.
    LOCKED_OUT = "locked_out"


class RateLimiter:
    """Sliding-window limiter with lockouts, keyed by base id.

    A request arriving at ``t`` is over the limit when, counting itself, more than
    ``rps`` accepted requests arrived in ``(t - 1 s, t]``. Rejected requests are not
    recorded, so they neither fill the window nor extend a lockout. When a lockout
    starts the window is emptied: after Airtable's 30 s lockout the window is empty
    anyway, and doing the same keeps sub-second test lockouts faithful.
    """

    WINDOW_SECONDS = 1.0

    def __init__(self, rps: int | None, lockout_seconds: float) -> None:
        self.rps = rps
        self.lockout_seconds = lockout_seconds
        self._arrivals: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def admit(self, key: str, now: float) -> Admission:
        """Decide one request that arrived at ``now`` (a monotonic time in seconds)."""
        if now < self._locked_until.get(key, float("-inf")):
            return Admission.LOCKED_OUT
        if self.rps is None:
            return Admission.ACCEPTED
        arrivals = self._arrivals.setdefault(key, deque())
        while arrivals and arrivals[0] <= now - self.WINDOW_SECONDS:
            arrivals.popleft()
        if len(arrivals) + 1 > self.rps:
            self.start_lockout(key, now)
            return Admission.LOCKOUT_STARTED
        bisect.insort(arrivals, now)  # concurrent requests may be admitted out of order
        return Admission.ACCEPTED

    def start_lockout(self, key: str, now: float) -> None:
        """Lock ``key`` out for ``lockout_seconds`` from ``now``."""
        self._locked_until[key] = now + self.lockout_seconds
        self._arrivals.pop(key, None)

    def locked_until(self, key: str) -> float | None:
        """End of the current or last lockout of ``key`` (monotonic), if any."""
        return self._locked_until.get(key)
