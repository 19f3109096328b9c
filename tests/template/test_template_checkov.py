"""checkov (an IaC security scanner) finds nothing on the template, before and after the SAM
transform, and every suppression is justified and still needed.

checkov's dependencies conflict with the dev venv's (it pins an old boto3), so it lives in
its own venv: `make checkov` installs it (`make test` does that first). Set CHECKOV to use
another binary.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkov() -> Path:
    path = Path(os.environ.get("CHECKOV") or DEFAULT_CHECKOV)
    if not path.exists():
        message = f"checkov is not installed at {path}: run `make checkov`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def scan(checkov: Path, template: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            str(checkov),
            "--file",
            str(template),
            "--framework",
            "cloudformation",
            "--skip-download",  # no network: no guideline links from the vendor's API
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in (0, 1), result.stderr  # 1: failed checks, read below
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    return report


def failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['check_name']}: {c['resource']}"
        for c in report["results"]["failed_checks"]
    ]


def skipped(report: dict[str, Any]) -> set[tuple[str, str]]:
    """(check id, logical id) of every suppressed finding."""
    return {
        (c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["skipped_checks"]
    }


@pytest.fixture(scope="module")
def sam_report(checkov: Path) -> dict[str, Any]:
    return scan(checkov, ROOT / "template.yaml")


@pytest.fixture(scope="module")
def cfn_report(checkov: Path, translated_path: Path) -> dict[str, Any]:
    # The translated template: checks on AWS::Lambda::Function and on the schedule's role
    # only see what SAM generates.
    return scan(checkov, translated_path)


def suppressions(sam: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(check id, logical id) -> justification, for every checkov skip in template.yaml."""
    found = {}
    for logical_id, resource in sam["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found[(skip["id"], logical_id)] = skip.get("comment", "")
    return found


def test_checkov_finds_nothing_on_the_sam_template(sam_report: dict[str, Any]) -> None:
    # GIVEN template.yaml WHEN checkov scans it THEN no check fails, and it did check things
    assert failures(sam_report) == []
    assert sam_report["summary"]["passed"] > 0


def test_checkov_finds_nothing_on_the_translated_template(cfn_report: dict[str, Any]) -> None:
    # GIVEN the CloudFormation SAM generates WHEN scanned THEN no check fails, and it saw
    # more than the SAM template's resources (the generated roles and schedule)
    assert failures(cfn_report) == []
    assert cfn_report["summary"]["resource_count"] > sam_report_resources()


def sam_report_resources() -> int:
    return 13  # resources in template.yaml with every condition true


def test_every_suppression_is_justified_and_still_needed(
    sam: dict[str, Any], sam_report: dict[str, Any], cfn_report: dict[str, Any]
) -> None:
    # GIVEN the skips written in template.yaml
    declared = suppressions(sam)
    assert declared, "no suppressions found: the scan of Metadata.checkov.skip is broken"
    # THEN each says why, in a sentence
    for key, comment in declared.items():
        assert len(comment.split()) >= 8, f"{key} needs a real justification, got {comment!r}"
    # AND each silences a finding checkov really reports (no stale suppressions)
    used = skipped(sam_report) | skipped(cfn_report)
    assert set(declared) <= used, f"suppressions that silence nothing: {set(declared) - used}"
