"""`python -m bench`: run every measurement, write bench/results/, print the table."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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

from . import cgroup, phases, plot
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


def _seconds_or_none(text: str) -> float | None:
    if text.strip().lower() in ("", "none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or none, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected SECONDS >= 0, got {text!r}")
    return value


def _memories(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MB[,MB...], got {text!r}") from None
    if any(not 128 <= v <= 10_240 for v in values):
        raise argparse.ArgumentTypeError(f"Lambda memory is 128..10,240 MB, got {text!r}")
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
        "--two-base-messages",
        type=int,
        help="messages of the two-base scenarios: an even mix of donations and "
        "FundraiserCreated events routed to two bases (6,000; --quick 600; 0 skips them)",
    )
    p.add_argument(
        "--two-base-lockout-after",
        type=_seconds_or_none,
        default=20.0,
        metavar="S|none",
        help="also run the two-base scenario with the second base locked out S seconds "
        "after the first write (20; 'none' skips it)",
    )
    p.add_argument(
        "--scenario",
        choices=("all", "cpu-share"),
        default="all",
        help="all (make bench), or cpu-share: one poller's ceiling under Lambda's CPU share "
        "(a cpu cgroup; needs root)",
    )
    p.add_argument(
        "--memory-mb",
        type=_memories,
        default=[128, 256, 512, 1024],
        metavar="MB[,MB...]",
        help="cpu-share: the Lambda memory sizes whose CPU share is measured (128,256,512,1024)",
    )
    p.add_argument(
        "--cpu-share-bases",
        type=int,
        default=8,
        help="cpu-share: bases the donations are sharded over (8: 400 records/s of Airtable)",
    )
    p.add_argument(
        "--cpu-share-messages",
        type=int,
        help="cpu-share: messages per run (4,000; --quick 800)",
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
    if args.two_base_messages is None:
        args.two_base_messages = 600 if args.quick else 6_000
    if args.cpu_share_messages is None:
        args.cpu_share_messages = 800 if args.quick else 4_000
    if args.quick:
        args.ceiling_seconds = min(args.ceiling_seconds, 3.0)
    if (
        args.messages < 1
        or args.jitter_messages < 1
        or args.baseline_messages < 0
        or args.two_base_messages < 0
        or args.cpu_share_messages < 1
        or args.cpu_share_bases < 1
        or args.depth < 10
    ):
        print(
            "--messages, --jitter-messages, --cpu-share-messages and --cpu-share-bases must "
            "be >= 1, --baseline-messages and --two-base-messages >= 0, --depth >= 10",
            file=sys.stderr,
        )
        return 2
    if args.scenario == "cpu-share":
        reason = cgroup.unavailable()
        if reason:
            print(f"bench: cpu-share skipped: {reason}", file=sys.stderr)
            return 0
        scenarios = cpu_share_scenarios(args)
        args.baseline_messages = 0
        docs_plot = None
    else:
        scenarios = default_scenarios(args)
        docs_plot = None if args.no_docs_plot or args.quick else args.docs_plot
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
        "scenario_set": args.scenario,
        "options": {
            "messages": args.messages,
            "two_base_messages": args.two_base_messages,
            "two_base_lockout_after_s": args.two_base_lockout_after,
            "memory_mb": args.memory_mb if args.scenario == "cpu-share" else None,
            "cpu_share_bases": args.cpu_share_bases if args.scenario == "cpu-share" else None,
            "cpu_share_messages": (
                args.cpu_share_messages if args.scenario == "cpu-share" else None
            ),
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


def default_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """make bench: one base without and with arrival jitter, then two bases (an even mix of
    two event types), and two bases with the second one locked out mid-run."""
    scenarios = [Scenario("no jitter", args.messages)] + [
        Scenario(f"0-{jitter:g} ms jitter", args.jitter_messages, arrival_jitter_ms=jitter)
        for jitter in args.jitter_ms
    ]
    if args.two_base_messages:
        scenarios.append(Scenario("two bases", args.two_base_messages, bases=2))
        if args.two_base_lockout_after is not None:
            scenarios.append(
                Scenario(
                    "two bases, one locked out",
                    args.two_base_messages,
                    bases=2,
                    lock_out_base_after_s=args.two_base_lockout_after,
                )
            )
    return scenarios


def cpu_share_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """One poller's ceiling at each Lambda memory size's CPU share, then without a quota,
    donations sharded over enough bases that Airtable is not the bound."""
    bases, n = args.cpu_share_bases, args.cpu_share_messages
    return [
        Scenario(
            f"{mb} MB ({cgroup.quota_us(mb) / cgroup.PERIOD_US:.0%} of a CPU)",
            n,
            bases=bases,
            memory_mb=mb,
        )
        for mb in args.memory_mb
    ] + [Scenario("no CPU quota", n, bases=bases)]


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
        placement = options.placement
        if args.scenario == "cpu-share" and placement.realtime and placement.emulator_cpus:
            # The poller's CPU is the figure: on Lambda it shares it with nothing, so moto
            # moves off it, beside the emulator, which still preempts it (SCHED_FIFO).
            os.sched_setaffinity(moto.pid, set(placement.emulator_cpus))
            report["placement"]["moto (cpu-share)"] = (
                f"CPU {','.join(map(str, placement.emulator_cpus))}, beside the emulator, "
                "which preempts it"
            )
        step(f"moto's ceiling ({args.ceiling_seconds:.0f} s at depth {args.depth})")
        report["moto_ceiling"] = phases.moto_ceiling(
            moto.url, args.depth, POLLER_BUFFER, args.ceiling_seconds
        )
        cpu_share = args.scenario == "cpu-share"
        if not cpu_share:
            step(f"cold import ({args.import_runs} fresh interpreters)")
            report["cold_import"] = phases.cold_import(args.import_runs)
        load = {"before_poller": os.getloadavg()}
        for n, scenario in enumerate(scenarios):
            first = n == 0 and not cpu_share
            step(
                f"poller, {scenario.name}: "
                + ("empty-queue run, then " if first else "")
                + f"{scenario.messages} messages"
            )
            with contextlib.ExitStack() as stack:
                if cpu_share:  # without a quota too: the cgroup tells which process to watch
                    name = f"sqs-airtable-poller-bench-{os.getpid()}-{n}"
                    quota = stack.enter_context(cgroup.cpu_quota(scenario.memory_mb, name))
                    scenario = dataclasses.replace(scenario, cpu_quota=quota)
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
    if args.scenario == "cpu-share":
        poller_rate = None
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
