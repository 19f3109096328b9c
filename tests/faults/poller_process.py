"""The poller in its own process, as `python -m devstack.invoke` runs it (same arguments),
except that its pacers wait `--lockout-seconds` after a 429 instead of Airtable's 30 s.

    python tests/faults/poller_process.py --lockout-seconds 1.5 [devstack.invoke's arguments]

The emulator's lockout in the fault tests is as short: the poller must never wait less than
the emulator locks it out. Not collected by pytest (the name does not start with test_).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--lockout-seconds", type=float, required=True)
    args, rest = parser.parse_known_args(argv)

    from devstack import invoke

    from poller import runtime
    from poller.capacity import Capacity
    from poller.pacing import Pacer

    class ShortLockoutPacer(Pacer):
        def __init__(self, capacity: Capacity, **kwargs: Any) -> None:
            kwargs.setdefault("lockout_seconds", args.lockout_seconds)
            super().__init__(capacity, **kwargs)

    runtime.Pacer = ShortLockoutPacer  # type: ignore[misc]
    return invoke.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
