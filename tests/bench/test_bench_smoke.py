"""The benchmark's machinery on a tiny workload: every figure is reported.

Speed is not asserted here (the figures come from `make bench`); this checks that the
processes start, talk to each other, stop, that the report names every figure of every
scenario (no jitter, 0-40 ms of arrival jitter, two bases, two bases with one locked out;
a CPU hog beside the poller, a base at 2 requests/s and a cold start from its kept pace, a
neighbour client, the faithful mirror's routes, two pollers on one base, a capacity that
drops and comes back; and, as root, the cpu-share scenario), that every message landed in
the right place, and that the plots are drawn. The lockout is 1 s and the poller's probes
come after 1 s (bench.poller's short-run options), so that no scenario waits long.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from devstack.stack import BASE_ID

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: bench.workload's second base (bench/ is run as `python -m bench`, not imported here)
FUNDRAISERS_BASE_ID = "appFundraisers001"


def _no_cpu_cgroup() -> str | None:
    """Why the cpu-share scenario cannot run here (bench.cgroup.unavailable's rule)."""
    if os.geteuid() != 0:
        return "needs root to create a cpu cgroup"
    root = Path("/sys/fs/cgroup")
    v2 = root / "cgroup.controllers"
    if (root / "cpu" / "cpu.cfs_quota_us").exists() or (
        v2.exists() and "cpu" in v2.read_text().split()
    ):
        return None
    return "no cpu cgroup controller"


@pytest.mark.slow
@pytest.mark.integration
def test_a_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    # GIVEN a workload small enough for a test: no latency, a 1 s lockout, a no-jitter and
    # a 0-40 ms jitter scenario, and a docs plot path that must not be written
    docs_plot = tmp_path / "docs" / "bench-throughput.png"
    argv = [
        sys.executable,
        "-m",
        "bench",
        "--scenario",
        "ceiling,two-bases",
        "--messages",
        "60",
        "--jitter-messages",
        "40",
        "--jitter-ms",
        "40",
        "--two-base-messages",
        "40",
        "--two-base-lockout-after",
        "0",
        "--baseline-messages",
        "30",
        "--latency",
        "0",
        "--lockout-seconds",
        "1",
        "--ceiling-seconds",
        "1",
        "--import-runs",
        "1",
        "--results-dir",
        str(tmp_path),
        "--docs-plot",
        str(docs_plot),
        "--no-docs-plot",
    ]

    # WHEN the benchmark runs it
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)

    # THEN it succeeds, prints the table and writes a report holding every figure
    assert done.returncode == 0, done.stderr[-3000:]
    for label in (
        "records/s while writing",
        "lockouts (after a 429)",
        "physical limit at that jitter",
        "poller (no jitter) / serial baseline",
        "placement:",
        "records/s per base",
        "lockouts per base",
        "moto's own ceiling (phase 1)",
    ):
        assert label in done.stdout, label
    report = json.loads((tmp_path / "latest.json").read_text())
    plain, jittered, two, locked = report["scenarios"]
    baseline = report["baseline"]
    assert (plain["name"], plain["arrival_jitter_ms"], plain["records"]) == ("no jitter", 0, 60)
    assert (jittered["arrival_jitter_ms"], jittered["records"]) == (40, 40)
    # the bound at 0-40 ms of jitter: 50 x 1000 / 1040
    assert jittered["physical_limit_records_per_s"] == 48.1
    assert plain["physical_limit_records_per_s"] == 50.0
    assert baseline["records"] == 30
    # AND the two-base runs wrote an even mix, 20 records to each base, against a
    # ceiling of 2 x 50, with per-base figures and lockouts per base
    for run in (two, locked):
        assert (run["bases"], run["ceiling_records_per_s"], run["records"]) == (2, 100, 40)
        assert {b: f["records"] for b, f in run["per_base"].items()} == {
            BASE_ID: 20,
            FUNDRAISERS_BASE_ID: 20,
        }
        assert set(run["lockouts_by_base"]["counts"]) == {BASE_ID, FUNDRAISERS_BASE_ID}
        assert (
            sum(run["lockouts_by_base"]["counts"].values())
            + run["lockouts_by_base"]["unattributed"]
            == run["lockouts"]
        )
        by_base = run["timeline"]["records_per_bin_by_base"]
        assert {b: sum(bins) for b, bins in by_base.items()} == run_records_by_base(run)
        assert run["left_in_queue"]["dlq_visible"] == 0
    assert locked["forced_lockout"]["base"] == FUNDRAISERS_BASE_ID
    assert "forced_lockout" not in two
    for run in (plain, jittered, two, locked):
        for figure in (
            "records_per_s",
            "throttled_429",
            "lockouts",
            "poller_throttled",
            "records_per_request",
            "sqs_calls_per_message",
            "peak_rss_mb",
        ):
            assert isinstance(run[figure], int | float), (run["name"], figure)
        # the timeline the plot is drawn from: every confirmed record is in one bin
        assert sum(run["timeline"]["records_per_bin"]) == run["records"]
        assert len(run["timeline"]["lockouts_at_s"]) == run["lockouts"]
    assert isinstance(plain["empty_run"]["lambda_ms"], float)
    assert isinstance(baseline["records_per_s"], float)
    assert isinstance(report["ratio"], float)
    assert isinstance(report["cold_import"]["handler_median_ms"], float)
    assert report["cold_import"]["handler_by_package_ms"]
    assert isinstance(report["moto_ceiling"]["msgs_per_s"], float)
    assert report["machine"]["nproc"] >= 1
    assert {t for t in report} >= {"command", "options", "wall_s", "placement"}
    # AND on 2 CPUs or more, the emulator had a CPU of its own
    if len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset"):
        assert report["placement"]["emulator"].startswith("CPU ")
        assert "any" not in report["placement"]["emulator"]
    # AND it drew one PNG per scenario and one with both, and left the docs alone
    plots = report["plots"]
    for path in [plots["combined"], *plots["per_scenario"].values()]:
        assert Path(path).read_bytes()[:8] == PNG_SIGNATURE, path
    assert set(plots["per_scenario"]) == {
        "no jitter",
        "0-40 ms jitter",
        "two bases",
        "two bases, one locked out",
    }
    assert Path(plots["two_bases"]).read_bytes()[:8] == PNG_SIGNATURE
    assert "docs" not in plots and not docs_plot.exists()
    # and no process it started outlived it
    assert len(report["child_pids"]) >= 11  # moto, 5 emulators, 5 poller runs, baseline
    _all_gone(report["child_pids"])


