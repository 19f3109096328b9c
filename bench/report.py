"""The figures table, each scenario's targets, and the machine the figures came from."""

from __future__ import annotations

import hashlib
import importlib.util
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
    """Which code the figures describe: the commit of the poller the children import, and a
    digest of its uncommitted changes. A snapshot made with `git archive` (see
    bench/README.md) names its commit in a `SOURCE_COMMIT` file at its root."""
    spec = importlib.util.find_spec("poller")
    origin = Path(spec.origin) if spec and spec.origin else Path(__file__)
    root = origin.resolve().parents[2] if spec and spec.origin else Path(__file__).parents[1]
    marker = root / "SOURCE_COMMIT"
    if marker.exists():
        return {
            "commit": marker.read_text(encoding="utf-8").strip(),
            "uncommitted_changes": False,
            "changes_sha1": None,
            "snapshot": str(root),
        }

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
    """Each scenario's targets, checked against this run's figures (by its `kind`)."""
    out: list[Target] = []
    imports = report.get("cold_import") or {}
    for run in report.get("scenarios") or []:
        kind = run.get("kind", "ceiling")
        if kind == "ceiling":
            out += _ceiling_targets(run, imports)
        elif kind == "jitter":
            out += _jitter_targets(run)
        elif kind in ("two-bases", "two-bases-locked"):
            out += _two_base_targets(run)
        elif kind == "hog":
            out.append(_lockouts(run, 0, "no regression"))
        elif kind == "capacity":
            out += _capacity_targets(run)
        elif kind == "cold-start":
            out.append(_lockouts(run, 0, "the kept pace"))
        elif kind == "neighbour":
            out += _neighbour_targets(run)
        elif kind == "mirror":
            floor = 48.0 if run["name"].endswith("unversioned") else 40.0
            out.append(
                Target(
                    f"records/s while writing, {run['name']}",
                    f">= {floor:g}",
                    check_value(run.get("records_per_s"), lambda v, f=floor: v >= f),
                )
            )
        elif kind == "capacity-change":
            change = run.get("capacity_change") or {}
            out.append(
                Target(
                    f"pace back at 5 req/s within the run, {run['name']}",
                    "yes",
                    None if not change else change.get("back_at_5_s_after_restore") is not None,
                )
            )
        elif kind == "cpu-share" and (run.get("cpu_quota") or {}).get("memory_mb") == 512:
            out.append(_lockouts(run, 0, "no regression"))
    return out


def _lockouts(run: dict[str, Any], most: int, why: str = "") -> Target:
    return Target(
        f"lockouts, {run['name']}",
        f"{'<= ' if most else ''}{most}" + (f" ({why})" if why else ""),
        check_value(run.get("lockouts"), lambda v: v <= most),
    )


def _ceiling_targets(poller: dict[str, Any], imports: dict[str, Any]) -> list[Target]:
    """One base at Airtable's ceiling: the pace, the fill, SQS, memory and cold start."""
    empty = poller.get("empty_run") or {}
    rate = poller.get("records_per_s")
    return [
        Target(
            "records/s while writing, no jitter",
            ">= 48 (96% of 50)",
            check_value(rate, lambda v: v >= 48),
        ),
        Target(
            "429s seen, no jitter", "0", check_value(poller.get("throttled_429"), lambda v: v == 0)
        ),
        Target(
            "records per write request",
            ">= 9.5",
            check_value(poller.get("records_per_request"), lambda v: v >= 9.5),
        ),
        Target(
            "SQS calls per message",
            "<= 0.25",
            check_value(poller.get("sqs_calls_per_message"), lambda v: v <= 0.25),
        ),
        Target(
            "peak RSS of the poller",
            "< 128 MB",
            check_value(poller.get("peak_rss_mb"), lambda v: v < 128),
        ),
        Target(
            "empty-queue run, Lambda time",
            "< 2 s",
            check_value(empty.get("lambda_ms"), lambda v: v < 2000),
        ),
        Target(
            "cold import of poller.handler",
            "< 600 ms",
            check_value(imports.get("handler_median_ms"), lambda v: v < 600),
        ),
    ]


