"""Small policies with an injected clock: the deadline, the backoff, and each base's pacer.

A `Pacer` lets requests to one base through at its `Capacity`'s rate. Two rules, as Airtable
counts: consecutive slots are `interval` apart, and no more than `burst` requests arrive
within one window. A slot is reserved when a request is picked (`reserve`); the writer then
waits for it (`send`), and `send` also waits while the last `burst` requests would put its
own arrival inside one window with them. Airtable counts a request when it arrives, which
may be later than it left (a busy CPU, the network). A request leaves when the transport
has written it to its socket (`on_wire`, which a busy thread or a new connection can make
later than the pacer's stamp). A request not yet answered
(`answered`) counts as arriving now (for up to a second), and one whose answer took more
than twice a quick answer's time was held up on the way: it counts as arriving its answer
less that time (one in four of the latest took at most that). After a 429 (`throttled`)
nobody is let through until the lockout ends, and the capacity learns from how many of this
pacer's requests it let go (by their stamps) in the second before the refused one.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from .capacity import LOCKOUT_SECONDS, Capacity
from .errors import OutOfTimeError, ThrottledError

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: Seconds added to the remaining run time when hiding received messages, so that none
#: becomes visible to another consumer while this run may still hold it.
VISIBILITY_MARGIN_SECONDS = 10
MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit
#: A request still unanswered this long after it left is taken to have arrived by then.
ARRIVAL_BOUND_SECONDS = 1.0
#: The share of the latest requests whose time to an answer counts as quick.
QUICK_SHARE = 0.25
#: A request whose answer took more than this many times a quick one's was held up on the way.
HELD_UP = 2.0

_leaving = threading.local()


def on_wire() -> None:
    """The transport has written this thread's request to its socket: it left now. Called by
    the Airtable adapter; a no-op outside `Pacer.request`."""
    mark, _leaving.mark = getattr(_leaving, "mark", None), None
    if mark is not None:
        mark()


class Deadline:
    """'Stop when too little time is left': the Lambda's remaining time less a margin."""

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
        return self.usable() >= seconds

    def visibility_seconds(self) -> int:
        """A visibility timeout that hides a message for as long as this run may hold it."""
        seconds = math.ceil(max(self.remaining(), 0)) + VISIBILITY_MARGIN_SECONDS
        return min(seconds, MAX_VISIBILITY_SECONDS)


