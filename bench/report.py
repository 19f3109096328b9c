"""The figures table, the targets of issue 4, and the machine the figures came from."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .phases import CEILING_RECORDS_PER_S


@dataclass(frozen=True)
class Target:
    figure: str
    goal: str
    met: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "n/a"}[self.met]


def machine() -> dict[str, Any]:
    lscpu = ""
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        lscpu = "\n".join(out.splitlines()[:10])
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "lscpu_head": lscpu,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def source() -> dict[str, Any]:
    """Which code the figures describe: the commit, and a digest of uncommitted changes."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else ""

    diff = git("diff", "HEAD", "--", "src", "local")
    digest = hashlib.sha1(diff.encode())
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "src", "local").split()
    for name in sorted(untracked):
        digest.update(name.encode() + (root / name).read_bytes())
    dirty = bool(diff or untracked)
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "uncommitted_changes": dirty,
        "changes_sha1": digest.hexdigest()[:12] if dirty else None,
    }


def targets(report: dict[str, Any]) -> list[Target]:
    """The 'done when' list of issue 4, checked against this run's figures."""
    poller = report.get("poller") or {}
    empty = poller.get("empty_run") or {}
    imports = report.get("cold_import") or {}

    def check(value: Any, ok: Any) -> bool | None:
        return None if value is None else bool(ok(value))

    rate = poller.get("records_per_s")
    throttled = poller.get("throttled_429")
    return [
        Target("records/s while writing", ">= 48 (96% of 50)", check(rate, lambda v: v >= 48)),
        Target("429s seen", "0", check(throttled, lambda v: v == 0)),
        Target(
            "records per write request",
            ">= 9.5",
            check(poller.get("records_per_request"), lambda v: v >= 9.5),
        ),
        Target(
            "SQS calls per message",
            "<= 0.25",
            check(poller.get("sqs_calls_per_message"), lambda v: v <= 0.25),
        ),
        Target(
            "peak RSS of the poller",
            "< 128 MB",
            check(poller.get("peak_rss_mb"), lambda v: v < 128),
        ),
        Target(
            "empty-queue run, Lambda time",
            "< 2 s",
            check(empty.get("lambda_ms"), lambda v: v < 2000),
        ),
        Target(
            "cold import of poller.handler",
            "< 600 ms",
            check(imports.get("handler_median_ms"), lambda v: v < 600),
        ),
    ]


def _fmt(value: Any, spec: str = "", unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}{unit}"


def table(report: dict[str, Any]) -> str:
    """The summary printed to stdout (and saved beside report.json)."""
    poller = report.get("poller") or {}
    base = report.get("baseline") or {}
    empty = poller.get("empty_run") or {}
    imports = report.get("cold_import") or {}
    moto = report.get("moto_ceiling") or {}
    rate = poller.get("records_per_s")
    pct = f" ({100 * rate / CEILING_RECORDS_PER_S:.1f}% of 50)" if rate else ""
    rows = [
        ("figure", "poller", "serial baseline"),
        ("messages", _fmt(poller.get("messages")), _fmt(base.get("messages"))),
        (
            "records/s while writing",
            _fmt(rate, ".1f") + pct,
            _fmt(base.get("records_per_s"), ".1f"),
        ),
        (
            f"lowest {poller.get('window_s', 10):.0f} s window, records/s",
            _fmt(poller.get("min_window_records_per_s"), ".1f"),
            _fmt(base.get("min_window_records_per_s"), ".1f"),
        ),
        (
            "429s (emulator / client)",
            f"{_fmt(poller.get('throttled_429'))} / {_fmt(poller.get('poller_throttled'))}",
            f"{_fmt(base.get('throttled_429'))} / -",
        ),
        (
            "records per write request",
            _fmt(poller.get("records_per_request"), ".2f"),
            _fmt(base.get("records_per_request"), ".2f"),
        ),
        (
            "SQS calls per message",
            _fmt(poller.get("sqs_calls_per_message"), ".3f"),
            _fmt(base.get("sqs_calls_per_message"), ".3f"),
        ),
        ("peak RSS of the poller process", _fmt(poller.get("peak_rss_mb"), ".0f", " MB"), "-"),
        (
            "wall time of the drain",
            _fmt(poller.get("wall_s"), ".0f", " s"),
            _fmt(base.get("wall_s"), ".0f", " s"),
        ),
    ]
    ratio = report.get("ratio")
    lines = _grid(rows)
    lines.append("")
    lines.append(f"poller / serial baseline, records/s: {_fmt(ratio, '.2f', 'x')}")
    lines.append(
        "cold import of poller.handler (median of "
        f"{imports.get('runs', '-')}): {_fmt(imports.get('handler_median_ms'), '.0f', ' ms')}"
        f"; with the first invocation's lazy imports (boto3, pyairtable): "
        f"{_fmt(imports.get('with_first_invoke_imports_median_ms'), '.0f', ' ms')}"
    )
    breakdown = imports.get("with_first_invoke_imports_by_package_ms") or {}
    if breakdown:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in breakdown.items())
        lines.append(f"  import self-time by package, ms: {parts}")
    lines.append(
        "empty-queue run (cold): "
        f"import {_fmt(empty.get('import_ms'), '.0f', ' ms')} + invoke "
        f"{_fmt(empty.get('invoke_ms'), '.0f', ' ms')} = "
        f"{_fmt(empty.get('lambda_ms'), '.0f', ' ms')} of Lambda time "
        f"(cold setup {_fmt(empty.get('setup_ms'), '.0f', ' ms')} + drain loop "
        f"{_fmt(empty.get('drain_elapsed_ms'), '', ' ms')}, WAIT_TIME_SECONDS=1)"
    )
    if moto:
        lines.append(
            f"moto's own ceiling: {moto['msgs_per_s']:.0f} msgs/s receive+delete at "
            f"{moto['depth']} visible + {moto['held_in_flight']} in flight "
            f"(the poller needs 50)"
        )
    feeder = poller.get("feeder") or {}
    if feeder:
        lines.append(
            f"feeder: visible depth {feeder.get('min_visible')}..{feeder.get('max_visible')}, "
            f"{feeder.get('short_samples')} of {feeder.get('depth_samples')} samples under 10"
            + (f" (at {feeder['short_at_s']} s)" if feeder.get("short_at_s") else "")
        )
    cpu = poller.get("cpu") or {}
    if cpu:
        parts = ", ".join(f"{k} {v:.0f}%" for k, v in cpu["cpu_pct_of_one_core"].items())
        busy = cpu.get("machine_busy_pct")
        lines.append(
            f"CPU during the poller run, % of one core: {parts}"
            + (f"; whole machine {busy:.0f}% busy" if busy is not None else "")
        )
    load = report.get("load_average_1_5_15") or {}
    if load:
        lines.append(
            "load average (1 min) before / after the poller run: "
            + " / ".join(f"{v[0]:.2f}" for v in load.values())
            + f" on {report.get('machine', {}).get('nproc', '?')} CPUs"
        )
    lines.append("")
    lines += _grid(
        [("target", "goal", "verdict")] + [(t.figure, t.goal, t.verdict) for t in targets(report)]
    )
    return "\n".join(lines)


def _grid(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
