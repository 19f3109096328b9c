"""The per-base rate limit and lockout: what the poller's pacing must respect."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from airtable_emulator import donations_schema
from airtable_emulator.limits import Admission, RateLimiter
from emulator_testkit import BASE, Running

RATE_LIMIT_BODY = {
    "errors": [
        {"error": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Please try again later"}
    ]
}


def test_window_counts_arrivals_in_the_last_second() -> None:
    # GIVEN a 5 req/s limiter and five requests at t = 0.0 .. 0.8
    limiter = RateLimiter(rps=5, lockout_seconds=30)
    assert [limiter.admit("b", t / 10) for t in (0, 2, 4, 6, 8)] == [Admission.ACCEPTED] * 5
    # WHEN the next request arrives at exactly t = 1.0 (t = 0.0 has left (0, 1])
    # THEN it is accepted
    assert limiter.admit("b", 1.0) is Admission.ACCEPTED
    # WHEN one more arrives at t = 1.05 (six in (0.05, 1.05])
    # THEN a lockout starts
    assert limiter.admit("b", 1.05) is Admission.LOCKOUT_STARTED


def test_lockout_is_not_extended_by_rejected_requests() -> None:
    # GIVEN a lockout of 30 s that started at t = 0.5
    limiter = RateLimiter(rps=5, lockout_seconds=30)
    for t in range(6):
        limiter.admit("b", t / 10)
    assert limiter.locked_until("b") == pytest.approx(30.5)
    # WHEN requests keep arriving during the lockout
    assert all(limiter.admit("b", 1 + t) is Admission.LOCKED_OUT for t in range(29))
    # THEN it still ends at t = 30.5
    assert limiter.admit("b", 30.49) is Admission.LOCKED_OUT
    assert limiter.admit("b", 30.5) is Admission.ACCEPTED


def test_limit_is_per_base() -> None:
    # GIVEN five requests to base A
    limiter = RateLimiter(rps=5, lockout_seconds=30)
    for _ in range(5):
        limiter.admit("A", 0.0)
    # WHEN base B is called at the same moment
    # THEN it has its own window
    assert limiter.admit("B", 0.0) is Admission.ACCEPTED
    assert limiter.admit("A", 0.0) is Admission.LOCKOUT_STARTED


def test_burst_gets_429_until_the_lockout_ends(start: Callable[..., Running]) -> None:
    # GIVEN the real limit of 5 req/s with a short 0.3 s lockout
    running = start(rate_limit_rps=5, lockout_seconds=0.3)
    session, url = running.http(), running.records_url()
    # WHEN six requests are sent back to back
    statuses = [session.get(url).status_code for _ in range(5)]
    sixth = session.get(url)
    throttled_at = time.monotonic()
    # THEN the sixth gets Airtable's 429 body and no Retry-After header
    assert statuses == [200] * 5
    assert sixth.status_code == 429
    assert sixth.json() == RATE_LIMIT_BODY
    assert "Retry-After" not in sixth.headers
    # WHEN requests keep coming for most of the lockout
    during = []
    while time.monotonic() < throttled_at + 0.2:
        during.append(session.get(url).status_code)
        time.sleep(0.02)
    # THEN they are all refused, and (not extending it) the lockout still ends on time
    assert during and set(during) == {429}
    time.sleep(max(0.0, throttled_at + 0.32 - time.monotonic()))
    assert session.get(url).status_code == 200
    stats = running.emu.stats
    assert stats.lockouts == 1
    assert stats.throttled == 1 + len(during)
    assert stats.by_status[429] == stats.throttled


def test_paced_requests_never_get_429(start: Callable[..., Running]) -> None:
    # GIVEN the 5 req/s limit
    running = start(rate_limit_rps=5, lockout_seconds=30)
    table = running.table()
    # WHEN eight writes (1.5 s, more than one window) are paced at 4.8 req/s, each one
    # 1/4.8 s after the previous answer so that network jitter cannot bunch them up
    for n in range(8):
        if n:
            time.sleep(1 / 4.8)
        table.create({"Id": str(n)})
    # THEN none is throttled
    assert running.emu.stats.throttled == 0
    assert len(running.emu.records(BASE, "Donations")) == 8


def test_meta_requests_count_against_the_base(start: Callable[..., Running]) -> None:
    # GIVEN the 5 req/s limit
    running = start(rate_limit_rps=5, lockout_seconds=0.2)
    session = running.http()
    # WHEN five schema reads are followed by one record read
    for _ in range(5):
        assert session.get(f"{running.url}/v0/meta/bases/{BASE}/tables").status_code == 200
    # THEN the record read is throttled
    assert session.get(running.records_url()).status_code == 429


def test_other_bases_are_not_locked_out(start: Callable[..., Running]) -> None:
    # GIVEN two bases, one of them locked out
    running = start(
        bases={BASE: donations_schema(), "appOtherBase00001": donations_schema()},
        rate_limit_rps=5,
        lockout_seconds=5,
    )
    running.emu.trigger_lockout(BASE)
    session = running.http()
    # WHEN both are called
    # THEN only the locked base answers 429
    assert session.get(running.records_url()).status_code == 429
    assert session.get(running.records_url(base="appOtherBase00001")).status_code == 200


def test_trigger_lockout_blocks_for_lockout_seconds(start: Callable[..., Running]) -> None:
    # GIVEN an emulator with no rate limit but a 0.2 s lockout
    running = start(rate_limit_rps=None, lockout_seconds=0.2)
    session = running.http()
    # WHEN a lockout is triggered
    running.emu.trigger_lockout(BASE)
    triggered = time.monotonic()
    # THEN requests are refused until it ends, then served
    assert session.get(running.records_url()).status_code == 429
    time.sleep(max(0.0, triggered + 0.22 - time.monotonic()))
    assert session.get(running.records_url()).status_code == 200
    assert running.emu.stats.lockouts == 1


def test_rejected_auth_does_not_count_against_the_base(start: Callable[..., Running]) -> None:
    # GIVEN the 5 req/s limit
    running = start(rate_limit_rps=5, lockout_seconds=5)
    # WHEN ten requests with a bad token arrive, then five good ones
    bad = running.http(token="patWrong")
    assert {bad.get(running.records_url()).status_code for _ in range(10)} == {401}
    good = running.http()
    # THEN the good ones are all served
    assert [good.get(running.records_url()).status_code for _ in range(5)] == [200] * 5
