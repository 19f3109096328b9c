"""The stand-in for `sam local invoke` (which needs Docker): the host build's handler, on
python3.13 with only the built dependencies plus boto3, drains a queue into the emulator.

The function's environment is built by `devstack.built`, what `make invoke-built` runs: as
`sam local invoke --env-vars events/env-vars.json` would build it (the variables the built
template declares, overridden by the env-vars file), with host.docker.internal (the host,
seen from a container) replaced by this machine's local stack.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from devstack import LocalStack, donation
from devstack.built import (
    DEFAULT_ENV_VARS,
    DEFAULT_EVENT,
    BuiltFunction,
    built_function,
    invoke,
    sam_local_environment,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POISON = "not json at all"


def function_of(artifact: Path) -> BuiltFunction:
    """The function as its build directory's template describes it."""
    return built_function(artifact.parent)


def test_the_built_handler_drains_the_queue_into_airtable(
    host_artifact: Path, lambda_python: Path
) -> None:
    # GIVEN the local stack with the queue names of events/env-vars.json, holding 25
    # donations and one message that cannot be mapped
    function = function_of(host_artifact)
    with LocalStack.start(queue_name="donations") as stack:
        env = sam_local_environment(
            function, DEFAULT_ENV_VARS, stack.sqs_endpoint, stack.airtable_url
        )
        assert (env["QUEUE_URL"], env["DEAD_LETTER_QUEUE_URL"]) == (stack.queue_url, stack.dlq_url)
        assert env["_HANDLER"] == "lambda_function.lambda_handler"
        donations = [donation(n) for n in range(25)]
        stack.send_messages([*donations, POISON])

        # WHEN the built handler runs in a Lambda-like python3.13, cold and then warm
        report = invoke(
            lambda_python, function, env, DEFAULT_EVENT, invocations=2, log=io.StringIO()
        )

        # THEN every donation is a row, the poison message is in the DLQ, the queue is empty
        rows = stack.rows()
        assert sorted(r["fields"]["Id"] for r in rows) == sorted(d["Id"] for d in donations)
        assert [body for body, _ in stack.dead_letters()] == [POISON]
        assert stack.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}
    cold, warm = report["results"]
    assert (cold["received"], cold["deleted"], cold["dead_lettered"]) == (26, 26, 1)
    assert warm["received"] == 0  # the warm run found the queue empty

    # AND the dependencies came from the build; only boto3 (and its own dependencies) came
    # from the runtime; nothing came from the dev venv or the source tree
    files = report["module_files"]
    for name in (
        "poller.handler",
        "pyairtable",
        "pydantic_core._pydantic_core",
        "aws_lambda_powertools",
    ):
        assert Path(files[name]).is_relative_to(host_artifact), (name, files[name])
    runtime_prefix = lambda_python.parent.parent
    for name in ("boto3", "botocore"):
        assert Path(files[name]).is_relative_to(runtime_prefix), (name, files[name])
    dev_prefix = Path(sys.prefix)  # the venv running these tests
    leaked = [
        f
        for f in files.values()
        if Path(f).is_relative_to(dev_prefix) or Path(f).is_relative_to(ROOT / "src")
    ]
    assert leaked == []


def test_make_invoke_built_prints_the_summary_of_one_run_on_the_sample_messages(
    host_artifact: Path, lambda_python: Path, tmp_path: Path
) -> None:
    # GIVEN the host build and no `make serve` running (no local.json)
    # WHEN `python -m devstack.built`, what `make invoke-built` runs, invokes it
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack.built",
            "--build-dir",
            str(host_artifact.parent),
            "--python",
            str(lambda_python),
            "--env-file",
            str(tmp_path / "local.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    # THEN it ran the handler once against a stack of its own holding the sample messages,
    # with the function's log on stderr and only its summary, as JSON, on stdout
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["stopped_because"] == "empty"
    assert (summary["received"], summary["dead_lettered"]) == (17, 4)
    assert '"run finished"' in done.stderr
    assert "invoking lambda_function.lambda_handler" in done.stderr
