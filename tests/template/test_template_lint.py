"""The template is valid: SAM translates it, and cfn-lint is clean before and after translation.

cfn-lint only checks `AWS::Serverless::*` resources against their schema (a bad runtime or
a broken Ref inside the function passes), so the translated CloudFormation is linted too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

ROOT = Path(__file__).resolve().parents[2]


def lint_text(text: str) -> list[str]:
    matches = lint(text, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def test_cfn_lint_is_clean_on_the_sam_template() -> None:
    # GIVEN template.yaml WHEN cfn-lint reads it THEN it reports nothing, warnings included
    assert lint_text((ROOT / "template.yaml").read_text()) == []


def test_cfn_lint_is_clean_on_the_translated_template(cfn: dict[str, Any]) -> None:
    # GIVEN the CloudFormation SAM produces WHEN cfn-lint reads it THEN it reports nothing
    assert lint_text(json.dumps(cfn, indent=1)) == []


def test_cfn_lint_would_catch_a_broken_function(cfn: dict[str, Any]) -> None:
    # GIVEN the translated template with a timeout Lambda refuses (the check can fail)
    cfn["Resources"]["PollerFunction"]["Properties"]["Timeout"] = 1200
    # WHEN linted THEN cfn-lint reports it
    assert any("1200" in m for m in lint_text(json.dumps(cfn))), "cfn-lint missed Timeout 1200"


@pytest.mark.slow
def test_sam_validate_lint_passes(sam_bin: Path, tool_env: dict[str, str]) -> None:
    # GIVEN the SAM CLI WHEN `sam validate --lint` runs on the template
    result = subprocess.run(
        [str(sam_bin), "validate", "--lint", "--template-file", "template.yaml"],
        cwd=ROOT,
        env=tool_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # THEN it succeeds
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr
