"""The benchmark's machinery on a tiny workload: every figure is reported.

Speed is not asserted here (the figures come from `make bench`); this checks that the
processes start, talk to each other, stop, and that the report names every figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.integration
def test_a_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    # GIVEN a workload small enough for a test: no latency, a 1 s lockout
    argv = [
        sys.executable,
        "-m",
        "bench",
        "--messages",
        "60",
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
    ]

    # WHEN the benchmark runs it
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)

    # THEN it succeeds, prints the table and writes a report holding every figure
    assert done.returncode == 0, done.stderr[-3000:]
    assert "records/s while writing" in done.stdout
    assert "poller / serial baseline" in done.stdout
    report = json.loads((tmp_path / "latest.json").read_text())
    poller, baseline = report["poller"], report["baseline"]
    assert poller["records"] == 60
    assert baseline["records"] == 30
    for figure in (
        "records_per_s",
        "throttled_429",
        "poller_throttled",
        "records_per_request",
        "sqs_calls_per_message",
        "peak_rss_mb",
    ):
        assert isinstance(poller[figure], int | float), figure
    assert isinstance(poller["empty_run"]["lambda_ms"], float)
    assert isinstance(baseline["records_per_s"], float)
    assert isinstance(report["ratio"], float)
    assert isinstance(report["cold_import"]["handler_median_ms"], float)
    assert report["cold_import"]["handler_by_package_ms"]
    assert isinstance(report["moto_ceiling"]["msgs_per_s"], float)
    assert report["machine"]["nproc"] >= 1
    assert {t for t in report} >= {"command", "options", "wall_s"}
    # and no process it started outlived it
    assert len(report["child_pids"]) >= 5  # moto, two emulators, two poller runs, baseline
    for pid in report["child_pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
