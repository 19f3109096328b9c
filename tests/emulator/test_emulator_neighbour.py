"""A neighbour client: another client of the same base whose requests share its window.

Its requests are virtual arrivals, evenly spaced from a seeded phase and admitted in time
order before any later request: with a fake clock the outcome is exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from airtable_emulator.conditions import Conditions
from airtable_emulator.limits import RateLimiter
from emulator_testkit import BASE, FakeClock, Running


def neighbour_at(rps: int, *, seed: int = 0, base: str = "b") -> tuple[Conditions, float]:
    """Conditions with a neighbour started at t = 0; returns them and its first arrival."""
    conditions = Conditions(RateLimiter(rps=rps, lockout_seconds=30), seed)
    conditions.start_neighbour(base, 2.0, 0.0)
    first = conditions.next_neighbour_arrival(base)
    assert first is not None
    return conditions, first


def test_neighbour_requests_are_evenly_spaced_after_a_seeded_phase() -> None:
    # GIVEN neighbours at 2 req/s started at t = 0 with seeds 0, 0 and 1
    (same_a, first_a), (_, first_b), (_, first_c) = (neighbour_at(5, seed=s) for s in (0, 0, 1))
    # THEN the phase lies within one period and comes from the seed
    assert 0.0 <= first_a < 0.5 and first_a == first_b and first_a != first_c
    # WHEN stats are caught up to t = 10
    same_a.catch_up("b", 10.0)
    # THEN it sent one request every 0.5 s from its phase, none refused under 5 req/s
    assert same_a.neighbour_stats("b") == {
        "sent": math.floor((10.0 - first_a) * 2) + 1,
        "refused": 0,
    }
    assert same_a.next_neighbour_arrival("b") == pytest.approx(first_a + 20 * 0.5)


def test_a_neighbour_that_overfills_the_window_starts_a_lockout() -> None:
    # GIVEN a base limited to 1 req/s and a neighbour at 2 req/s
    conditions, first = neighbour_at(1)
    # WHEN its second request arrives 0.5 s after its first
    started = conditions.catch_up("b", first + 0.5)
    # THEN that one is refused and starts a lockout, as a real request would
    assert started == 1
    assert conditions.neighbour_stats("b") == {"sent": 2, "refused": 1}
    assert conditions.limiter.locked_until("b") == pytest.approx(first + 30.5)


def test_neighbour_fills_the_window_the_client_shares(start: Callable[..., Running]) -> None:
    # GIVEN a 5 req/s base with a 30 s lockout and a neighbour at 3 req/s
    clock = FakeClock()
    running = start(rate_limit_rps=5, lockout_seconds=30, clock=clock)
    running.emu.start_neighbour(BASE, 3)
    first = running.emu.neighbour_next_arrival(BASE)
    assert first is not None
    # WHEN the clock is just past the neighbour's third request (three in the last second)
    clock.now = first + 2 / 3 + 0.1
    session, url = running.http(), running.records_url()
    # THEN the client has two requests left in that second, and the third is refused
    assert [session.get(url).status_code for _ in range(3)] == [200, 200, 429]
    assert running.emu.neighbour_stats(BASE) == {"sent": 3, "refused": 0}
    # WHEN the 30 s lockout passes (the clock stops between two neighbour requests)
    locked_at = clock.now
    clock.now = locked_at + 30.1
    # THEN the neighbour saw exactly the 429s of the lockout: its 90 requests inside it
    inside = sum(1 for k in range(200) if locked_at <= first + k / 3 < locked_at + 30.0)
    stats = running.emu.neighbour_stats(BASE)
    assert stats["refused"] == inside == 90
    assert stats["sent"] == sum(1 for k in range(200) if first + k / 3 <= clock.now)
    assert running.emu.stats.base(BASE).lockouts == 1


def test_neighbour_requests_are_not_api_requests_in_the_stats(
    start: Callable[..., Running],
) -> None:
    # GIVEN a neighbour at 2 req/s running for 10 s with no real request
    clock = FakeClock()
    running = start(rate_limit_rps=5, lockout_seconds=30, clock=clock)
    running.emu.start_neighbour(BASE, 2)
    clock.advance(10)
    # WHEN the stats are read
    stats = running.emu.stats
    # THEN the neighbour sent its requests but none is counted as the client's
    assert running.emu.neighbour_stats(BASE)["sent"] >= 20
    assert stats.requests == 0 and stats.base(BASE).data_requests == 0


def test_stop_counts_what_it_sent_then_forgets_it(start: Callable[..., Running]) -> None:
    # GIVEN a base limited to 2 req/s, and a neighbour at 2 req/s that just sent its second
    clock = FakeClock()
    running = start(rate_limit_rps=2, lockout_seconds=30, clock=clock)
    running.emu.start_neighbour(BASE, 2)
    first = running.emu.neighbour_next_arrival(BASE)
    assert first is not None
    clock.now = first + 0.5
    # WHEN it is stopped
    running.emu.stop_neighbour(BASE)
    # THEN its two requests still fill the window, and its stats are reset
    assert running.http().get(running.records_url()).status_code == 429
    assert running.emu.neighbour_stats(BASE) == {"sent": 0, "refused": 0}
    assert running.emu.neighbour_next_arrival(BASE) is None
    # AND after the lockout nothing else competes with the client
    clock.advance(30.0)
    session = running.http()
    assert [session.get(running.records_url()).status_code for _ in range(2)] == [200, 200]


def test_neighbour_endpoints_start_read_and_stop(start: Callable[..., Running]) -> None:
    # GIVEN an emulator with a fake clock and a control session
    clock = FakeClock()
    running = start(rate_limit_rps=5, lockout_seconds=30, clock=clock)
    control = running.http(token=None)
    endpoint = f"{running.url}/__emulator/neighbour/{BASE}"
    # WHEN a neighbour is started over HTTP and the clock moves 5 s
    assert control.post(endpoint, json={"rps": 2}).json() == {"sent": 0, "refused": 0}
    clock.advance(5.0)
    # THEN its stats are readable, and a DELETE answers the last ones and stops it
    sent = control.get(endpoint).json()["sent"]
    assert sent in (10, 11)
    assert running.emu.conditions()["neighbours"][BASE]["rps"] == 2.0
    assert control.delete(endpoint).json() == {"sent": sent, "refused": 0}
    assert control.get(endpoint).json() == {"sent": 0, "refused": 0}
    # AND bad rates are 400, unknown bases 404
    for bad in ({"rps": 0}, {"rps": -1}, {"rps": "2"}, {}):
        assert control.post(endpoint, json=bad).status_code == 400
    assert (
        control.post(f"{running.url}/__emulator/neighbour/appNope", json={"rps": 1}).status_code
        == 404
    )


def test_neighbour_without_a_limit_is_never_refused(start: Callable[..., Running]) -> None:
    # GIVEN no rate limit at all and a fast neighbour
    clock = FakeClock()
    running = start(rate_limit_rps=None, clock=clock)
    running.emu.start_neighbour(BASE, 50)
    clock.advance(2.0)
    # WHEN the client sends requests, THEN neither side is refused
    session = running.http()
    assert [session.get(running.records_url()).status_code for _ in range(10)] == [200] * 10
    assert running.emu.neighbour_stats(BASE)["refused"] == 0
