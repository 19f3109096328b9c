"""Pacing, backoff and deadline policies, driven by a fake clock: no sleeping."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from poller.policies import (
    MAX_GUARD,
    PACING_GUARD,
    THROTTLED_GUARD,
    TOKEN_RPS,
    Backoff,
    Deadline,
    PacerChain,
    RateLimiter,
)


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


# ------------------------------------------------------------------ learning from a 429
class Worker:
    """One thread that runs what it is given, in order: a writer thread of the drain, made
    step by step (the limiter remembers, per thread, which request it let through)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, answer = job
            answer.put(call())

    def __call__(self, call: Callable[[], Any]) -> Any:
        answer: queue.Queue[Any] = queue.Queue()
        self._jobs.put((call, answer))
        return answer.get(timeout=10)

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)


def paced(limiter: RateLimiter | PacerChain, clock: FakeClock, count: int) -> list[float]:
    """Let `count` requests through back to back; the clock times they were let through."""
    times = []
    for _ in range(count):
        assert limiter.acquire()
        limiter.mark_sent()
        times.append(clock.now)
    return times


def tightest(times: list[float], burst: int) -> float:
    """The shortest span of `burst + 1` consecutive requests: Airtable counts more than
    `burst` in a second when arrivals bunch by more than this span less 1 s."""
    ordered = sorted(times)
    return min(b - a for a, b in zip(ordered, ordered[burst:], strict=False))


def test_without_a_429_the_pace_stays_where_it_is():
    # GIVEN a 5 req/s limiter that never saw a 429
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    # WHEN 51 requests go through
    times = paced(limiter, clock, 51)
    # THEN it paces at 5 / 1.02 req/s, the pace of the 48 records/s bench: no slower
    assert limiter.guard == PACING_GUARD == 0.02
    assert limiter.effective_rps == pytest.approx(5 / 1.02)
    assert (times[-1] - times[0]) / 50 == pytest.approx(1.02 / 5)
    assert tightest(times, 5) == pytest.approx(1.02)


def test_one_429_widens_the_margin_to_tolerate_50_ms_of_jitter():
    # GIVEN a 5 req/s limiter whose request got a 429 (its writer pauses, then reports it)
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    paced(limiter, clock, 5)
    limiter.pause_until(clock.now + 30)
    # WHEN the 429 is reported
    limiter.on_throttled()
    # THEN after the lockout, any 6 requests span at least 1.05 s: 50 ms of arrival jitter
    # cannot put 6 of them into one second of Airtable's window
    times = paced(limiter, clock, 31)
    assert times[0] >= clock.now - 30 * limiter.interval - 1e-9
    assert tightest(times, 5) >= 1.05
    # AND the pace is still above 4.5 req/s (at most 7% slower than before)
    assert 4.5 <= limiter.effective_rps < 5 / 1.02
    assert limiter.widenings == 1


def test_429s_to_requests_let_through_at_the_old_pace_widen_the_margin_once():
    # GIVEN four writers, each let through one request at the default pace
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    writers = [Worker() for _ in range(4)]
    try:
        for writer in writers:
            writer(limiter.acquire)
        # WHEN all four get a 429 from the same lockout (the first pauses the base)
        limiter.pause_until(clock.now + 30)
        for writer in writers:
            writer(limiter.on_throttled)
        # THEN the margin was widened once: the other three were paced by the old margin
        assert limiter.widenings == 1 and limiter.guard == THROTTLED_GUARD
        # AND a request let through at the new pace that still gets a 429 widens it again
        writers[0](limiter.acquire)
        writers[0](limiter.on_throttled)
        assert limiter.widenings == 2 and limiter.guard == 2 * THROTTLED_GUARD
    finally:
        for writer in writers:
            writer.stop()


def test_further_429s_widen_more_but_never_below_4_requests_per_second():
    # GIVEN a 5 req/s limiter WHEN each of ten requests in turn gets a 429
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    rates = [limiter.effective_rps]
    for _ in range(10):
        assert limiter.acquire()
        limiter.on_throttled()
        rates.append(limiter.effective_rps)
    # THEN each widened the margin until the cap, and the pace never fell below 4 req/s
    assert [round(r, 3) for r in rates[:5]] == [4.902, 4.717, 4.464, 4.032, 4.0]
    assert rates == sorted(rates, reverse=True)
    assert min(rates) == pytest.approx(4.0) and limiter.guard == MAX_GUARD
    # AND the widest pace tolerates 250 ms of jitter
    assert tightest(paced(limiter, clock, 12), 5) >= 1.25 - 1e-9


def test_a_429_from_a_thread_the_limiter_never_let_through_still_widens():
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    writer = Worker()
    try:
        writer(limiter.on_throttled)
    finally:
        writer.stop()
    assert limiter.guard == THROTTLED_GUARD


