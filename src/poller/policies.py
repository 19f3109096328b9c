"""Small policy objects: when to stop, how to pace, how long to back off.

Each takes its clock as an argument, so tests drive them without sleeping.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: Five requests paced at exactly 200 ms span exactly 1 s, so a few ms of jitter on the way
#: to Airtable could put six of them in one second and cost a 30 s lockout. Each interval
#: is stretched by 2%: five requests then span 1.02 s and tolerate 20 ms of jitter,
#: at 98% of the limit.
PACING_GUARD = 0.02

#: Seconds added to the remaining run time when hiding received messages, so that none
#: becomes visible to another consumer while this run may still hold it.
VISIBILITY_MARGIN_SECONDS = 10
MAX_VISIBILITY_SECONDS = 43_200


class Deadline:
    """'Stop when too little time is left': the Lambda's remaining time less a safety margin."""

    def __init__(self, remaining_ms: Callable[[], int], margin_seconds: float) -> None:
        self._remaining_ms = remaining_ms
        self.margin = margin_seconds

    def remaining(self) -> float:
        """Seconds before the Lambda is killed."""
        return self._remaining_ms() / 1000.0

    def usable(self) -> float:
        """Seconds left for new work once the margin is kept free."""
        return self.remaining() - self.margin

    def expired(self) -> bool:
        return self.usable() <= 0

    def allows(self, seconds: float) -> bool:
        """Whether something that takes `seconds` can still finish inside the usable time."""
        return self.usable() >= seconds

    def visibility_seconds(self) -> int:
        """Visibility timeout that hides a message for as long as this run may hold it."""
        seconds = math.ceil(max(self.remaining(), 0)) + VISIBILITY_MARGIN_SECONDS
        return min(seconds, MAX_VISIBILITY_SECONDS)


SENT, GRANTED = 0, 1


class RateLimiter:
    """Paces requests to one base: at most `rps` per second, shared by threads.

    Two rules: consecutive requests are let through `interval` apart, and no `burst`
    requests (5 at 5 req/s) leave within `window` (1.02 s), a sliding window like the one
    Airtable counts with. The window is measured from when requests really left: one that
    was let through but left late (a new connection, a busy thread) is recorded at the
    time it left (`mark_sent`), so that the requests after it keep their distance.
    Callers are let through one at a time. `pause_until` holds everyone back during a
    lockout (after a 429), so nobody hammers Airtable while it refuses requests.
    """

    def __init__(
        self,
        rps: float,
        *,
        guard: float = PACING_GUARD,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rps <= 0:
            raise ValueError("rps must be positive")
        self.interval = (1.0 + guard) / rps
        self.burst = max(1, math.floor(rps))
        self.window = self.burst * self.interval
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[list[float]] = deque(maxlen=self.burst)
        self._paused_until = -math.inf
        self._lock = threading.Lock()
        self._mine = threading.local()

    def next_free(self) -> float:
        """The earliest clock time at which `acquire` could return."""
        if not self._sent:
            return self._paused_until
        spaced = self._sent[-1][GRANTED] + self.interval
        full = len(self._sent) == self.burst
        windowed = self._sent[0][SENT] + self.window if full else -math.inf
        return max(spaced, windowed, self._paused_until)

    def acquire(self, *, not_after: float | None = None) -> bool:
        """Wait for the next free slot and take it. Return False, without waiting, if that
        slot falls after `not_after` (a clock time). Call it right before sending."""
        with self._lock:
            while True:
                now = self._clock()
                slot = max(now, self.next_free())
                if not_after is not None and slot > not_after:
                    return False
                if slot <= now:
                    break
                self._sleep(slot - now)  # a pause that starts meanwhile is seen on waking
            now = self._clock()
            entry = [now, now]  # [SENT, GRANTED]; SENT moves when the request really leaves
            self._sent.append(entry)
            self._mine.entry = entry
            return True

    def mark_sent(self) -> None:
        """The request this thread was last let through has now left: record that time."""
        entry = getattr(self._mine, "entry", None)
        if entry is not None:
            with self._lock:
                entry[SENT] = max(entry[SENT], self._clock())
            self._mine.entry = None

    def pause_until(self, when: float) -> None:
        """No caller is let through before `when` (a clock time)."""
        self._paused_until = max(self._paused_until, when)

    def on_throttled(self) -> None:
        """Airtable answered 429 to a request this limiter let through: arrivals bunch more
        than the pacing assumed. (Adaptive widening of the margin: see issue 9.)"""

    @property
    def effective_rps(self) -> float:
        """Requests per second this limiter currently lets through at most."""
        return 1.0 / self.interval


@dataclass
class Backoff:
    """Bounded exponential backoff with full jitter, seeded for reproducible tests."""

    base: float = 0.5
    cap: float = 8.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1)."""
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
