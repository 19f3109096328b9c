"""The poller in its own process, as `python -m devstack.invoke` runs it, with what a
benchmark run needs around it:

    python -m bench.poller [--lockout-seconds S] [--probe-seconds FIRST:HOLD]
                           [--trace-sends FILE] [devstack.invoke's arguments]

* `--lockout-seconds S`: the pacers wait S after a 429 instead of Airtable's 30 s (the
  emulator's lockout is set as short: the poller must never wait less than it is locked
  out). Only for short test runs.
* `--probe-seconds FIRST:HOLD`: a learned pace is probed FIRST s after it was learned and a
  probe stands after HOLD s without a lockout, instead of the poller's 120:60. Only for short
  test runs; every figure of the docs is measured with the poller's own values.
* `--trace-sends FILE`: append one JSON line per request the pacers let go,
  `{"base", "t", "wrote", "by"}`: `t` is `time.monotonic()` when the pacer stamped it,
  `wrote` when urllib3 had written that request to its socket (the next request made on
  the same thread), `by` the function that asked the pacer (the writer's `_send`, the
  mirror's `_call`, the preflight's `_get`...). The benchmark pairs each with the request's
  arrival at the emulator (all CLOCK_MONOTONIC), so that the time from stamp to arrival
  splits into the client's part and the rest. This only observes: each line is one
  write(2) once the request is on its way.

Without any of them it is `devstack.invoke` itself (the benchmark then runs that module
directly, so that the import time it reports is a cold one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _pair(text: str) -> tuple[float, float]:
    first, _, hold = text.partition(":")
    return float(first), float(hold or first)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--lockout-seconds", type=float)
    parser.add_argument("--probe-seconds", type=_pair)
    parser.add_argument("--trace-sends")
    args, rest = parser.parse_known_args(argv)

    from devstack import invoke

    from poller import capacity, runtime
    from poller.pacing import Pacer

    if args.probe_seconds is not None:
        first, hold = args.probe_seconds
        fresh = capacity.PROBE_FIRST_SECONDS
        capacity.PROBE_FIRST_SECONDS, capacity.PROBE_HOLD_SECONDS = first, hold
        post_init = capacity.Capacity.__post_init__

        def shorter_probe(self: capacity.Capacity) -> None:
            if self.probe_interval == fresh:  # the dataclass default, bound at definition
                self.probe_interval = first
            post_init(self)

        capacity.Capacity.__post_init__ = shorter_probe  # type: ignore[method-assign]

    if args.lockout_seconds is not None:
        lockout = args.lockout_seconds

        class ShortLockoutPacer(Pacer):
            def __init__(self, cap: capacity.Capacity, **kwargs: Any) -> None:
                kwargs.setdefault("lockout_seconds", lockout)
                super().__init__(cap, **kwargs)

        runtime.Pacer = ShortLockoutPacer  # type: ignore[misc]

    if args.trace_sends:
        import threading
        import time

        from urllib3.connection import HTTPConnection

        fd = os.open(args.trace_sends, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        pending = threading.local()
        send = Pacer.send

        def traced(self: Pacer, slot: float, not_after: float) -> float | None:
            sent = send(self, slot, not_after)
            if sent is not None:
                caller = sys._getframe(1).f_code.co_name
                pending.line = {"base": getattr(self, "bench_base", ""), "t": sent, "by": caller}
            return sent

        request = HTTPConnection.request

        def written(self: HTTPConnection, *a: Any, **kw: Any) -> None:
            request(self, *a, **kw)
            line = getattr(pending, "line", None)
            if line is not None:
                pending.line = None
                line["wrote"] = time.monotonic()
                os.write(fd, (json.dumps(line) + "\n").encode())

        Pacer.send = traced  # type: ignore[method-assign]
        HTTPConnection.request = written  # type: ignore[method-assign]
        init = runtime.Runtime.__init__

        def tagged(self: runtime.Runtime, *a: Any, **kw: Any) -> None:
            init(self, *a, **kw)
            for base, pacer in self.pacers.items():
                pacer.bench_base = base  # type: ignore[attr-defined]

        runtime.Runtime.__init__ = tagged  # type: ignore[method-assign]

    return invoke.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
