"""The pace is learned per base from its lockouts, on a simulated strict window and a fake
clock: it converges in at most 2 lockouts and then stays under the capacity; it probes back
up only rarely, and recovers when the capacity comes back."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import pytest
from devstack.memory import FakeClock, StrictWindow, WindowSink

from poller.capacity import (
    PACING_GUARD,
    PROBE_FIRST_SECONDS,
    PROBE_HOLD_SECONDS,
    WIDE_GUARD,
    Capacity,
    month_of,
)
from poller.errors import ThrottledError
from poller.model import Record
from poller.pacing import Pacer

TEN = [Record({"Id": str(n)}) for n in range(10)]


@dataclass
class Run:
    lockouts: list[float]  # fake-clock times of each lockout
    written: int
    pacer: Pacer
    window: StrictWindow


def drive(
    clock: FakeClock,
    window: StrictWindow,
    seconds: float,
    capacity: Capacity | None = None,
    pacer: Pacer | None = None,
) -> Run:
    """One writer with a backlog that never ends, as the drain with full requests waiting:
    reserve, send, write; a 429 teaches the pacer."""
    capacity = capacity or Capacity(5.0, wall=clock.wall)
    pacer = pacer or Pacer(capacity, clock=clock, sleep=clock.sleep)
    sink = WindowSink(window)
    end = clock() + seconds
    lockouts: list[float] = []
    while clock() < end:
        pacer.capacity.probe()
        sent_at = pacer.send(pacer.reserve(), not_after=math.inf)
        assert sent_at is not None
        try:
            sink.write(TEN)
            pacer.answered(sent_at)
        except ThrottledError:
            pacer.answered(sent_at)
            lockouts.append(clock())
            pacer.throttled(sent_at)
            continue
        pacer.capacity.settle_probe()
    return Run(lockouts, sink.written, pacer, window)


def window_for(clock: FakeClock, capacity: float) -> StrictWindow:
    """A base whose capacity for this poller is `capacity` requests/s: Airtable's 5 with a
    neighbour using the rest, or a workspace slowed to fewer."""
    if capacity == int(capacity):
        return StrictWindow(clock, int(capacity))
    return StrictWindow(clock, 5, neighbour_rps=5 - capacity)


@pytest.mark.parametrize("capacity", [1.0, 2.0, 3.5, 5.0])
def test_the_pace_converges_in_at_most_two_lockouts_and_stays_under(
    clock: FakeClock, capacity: float
) -> None:
    # GIVEN a base that takes `capacity` requests/s of ours, and a poller that starts at 5
    window = window_for(clock, capacity)
    # WHEN it writes a backlog for as long as the first probe is not due
    run = drive(clock, window, PROBE_FIRST_SECONDS - 1)
    # THEN it was locked out at most twice, then never again, below the capacity
    assert len(run.lockouts) <= 2, run.lockouts
    assert run.pacer.capacity.rate <= capacity
    last = run.lockouts[-1] if run.lockouts else clock() - PROBE_FIRST_SECONDS
    assert clock() - last > 60  # a long stretch without a lockout after the last one


@pytest.mark.parametrize(("capacity", "floor"), [(2.0, 17.0), (4.0, 34.0), (5.0, 48.0)])
def test_after_learning_it_writes_at_least_85_percent_of_the_capacity(
    clock: FakeClock, capacity: float, floor: float
) -> None:
    # GIVEN a poller that has learned the base's capacity (a workspace slowed to 2/s, a
    # neighbour at 1/s, or a quiet base)
    window = (
        window_for(clock, capacity)
        if capacity != 4.0
        else StrictWindow(clock, 5, neighbour_rps=1.0)
    )
    learned = drive(clock, window, 40)
    # WHEN it writes on for a minute
    started = clock()
    after = drive(clock, window, 60, pacer=learned.pacer)
    # THEN it keeps at least 85% of what the base can take, without a lockout
    assert after.lockouts == []
    assert after.written / (clock() - started) >= floor


def test_the_neighbour_sees_only_the_429s_of_the_lockouts(clock: FakeClock) -> None:
    # GIVEN another client reading the base at 1 request/s
    window = StrictWindow(clock, 5, neighbour_rps=1.0)
    # WHEN the poller learns the base's capacity and writes on
    run = drive(clock, window, PROBE_FIRST_SECONDS - 1)
    # THEN the neighbour was refused only during the poller's lockouts (30 s at 1/s each)
    assert window.neighbour_refused <= 31 * len(run.lockouts)
    assert len(run.lockouts) <= 2


def test_a_probe_above_the_capacity_is_rare_and_costs_one_lockout_each(clock: FakeClock) -> None:
    # GIVEN a base that stays at 2 requests/s for an hour
    window = StrictWindow(clock, 2)
    # WHEN the poller writes a backlog all along
    run = drive(clock, window, 3600)
    # THEN after learning, each probe cost one lockout, and they came ever more rarely
    probes = run.lockouts[1:]
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert len(run.lockouts) <= 6
    assert gaps == sorted(gaps)
    assert run.pacer.capacity.limit == 2.0


def test_the_pace_recovers_when_the_capacity_comes_back(clock: FakeClock) -> None:
    # GIVEN a poller that learned a base slowed to 2 requests/s
    window = StrictWindow(clock, 2)
    learned = drive(clock, window, 60)
    assert learned.pacer.capacity.limit == 2.0
    # WHEN the base takes 5 again (a neighbour stopped)
    window.limit = 5
    run = drive(clock, window, 30 * 60, pacer=learned.pacer)
    # THEN probing took the pace back to the ceiling, without a single lockout
    assert run.lockouts == []
    assert run.pacer.capacity.limit == 5.0


def test_a_new_month_lets_a_learned_pace_probe_at_once(clock: FakeClock) -> None:
    # GIVEN a pace learned near the end of a month, with its next probe far away
    capacity = Capacity(5.0, wall=clock.wall)
    capacity.locked_out(3, first=True)
    capacity.next_probe_at = clock.wall() + 10 * 24 * 3600
    assert not capacity.probe()
    # WHEN the month turns
    clock.sleep(31 * 24 * 3600)
    assert month_of(clock.wall()) != capacity.month
    # THEN a probe is due at once, and the month's request count starts again
    capacity.requests = 99
    assert capacity.probe()
    assert capacity.requests == 0


def test_a_kept_capacity_round_trips_and_a_malformed_one_is_refused(clock: FakeClock) -> None:
    # GIVEN a learned capacity
    capacity = Capacity(5.0, wall=clock.wall)
    capacity.locked_out(3, first=True)
    capacity.count(7)
    # WHEN it is kept and read back under a lower ceiling
    again = Capacity.from_json(capacity.to_json(), ceiling=1.5, wall=clock.wall)
    # THEN it holds what was learned, within today's ceiling
    assert (
        again.limit == 1.5
        and again.requests == 7
        and again.next_probe_at == pytest.approx(capacity.next_probe_at)
    )
    for broken in ({}, {"limit": "nan"}, {"limit": -1}, {"limit": 5, "guard": "nan"}):
        with pytest.raises((ValueError, KeyError)):
            Capacity.from_json(broken, ceiling=5.0)


def test_arrival_jitter_costs_one_lockout_and_the_first_probe_wins_the_limit_back(
    clock: FakeClock,
) -> None:
    # GIVEN a base that takes 5 requests/s, reached with 0-40 ms of arrival jitter (seeded)
    rng = random.Random(7)
    window = StrictWindow(clock, 5, jitter=lambda: rng.uniform(0.0, 0.040))
    # WHEN the poller writes a backlog until its first probe has held
    run = drive(clock, window, 30 + PROBE_FIRST_SECONDS + PROBE_HOLD_SECONDS + 10)
    # THEN its own full window was refused once: the limit dropped and the guard widened,
    # and the probe took the limit back to 5 without another lockout
    assert len(run.lockouts) == 1
    assert (run.pacer.capacity.limit, run.pacer.capacity.guard) == (5.0, WIDE_GUARD)
    # AND writing on, it keeps at least 90% of the base's 50 records/s
    started = clock()
    after = drive(clock, window, 60, pacer=run.pacer)
    assert after.lockouts == []
    assert after.written / (clock() - started) >= 45.0


def test_a_refusal_of_a_full_window_makes_the_next_probe_a_trial_of_the_wide_guard(
    clock: FakeClock,
) -> None:
    # GIVEN a pace at 5 that a 429 after 3 of ours taught 2 (the base is slowed), and a later
    # 429 of the same lockout whose 3 fill the window of the limit just learned
    capacity = Capacity(5.0, wall=clock.wall)
    capacity.locked_out(3, first=True)
    capacity.locked_out(3, first=False)
    assert (capacity.limit, capacity.jitter_suspected) == (2.0, False)
    # WHEN the next lockout comes with a full window of ours (2 at the limit of 2)
    capacity.locked_out(2, first=True)
    # THEN the limit is learned, jitter is suspected, and the guard waits for the probe
    assert (capacity.limit, capacity.guard, capacity.jitter_suspected) == (1.0, PACING_GUARD, True)
    # WHEN the probe is due: it is made at the wide guard, and a container started during it
    # would try the same again
    clock.sleep(PROBE_FIRST_SECONDS)
    assert capacity.probe()
    assert (capacity.limit, capacity.guard) == (2.0, WIDE_GUARD)
    kept = Capacity.from_json(capacity.to_json(), ceiling=5.0, wall=clock.wall)
    assert (kept.guard, kept.jitter_suspected) == (PACING_GUARD, True)
    # WHEN the probe is refused: capacity, not jitter
    capacity.locked_out(2, first=True)
    # THEN the guard goes back with the limit, and nothing is suspected any more
    assert (capacity.limit, capacity.guard, capacity.jitter_suspected) == (1.0, PACING_GUARD, False)


def test_a_probe_that_holds_at_the_wide_guard_keeps_it(clock: FakeClock) -> None:
    # GIVEN a pace whose full window was refused, on its probe at the wide guard
    capacity = Capacity(5.0, wall=clock.wall)
    capacity.locked_out(5, first=True)
    clock.sleep(PROBE_FIRST_SECONDS)
    assert capacity.probe()
    # WHEN the probe holds without a lockout
    clock.sleep(PROBE_HOLD_SECONDS)
    capacity.settle_probe()
    # THEN it was jitter: the limit is back at 5 and the wide guard stays, also when kept
    assert (capacity.limit, capacity.guard) == (5.0, WIDE_GUARD)
    kept = Capacity.from_json(capacity.to_json(), ceiling=5.0, wall=clock.wall)
    assert (kept.limit, kept.guard, kept.jitter_suspected) == (5.0, WIDE_GUARD, False)
