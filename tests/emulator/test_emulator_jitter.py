"""Arrival jitter before the limiter: requests sent apart arrive closer together.

Airtable counts arrivals. A network that delays requests unevenly by 0..J ms makes
requests sent 200 ms apart arrive up to J ms closer together, so a client paced just
under 5 requests/s trips the strict window. The limiter counts each request at its
adjusted arrival, in order of those times, even when it is counted late.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from airtable_emulator.limits import Admission, RateLimiter
from emulator_testkit import Running

A = Admission.ACCEPTED


def test_a_request_counted_late_still_fills_the_window_of_its_time() -> None:
    # GIVEN five requests at 0.0 .. 0.8 and one at 1.9 (which pushes the early ones out of
    # a window measured from the latest arrival)
    limiter = RateLimiter(rps=5, lockout_seconds=30, reorder_seconds=1.0)
    assert [limiter.admit("b", t) for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.9)] == [A] * 6
    # WHEN a request whose (jittered) arrival is 0.9 is counted now
    # THEN it is the sixth in (-0.1, 0.9]: a lockout
    assert limiter.admit("b", 0.9) is Admission.LOCKOUT_STARTED


def test_a_request_counted_late_is_not_charged_for_later_arrivals() -> None:
    # GIVEN one request at 0.0 and four at 1.5 .. 1.8
    limiter = RateLimiter(rps=5, lockout_seconds=30, reorder_seconds=1.0)
    assert [limiter.admit("b", t) for t in (0.0, 1.5, 1.6, 1.7, 1.8)] == [A] * 5
    # WHEN a request whose arrival is 0.5 is counted now
    # THEN no 1 s window holds six requests: it is accepted
    assert limiter.admit("b", 0.5) is A


def test_jitter_setting_is_validated_and_reported(emu: Running) -> None:
    # GIVEN a running emulator
    control = emu.http(token=None)
    # WHEN the jitter is set through the config endpoint and the Python API
    response = control.post(f"{emu.url}/__emulator/config", json={"arrival_jitter_ms": 40})
    assert response.json()["arrival_jitter_ms"] == 40.0
    emu.emu.configure(arrival_jitter_ms=12.5)
    # THEN it is reported, and negative or non-numeric values are refused
    assert emu.emu.current_settings()["arrival_jitter_ms"] == 12.5
    for bad in (-1, "x", True):
        body = {"arrival_jitter_ms": bad}
        assert control.post(f"{emu.url}/__emulator/config", json=body).status_code == 400
        with pytest.raises((ValueError, TypeError)):
            emu.emu.configure(arrival_jitter_ms=bad)
    assert emu.emu.current_settings()["arrival_jitter_ms"] == 12.5


def _paced(running: Running, count: int, gap: float) -> list[int]:
    """Send ``count`` list requests, each ``gap`` s after the previous answer (a load
    spike only widens the gaps, so without jitter this can never overfill the window)."""
    session, url, statuses = running.http(), running.records_url(), []
    for _ in range(count):
        statuses.append(session.get(url).status_code)
        time.sleep(gap)
    return statuses


def test_pacing_just_under_the_limit_trips_the_lockout_only_with_jitter(
    start: Callable[..., Running],
) -> None:
    # GIVEN two emulators at the real 5 requests/s, one with 0..1000 ms of seeded arrival
    # jitter (seed 24 draws jitter that bunches the first six requests for any gap from
    # 205 to 330 ms; checked by simulating the limiter with the same draws)
    calm = start(rate_limit_rps=5, lockout_seconds=30)
    jittery = start(rate_limit_rps=5, lockout_seconds=30, arrival_jitter_ms=1000, seed=24)
    # WHEN a client sends 12 requests 210 ms apart to each
    calm_statuses = _paced(calm, 12, 0.21)
    jittery_statuses = _paced(jittery, 12, 0.21)
    # THEN the calm one accepted all, while jitter made arrivals bunch into a lockout
    assert calm_statuses == [200] * 12
    assert 429 in jittery_statuses
    assert jittery.emu.stats.lockouts == 1
