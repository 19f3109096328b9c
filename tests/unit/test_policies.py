"""Pacing, backoff and deadline policies, driven by a fake clock: no sleeping."""

from __future__ import annotations

import random

from poller.policies import Backoff, Deadline, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_limiter_spaces_requests_evenly_below_the_limit():
    # GIVEN a 5 req/s limiter WHEN 11 requests are made back to back
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(11):
        assert limiter.acquire()
        times.append(clock.now)
    # THEN no 1-second window (with 20 ms to spare for jitter) holds more than 5 of them
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 1.02 - 1e-9
    # AND the pace is still 98% of the limit
    assert (times[-1] - times[0]) / 10 <= 0.2041


def test_limiter_refuses_a_slot_after_the_deadline_without_waiting():
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(not_after=clock.now + 5)
    assert not limiter.acquire(not_after=clock.now + 0.5)
    assert clock.sleeps == []


def test_pause_holds_every_caller_until_the_lockout_ends():
    # GIVEN a lockout of 30 s WHEN the next request asks for a slot
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    limiter.pause_until(clock.now + 30)
    assert limiter.acquire()
    # THEN it waited the whole lockout
    assert clock.sleeps == [30.0]


def test_backoff_is_bounded_exponential_and_reproducible():
    a = Backoff(base=0.5, cap=4.0, rng=random.Random(7))
    b = Backoff(base=0.5, cap=4.0, rng=random.Random(7))
    delays = [a.delay(n) for n in range(1, 8)]
    assert delays == [b.delay(n) for n in range(1, 8)]
    assert all(0 <= d <= min(4.0, 0.5 * 2 ** (n - 1)) for n, d in enumerate(delays, 1))


def test_deadline_keeps_a_margin_and_hides_messages_for_the_rest_of_the_run():
    remaining = [10_000]
    deadline = Deadline(lambda: remaining[0], margin_seconds=3)
    assert deadline.allows(6.5) and not deadline.allows(7.5)
    assert deadline.visibility_seconds() == 10 + 10
    remaining[0] = 2_500
    assert deadline.expired()


def test_a_request_that_left_late_pushes_the_window_back():
    # GIVEN a 5 req/s limiter whose first request left 150 ms after it was let through
    # (a new TLS connection, say)
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    first_granted = clock.now
    clock.now += 0.15
    limiter.mark_sent()
    for _ in range(4):
        limiter.acquire()
        limiter.mark_sent()
    # WHEN the 6th request asks for a slot
    limiter.acquire()
    # THEN it waits until 1.02 s after the first one really left, not after it was let through
    assert clock.now >= first_granted + 0.15 + 1.02 - 1e-9
