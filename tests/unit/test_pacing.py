"""The pacer: slots reserved `interval` apart, never more than `burst` requests sent within
one window (by when they really left), nobody let through during a lockout."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable

import pytest
from devstack.memory import FakeClock, StrictWindow

from poller.capacity import Capacity
from poller.pacing import Deadline, Pacer, on_wire


def answered(pacer: Pacer, sent: float | None) -> float | None:
    """The request answered the moment it left."""
    if sent is not None:
        pacer.answered(sent)
    return sent


class Wire:
    """Requests in flight on a fake clock: each reaches Airtable `delay()` after it left and
    is answered `work()` after it arrived. The pacer's sleep delivers the answers due."""

    def __init__(
        self, clock: FakeClock, delay: Callable[[], float], work: Callable[[], float]
    ) -> None:
        self.clock = clock
        self.delay, self.work = delay, work
        self.arrivals: list[float] = []
        self._answers: list[tuple[float, float]] = []
        self.pacer = Pacer(Capacity(5.0), clock=clock, sleep=self.sleep)

    def leave(self, sent: float) -> None:
        arrival = sent + self.delay()
        self.arrivals.append(arrival)
        heapq.heappush(self._answers, (arrival + self.work(), sent))

    def sleep(self, seconds: float) -> None:
        until = self.clock() + seconds
        while self._answers and self._answers[0][0] <= until:
            at, sent = heapq.heappop(self._answers)
            self.clock.now = max(self.clock.now, at)
            self.pacer.answered(sent)
        self.clock.now = until

    def pace(self, requests: int) -> float:
        """Send `requests`, each as soon as the pacer lets it; return requests/s."""
        started = self.clock()
        for _ in range(requests):
            self.sleep(0)
            sent = self.pacer.send(self.pacer.reserve(), not_after=math.inf)
            assert sent is not None
            self.leave(sent)
        return requests / (self.clock() - started)

    def crowded(self) -> list[float]:
        """Where six requests arrived within one second (Airtable would refuse the sixth)."""
        arrivals = sorted(self.arrivals)
        return [a for a, b in zip(arrivals, arrivals[5:], strict=False) if b - a < 1.0]


def test_slots_are_reserved_one_interval_apart() -> None:
    # GIVEN a pacer at Airtable's 5 requests/s
    clock = FakeClock()
    pacer = Pacer(Capacity(5.0), clock=clock, sleep=clock.sleep)
    # WHEN five slots are reserved at once
    slots = [pacer.reserve() for _ in range(5)]
    # THEN they are 1.02 / 5 s apart: five requests span 1.02 s
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(math.isclose(g, 0.204) for g in gaps)


def test_a_request_that_left_late_pushes_the_window_of_the_ones_after_it() -> None:
    # GIVEN five slots, the first of which is sent 150 ms late
    clock = FakeClock()
    pacer = Pacer(Capacity(5.0), clock=clock, sleep=clock.sleep)
    slots = [pacer.reserve() for _ in range(6)]
    clock.sleep(0.15)
    sent = [answered(pacer, pacer.send(s, not_after=math.inf)) for s in slots]
    # THEN the sixth leaves a full window after the late first one, not at its slot
    assert sent[5] is not None and sent[0] is not None
    assert sent[5] - sent[0] >= 1.02 - 1e-9
    assert sent[5] > slots[5]


def test_a_request_that_reaches_its_socket_late_is_counted_from_then() -> None:
    # GIVEN a pacer at 5 requests/s whose first request waits 80 ms between the pacer's
    # stamp and its socket (a busy thread), then is answered at once
    clock = FakeClock()
    pacer = Pacer(Capacity(5.0), clock=clock, sleep=clock.sleep)
    first = pacer.send(pacer.reserve(), not_after=math.inf)
    assert first is not None

    def late() -> str:
        clock.sleep(0.08)
        on_wire()
        return "answer"

    assert pacer.request(first, late) == "answer"
    # WHEN five more are paced
    sent = [answered(pacer, pacer.send(pacer.reserve(), not_after=math.inf)) for _ in range(5)]
    # THEN the next keep the pacer's rhythm, and the sixth waits a full window after the
    # first was on its socket, not after its stamp: six never arrive within one window
    assert sent[0] is not None and sent[4] is not None
    assert math.isclose(sent[0], first + pacer.interval)
    assert sent[4] >= first + 0.08 + 1.02 - 1e-9


