"""``python -m airtable_emulator``: run the emulator until SIGTERM or SIGINT.

Prints exactly one line, ``airtable-emulator listening on http://HOST:PORT``, once the
socket is bound, so a parent process can wait for it and read the port (``--port 0``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .config import ALL_SCOPES, DEFAULT_MAX_BODY_BYTES, DEFAULT_TOKEN, EmulatorConfig, Faults
from .emulator import Emulator
from .schema import DONATIONS_BASE_ID, donations_schema


def _latency(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    try:
        return (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN:MAX, got {text!r}") from None


def _rps(text: str) -> int | None:
    return None if text.lower() in ("none", "off", "0") else int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airtable_emulator", description="Local Airtable REST API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="accepted token (all scopes)")
    parser.add_argument("--base", default=DONATIONS_BASE_ID, help="base id to serve")
    parser.add_argument(
        "--schema", type=Path, help="JSON schema file {'tables': [...]} (default: Donations)"
    )
    parser.add_argument("--rate-limit-rps", type=_rps, default=5, help="'none' disables")
    parser.add_argument("--lockout-seconds", type=float, default=30.0)
    parser.add_argument("--latency", type=_latency, default=(0.0, 0.0), help="S or MIN:MAX")
    parser.add_argument("--error-5xx-rate", type=float, default=0.0)
    parser.add_argument("--lost-response-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--arrival-jitter-ms",
        type=float,
        default=0.0,
        help="the limiter counts each request at its arrival plus a seeded 0..J ms",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    schema: dict[str, Any] = (
        json.loads(args.schema.read_text(encoding="utf-8")) if args.schema else donations_schema()
    )
    return EmulatorConfig(
        bases={args.base: schema},
        tokens={args.token: ALL_SCOPES},
        rate_limit_rps=args.rate_limit_rps,
        lockout_seconds=args.lockout_seconds,
        latency=args.latency,
        faults=Faults(
            error_5xx_rate=args.error_5xx_rate, lost_response_rate=args.lost_response_rate
        ),
        seed=args.seed,
        max_body_bytes=args.max_body_bytes,
        arrival_jitter_ms=args.arrival_jitter_ms,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        emulator = Emulator(config_from_args(args))
    except (OSError, ValueError) as exc:
        print(f"airtable-emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    url = emulator.start(args.host, args.port)
    print(f"airtable-emulator listening on {url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
