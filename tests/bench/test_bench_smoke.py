"""The benchmark's machinery on a tiny workload: every figure is reported.

Speed is not asserted here (the figures come from `make bench`); this checks that the
processes start, talk to each other, stop, that the report names every figure of every
scenario (no jitter, and 0-40 ms of arrival jitter), and that the plots are drawn.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
        "--messages",
        "60",
        "--jitter-messages",
        "40",
        "--jitter-ms",
        "40",
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
    ):
        assert label in done.stdout, label
    report = json.loads((tmp_path / "latest.json").read_text())
    plain, jittered = report["scenarios"]
    baseline = report["baseline"]
    assert (plain["name"], plain["arrival_jitter_ms"], plain["records"]) == ("no jitter", 0, 60)
    assert (jittered["arrival_jitter_ms"], jittered["records"]) == (40, 40)
    # the bound at 0-40 ms of jitter: 50 x 1000 / 1040
    assert jittered["physical_limit_records_per_s"] == 48.1
    assert plain["physical_limit_records_per_s"] == 50.0
    assert baseline["records"] == 30
    for run in (plain, jittered):
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
    assert set(plots["per_scenario"]) == {"no jitter", "0-40 ms jitter"}
    assert "docs" not in plots and not docs_plot.exists()
    # and no process it started outlived it
    assert len(report["child_pids"]) >= 7  # moto, 3 emulators, 3 poller runs, baseline
    for pid in report["child_pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
