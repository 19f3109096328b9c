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
import os
import subprocess
import sys
from pathlib import Path

import boto3
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


def invoke_built_command(
    host_artifact: Path, lambda_python: Path, env_file: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack.built",
            "--build-dir",
            os.path.relpath(host_artifact.parent, ROOT),
            "--python",
            os.path.relpath(lambda_python, ROOT),
            "--env-file",
            str(env_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def test_make_invoke_built_prints_the_summary_of_one_run_on_the_sample_messages(
    host_artifact: Path, lambda_python: Path, tmp_path: Path
) -> None:
    # GIVEN the host build and no `make serve` running (no local.json)
    # WHEN `python -m devstack.built`, what `make invoke-built` runs, invokes it (with the
    # paths relative to the repository, as the make target gives them)
    done = invoke_built_command(host_artifact, lambda_python, tmp_path / "local.json")
    # THEN it ran the handler once against a stack of its own holding the sample messages,
    # with the function's log on stderr and only its summary, as JSON, on stdout
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["stopped_because"] == "empty"
    assert (summary["received"], summary["dead_lettered"]) == (17, 4)
    assert '"run finished"' in done.stderr
    assert "invoking lambda_function.lambda_handler" in done.stderr


def test_make_invoke_built_drains_the_queue_of_the_stack_make_serve_runs(
    host_artifact: Path, lambda_python: Path, tmp_path: Path
) -> None:
    # GIVEN `make serve` running (on free ports, writing its own local.json), and three
    # donations sent to its queue
    env_file = tmp_path / "local.json"
    serving = subprocess.Popen(
        [sys.executable, "-m", "devstack", "serve", "--env-file", str(env_file)],
        cwd=ROOT,
        env={**os.environ, "DEVSTACK_SQS_PORT": "0", "DEVSTACK_AIRTABLE_PORT": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert serving.stdout is not None
        for line in serving.stdout:
            if line.startswith("serving"):
                break
        local = json.loads(env_file.read_text())
        sqs = boto3.client(
            "sqs",
            endpoint_url=local["AWS_ENDPOINT_URL_SQS"],
            region_name=local["AWS_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for n in range(3):
            sqs.send_message(QueueUrl=local["QUEUE_URL"], MessageBody=json.dumps(donation(n)))
        # WHEN make invoke-built runs
        done = invoke_built_command(host_artifact, lambda_python, env_file)
    finally:
        serving.terminate()
        serving.communicate(timeout=60)
    # THEN the built handler drained that stack's queue: the three messages it was sent
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert (summary["received"], summary["deleted"], summary["dead_lettered"]) == (3, 3, 0)
    assert "against make serve (local.json)" in done.stderr
