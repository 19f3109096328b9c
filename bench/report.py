"""The figures table, the targets of issues 4 and 9, and the machine the figures came from."""

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
    """The 'done when' lists of issues 4 and 9, checked against this run's figures."""
    scenarios = report.get("scenarios") or []
    poller = scenarios[0] if scenarios else {}
    empty = poller.get("empty_run") or {}
    imports = report.get("cold_import") or {}

    def check(value: Any, ok: Any) -> bool | None:
        return None if value is None else bool(ok(value))

    rate = poller.get("records_per_s")
    throttled = poller.get("throttled_429")
    out = [
        Target(
            "records/s while writing, no jitter",
            ">= 48 (96% of 50)",
            check(rate, lambda v: v >= 48),
        ),
        Target("429s seen, no jitter", "0", check(throttled, lambda v: v == 0)),
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
    for run in scenarios[1:]:
        if not run.get("arrival_jitter_ms"):
            continue
        # issue 9: at most one lockout per 3,000 records, at least 30 records/s
        allowed = max(1, run.get("messages", 0) // JITTER_RECORDS_PER_LOCKOUT)
        out += [
            Target(
                f"lockouts, {run['name']}",
                f"<= {allowed} in {run.get('messages')} records",
                check(run.get("lockouts"), lambda v, a=allowed: v <= a),
            ),
            Target(
                f"records/s while writing, {run['name']}",
                f">= {JITTER_MIN_RECORDS_PER_S:g}",
                check(run.get("records_per_s"), lambda v: v >= JITTER_MIN_RECORDS_PER_S),
            ),
        ]
    return out


#: Issue 9's targets with arrival jitter: at most one lockout in 3,000 records, >= 30 records/s.
JITTER_RECORDS_PER_LOCKOUT = 3_000
JITTER_MIN_RECORDS_PER_S = 30.0


def _fmt(value: Any, spec: str = "", unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}{unit}"


def _rate(run: dict[str, Any]) -> str:
    rate = run.get("records_per_s")
    ceiling = run.get("ceiling_records_per_s", CEILING_RECORDS_PER_S)
    return _fmt(rate, ".1f") + (f" ({100 * rate / ceiling:.1f}% of {ceiling:g})" if rate else "")


def table(report: dict[str, Any]) -> str:
    """The summary printed to stdout (and saved beside report.json): one column per
    scenario, then the serial baseline."""
    scenarios = report.get("scenarios") or []
    base = report.get("baseline") or {}
    first = scenarios[0] if scenarios else {}
    empty = first.get("empty_run") or {}
    imports = report.get("cold_import") or {}
    moto = report.get("moto_ceiling") or {}

    def row(label: str, cell: Any, baseline: str | None = None) -> tuple[str, ...]:
        cells = [cell(run) for run in scenarios]
        return (label, *cells, baseline if baseline is not None else cell(base))

    rows = [
        ("figure", *[f"poller, {run['name']}" for run in scenarios], "serial baseline"),
        row("messages", lambda r: _fmt(r.get("messages"))),
        row(
            "arrival jitter (emulator)",
            lambda r: f"0-{r['arrival_jitter_ms']:g} ms" if r.get("arrival_jitter_ms") else "none",
            "none",
        ),
        row("records/s while writing", _rate, _fmt(base.get("records_per_s"), ".1f")),
        row(
            "physical limit at that jitter",
            lambda r: _fmt(r.get("physical_limit_records_per_s"), ".1f", " records/s"),
            "-",
        ),
        row("lockouts (after a 429)", lambda r: _fmt(r.get("lockouts"))),
        row(
            "429s (emulator / client)",
            lambda r: f"{_fmt(r.get('throttled_429'))} / {_fmt(r.get('poller_throttled'))}",
            f"{_fmt(base.get('throttled_429'))} / -",
        ),
        row("pacing at the end, req/s", lambda r: _fmt(r.get("pacing_rps"), ".2f"), "-"),
        row(
            f"lowest {first.get('window_s', 10):.0f} s window, records/s",
            lambda r: _fmt(r.get("min_window_records_per_s"), ".1f"),
        ),
        row("records per write request", lambda r: _fmt(r.get("records_per_request"), ".2f")),
        row("SQS calls per message", lambda r: _fmt(r.get("sqs_calls_per_message"), ".3f")),
        row(
            "peak RSS of the poller process",
            lambda r: _fmt(r.get("peak_rss_mb"), ".0f", " MB"),
            "-",
        ),
        row("wall time of the drain", lambda r: _fmt(r.get("wall_s"), ".0f", " s")),
        row(
            "load average (1 min) before / after",
            lambda r: (
                " / ".join(f"{v[0]:.2f}" for v in (r.get("load_average_1_5_15") or {}).values())
                or "-"
            ),
            "-",
        ),
    ]
    ratio = report.get("ratio")
    lines = _grid(rows)
    lines.append("")
    if first:
        lines.append(
            f"poller ({first['name']}) / serial baseline, records/s: {_fmt(ratio, '.2f', 'x')}"
        )
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
    for run in scenarios:
        feeder = run.get("feeder") or {}
        if feeder:
            lines.append(
                f"feeder, {run['name']}: visible depth "
                f"{feeder.get('min_visible')}..{feeder.get('max_visible')}, "
                f"{feeder.get('short_samples')} of {feeder.get('depth_samples')} samples under 10"
                + (f" (at {feeder['short_at_s']} s)" if feeder.get("short_at_s") else "")
            )
        cpu = run.get("cpu") or {}
        if cpu:
            parts = ", ".join(f"{k} {v:.0f}%" for k, v in cpu["cpu_pct_of_one_core"].items())
            busy = cpu.get("machine_busy_pct")
            lines.append(
                f"CPU, {run['name']}, % of one core: {parts}"
                + (f"; whole machine {busy:.0f}% busy" if busy is not None else "")
            )
    placement = report.get("placement") or {}
    if placement:
        lines.append(
            "placement: "
            + "; ".join(f"{what} on {where}" for what, where in placement.items())
            + f" ({report.get('machine', {}).get('nproc', '?')} CPUs)"
        )
    plots = report.get("plots") or {}
    if plots.get("combined"):
        lines.append(
            f"plot: {plots['combined']}"
            + (f"; docs copy: {plots['docs']}" if plots.get("docs") else "")
        )
    elif plots.get("error"):
        lines.append(f"plot: not drawn: {plots['error']}")
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
