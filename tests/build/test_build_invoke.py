"""The stand-in for `sam local invoke` (which needs Docker): the host build's handler, on
python3.13 with only the built dependencies plus boto3, drains a queue into the emulator.

The function's environment is built as `sam local invoke --env-vars events/env-vars.json`
would build it: the variables template.yaml declares, overridden by the env-vars file, with
host.docker.internal (the host, seen from a container) replaced by this machine's local
stack. `make invoke-built` runs this file after building.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from devstack import LocalStack, donation
from samtranslator.yaml_helper import yaml_parse

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
POISON = "not json at all"


def sam_local_environment(stack: LocalStack) -> dict[str, str]:
    """What the function sees under sam local invoke --env-vars events/env-vars.json."""
    template = yaml_parse((ROOT / "template.yaml").read_text())
    function = template["Resources"]["PollerFunction"]["Properties"]
    declared = function["Environment"]["Variables"]
    # SAM gives unresolved intrinsics an empty value; the env-vars file overrides them
    env = {k: v if isinstance(v, str) else "" for k, v in declared.items()}
    overrides = json.loads((ROOT / "events" / "env-vars.json").read_text())["PollerFunction"]
    assert set(overrides) <= set(declared), "sam local invoke would drop undeclared variables"
    for name, value in overrides.items():
        env[name] = value.replace("http://host.docker.internal:9324", stack.sqs_endpoint).replace(
            "http://host.docker.internal:8787", stack.airtable_url
        )
    # What the Lambda runtime itself sets (SAM passes the shell's credentials into the
    # container; moto accepts any)
    env.update(
        {
            "_HANDLER": function["Handler"],
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": "sqs-airtable-poller-poller",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function["MemorySize"]),
            "LAMBDA_TIMEOUT_MS": str(60_000),
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    return env


def invoke_built(
    python: Path, artifact: Path, env: dict[str, str], invocations: int
) -> dict[str, Any]:
    result = subprocess.run(
        [
            str(python),
            "-I",
            str(HERE / "lambda_runtime.py"),
            str(ROOT / "events" / "scheduled-event.json"),
        ],
        cwd=artifact,
        env={
            **env,
            "LAMBDA_TASK_ROOT": str(artifact),
            "LAMBDA_INVOCATIONS": str(invocations),
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
        },
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"the built handler failed:\n{result.stdout}\n{result.stderr}"
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def test_the_built_handler_drains_the_queue_into_airtable(
    host_artifact: Path, lambda_python: Path
) -> None:
    # GIVEN the local stack with the queue names of events/env-vars.json, holding 25
    # donations and one message that cannot be mapped
    with LocalStack.start(queue_name="donations") as stack:
        env = sam_local_environment(stack)
        assert (env["QUEUE_URL"], env["DEAD_LETTER_QUEUE_URL"]) == (stack.queue_url, stack.dlq_url)
        donations = [donation(n) for n in range(25)]
        stack.send_messages([*donations, POISON])

        # WHEN the built handler runs in a Lambda-like python3.13, cold and then warm
        report = invoke_built(lambda_python, host_artifact, env, invocations=2)

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
