"""What happens around the poller during a scenario: the emulator watched, and the world
changed through its control API (a lockout, a base's capacity, a neighbour client), or a
CPU hog beside the poller.

Every actor is a context manager that runs while the poller drains. Times are
`time.monotonic()`: CLOCK_MONOTONIC on Linux, the clock of the emulator's write log and of
every process on the machine.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from .feeder import Feeder
from .procs import get_json, put_json, started

#: How often the emulator's counters are sampled.
WATCH_POLL_S = 0.2
#: The trailing window over which a base's request rate is read.
RATE_WINDOW_S = 10.0


class Background:
    """A daemon thread that runs `_run` while the `with` block lasts; `_stop` is set when the
    block ends, and the thread is joined (at most 10 s)."""

    thread_name = "bench-background"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Sample:
    """The emulator's counters at `t`: lockouts over every base, and per base the requests
    its limiter admitted and the lockouts it had."""

    t: float
    lockouts: int
    write_requests: int
    accepted: dict[str, int]
    base_lockouts: dict[str, int]


class EmulatorWatch(Background):
    """Samples `GET /__emulator/stats` (a control endpoint: neither counted nor limited)
    every `WATCH_POLL_S`, so that each lockout can be placed in time, per base, and each
    base's request rate read over time. Reading the stats also admits a neighbour's
    requests due by then (the emulator's rule), which changes nothing of the outcome."""

    thread_name = "bench-watch"

    def __init__(self, api_url: str) -> None:
        super().__init__()
        self.api_url = api_url
        self.samples: list[Sample] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self._sample()
        return super().__enter__()

    def __exit__(self, *_: object) -> None:
        super().__exit__()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(WATCH_POLL_S):
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        with contextlib.suppress(OSError, ValueError, KeyError):
            stats = get_json(f"{self.api_url}/__emulator/stats", timeout=5)
            by_base = stats.get("by_base") or {}
            sample = Sample(
                now,
                int(stats["lockouts"]),
                int(stats["write_requests"]),
                {b: int(s.get("accepted", 0)) for b, s in by_base.items()},
                {b: int(s.get("lockouts", 0)) for b, s in by_base.items()},
            )
            with self._lock:
                self.samples.append(sample)

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    @property
    def started_at(self) -> list[float]:
        """When each lockout (of any base) began: half a poll before the sample that saw it."""
        return _starts([(s.t, s.lockouts) for s in self.snapshot()])

    def started_at_by_base(self) -> dict[str, list[float]]:
        samples = self.snapshot()
        bases = sorted({b for s in samples for b in s.base_lockouts})
        return {b: _starts([(s.t, s.base_lockouts.get(b, 0)) for s in samples]) for b in bases}

    def lockouts_of(self, base: str) -> int:
        """The base's lockouts so far, at the last sample."""
        with self._lock:
            return self.samples[-1].base_lockouts.get(base, 0) if self.samples else 0

    def rate(self, base: str, at: float | None = None, window: float = RATE_WINDOW_S) -> float:
        """Requests/s the base admitted over the `window` s before `at` (default: now)."""
        return rate_at(self.snapshot(), base, time.monotonic() if at is None else at, window)


def _starts(points: list[tuple[float, int]]) -> list[float]:
    out: list[float] = []
    for (_, before), (t, after) in itertools.pairwise(points):
        out += [t - WATCH_POLL_S / 2] * max(0, after - before)
    return out


def rate_at(samples: list[Sample], base: str, at: float, window: float = RATE_WINDOW_S) -> float:
    """Requests/s of `base` admitted over (at - window, at], from the samples around it."""
    inside = [s for s in samples if at - window <= s.t <= at]
    if len(inside) < 2 or inside[-1].t - inside[0].t < window / 2:
        return 0.0
    first, last = inside[0], inside[-1]
    admitted = last.accepted.get(base, 0) - first.accepted.get(base, 0)
    return admitted / (last.t - first.t)


def wait_first_write(api_url: str, stop: threading.Event) -> float | None:
    """Block until the emulator has applied a write; its time, or None if stopped first."""
    while not stop.wait(0.05):
        with contextlib.suppress(OSError, ValueError, KeyError):
            if get_json(f"{api_url}/__emulator/stats", timeout=5)["write_requests"]:
                return time.monotonic()
    return None


class ForcedLockout(Background):
    """Locks `base` out (`POST /__emulator/lockout/{base}`, as if a 429 had just been
    answered) `after_s` seconds after the first confirmed write of the run."""

    thread_name = "bench-lock-out"

    def __init__(self, api_url: str, base: str, after_s: float) -> None:
        super().__init__()
        self.api_url = api_url
        self.base = base
        self.after_s = after_s
        self.at: float | None = None

    def _run(self) -> None:
        if wait_first_write(self.api_url, self._stop) is None or self._stop.wait(self.after_s):
            return
        put_json(f"{self.api_url}/__emulator/lockout/{self.base}", {}, method="POST")
        self.at = time.monotonic()

    def describe(self) -> dict[str, Any]:
        return {"base": self.base, "after_first_write_s": self.after_s, "done": self.at is not None}


def set_capacity(api_url: str, base: str, rps: int | None) -> dict[str, Any]:
    """`POST /__emulator/capacity/{base}`: the base takes `rps` requests/s from now on
    (None: Airtable's 5 again)."""
    return dict(put_json(f"{api_url}/__emulator/capacity/{base}", {"rps": rps}, method="POST"))


def start_neighbour(api_url: str, base: str, rps: float) -> None:
    """Another client of the base sends a request every 1/rps s from now on."""
    put_json(f"{api_url}/__emulator/neighbour/{base}", {"rps": rps}, method="POST")


def stop_neighbour(api_url: str, base: str) -> dict[str, int]:
    """Stop the neighbour; its {"sent", "refused"} until now."""
    request_url = f"{api_url}/__emulator/neighbour/{base}"
    return dict(put_json(request_url, {}, method="DELETE"))


@dataclass(frozen=True)
class CapacityChange:
    """A base's capacity drops from Airtable's 5 requests/s to `low_rps` `drop_after_s` after
    the first write, and comes back once the poller has had `restore_after_lockouts` lockouts
    since the drop (two to learn the lower pace, then a failed probe) and `restore_delay_s`
    more, or `restore_at_latest_s` after the drop. The feeder stops once the base has taken
    `back_rps` requests/s or more over `RATE_WINDOW_S` for `hold_s`, or `feed_at_most_s`
    after the first write: the poller then drains what is left and its run ends."""

    drop_after_s: float = 20.0
    low_rps: int = 2
    restore_after_lockouts: int = 3
    restore_delay_s: float = 10.0
    restore_at_latest_s: float = 400.0
    back_rps: float = 4.5
    hold_s: float = 20.0
    feed_at_most_s: float = 840.0


class CapacityChanger(Background):
    """Carries out a `CapacityChange` on `base`, reading lockouts and rates from `watch`."""

    thread_name = "bench-capacity"

    def __init__(
        self,
        api_url: str,
        base: str,
        change: CapacityChange,
        watch: EmulatorWatch,
        lockout_s: float,
        feeder: Feeder,
    ) -> None:
        super().__init__()
        self.api_url, self.base, self.change = api_url, base, change
        self.watch, self.lockout_s, self.feeder = watch, lockout_s, feeder
        self.first_write_at: float | None = None
        self.dropped_at: float | None = None
        self.restored_at: float | None = None
        self.back_at: float | None = None
        self.closed_at: float | None = None
        self.fed: int | None = None
        self.closed_because = ""

    def _run(self) -> None:
        change = self.change
        self.first_write_at = wait_first_write(self.api_url, self._stop)
        if self.first_write_at is None or self._stop.wait(change.drop_after_s):
            return
        set_capacity(self.api_url, self.base, change.low_rps)
        self.dropped_at = time.monotonic()
        while not self._stop.wait(WATCH_POLL_S):
            now = time.monotonic()
            starts = [
                t
                for t in self.watch.started_at_by_base().get(self.base, [])
                if t >= self.dropped_at
            ]
            due = (
                len(starts) >= change.restore_after_lockouts
                and now >= starts[-1] + self.lockout_s + change.restore_delay_s
            )
            if due or now >= self.dropped_at + change.restore_at_latest_s:
                set_capacity(self.api_url, self.base, None)
                self.restored_at = now
                break
        while not self._stop.wait(WATCH_POLL_S):
            now = time.monotonic()
            if self.back_at is None and self.watch.rate(self.base) >= change.back_rps:
                self.back_at = now
            if self.back_at is not None and now - self.back_at >= change.hold_s:
                self._close("the pace was back")
                return
            if now - self.first_write_at >= change.feed_at_most_s:
                self._close("feed_at_most_s passed")
                return

    def _close(self, why: str) -> None:
        self.fed = self.feeder.close_supply()
        self.closed_at = time.monotonic()
        self.closed_because = why

    def describe(self, origin: float) -> dict[str, Any]:
        """The change as it happened, in seconds from `origin` (the first write)."""

        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - origin, 1)

        return {
            "base": self.base,
            "low_rps": self.change.low_rps,
            "dropped_at_s": rel(self.dropped_at),
            "restored_at_s": rel(self.restored_at),
            "rate_back_at_s": rel(self.back_at),
            "feeding_stopped_at_s": rel(self.closed_at),
            "feeding_stopped_because": self.closed_because,
            "messages_fed": self.fed,
            "rule": {
                "drop_after_first_write_s": self.change.drop_after_s,
                "restore_after_lockouts": self.change.restore_after_lockouts,
                "restore_delay_s": self.change.restore_delay_s,
                "restore_at_latest_s": self.change.restore_at_latest_s,
                "back_rps": self.change.back_rps,
                "hold_s": self.change.hold_s,
                "feed_at_most_s": self.change.feed_at_most_s,
            },
        }


#: The CPU hog beside the poller.
HOG_CODE = "while 1: pass"


@contextlib.contextmanager
def cpu_hog(log_path: Path) -> Iterator[list[str]]:
    """`python3 -c 'while 1: pass'` on the CPUs this process may use (the poller's: the
    benchmark pins itself and its children away from the emulator's CPU)."""
    python3 = shutil.which("python3") or sys.executable
    argv = [python3, "-c", HOG_CODE]
    with started(argv, log_path):
        yield argv
