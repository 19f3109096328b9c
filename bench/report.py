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
    """The 'done when' lists of issues 4, 9 and 10, checked against this run's figures."""
    scenarios = report.get("scenarios") or []
    if report.get("scenario_set") == "cpu-share":
        return []
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
        if run.get("bases", 1) == 2:
            out += _two_base_targets(run)
        if not run.get("arrival_jitter_ms"):
            continue
        # at most one lockout per 3,000 records, at least 30 records/s
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


def _two_base_targets(run: dict[str, Any]) -> list[Target]:
    """Issue 10: with two bases and an even mix, both written at their full pace; a lockout
    on one does not stall the other."""
    name = run["name"]
    per_base = run.get("per_base") or {}
    rates = [b.get("records_per_s") for b in per_base.values()]
    lowest = None if not rates or None in rates else min(rates)
    if run.get("forced_lockout"):
        others = (run.get("lockouts_by_base") or {}).get("others_during") or {}
        during = [rate for by_other in others.values() for rate in by_other.values()]
        return [
            Target(
                f"other base while one is locked out, {name}",
                ">= 48 records/s",
                None if not during else min(during) >= 48,
            )
        ]
    return [
        Target(
            f"records/s while writing, {name}",
            f">= {0.96 * run['ceiling_records_per_s']:g} (96% of {run['ceiling_records_per_s']:g})",
            check_value(
                run.get("records_per_s"), lambda v: v >= 0.96 * run["ceiling_records_per_s"]
            ),
        ),
        Target(f"each base, {name}", ">= 48 records/s", check_value(lowest, lambda v: v >= 48)),
        Target(f"lockouts, {name}", "0", check_value(run.get("lockouts"), lambda v: v == 0)),
    ]


def check_value(value: Any, ok: Any) -> bool | None:
    return None if value is None else bool(ok(value))


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


#: The poller counts as bound by its CPU share when it used at least this much of it.
CPU_BOUND_FRACTION = 0.85


def _cpu_bound_estimate(run: dict[str, Any]) -> str:
    """The records/s the share allows at the CPU per record measured while writing."""
    share = (run.get("cpu_quota") or {}).get("share_of_one_cpu")
    per_record = (run.get("while_writing") or {}).get("poller_cpu_ms_per_record")
    if not share or not per_record:
        return "-"
    return f"{1000 * share / per_record:.0f} records/s"


def _bound_by(run: dict[str, Any]) -> str:
    quota = run.get("cpu_quota")
    used = (run.get("while_writing") or {}).get("poller_cpu_pct_of_one_core")
    if quota is None or used is None:
        return "-"
    share = quota.get("share_of_one_cpu")
    if share and used >= CPU_BOUND_FRACTION * 100 * share:
        return "the CPU share"
    if not share:
        return "not the poller's CPU (moto)"
    return f"not the share alone: it used {used / share:.0f}% of it"


def _labels(run: dict[str, Any]) -> dict[str, str]:
    return run.get("base_labels") or {}


def _per_base_rates(run: dict[str, Any]) -> str:
    per_base = run.get("per_base") or {}
    if len(per_base) < 2:
        return "-"
    if len(per_base) > 3:
        rates = [b.get("records_per_s") or 0 for b in per_base.values()]
        return f"{min(rates):.1f}..{max(rates):.1f} over {len(rates)}"
    return ", ".join(
        f"{b['label']} {_fmt(b.get('records_per_s'), '.1f')}" for b in per_base.values()
    )


def _per_base_lockouts(run: dict[str, Any]) -> str:
    lockouts = run.get("lockouts_by_base") or {}
    counts = lockouts.get("counts") or {}
    if len(counts) < 2:
        return "-"
    labels = _labels(run)
    if len(counts) > 3:
        text = f"{sum(1 for n in counts.values() if n)} of {len(counts)} bases"
    else:
        text = ", ".join(f"{labels.get(b, b)} {n}" for b, n in counts.items())
    if lockouts.get("unattributed"):
        text += f", {lockouts['unattributed']} unattributed"
    return text


