"""The Airtable emulator, as `python -m airtable_emulator` runs it, with its interpreter's
switch interval at 1 ms, and optionally a trace of every API request:

    python -m bench.emulator [--trace-arrivals FILE] [airtable_emulator's arguments]

The emulator is one Python process: while one of its threads evaluates a lookup's formula
over a table (about 0.2 ms per row for 100 keys: 270 ms at 1,500 rows), a thread that has
a request to read waits for the interpreter lock at each of its reads, up to the switch
interval each time (5 ms by default), and records that request's arrival late. At 1 ms it
waits a fifth as long.

The trace has two kinds of JSON lines. One per request routed to a base,
`{"base", "arrived", "admitted", "kind"}`: `arrived` is the emulator's `time.monotonic()`
once it had read the request (before any arrival jitter is added), `admitted` false for a
429, `kind` the route's (CREATE, UPDATE, LIST, META...). And one per request it went on to
answer, `{"base", "kind", "operated": [start, end]}`: the time it spent reading or writing
the table (under the emulator's lock, which every other request's read or write waits
for). The benchmark pairs the first with the poller's pacer stamps (`bench.poller
--trace-sends`). This only observes: each line is one write(2) once the step is done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

SWITCH_INTERVAL_S = 0.001


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--trace-arrivals")
    args, rest = parser.parse_known_args(argv)
    # A thread that has a request to read waits at most this long for the interpreter lock
    # while another evaluates a formula (the default is 5 ms).
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    from airtable_emulator import __main__ as cli
    from airtable_emulator import pipeline

    if args.trace_arrivals:
        _trace(args.trace_arrivals, pipeline)
    return cli.main(rest)


def _trace(path: str, pipeline: Any) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    admit = pipeline._admit

    def traced(state: Any, route: Any, request: Any) -> None:
        admitted = False
        try:
            admit(state, route, request)
            admitted = True
        finally:
            line = {
                "base": route.base_id,
                "arrived": request.arrived,
                "admitted": admitted,
                "kind": str(getattr(route.kind, "name", route.kind)),
            }
            os.write(fd, (json.dumps(line) + "\n").encode())

    operate = pipeline._operate

    def timed(state: Any, route: Any, base: Any, request: Any) -> Any:
        started = time.monotonic()
        try:
            return operate(state, route, base, request)
        finally:
            line = {
                "base": route.base_id,
                "kind": str(getattr(route.kind, "name", route.kind)),
                "operated": [started, time.monotonic()],
            }
            os.write(fd, (json.dumps(line) + "\n").encode())

    pipeline._admit = traced
    pipeline._operate = timed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