# ------------------------------------------------------------------ per base and per token
class RecordingLimiter(RateLimiter):
    """Logs the clock time of every slot it hands out (under its own lock)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.granted: list[float] = []

    def _take(self, now: float) -> None:
        super()._take(now)
        self.granted.append(now)


def drive(pacers: list[PacerChain], clock: FakeClock, until: float) -> None:
    """One thread standing for a writer per base: the base whose own slot comes first
    asks (taking turns among bases ready at once), and waits in `acquire` for the rest."""
    turn = 0
    while clock.now < until:
        clock.now = max(clock.now, min(p.base.next_free() for p in pacers))
        order = pacers[turn:] + pacers[:turn]
        pacer = next(p for p in order if p.base.next_free() <= clock.now)
        turn = (pacers.index(pacer) + 1) % len(pacers)
        assert pacer.acquire()
        pacer.mark_sent()


def test_a_token_shared_by_many_bases_never_lets_more_than_50_in_any_1_02_s():
    # GIVEN 12 bases at 5 req/s each (60 req/s wanted) sharing one token limiter of 50 req/s
    clock = FakeClock()
    token = RecordingLimiter(TOKEN_RPS, clock=clock, sleep=clock.sleep)
    bases = [RecordingLimiter(5, clock=clock, sleep=clock.sleep) for _ in range(12)]
    pacers = [PacerChain(base, token) for base in bases]
    # WHEN they all send as fast as they are let for 20 s
    drive(pacers, clock, clock.now + 20)
    # THEN no 1.02 s window holds more than 50 of the token's requests
    assert tightest(token.granted, 50) >= 1.02 - 1e-9
    # AND no base had more than 5 in any 1.02 s
    assert all(tightest(base.granted, 5) >= 1.02 - 1e-9 for base in bases)
    # AND the token was used at its pace (49 req/s), shared out: no base starved
    assert len(token.granted) >= 20 * 49 - 5
    shares = [len(base.granted) for base in bases]
    assert max(shares) - min(shares) <= 2, shares


def test_two_bases_on_one_token_each_keep_their_full_pace():
    # GIVEN two bases sharing a token
    clock = FakeClock()
    token = RecordingLimiter(TOKEN_RPS, clock=clock, sleep=clock.sleep)
    bases = [RecordingLimiter(5, clock=clock, sleep=clock.sleep) for _ in range(2)]
    pacers = [PacerChain(base, token) for base in bases]
    # WHEN both send for 10 s
    drive(pacers, clock, clock.now + 10)
    # THEN each went at its own 4.9 req/s, no more; the token let through both
    for base in bases:
        assert tightest(base.granted, 5) >= 1.02 - 1e-9
        assert len(base.granted) >= 49
    assert len(token.granted) == sum(len(b.granted) for b in bases)


def test_a_lockout_applies_to_its_base_only_and_holds_no_token_slot():
    # GIVEN bases A and B on one token, and A locked out for 30 s after a 429
    clock = FakeClock()
    token = RecordingLimiter(TOKEN_RPS, clock=clock, sleep=clock.sleep)
    a = PacerChain(RateLimiter(5, clock=clock, sleep=clock.sleep), token)
    b = PacerChain(RateLimiter(5, clock=clock, sleep=clock.sleep), token)
    assert a.acquire()
    a.pause_until(clock.now + 30)
    a.on_throttled()
    # WHEN A asks for a slot it cannot have in the next 10 s
    assert not a.acquire(not_after=clock.now + 10)
    # THEN it took nothing of the token and did not wait, and B goes as soon as the token
    # lets it (one token interval after A's request), not after A's lockout
    assert len(token.granted) == 1 and clock.sleeps == []
    start = clock.now
    assert b.acquire() and clock.now <= start + token.interval + 1e-9
    # AND the lockout and the wider margin are A's only
    assert a.next_free() >= start + 30 and b.base.guard == PACING_GUARD
    assert token.guard == PACING_GUARD and token.next_free() < start + 1
    assert a.effective_rps == pytest.approx(5 / (1 + THROTTLED_GUARD))
    assert b.effective_rps == pytest.approx(5 / 1.02)


def test_many_threads_on_bases_sharing_a_token_never_deadlock_nor_overrun():
    # GIVEN 12 bases, two writer threads each, on one token, a clock that sleeping advances
    clock = ThreadSafeClock()
    token = RecordingLimiter(TOKEN_RPS, clock=clock, sleep=clock.sleep)
    bases = [RecordingLimiter(5, clock=clock, sleep=clock.sleep) for _ in range(12)]
    pacers = [PacerChain(base, token) for base in bases]
    done: list[int] = []

    def writer(pacer: PacerChain) -> None:
        for _ in range(15):
            assert pacer.acquire()
            pacer.mark_sent()
        done.append(1)

    threads = [
        threading.Thread(target=writer, args=(p,), daemon=True) for p in pacers for _ in (1, 2)
    ]
    # WHEN they all send at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)  # a guard against a deadlock, not a speed limit
    # THEN every writer finished, and neither limit was overrun
    assert len(done) == len(threads)
    assert len(token.granted) == 12 * 2 * 15
    assert tightest(token.granted, 50) >= 1.02 - 1e-9
    assert all(tightest(base.granted, 5) >= 1.02 - 1e-9 for base in bases)
    assert not token._queue


def test_a_pacer_needs_two_limiters_on_one_clock():
    clock = FakeClock()
    base = RateLimiter(5, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError):
        PacerChain(base, base)
    with pytest.raises(ValueError):
        PacerChain(base, RateLimiter(TOKEN_RPS))


class ThreadSafeClock(FakeClock):
    """A fake clock for several threads: sleeping moves it on (for everyone), at once."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
        time.sleep(0)  # let another thread run