def test_nobody_is_let_through_during_a_lockout_and_time_limits_are_kept() -> None:
    # GIVEN a pacer whose request was answered 429
    clock = FakeClock()
    pacer = Pacer(Capacity(5.0), lockout_seconds=30, clock=clock, sleep=clock.sleep)
    sent = answered(pacer, pacer.send(pacer.reserve(), not_after=math.inf))
    assert sent is not None
    ends = pacer.throttled(sent)
    # WHEN the next request must leave within 10 s
    refused = pacer.send(pacer.reserve(), not_after=clock() + 10)
    # THEN it is not sent, and the one after waits for the lockout's end
    assert refused is None
    assert pacer.send(pacer.reserve(), not_after=math.inf) == ends
    assert ends - sent >= 30 and pacer.lockouts == 1


def test_requests_in_flight_when_a_lockout_starts_teach_it_once() -> None:
    # GIVEN four requests sent, the first two answered 429 in one lockout
    clock = FakeClock()
    capacity = Capacity(5.0, wall=clock.wall)
    pacer = Pacer(capacity, clock=clock, sleep=clock.sleep)
    sent = [answered(pacer, pacer.send(pacer.reserve(), not_after=math.inf)) for _ in range(4)]
    pacer.throttled(sent[3])
    pacer.throttled(sent[2])
    # THEN one lockout was counted, and the earliest refused request set the limit
    assert pacer.lockouts == 1
    assert capacity.limit == 2.0  # 3 of ours in the second before sent[2]


def test_ten_ms_of_arrival_jitter_never_trips_the_window() -> None:
    # GIVEN Airtable's strict window, and arrivals that lag their sends by 0-10 ms
    clock = FakeClock()
    pacer = Pacer(Capacity(5.0), clock=clock, sleep=clock.sleep)
    arrivals = StrictWindow(clock, 5)
    rng = random.Random(20261202)
    refused = 0
    # WHEN 3,000 requests are paced and each arrives up to 10 ms late
    for _ in range(3000):
        sent = pacer.send(pacer.reserve(), not_after=math.inf)
        assert sent is not None
        delay = rng.uniform(0, 0.010)
        clock.sleep(delay)
        refused += not arrivals.admit()
        pacer.answered(sent)
        clock.now -= delay
    # THEN none was refused
    assert refused == 0


@pytest.mark.parametrize(
    ("share", "held_up", "near", "work", "least"),
    [
        # one request in ten held up 50-800 ms (a busy CPU holds a thread), the rest 0-10 ms
        (0.1, (0.05, 0.8), (0, 0.01), 0.005, 4.5),
        # half held up 15-45 ms (a process sharing its CPU), the rest 0-5 ms; quick answers
        (0.5, (0.015, 0.045), (0, 0.005), 0.003, 4.7),
    ],
)
def test_requests_that_reach_airtable_late_never_put_six_arrivals_in_one_second(
    share: float, held_up: tuple[float, float], near: tuple[float, float], work: float, least: float
) -> None:
    # GIVEN Airtable's 5 requests/s, and a share of the requests held up on their way from
    # the pacer to Airtable, which does `work` seconds of work on each
    rng = random.Random(20261202)
    late = lambda: rng.uniform(*held_up) if rng.random() < share else rng.uniform(*near)  # noqa: E731
    wire = Wire(FakeClock(), delay=late, work=lambda: work)
    # WHEN 2,000 requests are paced
    rate = wire.pace(2000)
    # THEN no six of them arrived within one second: none would have been refused
    assert wire.crowded() == []
    # AND the delays cost only some pace
    assert rate > least


def test_airtable_taking_its_time_to_answer_does_not_slow_the_pace() -> None:
    # GIVEN requests that arrive at once and are answered 150-350 ms later (Airtable's work)
    rng = random.Random(20261202)
    wire = Wire(FakeClock(), delay=lambda: 0.0, work=lambda: rng.uniform(0.15, 0.35))
    # WHEN 2,000 requests are paced
    rate = wire.pace(2000)
    # THEN none crowds the window, and the pace is the base's: 5 / 1.02 requests/s
    assert wire.crowded() == []
    assert rate > 4.85


def test_the_deadline_keeps_its_margin_and_hides_messages_for_the_rest_of_the_run() -> None:
    # GIVEN 60 s left and a 13 s margin
    deadline = Deadline(lambda: 60_000, 13)
    # THEN 47 s are usable, and a received message stays hidden for the 60 s plus 10
    assert deadline.usable() == 47 and deadline.allows(47) and not deadline.allows(48)
    assert deadline.visibility_seconds() == 70
