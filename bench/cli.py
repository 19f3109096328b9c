"""`python -m bench`: run every measurement, write bench/results/, print the table."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from devstack.stack import BASE_ID, TOKEN

from . import phases, plot
from .phases import Scenario
from .procs import STARTED_PIDS, BenchError, EmulatorOptions, moto_server, plan_placement
from .report import machine, source, table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: Where a full run copies its single-base plot for the docs' performance page.
DOCS_PLOT = ROOT / "docs" / "assets" / "bench-throughput.png"
#: Messages the poller holds received at most (MAX_BUFFERED_MESSAGES' default): moto's
#: ceiling is measured with as many in flight, since moto scans those too.
POLLER_BUFFER = 100


def _latency(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN:MAX, got {text!r}") from None
    if not 0 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, got {text!r}")
    return pair


def _jitters(text: str) -> list[float]:
    if text.strip().lower() in ("", "none", "off"):
        return []
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MS[,MS...] or none, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"jitter must be > 0 ms, got {text!r}")
    return values


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput at Airtable's ceiling, memory, cold start, and a serial "
        "baseline, through real HTTP against moto's SQS server and the Airtable emulator.",
    )
    p.add_argument(
        "--messages", type=int, help="donations the poller drains (10,000; --quick 1,000)"
    )
    p.add_argument(
        "--baseline-messages",
        type=int,
        help="donations the serial loop drains (2,000; --quick 300; 0 skips it)",
    )
    p.add_argument(
        "--jitter-ms",
        type=_jitters,
        default=[40.0],
        metavar="MS[,MS...]",
        help="arrival jitter (0..MS ms) of each jitter scenario, beside the no-jitter one "
        "(40; 'none' skips them)",
    )
    p.add_argument(
        "--jitter-messages",
        type=int,
        help="donations the poller drains in each jitter scenario (3,000; --quick 500)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: fewer messages, a short moto probe"
    )
    p.add_argument("--latency", type=_latency, default=(0.15, 0.35), help="write latency MIN:MAX s")
    p.add_argument("--seed", type=int, default=7, help="the emulator's seed (latency draws)")
    p.add_argument("--depth", type=int, default=50, help="visible messages the feeder keeps")
    p.add_argument(
        "--lockout-seconds",
        type=float,
        default=30.0,
        help="Airtable's lockout after a 429 (emulator and poller)",
    )
    p.add_argument("--ceiling-seconds", type=float, default=10.0, help="moto ceiling probe length")
    p.add_argument(
        "--import-runs", type=int, default=5, help="fresh interpreters per import timing"
    )
    p.add_argument(
        "--poller-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the poller (e.g. AIRTABLE_MAX_RPS=4.5); repeatable",
    )
    p.add_argument(
        "--emulator-cpu",
        type=int,
        help="the CPU the Airtable emulator runs on alone (default: the last one; -1: no pinning)",
    )
    p.add_argument(
        "--realtime",
        choices=("auto", "on", "off"),
        default="auto",
        help="run the emulator at a real-time priority (chrt --fifo), if allowed (auto)",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument(
        "--docs-plot",
        type=Path,
        default=DOCS_PLOT,
        help=f"where the single-base plot is copied (default {DOCS_PLOT.relative_to(ROOT)}; "
        "not with --quick)",
    )
    p.add_argument("--no-docs-plot", action="store_true", help="do not copy the plot anywhere")
    return p


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every child process is stopped on the way out."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.messages is None:
        args.messages = 1_000 if args.quick else 10_000
    if args.baseline_messages is None:
        args.baseline_messages = 300 if args.quick else 2_000
    if args.jitter_messages is None:
        args.jitter_messages = 500 if args.quick else 3_000
    if args.quick:
        args.ceiling_seconds = min(args.ceiling_seconds, 3.0)
    if (
        args.messages < 1
        or args.jitter_messages < 1
        or args.baseline_messages < 0
        or args.depth < 10
    ):
        print(
            "--messages and --jitter-messages must be >= 1, --baseline-messages >= 0, "
            "--depth >= 10",
            file=sys.stderr,
        )
        return 2
    docs_plot = None if args.no_docs_plot or args.quick else args.docs_plot
    scenarios = [Scenario("no jitter", args.messages)] + [
        Scenario(f"0-{jitter:g} ms jitter", args.jitter_messages, arrival_jitter_ms=jitter)
        for jitter in args.jitter_ms
    ]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / stamp
    out.mkdir(parents=True, exist_ok=True)
    try:
        placement = plan_placement(args.emulator_cpu, args.realtime)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    host = machine()  # before pinning: the CPUs of the machine, not of this process
    placement.pin_self()  # every child starts here; the emulator moves to its own CPU
    options = EmulatorOptions(
        base=BASE_ID,
        token=TOKEN,
        latency=args.latency,
        seed=args.seed,
        lockout_seconds=args.lockout_seconds,
        placement=placement,
    )
    # The lockout is one fact about Airtable: the emulator enforces it, the poller waits it out.
    extra_env = {"AIRTABLE_LOCKOUT_SECONDS": f"{args.lockout_seconds:g}", **dict(args.poller_env)}
    report: dict[str, Any] = {
        "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "started_utc": stamp,
        "machine": host,
        "source": source(),
        "placement": placement.describe(),
        "options": {
            "messages": args.messages,
            "jitter_ms": args.jitter_ms,
            "jitter_messages": args.jitter_messages,
            "baseline_messages": args.baseline_messages,
            "latency_s": list(args.latency),
            "seed": args.seed,
            "feeder_depth": args.depth,
            "lockout_s": args.lockout_seconds,
            "emulator_rate_limit_rps": options.rate_limit_rps,
            "poller_env": extra_env,
        },
    }
    started = time.perf_counter()
    try:
        with _sigterm_as_interrupt():
            _measure(args, scenarios, options, extra_env, out, report)
            report["plots"] = plot.write(report, out, docs_plot)
    except KeyboardInterrupt:
        print(f"\ninterrupted; partial results in {out}", file=sys.stderr)
        _write(report, out, args.results_dir, started)
        return 130
    except BenchError as exc:
        report["error"] = str(exc)
        _write(report, out, args.results_dir, started)
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    text = _write(report, out, args.results_dir, started)
    print(text)
    print(f"\nresults: {out}")
    return 0


def _measure(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    options: EmulatorOptions,
    extra_env: dict[str, str],
    out: Path,
    report: dict[str, Any],
) -> None:
    step = _Steps()
    report["scenarios"] = []
    with moto_server(out / "moto.log") as moto:
        step(f"moto's ceiling ({args.ceiling_seconds:.0f} s at depth {args.depth})")
        report["moto_ceiling"] = phases.moto_ceiling(
            moto.url, args.depth, POLLER_BUFFER, args.ceiling_seconds
        )
        step(f"cold import ({args.import_runs} fresh interpreters)")
        report["cold_import"] = phases.cold_import(args.import_runs)
        load = {"before_poller": os.getloadavg()}
        for n, scenario in enumerate(scenarios):
            first = n == 0
            step(
                f"poller, {scenario.name}: "
                + ("empty-queue run, then " if first else "")
                + f"{scenario.messages} messages"
            )
            report["scenarios"].append(
                phases.poller_run(
                    moto, options, scenario, args.depth, extra_env, out, with_empty_run=first
                )
            )
        # Everything shares the machine's cores: a busy machine shows here first.
        load["after_poller"] = os.getloadavg()
        report["load_average_1_5_15"] = load
        if args.baseline_messages:
            step(f"serial baseline: {args.baseline_messages} messages")
            report["baseline"] = phases.baseline_run(
                moto, options, args.baseline_messages, args.depth, out
            )
        step("done")
    poller_rate = report["scenarios"][0].get("records_per_s")
    base_rate = (report.get("baseline") or {}).get("records_per_s")
    report["ratio"] = round(poller_rate / base_rate, 2) if poller_rate and base_rate else None
    for run in report["scenarios"]:
        phases.check_complete(run, f"poller, {run['name']}")


class _Steps:
    """Progress on stderr, so stdout keeps only the table."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, what: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f} s] {what}", file=sys.stderr, flush=True)


def _write(report: dict[str, Any], out: Path, root: Path, started: float) -> str:
    report["wall_s"] = round(time.perf_counter() - started, 1)
    report["child_pids"] = list(STARTED_PIDS)
    text = table(report)
    payload = json.dumps(report, indent=2, sort_keys=False)
    (out / "report.json").write_text(payload + "\n", encoding="utf-8")
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    (root / "latest.json").write_text(payload + "\n", encoding="utf-8")
    (root / "latest.txt").write_text(text + "\n", encoding="utf-8")
    return text