@dataclass
class Backoff:
    """Bounded exponential backoff with full jitter, seeded for reproducible tests."""

    base: float = 0.5
    cap: float = 8.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempts count from 1)."""
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))


class Pacer:
    """Paces the requests to one base. Thread-safe: the loop `reserve`s a request's first
    slot, and writers reserve the slots of its later calls, `send` and report `throttled`;
    one lock guards the figures and is never held while asleep."""

    def __init__(
        self,
        capacity: Capacity,
        *,
        lockout_seconds: float = LOCKOUT_SECONDS,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ):
        self.capacity = capacity
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_slot = -math.inf
        self._sent: deque[_Sent] = deque(maxlen=64)  # the latest requests, oldest first
        self._answer_times: deque[float] = deque(maxlen=64)  # the latest, leaving to answer
        self._quick = math.inf  # what one in four of them took at most
        self._paused_until = -math.inf
        #: the lowest estimate learned in the current lockout, and when that lockout ends
        self._episode: tuple[float, int] | None = None
        self.lockouts = 0
        #: requests let through since the pacer was made (a container's life)
        self.requests = 0

    @property
    def interval(self) -> float:
        return 1.0 / self.capacity.rate

    @property
    def burst(self) -> int:
        return self.capacity.burst

    @property
    def paused_until(self) -> float:
        with self._lock:
            return self._paused_until

    def next_slot(self) -> float:
        """The earliest clock time a new reservation would get."""
        with self._lock:
            return self._next()

    def reserve(self) -> float:
        """Take the next slot; return its clock time."""
        with self._lock:
            self._last_slot = self._next()
            return self._last_slot

    def slots_between(self, start: float, end: float) -> int:
        """How many requests the base can take from `start` (or its next slot, if later) to
        `end`, at its pace."""
        room = end - max(start, self.next_slot())
        return 0 if room < 0 else math.floor(room * self.capacity.rate) + 1

    def _next(self) -> float:
        return max(
            self.clock(), self._last_slot + self.interval, self._window_free(), self._paused_until
        )

    def send(self, slot: float, not_after: float) -> float | None:
        """Wait until `slot`, and until the window and any lockout let a request leave; record
        that it leaves now and return the time. None, without waiting further, when that
        would be after `not_after`: the request is not sent."""
        while True:
            with self._lock:
                now = self.clock()
                at = max(slot, self._spaced(), self._window_free(), self._paused_until)
                if at > not_after:
                    if slot == self._last_slot:  # the slot was not used: give it back
                        self._last_slot -= self.interval
                    return None
                if at <= now:
                    self._sent.append(_Sent(now, now))
                    self.requests += 1
                    self.capacity.count()
                    return now
            self._sleep(at - now)

    def call(self, slot: float, deadline: Deadline, call: Callable[[], T]) -> T:
        """`call` sent from `slot` (`send`) and made (`request`); raise `OutOfTimeError`,
        without sending it, when it could not leave within the deadline's usable time."""
        sent_at = self.send(slot, not_after=self.clock() + max(deadline.usable(), 0.0))
        if sent_at is None:
            raise OutOfTimeError(
                "no time left in this run for the request (the base's pace or lockout)"
            )
        return self.request(sent_at, call)

    def request(self, sent_at: float, call: Callable[[], T]) -> T:
        """Make the request that left at `sent_at` (`send`'s answer): a 429
        RATE_LIMIT_REACHED starts the lockout (`throttled`) and is raised; the answer, or
        the failure, is `answered`."""
        _leaving.mark = partial(self._on_wire, sent_at)
        try:
            return call()
        except ThrottledError:
            self.throttled(sent_at)
            raise
        finally:
            _leaving.mark = None
            self.answered(sent_at)

    def _on_wire(self, sent_at: float) -> None:
        with self._lock:
            if (request := self._unanswered(sent_at)) is not None:
                request.left = max(request.left, self.clock())

    def answered(self, sent_at: float) -> None:
        """The request that left at `sent_at` has its answer (or failed): it has arrived."""
        with self._lock:
            if (request := self._unanswered(sent_at)) is None:
                return
            now = self.clock()
            request.answered = now
            self._answer_times.append(now - request.left)
            times = sorted(self._answer_times)  # too few to judge: the fastest
            self._quick = times[int(len(times) * QUICK_SHARE) if len(times) >= 8 else 0]

    def _unanswered(self, sent_at: float) -> _Sent | None:
        """The latest request stamped `sent_at` still without its answer (under `_lock`)."""
        return next(
            (r for r in reversed(self._sent) if r.stamp == sent_at and r.answered is None), None
        )

    def throttled(self, sent_at: float) -> float:
        """Airtable answered 429 RATE_LIMIT_REACHED to the request sent at `sent_at`: hold
        every request back for the lockout, and let the capacity learn from this pacer's
        requests that left in the second before it. Returns when the lockout ends."""
        with self._lock:
            now = self.clock()
            ours = sum(1 for request in self._sent if sent_at - 1.0 < request.stamp <= sent_at)
            first = self._episode is None or sent_at >= self._paused_until
            if first:
                self.lockouts += 1
                self._paused_until = now + self.lockout_seconds
                self._episode = (self._paused_until, ours)
            else:
                ends, seen = self._episode  # type: ignore[misc]
                self._episode = (ends, min(seen, ours))
            self.capacity.locked_out(self._episode[1], first=first)
            return self._paused_until

    def _spaced(self) -> float:
        """One interval after the pacer let the last request go (under `_lock`). The
        spacing keeps the pacer's rhythm; the window (`_window_free`) counts when requests
        really left, so a late one holds back only the request that would crowd it."""
        return self._sent[-1].stamp + self.interval if self._sent else -math.inf

    def _window_free(self) -> float:
        """When one more request may leave without `burst + 1` inside one window (by the
        latest times the requests may have arrived). Under `_lock`."""
        burst = self.burst
        if len(self._sent) < burst:
            return -math.inf
        arrivals = sorted(self._arrival(request) for request in self._sent)
        return arrivals[-burst] + burst * self.interval

    def _arrival(self, request: _Sent) -> float:
        """The latest time a request may have arrived at Airtable, as far as is known: now
        while it has no answer (up to `ARRIVAL_BOUND_SECONDS` after it left); when it left,
        if its answer took at most twice a quick answer's time (Airtable's own work varies
        after a request arrives); else, held up on the way, its answer less that time."""
        if request.answered is None:
            return max(request.left, min(self.clock(), request.left + ARRIVAL_BOUND_SECONDS))
        took = request.answered - request.left
        if took <= HELD_UP * self._quick:
            return request.left
        return request.answered - self._quick


class Slots:
    """The slots one request's calls leave in: first the one reserved when the request
    was picked (so that no reserved slot goes unused), then a new one for each later call."""

    def __init__(self, pacer: Pacer, first: float) -> None:
        self._pacer, self._first = pacer, first

    def take(self) -> float:
        first, self._first = self._first, None
        return first if first is not None else self._pacer.reserve()


@dataclass(slots=True)
class _Sent:
    """One request to the base: when the pacer let it go (`stamp`, its name), when it left
    (its stamp, or later once `on_wire` says so), and when its answer came."""

    stamp: float
    left: float
    answered: float | None = None
