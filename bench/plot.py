"""Records/s over time against Airtable's ceiling, with lockouts marked: one PNG per
scenario, one with every scenario, and one per group of scenarios (`DOCS_GROUPS`), which a
run that drew every kind of the group copies beside the docs' figure (a partial run leaves
the docs' figure alone): `bench-throughput.png` (one base, with and without
jitter, and with a CPU hog), `bench-two-bases.png`, `bench-capacity.png` (a lower capacity,
a cold start from the kept pace, a neighbour, a capacity that drops and comes back),
`bench-two-pollers.png` and `bench-mirror.png`.

Drawn from the report alone (each scenario's `timeline`), so a figure can be redrawn
from a saved report: `python -m bench.plot bench/results/<time>/report.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

#: Seconds of the centred moving average drawn over the 1 s bins (5 requests of 10
#: records a second land in 1 s bins unevenly; the average shows the pace).
SMOOTH_S = 5
WIDTH_IN, HEIGHT_PER_SCENARIO_IN = 10.0, 3.2


#: The docs' figure of the two-base scenarios, beside `docs_copy`.
TWO_BASES_DOCS_NAME = "bench-two-bases.png"
#: Each docs figure and the scenario kinds it draws; the first is `docs_copy` itself.
DOCS_GROUPS: tuple[tuple[str | None, tuple[str, ...]], ...] = (
    (None, ("ceiling", "jitter", "hog")),
    (TWO_BASES_DOCS_NAME, ("two-bases", "two-bases-locked")),
    ("bench-capacity.png", ("capacity", "cold-start", "neighbour", "capacity-change")),
    ("bench-two-pollers.png", ("two-pollers",)),
    ("bench-mirror.png", ("mirror",)),
)
#: Colours of the per-base lines and lockouts (at most this many bases are drawn one by one).
BASE_COLOURS = ("#e6550d", "#31a354", "#756bb1")


def write(report: dict[str, Any], out: Path, docs_copy: Path | None) -> dict[str, Any]:
    """Draw every scenario of `report` into `out`, each alone, all together, and each
    group of `DOCS_GROUPS`; copy to `docs_copy` and beside it (if given) the figure of each
    group whose every kind ran.
    Returns the paths written, for the report."""
    scenarios = [s for s in report.get("scenarios", []) if (s.get("timeline") or {}).get("bin_s")]
    if not scenarios:
        return {}
    try:
        import matplotlib
    except ImportError:
        return {"error": "matplotlib is not installed (a dev dependency: make venv)"}
    matplotlib.use("Agg")  # files only, no display
    written: dict[str, Any] = {"per_scenario": {}, "groups": {}}
    for scenario in scenarios:
        path = out / f"throughput-{scenario['slug']}.png"
        figure(report, [scenario], path)
        written["per_scenario"][scenario["name"]] = str(path)
    combined = out / "throughput.png"
    figure(report, scenarios, combined)
    written["combined"] = str(combined)
    ran = {s.get("kind", "ceiling") for s in scenarios}
    for name, kinds in DOCS_GROUPS:
        group = [s for s in scenarios if s.get("kind", "ceiling") in kinds]
        if not group:
            continue
        docs_name = name or (docs_copy.name if docs_copy else "bench-throughput.png")
        path = out / docs_name.replace("bench-", "group-")
        figure(report, group, path)
        written["groups"][docs_name] = str(path)
        if name == TWO_BASES_DOCS_NAME:
            written["two_bases"] = str(path)
        if docs_copy is not None and ran >= set(kinds):
            docs_copy.parent.mkdir(parents=True, exist_ok=True)
            target = docs_copy if name is None else docs_copy.parent / name
            shutil.copyfile(path, target)
            written.setdefault("docs", str(target))
            written.setdefault("docs_copies", []).append(str(target))
    return written


def figure(report: dict[str, Any], scenarios: list[dict[str, Any]], path: Path) -> None:
    """One panel per scenario, stacked, on one time axis."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(scenarios),
        1,
        figsize=(WIDTH_IN, HEIGHT_PER_SCENARIO_IN * len(scenarios) + 0.6),
        sharex=True,
        squeeze=False,
    )
    for ax, scenario in zip(axes[:, 0], scenarios, strict=True):
        _panel(ax, scenario)
    axes[-1, 0].set_xlabel("seconds since the first confirmed write")
    source = report.get("source") or {}
    fig.suptitle(
        "sqs-airtable-poller: records confirmed per second, Airtable emulator at 5 req/s per base"
        + (f", {load}" if (load := _load(report)) else "")
        + (f" (commit {source['commit']}" if source.get("commit") else "")
        + (" + local changes" if source.get("uncommitted_changes") else "")
        + (")" if source.get("commit") else ""),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax: Any, scenario: dict[str, Any]) -> None:
    series = scenario["timeline"]
    bin_s = series["bin_s"]
    per_bin = [n / bin_s for n in series["records_per_bin"]]
    times = [i * bin_s for i in range(len(per_bin))]
    ceiling = scenario.get("ceiling_records_per_s", 50.0)
    limit = scenario.get("physical_limit_records_per_s", ceiling)
    jitter = scenario.get("arrival_jitter_ms") or 0
    ax.bar(times, per_bin, width=bin_s, align="edge", color="#c6dbef", label=f"per {bin_s:g} s")
    ax.plot(
        [t + bin_s / 2 for t in times],
        _centred_average(per_bin, max(1, round(SMOOTH_S / bin_s))),
        color="#08519c",
        linewidth=1.6,
        label=f"{SMOOTH_S} s moving average",
    )
    ax.axhline(ceiling, color="black", linewidth=1, label=f"ceiling {ceiling:g} records/s")
    by_base = series.get("records_per_bin_by_base") or {}
    labels = dict(scenario.get("base_labels") or {})
    by_line = series.get("records_per_bin_by_line") or {}
    if by_line:  # several pollers on one base: a line per poller
        by_base, labels = by_line, {k: k for k in by_line}
    colours = dict(zip(by_base, BASE_COLOURS, strict=False)) if len(by_base) <= 3 else {}
    for base, colour in colours.items():
        bins = (by_base[base] + [0] * len(per_bin))[: len(per_bin)]
        ax.plot(
            [t + bin_s / 2 for t in times],
            _centred_average([n / bin_s for n in bins], max(1, round(SMOOTH_S / bin_s))),
            color=colour,
            linewidth=1.2,
            label=f"{labels.get(base, base)} ({SMOOTH_S} s avg)",
        )
    if colours and not by_line:
        ax.axhline(50.0, color="grey", linestyle=":", linewidth=1, label="50 per base")
    capacity = series.get("capacity_at_s") or []
    if capacity and times:
        xs, ys = [], []
        end = times[-1] + bin_s
        for i, (at, rps) in enumerate(capacity):
            until = capacity[i + 1][0] if i + 1 < len(capacity) else end
            xs += [max(at, 0.0), until]
            ys += [10 * rps, 10 * rps]
        ax.plot(xs, ys, color="#e6550d", linewidth=1.4, linestyle="-.", label="base capacity x 10")
    if jitter:
        ax.axhline(
            limit,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"limit at 0-{jitter:g} ms jitter: {limit:.1f}",
        )
    lockout_s = series.get("lockout_s", 30.0)
    placed = series.get("lockouts_by_base_at_s") or {}
    if colours and any(placed.values()):
        spans = [
            (start, colours.get(base, "#de2d26"), labels.get(base, base))
            for base, starts in placed.items()
            for start in starts
        ]
    else:
        spans = [(start, "#de2d26", "") for start in series.get("lockouts_at_s", [])]
    named: set[str] = set()
    for start, colour, who in spans:
        label = None
        if who not in named:
            named.add(who)
            label = f"lockout{' of ' + who if who else ''} ({lockout_s:g} s after a 429)"
        ax.axvspan(max(start, 0.0), start + lockout_s, color=colour, alpha=0.12, label=label)
        ax.axvline(max(start, 0.0), color=colour, linewidth=1.2)
    rate = scenario.get("records_per_s")
    lockouts = scenario.get("lockouts")
    ax.set_title(
        f"{scenario['name']}: {scenario.get('messages', '?')} messages, "
        f"{_fmt(rate, '.1f')} records/s, {_fmt(lockouts)} lockout(s)",
        fontsize=10,
        loc="left",
    )
    ax.set_ylabel("records/s")
    ax.set_ylim(0, max([ceiling * 1.5, *per_bin]) * 1.05)
    ax.legend(loc="upper center", fontsize=7, ncols=5, frameon=False)


