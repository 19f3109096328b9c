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

from . import cgroup, phases, plot, workload
from .procs import STARTED_PIDS, BenchError, EmulatorOptions, moto_server, plan_placement
from .report import machine, source, table
from .scenarios import Harness, Scenario, poller_run
from .world import CapacityChange

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: Where a full run copies its single-base plot for the docs' performance page.
DOCS_PLOT = ROOT / "docs" / "assets" / "bench-throughput.png"
#: Messages the poller's drain keeps waiting for bases that are not locked out (its
#: buffer): moto's ceiling is measured with as many in flight, since moto scans those too.
POLLER_BUFFER = 100
#: The scenario groups `--scenario` takes, in the order they run; `all` is every one but
#: cpu-share (which needs root and measures something else).
GROUPS = (
    "ceiling",
    "two-bases",
    "hog",
    "capacity",
    "neighbour",
    "mirror",
    "two-pollers",
    "capacity-change",
)


def _groups(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(GROUPS)
    if names == ["cpu-share"]:
        return names
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected all, cpu-share, or a comma list of {', '.join(GROUPS)}; got {text!r}"
        )
    return [g for g in GROUPS if g in names]


def _probe(text: str) -> tuple[float, float]:
    first, _, hold = text.partition(":")
    try:
        pair = (float(first), float(hold or first))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST:HOLD seconds, got {text!r}") from None
    if pair[0] <= 0 or pair[1] <= 0:
        raise argparse.ArgumentTypeError(f"expected FIRST:HOLD > 0, got {text!r}")
    return pair


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
        type=_groups,
        default=list(GROUPS),
        metavar="all|cpu-share|GROUP[,GROUP...]",
        help="all (make bench: " + ", ".join(GROUPS) + "), some of those groups, or "
        "cpu-share: one poller's ceiling under Lambda's CPU share (a cpu cgroup; needs root)",
    )
    p.add_argument(
        "--hog-jitter-ms",
        type=float,
        default=10.0,
        help="hog: the arrival jitter of the scenario with a CPU hog beside the poller (10)",
    )
    p.add_argument("--hog-messages", type=int, help="hog: donations drained (3,000; --quick 500)")
    p.add_argument(
        "--capacity-rps",
        type=int,
        default=2,
        help="capacity: the base's capacity (requests/s) from the start (2)",
    )
    p.add_argument("--capacity-messages", type=int, help="capacity: donations (1,000; --quick 300)")
    p.add_argument(
        "--max-receive-count",
        type=int,
        default=3,
        help="capacity: the queue's redrive maxReceiveCount (3)",
    )
    p.add_argument(
        "--cold-start-messages",
        type=int,
        help="capacity: donations of the second, cold poller that starts from the kept "
        "pace (300; --quick 100; 0 skips it)",
    )
    p.add_argument(
        "--neighbour-rps",
        type=float,
        default=1.0,
        help="neighbour: the other client's requests/s on the base (1)",
    )
    p.add_argument(
        "--neighbour-messages", type=int, help="neighbour: donations (1,500; --quick 400)"
    )
    p.add_argument(
        "--change-drop-after",
        type=float,
        help="capacity-change: seconds after the first write the capacity drops to "
        "--capacity-rps (20; --quick 10)",
    )
    p.add_argument(
        "--change-restore-after-lockouts",
        type=int,
        default=3,
        help="capacity-change: the capacity comes back once the poller has had this many "
        "lockouts since the drop (3: two to learn, one failed probe; 2: before any probe)",
    )
    p.add_argument(
        "--change-feed-at-most",
        type=float,
        default=840.0,
        help="capacity-change: stop feeding this long after the first write at the latest "
        "(840: the Lambda's 900 s timeout bounds the run)",
    )
    p.add_argument(
        "--change-messages",
        type=int,
        default=60_000,
        help="capacity-change: the most donations fed (60,000): the feeder stops once the "
        "pace has been back at 5 for a while",
    )
    p.add_argument(
        "--two-poller-messages",
        type=int,
        help="two-pollers: donations per poller (4,000; --quick 400)",
    )
    p.add_argument(
        "--mirror-messages",
        type=int,
        help="mirror: events per variant of the faithful mirror (3,000; --quick 500)",
    )
    p.add_argument(
        "--mirror-variants",
        default=",".join(workload.MIRROR_VARIANTS),
        help="mirror: which routes, of " + ", ".join(workload.MIRROR_VARIANTS) + " (all)",
    )
    p.add_argument(
        "--probe-seconds",
        type=_probe,
        metavar="FIRST:HOLD",
        help="the poller probes a learned pace FIRST s after learning it, and a probe stands "
        "after HOLD s (the poller's own 120:60; --quick 20:10). Anything but the poller's "
        "own values is for short test runs only",
    )
    p.add_argument(
        "--no-trace",
        action="store_true",
        help="do not record pacer stamps and arrivals (the stamp-to-arrival figures)",
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
        "--emulator-priority",
        choices=("auto", "nice", "fifo", "normal"),
        default="auto",
        help="the emulator's priority on its CPU: nice -20 (auto, if allowed), SCHED_FIFO 1 "
        "(fifo: its threads then do not share the CPU; bench.procs.Placement), or normal",
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


#: Each count's full and --quick default: (attribute, full, quick).
COUNTS = (
    ("messages", 10_000, 1_000),
    ("baseline_messages", 2_000, 300),
    ("jitter_messages", 3_000, 500),
    ("two_base_messages", 6_000, 600),
    ("cpu_share_messages", 4_000, 800),
    ("hog_messages", 3_000, 500),
    ("capacity_messages", 1_000, 300),
    ("cold_start_messages", 300, 100),
    ("neighbour_messages", 1_500, 400),
    ("two_poller_messages", 4_000, 400),
    ("mirror_messages", 3_000, 500),
)


def _defaults(args: argparse.Namespace) -> str | None:
    """Fill in the counts left unset; say what is wrong with the options, if anything."""
    for name, full, quick in COUNTS:
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.change_drop_after is None:
        args.change_drop_after = 10.0 if args.quick else 20.0
    if args.quick:
        args.ceiling_seconds = min(args.ceiling_seconds, 3.0)
        if args.probe_seconds is None:
            args.probe_seconds = (20.0, 10.0)
    variants = [v.strip() for v in args.mirror_variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in workload.MIRROR_VARIANTS]
    if unknown:
        return f"--mirror-variants: unknown {unknown}; of {workload.MIRROR_VARIANTS}"
    args.mirror_variants = variants
    positive = ("messages", "jitter_messages", "cpu_share_messages", "cpu_share_bases")
    if any(getattr(args, n) < 1 for n in positive) or args.depth < 10:
        return (
            "--messages, --jitter-messages, --cpu-share-messages and --cpu-share-bases must "
            "be >= 1, --depth >= 10"
        )
    if any(getattr(args, n) < 0 for n, _, _ in COUNTS):
        return "message counts must be >= 0"
    if not 1 <= args.capacity_rps <= 4:
        return "--capacity-rps must be 1..4 (below Airtable's 5)"
    if not 0 < args.neighbour_rps < 5:
        return "--neighbour-rps must be between 0 and 5"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    problem = _defaults(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    cpu_share = args.scenario == ["cpu-share"]
    if cpu_share:
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
        placement = plan_placement(args.emulator_cpu, args.emulator_priority)
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
    extra_env = dict(args.poller_env)
    report: dict[str, Any] = {
        "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "started_utc": stamp,
        "machine": host,
        "source": source(),
        "placement": placement.describe(),
        "scenario_set": "cpu-share" if cpu_share else ",".join(args.scenario),
        "options": {
            **{name: getattr(args, name) for name, _, _ in COUNTS},
            "two_base_lockout_after_s": args.two_base_lockout_after,
            "memory_mb": args.memory_mb if cpu_share else None,
            "cpu_share_bases": args.cpu_share_bases if cpu_share else None,
            "jitter_ms": args.jitter_ms,
            "hog_jitter_ms": args.hog_jitter_ms,
            "capacity_rps": args.capacity_rps,
            "max_receive_count": args.max_receive_count,
            "neighbour_rps": args.neighbour_rps,
            "mirror_variants": args.mirror_variants,
            "probe_seconds": list(args.probe_seconds) if args.probe_seconds else "the poller's own",
            "latency_s": list(args.latency),
            "seed": args.seed,
            "feeder_depth": args.depth,
            "lockout_s": args.lockout_seconds,
            "emulator_rate_limit_rps": options.rate_limit_rps,
            "poller_env": extra_env,
            "trace": not args.no_trace,
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
    """The scenarios of the groups asked for, in `GROUPS` order."""
    groups = set(args.scenario)
    out: list[Scenario] = []
    if "ceiling" in groups:
        out.append(Scenario("no jitter", args.messages))
        out += [
            Scenario(
                f"0-{jitter:g} ms jitter", args.jitter_messages, "jitter", arrival_jitter_ms=jitter
            )
            for jitter in args.jitter_ms
        ]
    if "two-bases" in groups and args.two_base_messages:
        out.append(Scenario("two bases", args.two_base_messages, "two-bases", bases=2))
        if args.two_base_lockout_after is not None:
            out.append(
                Scenario(
                    "two bases, one locked out",
                    args.two_base_messages,
                    "two-bases-locked",
                    bases=2,
                    lock_out_base_after_s=args.two_base_lockout_after,
                )
            )
    if "hog" in groups and args.hog_messages:
        out.append(
            Scenario(
                f"0-{args.hog_jitter_ms:g} ms jitter, CPU hog",
                args.hog_messages,
                "hog",
                arrival_jitter_ms=args.hog_jitter_ms,
                cpu_hog=True,
            )
        )
    if "capacity" in groups and args.capacity_messages:
        out.append(
            Scenario(
                f"base at {args.capacity_rps} req/s",
                args.capacity_messages,
                "capacity",
                capacity_rps=args.capacity_rps,
                max_receive_count=args.max_receive_count,
                keep_pace=True,
                cold_start_messages=args.cold_start_messages,
            )
        )
    if "neighbour" in groups and args.neighbour_messages:
        out.append(
            Scenario(
                f"neighbour at {args.neighbour_rps:g} req/s",
                args.neighbour_messages,
                "neighbour",
                neighbour_rps=args.neighbour_rps,
            )
        )
    if "mirror" in groups and args.mirror_messages:
        out += [
            Scenario(f"mirror, {variant}", args.mirror_messages, "mirror", mirror=variant)
            for variant in args.mirror_variants
        ]
    if "two-pollers" in groups and args.two_poller_messages:
        out.append(
            Scenario(
                "two pollers, one base",
                args.two_poller_messages,
                "two-pollers",
                pollers=2,
                keep_pace=True,
            )
        )
    if "capacity-change" in groups:
        change = CapacityChange(
            drop_after_s=args.change_drop_after,
            low_rps=args.capacity_rps,
            restore_after_lockouts=args.change_restore_after_lockouts,
            restore_delay_s=min(10.0, args.lockout_seconds),
            restore_at_latest_s=min(400.0, args.change_feed_at_most / 2),
            # a third of a probe's hold: 20 s with the poller's own 60 s
            hold_s=(args.probe_seconds[1] if args.probe_seconds else 60.0) / 3,
            feed_at_most_s=args.change_feed_at_most,
        )
        out.append(
            Scenario(
                f"capacity 5 -> {args.capacity_rps} -> 5",
                args.change_messages,
                "capacity-change",
                capacity_change=change,
            )
        )
    return out


def cpu_share_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """One poller's ceiling at each Lambda memory size's CPU share, then without a quota,
    donations sharded over enough bases that Airtable is not the bound."""
    bases, n = args.cpu_share_bases, args.cpu_share_messages
    return [
        Scenario(
            f"{mb} MB ({cgroup.quota_us(mb) / cgroup.PERIOD_US:.0%} of a CPU)",
            n,
            "cpu-share",
            bases=bases,
            memory_mb=mb,
        )
        for mb in args.memory_mb
    ] + [Scenario("no CPU quota", n, "cpu-share", bases=bases)]


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
    cpu_share = args.scenario == ["cpu-share"]
    with moto_server(out / "moto.log") as moto:
        placement = options.placement
        if cpu_share and placement.priority != "normal" and placement.emulator_cpus:
            # The poller's CPU is the figure: on Lambda it shares it with nothing, so moto
            # moves off it, beside the emulator, which still runs first (its priority).
            os.sched_setaffinity(moto.pid, set(placement.emulator_cpus))
            report["placement"]["moto (cpu-share)"] = (
                f"CPU {','.join(map(str, placement.emulator_cpus))}, beside the emulator, "
                "which preempts it"
            )
        step(f"moto's ceiling ({args.ceiling_seconds:.0f} s at depth {args.depth})")
        report["moto_ceiling"] = phases.moto_ceiling(
            moto.url, args.depth, POLLER_BUFFER, args.ceiling_seconds
        )
        if not cpu_share:
            step(f"cold import ({args.import_runs} fresh interpreters)")
            report["cold_import"] = phases.cold_import(args.import_runs)
        probe = (
            ("--probe-seconds", "{:g}:{:g}".format(*args.probe_seconds))
            if args.probe_seconds
            else ()
        )
        harness = Harness(moto, options, args.depth, extra_env, out, probe, not args.no_trace)
        load = {"before_poller": os.getloadavg()}
        for n, scenario in enumerate(scenarios):
            first = n == 0 and not cpu_share
            messages = (
                "until the pace is back"
                if scenario.kind == "capacity-change"
                else f"{scenario.messages} messages"
            )
            step(
                f"poller, {scenario.name}: "
                + ("empty-queue run, then " if first else "")
                + messages
            )
            with contextlib.ExitStack() as stack:
                if cpu_share:  # without a quota too: the cgroup tells which process to watch
                    name = f"sqs-airtable-poller-bench-{os.getpid()}-{n}"
                    quota = stack.enter_context(cgroup.cpu_quota(scenario.memory_mb, name))
                    scenario = dataclasses.replace(scenario, cpu_quota=quota)
                report["scenarios"] += poller_run(harness, scenario, with_empty_run=first)
        # Everything shares the machine's cores: a busy machine shows here first.
        load["after_poller"] = os.getloadavg()
        report["load_average_1_5_15"] = load
        if args.baseline_messages and not cpu_share:
            step(f"serial baseline: {args.baseline_messages} messages")
            report["baseline"] = phases.baseline_run(
                moto, options, args.baseline_messages, args.depth, out
            )
        step("done")
    ceiling = next((r for r in report["scenarios"] if r.get("kind") == "ceiling"), {})
    poller_rate = ceiling.get("records_per_s")
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
