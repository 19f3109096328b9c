"""The benchmark's plots and the docs' figures: a run that drew only some kinds of a docs
figure's scenarios leaves that figure alone (`bench.plot.DOCS_GROUPS`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scenario(name: str, kind: str) -> dict:
    return {
        "name": name,
        "kind": kind,
        "slug": name.replace(" ", "-"),
        "messages": 100,
        "records_per_s": 48.0,
        "lockouts": 0,
        "timeline": {"bin_s": 1.0, "records_per_bin": [40, 50, 50, 10]},
    }


def plot(tmp_path: Path, *scenarios: dict) -> dict:
    """`python -m bench.plot` on a report of `scenarios`, copying to a docs folder in tmp."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"scenarios": list(scenarios)}), encoding="utf-8")
    docs = tmp_path / "docs" / "bench-throughput.png"
    done = subprocess.run(
        [sys.executable, "-m", "bench.plot", str(report), "--docs-plot", str(docs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_partial_run_leaves_the_docs_figure_alone_and_a_complete_group_replaces_its_own(
    tmp_path: Path,
) -> None:
    # GIVEN a run of the ceiling without its jitter and hog scenarios, and the mirror
    ceiling, mirror = scenario("no jitter", "ceiling"), scenario("mirror versioned", "mirror")
    # WHEN its plots are drawn with a docs folder to copy to
    written = plot(tmp_path, ceiling, mirror)
    # THEN the mirror's figure is copied (its one kind ran), the single-base figure is not
    docs = tmp_path / "docs"
    assert sorted(p.name for p in docs.iterdir()) == ["bench-mirror.png"]
    assert (docs / "bench-mirror.png").read_bytes().startswith(PNG_SIGNATURE)
    assert written["docs"] == str(docs / "bench-mirror.png")
    # AND both groups' figures are still drawn in the results folder
    assert (tmp_path / "group-throughput.png").exists() and (tmp_path / "group-mirror.png").exists()


def test_every_kind_of_the_single_base_figure_replaces_it(tmp_path: Path) -> None:
    # GIVEN the ceiling, a jitter and the hog scenarios
    runs = [scenario("no jitter", "ceiling"), scenario("0-40 ms jitter", "jitter")]
    runs.append(scenario("hog", "hog"))
    # WHEN their plots are drawn with a docs folder to copy to
    plot(tmp_path, *runs)
    # THEN the docs' single-base figure is replaced, and nothing else
    docs = tmp_path / "docs"
    assert sorted(p.name for p in docs.iterdir()) == ["bench-throughput.png"]
    assert (docs / "bench-throughput.png").read_bytes().startswith(PNG_SIGNATURE)