def _all_gone(pids: list[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.slow
@pytest.mark.integration
def test_the_scenarios_of_the_learned_pace_report_their_figures(tmp_path: Path) -> None:
    # GIVEN the scenarios where the world changes, on tiny workloads: a 1 s lockout, probes
    # after 1 s, no latency, no baseline
    argv = [
        sys.executable,
        "-m",
        "bench",
        "--scenario",
        "hog,capacity,neighbour,mirror,two-pollers,capacity-change",
        "--hog-messages",
        "30",
        "--capacity-messages",
        "40",
        "--cold-start-messages",
        "20",
        "--neighbour-messages",
        "40",
        "--mirror-messages",
        "30",
        "--two-poller-messages",
        "40",
        "--change-drop-after",
        "1",
        "--change-feed-at-most",
        "30",
        "--probe-seconds",
        "1:0.6",
        "--baseline-messages",
        "0",
        "--latency",
        "0",
        "--lockout-seconds",
        "1",
        "--ceiling-seconds",
        "1",
        "--import-runs",
        "1",
        "--results-dir",
        str(tmp_path),
        "--no-docs-plot",
    ]

    # WHEN the benchmark runs them
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=420)

    # THEN it succeeds, and each scenario ran with its world and reported its figures
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    runs = {run["kind"]: run for run in report["scenarios"]}
    assert list(runs) == [
        "hog",
        "capacity",
        "cold-start",
        "neighbour",
        "mirror",
        "two-pollers",
        "capacity-change",
    ]
    for run in report["scenarios"]:
        for figure in ("records_per_s", "lockouts", "throttled_429", "pacing_rps"):
            assert isinstance(run[figure], int | float), (run["name"], figure)
        assert run["records"] >= run["messages"] > 0, run["name"]
        assert sum(run["timeline"]["records_per_bin"]) == run["records"]
        # the pacer stamps were paired with their arrivals at the emulator
        trace = run["stamp_to_arrival"][BASE_ID]
        assert trace["paired"] > 0 and set(trace["delay_ms"]) >= {"median", "p99", "max"}
    assert runs["hog"]["cpu_hog"].endswith("while 1: pass")
    assert runs["hog"]["arrival_jitter_ms"] == 10
    # a base at 2 requests/s: its rows, what the poller kept in SSM, and a cold start from it
    capacity, cold = runs["capacity"], runs["cold-start"]
    assert capacity["ceiling_records_per_s"] == 20
    assert capacity["rows"] == {"rows": 40, "distinct_ids": 40}
    assert capacity["left_in_queue"]["dlq_visible"] == 0
    (kept,) = capacity["kept_pace"].values()
    assert isinstance(kept["limit"], float)
    assert cold["kept_pace_before"] == capacity["kept_pace"]
    assert cold["messages"] == 20
    # the neighbour's own requests
    neighbour = runs["neighbour"]["neighbour"]
    assert neighbour["sent"] > 0 and isinstance(neighbour["refused"], int)
    # the faithful mirror's three routes, with their lookups
    mirrors = [run for run in report["scenarios"] if run["kind"] == "mirror"]
    assert [run["name"] for run in mirrors] == [
        "mirror, versioned-linked",
        "mirror, versioned",
        "mirror, unversioned",
    ]
    for run in mirrors:
        assert isinstance(run["mirror"]["lookup_requests_per_100_records"], float)
    assert mirrors[0]["mirror"]["link_stubs_created"] > 0
    # two pollers at once, each into its own table of the one base
    pollers = runs["two-pollers"]["pollers"]
    assert {pollers["poller A"]["table"], pollers["poller B"]["table"]} == {
        "Donations",
        "Donations B",
    }
    assert pollers["poller A"]["records"] == pollers["poller B"]["records"] == 40
    # the capacity dropped and came back through the control API, with its timeline
    change = runs["capacity-change"]["capacity_change"]
    assert change["dropped_at_s"] is not None and change["restored_at_s"] is not None
    assert change["feeding_stopped_because"]
    assert len(change["pace_after_each_lockout"]) == len(change["lockouts_at_s"])
    assert set(change["steps_after_restore_s"]) == {">= 2.5", ">= 3.5", ">= 4.5"}
    assert runs["capacity-change"]["timeline"]["capacity_at_s"][0] == [0.0, 5]
    # AND the plots of each group were drawn
    plots = report["plots"]
    assert set(plots["groups"]) >= {
        "bench-throughput.png",
        "bench-capacity.png",
        "bench-two-pollers.png",
        "bench-mirror.png",
    }
    for path in plots["groups"].values():
        assert Path(path).read_bytes()[:8] == PNG_SIGNATURE, path
    _all_gone(report["child_pids"])


def run_records_by_base(run: dict) -> dict[str, int]:
    return {b: f["records"] for b, f in run["per_base"].items()}


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(_no_cpu_cgroup() is not None, reason=str(_no_cpu_cgroup()))
def test_the_cpu_share_scenario_runs_the_poller_under_a_cfs_quota(tmp_path: Path) -> None:
    # GIVEN root (a cpu cgroup can be made), 3 bases and 30 messages
    argv = [
        sys.executable,
        "-m",
        "bench",
        "--scenario",
        "cpu-share",
        "--lockout-seconds",
        "1",
        "--memory-mb",
        "512",
        "--cpu-share-bases",
        "3",
        "--cpu-share-messages",
        "30",
        "--latency",
        "0",
        "--ceiling-seconds",
        "1",
        "--results-dir",
        str(tmp_path),
    ]

    # WHEN the cpu-share scenario runs
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)

    # THEN the poller ran once in a cgroup with 512 MB's quota and once without a quota,
    # every message landed, sharded over the 3 bases, and the CPU figures are reported
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("Lambda memory: CPU share (quota)", "token limit (50 req/s)", "CPU per record"):
        assert label in done.stdout, label
    report = json.loads((tmp_path / "latest.json").read_text())
    limited, free = report["scenarios"]
    assert limited["cpu_quota"]["quota_us"] == 28943  # 100,000 us x 512 / 1,769
    assert limited["cpu_quota"]["period_us"] == 100_000
    assert free["cpu_quota"]["quota_us"] is None
    for run in (limited, free):
        assert run["records"] == 30 and run["ceiling_records_per_s"] == 150
        assert sorted(f["records"] for f in run["per_base"].values()) == [10, 10, 10]
        assert isinstance(run["poller_cpu_ms_per_record"], float)
        assert isinstance(run["cpu_quota"]["periods"], int)
        # the cgroup was removed after the run
        assert not Path(run["cpu_quota"]["cgroup"]).exists()
    assert "baseline" not in report and "cold_import" not in report