def _others_during(run: dict[str, Any]) -> str:
    others = (run.get("lockouts_by_base") or {}).get("others_during") or {}
    labels = _labels(run)
    parts = [
        f"{labels.get(other, other)} {rate:.1f}/s while {labels.get(locked, locked)} locked"
        for locked, by_other in others.items()
        for other, rate in by_other.items()
    ]
    return "; ".join(parts[:2]) if parts else "-"


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

    def optional(label: str, cell: Any, baseline: str = "-") -> list[tuple[str, ...]]:
        """A row only if some scenario has a value for it."""
        cells = [cell(run) for run in scenarios]
        return [(label, *cells, baseline)] if any(c != "-" for c in cells) else []

    multi = any(run.get("bases", 1) > 1 for run in scenarios)
    quota = any(run.get("cpu_quota") for run in scenarios) or report.get("scenario_set") == (
        "cpu-share"
    )
    moto_cell = _fmt(moto.get("msgs_per_s"), ".0f", " msgs/s")
    rows = [
        ("figure", *[f"poller, {run['name']}" for run in scenarios], "serial baseline"),
        row("messages", lambda r: _fmt(r.get("messages"))),
        *([row("bases (5 req/s each)", lambda r: _fmt(r.get("bases", 1)), "1")] if multi else []),
        *(
            optional(
                "Lambda memory: CPU share (quota)",
                lambda r: (
                    f"{q['memory_mb']} MB: {100 * q['share_of_one_cpu']:.1f}% "
                    f"({q['quota_us']}/{q['period_us']} us)"
                    if (q := r.get("cpu_quota") or {}).get("quota_us")
                    else "no quota"
                ),
            )
            if quota
            else []
        ),
        row(
            "arrival jitter (emulator)",
            lambda r: f"0-{r['arrival_jitter_ms']:g} ms" if r.get("arrival_jitter_ms") else "none",
            "none",
        ),
        row("records/s while writing", _rate, _fmt(base.get("records_per_s"), ".1f")),
        *optional("records/s per base", _per_base_rates),
        *([row("token limit (50 req/s)", lambda r: "500 records/s", "-")] if quota else []),
        row("moto's own ceiling (phase 1)", lambda r: moto_cell, moto_cell),
        *optional(
            "poller CPU per record, whole run",
            lambda r: _fmt(r.get("poller_cpu_ms_per_record"), ".2f", " ms"),
        ),
        *optional(
            "poller CPU per record, while writing",
            lambda r: _fmt(
                (r.get("while_writing") or {}).get("poller_cpu_ms_per_record"), ".2f", " ms"
            ),
        ),
        *optional(
            "poller CPU while writing, % of one core",
            lambda r: _fmt(
                (r.get("while_writing") or {}).get("poller_cpu_pct_of_one_core"), ".0f", "%"
            ),
        ),
        *optional(
            "poller CPU, % of one core, whole run",
            lambda r: _fmt(
                ((r.get("cpu") or {}).get("cpu_pct_of_one_core") or {}).get("poller"), ".0f", "%"
            ),
        ),
        *optional("CPU-bound estimate at this share", _cpu_bound_estimate),
        *optional("what bounded records/s", _bound_by),
        *optional(
            "periods stalled by the quota",
            lambda r: (
                _fmt(q.get("throttled_pct_of_periods"), ".0f", "%")
                if (q := r.get("cpu_quota"))
                else "-"
            ),
        ),
        row(
            "physical limit at that jitter",
            lambda r: _fmt(r.get("physical_limit_records_per_s"), ".1f", " records/s"),
            "-",
        ),
        row("lockouts (after a 429)", lambda r: _fmt(r.get("lockouts"))),
        *optional("lockouts per base", _per_base_lockouts),
        *optional("other base during a lockout", _others_during),
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
    if not base:  # no baseline in this run (cpu-share, or --baseline-messages 0)
        rows = [r[:-1] for r in rows]
    lines = _grid(rows)
    lines.append("")
    if report.get("scenario_set") == "cpu-share":
        lines.append(
            "cpu-share: Lambda's CPU share is memory / 1,769 MB of one vCPU, enforced by a CFS "
            "quota per 100 ms period; the poller process runs in a cpu cgroup with that quota. "
            "Airtable's ceiling here is bases x 50 records/s (the per-token 50 req/s is 500)."
        )
    elif first:
        lines.append(
            f"poller ({first['name']}) / serial baseline, records/s: {_fmt(ratio, '.2f', 'x')}"
        )
    if imports:
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
            f"(the poller needs 50 per base it writes to)"
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
    checked = targets(report)
    if checked:
        lines.append("")
        lines += _grid(
            [("target", "goal", "verdict")] + [(t.figure, t.goal, t.verdict) for t in checked]
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