def _jitter_targets(run: dict[str, Any]) -> list[Target]:
    """At most one lockout per 3,000 records and at least 30 records/s."""
    allowed = max(1, run.get("messages", 0) // JITTER_RECORDS_PER_LOCKOUT)
    return [
        Target(
            f"lockouts, {run['name']}",
            f"<= {allowed} in {run.get('messages')} records",
            check_value(run.get("lockouts"), lambda v, a=allowed: v <= a),
        ),
        Target(
            f"records/s while writing, {run['name']}",
            f">= {JITTER_MIN_RECORDS_PER_S:g}",
            check_value(run.get("records_per_s"), lambda v: v >= JITTER_MIN_RECORDS_PER_S),
        ),
    ]


def after_learning(run: dict[str, Any]) -> float | None:
    """Records/s from the end of the last lockout on (the whole span without a lockout)."""
    if run.get("lockouts"):
        return (run.get("after_learning") or {}).get("records_per_s")
    return run.get("records_per_s")


#: What a learned pace must sustain: 85% of the capacity left to the poller.
LEARNED_SHARE = 0.85


def _capacity_targets(run: dict[str, Any]) -> list[Target]:
    """A base at a lower capacity: every donation once, none dead-lettered, at most 2
    lockouts, and 85% of the capacity once learned."""
    rows = run.get("rows") or {}
    messages = run.get("messages")
    floor = LEARNED_SHARE * run["ceiling_records_per_s"]
    left = run.get("left_in_queue") or {}
    return [
        Target(
            f"every donation lands once, {run['name']}",
            f"{messages} rows, {messages} distinct Ids",
            None if not rows else rows.get("rows") == messages == rows.get("distinct_ids"),
        ),
        Target(
            f"dead-lettered, {run['name']}",
            "0",
            None if not left else left.get("dlq_visible", 0) + left.get("dlq_in_flight", 0) == 0,
        ),
        _lockouts(run, 2),
        Target(
            f"records/s after learning, {run['name']}",
            f">= {floor:g} (85% of {run['ceiling_records_per_s']:g})",
            check_value(after_learning(run), lambda v: v >= floor),
        ),
    ]


def _neighbour_targets(run: dict[str, Any]) -> list[Target]:
    neighbour = run.get("neighbour") or {}
    floor = LEARNED_SHARE * run["ceiling_records_per_s"]
    return [
        _lockouts(run, 2),
        Target(
            f"records/s after learning, {run['name']}",
            f">= {floor:g} (85% of {run['ceiling_records_per_s']:g})",
            check_value(after_learning(run), lambda v: v >= floor),
        ),
        Target(
            f"neighbour's refusals, {run['name']}",
            f"<= those of the lockouts ({neighbour.get('refusals_bound', '-')})",
            None
            if not neighbour
            else neighbour.get("refused", 0) <= neighbour.get("refusals_bound", 0),
        ),
    ]


def _two_base_targets(run: dict[str, Any]) -> list[Target]:
    """With two bases and an even mix, both written at their full pace; a lockout on one
    does not stall the other."""
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


#: With arrival jitter: at most one lockout in 3,000 records, at least 30 records/s.
JITTER_RECORDS_PER_LOCKOUT = 3_000
JITTER_MIN_RECORDS_PER_S = 30.0


def details(run: dict[str, Any]) -> list[str]:
    """What a scenario showed beyond the grid's figures, in a few lines."""
    name = run["name"]
    out: list[str] = []
    learned = run.get("after_learning") or {}
    if learned.get("records_per_s") is not None:
        out.append(
            f"{name}: after the last lockout (from {learned['from_s']:g} s): "
            f"{learned['records_per_s']:.1f} records/s over {learned.get('span_s')} s"
        )
    rows = run.get("rows")
    if rows:
        left = run.get("left_in_queue") or {}
        out.append(
            f"{name}: the table holds {rows['rows']} rows, {rows['distinct_ids']} distinct Ids, "
            f"{run.get('records_created')} created / {run.get('records_updated')} updated; "
            f"DLQ {left.get('dlq_visible', 0) + left.get('dlq_in_flight', 0)}"
        )
    for name_, kept in (run.get("kept_pace") or {}).items():
        out.append(
            f"{name}: kept in SSM {name_}: limit {kept.get('limit')}, probe interval "
            f"{kept.get('probe_interval')} s, {kept.get('requests')} requests this month"
        )
    neighbour = run.get("neighbour")
    if neighbour:
        out.append(
            f"{name}: the neighbour ({neighbour['rps']:g} req/s) sent {neighbour.get('sent')}, "
            f"{neighbour.get('refused')} refused; {neighbour['lockouts']} lockout(s) x "
            f"{neighbour['refusals_a_lockout_costs']:g} refusals each"
        )
    change = run.get("capacity_change")
    if change:
        out.append(
            f"{name}: capacity {change['low_rps']} from {change.get('dropped_at_s')} s, back "
            f"to 5 at {change.get('restored_at_s')} s; lockouts at {change.get('lockouts_at_s')} s "
            f"(pace after each: {change.get('pace_after_each_lockout')}; {change.get('failed_probes')} failed probe(s)); pace learned at "
            f"{change.get('learned_at_s')} s; after the restore the rate reached "
            + ", ".join(
                f"{k} at {v} s" for k, v in (change.get("steps_after_restore_s") or {}).items()
            )
            + f"; back at 5 {change.get('back_at_5_s_after_restore')} s after the restore, "
            f"{change.get('back_at_5_s_after_learning')} s after learning"
        )
    pollers = run.get("pollers")
    if pollers:
        for label, p in pollers.items():
            if not isinstance(p, dict) or "table" not in p:
                continue
            after = (p.get("after_last_lockout") or {}).get("records_per_s")
            out.append(
                f"{name}: {label} ({p['table']}): {_fmt(p.get('records_per_s'), '.1f')} records/s, "
                f"{_fmt(after, '.1f')} after the last lockout, pace at the end "
                f"{_fmt(p.get('pacing_rps_at_end'), '.2f')} req/s, {p.get('throttled')} 429s"
            )
        combined = (pollers.get("combined_after_last_lockout") or {}).get("records_per_s")
        out.append(
            f"{name}: both settled at {pollers.get('settled_at_s')} s (the last lockout's end); "
            f"combined {_fmt(combined, '.1f')} records/s from then on"
        )
    mirror = run.get("mirror")
    if mirror:
        out.append(
            f"{name}: {mirror['lookup_requests']} lookup requests "
            f"({_fmt(mirror['lookup_requests_per_100_records'], '.2f')} per 100 records), "
            f"{mirror['link_stubs_created']} link stubs created"
        )
    for base, trace in (run.get("stamp_to_arrival") or {}).items():
        delay = trace.get("delay_ms") or {}
        six = trace.get("tightest_six_s") or {}
        out.append(
            f"{name}: pacer stamp -> arrival ({base}), ms: median {delay.get('median')}, p99 "
            f"{delay.get('p99')}, max {delay.get('max')}; tightest 6 requests: "
            f"{six.get('by_stamps')} s by stamps, {six.get('by_arrivals')} s by arrivals "
            f"({six.get('arrival_spans_under_1s')} under 1 s)"
        )
    return out


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


#: Scenario columns per grid of the summary (the serial baseline goes beside the first).
COLUMNS = 4


def _figure_grid(
    report: dict[str, Any], scenarios: list[dict[str, Any]], base: dict[str, Any]
) -> list[str]:
    """One column per scenario of `scenarios`, then the serial baseline if given."""
    moto = report.get("moto_ceiling") or {}
    first = scenarios[0] if scenarios else {}

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
    if not base:  # no baseline in this grid (cpu-share, or --baseline-messages 0)
        rows = [r[:-1] for r in rows]
    return _grid(rows)


def table(report: dict[str, Any]) -> str:
    """The summary printed to stdout (and saved beside report.json): one column per
    scenario (in grids of `COLUMNS`), the serial baseline beside the first, then what each
    kind of scenario showed, and the targets."""
    scenarios = report.get("scenarios") or []
    base = report.get("baseline") or {}
    first = next((r for r in scenarios if r.get("empty_run")), scenarios[0] if scenarios else {})
    empty = first.get("empty_run") or {}
    imports = report.get("cold_import") or {}
    moto = report.get("moto_ceiling") or {}
    ratio = report.get("ratio")
    lines: list[str] = []
    for start in range(0, max(len(scenarios), 1), COLUMNS):
        if start:
            lines.append("")
        lines += _figure_grid(report, scenarios[start : start + COLUMNS], base if not start else {})
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
    for run in scenarios:
        lines += details(run)
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
