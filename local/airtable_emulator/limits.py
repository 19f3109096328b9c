"""Airtable's per-base rate limit: a 1 s sliding window, then a lockout.

Real Airtable answers 429 to the 6th request inside a second and then to *every* request
for 30 s. That lockout, not the 429 itself, is what hurts a client (1,500 records of
throughput lost), so it is modelled exactly, with a configurable length for tests.

The class is not thread-safe on purpose: the emulator calls it under its own lock, and
tests drive it with a fake clock.
"""

from __future__ import annotations

import bisect
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

    A request counted at ``t`` is over the limit when some 1 s window ``(s - 1 s, s]``
    that contains ``t`` would then hold more than ``rps`` accepted requests: that is,
    when ``rps + 1`` consecutive accepted arrival times (in time order, ``t`` among them)
    would span less than 1 s. Requests may be counted out of order (arrival jitter, or
    concurrent threads), so a request counted late still lands in every window its time
    belongs to, including windows that already hold later arrivals.

    Rejected requests are not recorded, so they neither fill the window nor extend a
    lockout. When a lockout starts the window is emptied: after Airtable's 30 s lockout
    the window is empty anyway, and doing the same keeps sub-second test lockouts faithful.
    ``reorder_seconds`` is how far out of order times may come (the jitter bound): arrivals
    older than the window plus that are forgotten.

    ``rps`` is the default limit; :meth:`set_rps` gives one key a limit of its own (a base
    whose capacity changes at run time), and ``None`` there returns it to the default.
    """

    WINDOW_SECONDS = 1.0

    def __init__(
        self, rps: int | None, lockout_seconds: float, reorder_seconds: float = 0.0
    ) -> None:
        self.rps = rps
        self.lockout_seconds = lockout_seconds
        self.reorder_seconds = reorder_seconds
        self._arrivals: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._rps_of: dict[str, int] = {}

    def set_rps(self, key: str, rps: int | None) -> None:
        """Limit ``key`` to ``rps`` from now on (None: back to the default ``rps``)."""
        if rps is None:
            self._rps_of.pop(key, None)
        else:
            self._rps_of[key] = rps

    def rps_for(self, key: str) -> int | None:
        """The limit that applies to ``key`` (None: not limited)."""
        return self._rps_of.get(key, self.rps)

    def overrides(self) -> dict[str, int]:
        """The keys with a limit of their own."""
        return dict(self._rps_of)

    def admit(self, key: str, now: float) -> Admission:
        """Decide one request counted at ``now`` (a monotonic time in seconds)."""
        if now < self._locked_until.get(key, float("-inf")):
            return Admission.LOCKED_OUT
        rps = self.rps_for(key)
        if rps is None:
            return Admission.ACCEPTED
        arrivals = self._arrivals.setdefault(key, [])
        horizon = now - 2 * self.WINDOW_SECONDS - self.reorder_seconds
        drop = bisect.bisect_right(arrivals, horizon)
        if drop:
            del arrivals[:drop]
        if self._overfills(arrivals, now, rps):
            self.start_lockout(key, now)
            return Admission.LOCKOUT_STARTED
        bisect.insort(arrivals, now)
        return Admission.ACCEPTED

    def _overfills(self, arrivals: list[float], now: float, rps: int) -> bool:
        """Would ``now`` make ``rps + 1`` consecutive arrivals span less than the window?"""
        index = bisect.bisect_right(arrivals, now)

        def at(position: int) -> float:  # the sorted times with ``now`` inserted at ``index``
            if position < index:
                return arrivals[position]
            return now if position == index else arrivals[position - 1]

        count = len(arrivals) + 1
        for first in range(max(0, index - rps), index + 1):
            last = first + rps
            if last < count and at(last) - at(first) < self.WINDOW_SECONDS:
                return True
        return False

    def start_lockout(self, key: str, now: float) -> None:
        """Lock ``key`` out for ``lockout_seconds`` from ``now``."""
        self._locked_until[key] = now + self.lockout_seconds
        self._arrivals.pop(key, None)

    def locked_until(self, key: str) -> float | None:
        """End of the current or last lockout of ``key`` (monotonic), if any."""
        return self._locked_until.get(key)