def _load(report: dict[str, Any]) -> str:
    """The machine's 1-minute load average before and after the poller runs."""
    load = report.get("load_average_1_5_15") or {}
    values = [v[0] for v in load.values() if v]
    cpus = (report.get("machine") or {}).get("nproc")
    if not values:
        return ""
    return "load " + " -> ".join(f"{v:.1f}" for v in values) + (f" on {cpus} CPUs" if cpus else "")


def _centred_average(values: list[float], width: int) -> list[float]:
    """Mean of the `width` values around each one (fewer at the ends)."""
    half = width // 2
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half) : i + half + 1]
        out.append(sum(window) / len(window))
    return out


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plot", description=__doc__)
    p.add_argument("report", type=Path, help="a report.json written by python -m bench")
    p.add_argument("--out", type=Path, help="directory for the PNGs (default: the report's)")
    p.add_argument(
        "--docs-plot", type=Path, help=f"also copy the figure here (and {TWO_BASES_DOCS_NAME})"
    )
    args = p.parse_args(argv)
    report = json.loads(args.report.read_text(encoding="utf-8"))
    written = write(report, args.out or args.report.parent, args.docs_plot)
    print(json.dumps(written, indent=2))
    return 1 if "error" in written else 0


if __name__ == "__main__":
    sys.exit(main())
