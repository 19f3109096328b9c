"""A base's capacity at run time: its own limit on the strict 1 s window, with lockouts.

Every request here arrives at the fake clock's time, so the window is exact whatever the
machine's speed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from airtable_emulator import donations_schema
from airtable_emulator.limits import Admission, RateLimiter
from emulator_testkit import BASE, FakeClock, Running

OTHER = "appOtherBase00001"


def test_limiter_keeps_a_limit_per_key_and_falls_back_to_the_default() -> None:
    # GIVEN a 5 req/s limiter whose key "a" is limited to 2
    limiter = RateLimiter(rps=5, lockout_seconds=30)
    limiter.set_rps("a", 2)
    # WHEN three requests arrive at once on "a" and on "b"
    a = [limiter.admit("a", 0.0) for _ in range(3)]
    b = [limiter.admit("b", 0.0) for _ in range(3)]
    # THEN "a" locks out on the third, "b" (the default 5) does not
    assert a == [Admission.ACCEPTED, Admission.ACCEPTED, Admission.LOCKOUT_STARTED]
    assert b == [Admission.ACCEPTED] * 3
    # WHEN "a" goes back to the default
    limiter.set_rps("a", None)
    # THEN it follows the default limit again
    assert limiter.rps_for("a") == 5 and limiter.overrides() == {}


def test_a_lowered_capacity_applies_to_the_next_request(start: Callable[..., Running]) -> None:
    # GIVEN the default 5 req/s, a fake clock and a 30 s lockout
    clock = FakeClock()
    running = start(rate_limit_rps=5, lockout_seconds=30, clock=clock)
    session, url = running.http(), running.records_url()
    # WHEN two requests arrive, then the capacity drops to 2 while they are in the window
    assert [session.get(url).status_code for _ in range(2)] == [200, 200]
    running.emu.set_capacity(BASE, 2)
    # THEN the third request in the same second is refused and starts a lockout
    third = session.get(url)
    assert third.status_code == 429
    assert third.json()["errors"][0]["error"] == "RATE_LIMIT_REACHED"
    clock.advance(29.9)
    assert session.get(url).status_code == 429
    # AND the lockout ends after lockout_seconds, when two per second pass again
    clock.advance(0.1)
    assert [session.get(url).status_code for _ in range(3)] == [200, 200, 429]
    stats = running.emu.stats.base(BASE)
    assert (stats.lockouts, stats.rate_limited, stats.accepted) == (2, 3, 4)


def test_capacity_none_returns_the_base_to_the_configured_default(
    start: Callable[..., Running],
) -> None:
    # GIVEN a base limited to 1 req/s at run time, and the default of 3
    clock = FakeClock()
    running = start(rate_limit_rps=3, lockout_seconds=1, clock=clock)
    running.emu.set_capacity(BASE, 1)
    session, url = running.http(), running.records_url()
    assert [session.get(url).status_code for _ in range(2)] == [200, 429]
    # WHEN its capacity is set back to None and the lockout is over
    running.emu.set_capacity(BASE, None)
    clock.advance(1.0)
    # THEN it takes three per second again
    assert running.emu.capacity(BASE) == 3
    assert [session.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_capacity_of_one_base_leaves_the_others_alone(start: Callable[..., Running]) -> None:
    # GIVEN two bases and no default limit
    running = start(
        bases={BASE: donations_schema(), OTHER: donations_schema()},
        rate_limit_rps=None,
        lockout_seconds=30,
        clock=FakeClock(),
    )
    # WHEN one base gets a capacity of 1
    running.emu.set_capacity(BASE, 1)
    session = running.http()
    # THEN that base is limited and the other is not
    assert [session.get(running.records_url()).status_code for _ in range(2)] == [200, 429]
    other = [session.get(running.records_url(base=OTHER)).status_code for _ in range(5)]
    assert other == [200] * 5


def test_capacity_endpoint_sets_and_reads_the_limit(start: Callable[..., Running]) -> None:
    # GIVEN an emulator with the default limit and a control session
    running = start(rate_limit_rps=5, lockout_seconds=30, clock=FakeClock())
    control = running.http(token=None)
    endpoint = f"{running.url}/__emulator/capacity/{BASE}"
    # WHEN the capacity is set to 1 over HTTP
    response = control.post(endpoint, json={"rps": 1})
    # THEN it is reported, readable and enforced
    assert response.status_code == 200 and response.json() == {"base": BASE, "rps": 1}
    assert control.get(endpoint).json()["rps"] == 1
    assert running.emu.conditions()["capacity"] == {BASE: 1}
    session = running.http()
    assert [session.get(running.records_url()).status_code for _ in range(2)] == [200, 429]
    # WHEN it is set back to null, THEN the default applies
    assert control.post(endpoint, json={"rps": None}).json()["rps"] == 5


@pytest.mark.parametrize("body", [{"rps": 0}, {"rps": 1.5}, {"rps": "5"}, {}, {"rps": 1, "x": 1}])
def test_capacity_endpoint_refuses_bad_bodies(emu: Running, body: dict[str, object]) -> None:
    # GIVEN a control session, WHEN a bad capacity is posted
    response = emu.http(token=None).post(f"{emu.url}/__emulator/capacity/{BASE}", json=body)
    # THEN it is a 400 and nothing changes
    assert response.status_code == 400
    assert emu.emu.conditions()["capacity"] == {}


def test_capacity_of_an_unknown_base_is_404(emu: Running) -> None:
    # GIVEN an unknown base, WHEN its capacity is set, THEN it is a 404 (KeyError in Python)
    control = emu.http(token=None)
    assert (
        control.post(f"{emu.url}/__emulator/capacity/appNope", json={"rps": 1}).status_code == 404
    )
    with pytest.raises(KeyError):
        emu.emu.set_capacity("appNope", 1)
