"""`python -m devstack.built`: the built function, invoked as `sam local invoke` would, without
Docker (`make invoke-built`).

    python -m devstack.built --build-dir .aws-sam/build-host --python PYTHON
                             [--event events/scheduled-event.json] [--env-vars events/env-vars.json]

It reads the function from the built template (its Handler, its declared environment, its
memory and timeout), builds the environment `sam local invoke --env-vars FILE` would give it
(the declared variables, overridden by the file's; `host.docker.internal`, the host seen from
a container, replaced by the local stack's addresses), and runs the handler once in PYTHON, a
python3.13 with nothing but boto3 (what the Lambda runtime provides), with the built
directory as its task root. The function's log goes to stderr; its return value, the run
summary, to stdout, as `sam local invoke` prints them.

The local stack is the one `make serve` is running (local.json), whose queue holds what you
sent to it; without one, a stack of its own on free ports, holding the sample messages of
events/messages/donations.jsonl, for this one invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = Path(__file__).resolve().with_name("lambda_runtime.py")
FUNCTION = "PollerFunction"
DEFAULT_EVENT = ROOT / "events" / "scheduled-event.json"
DEFAULT_ENV_VARS = ROOT / "events" / "env-vars.json"
DEFAULT_MESSAGES = ROOT / "events" / "messages" / "donations.jsonl"
#: Where events/env-vars.json points: the local stack, as a container sees the host.
CONTAINER_SQS = "http://host.docker.internal:9324"
CONTAINER_AIRTABLE = "http://host.docker.internal:8787"
#: What the Lambda runtime itself sets; sam local invoke passes the shell's credentials into
#: the container, and moto accepts any.
RUNTIME_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@dataclass(frozen=True)
class BuiltFunction:
    """The function as the built template describes it."""

    artifact: Path
    handler: str
    declared: dict[str, Any]
    memory_mb: int
    timeout_s: int
    architecture: str


def built_function(build_dir: Path, name: str = FUNCTION) -> BuiltFunction:
    """Read `name` from `build_dir/template.yaml`, the template `sam build` writes."""
    from samtranslator.yaml_helper import yaml_parse

    template_file = build_dir / "template.yaml"
    if not template_file.is_file():
        raise SystemExit(f"{template_file} does not exist: build first (make build-host)")
    template = yaml_parse(template_file.read_text(encoding="utf-8"))
    properties = template["Resources"][name]["Properties"]
    globals_ = template.get("Globals", {}).get("Function", {})
    return BuiltFunction(
        artifact=(build_dir / properties["CodeUri"]).resolve(),
        handler=properties["Handler"],
        declared=dict(properties.get("Environment", {}).get("Variables", {})),
        memory_mb=int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
        timeout_s=int(properties.get("Timeout", globals_.get("Timeout", 3))),
        architecture=native_architecture(build_dir / properties["CodeUri"]),
    )


#: ELF e_machine values, by Lambda's architecture names.
_ELF_MACHINES = {62: "x86_64", 183: "arm64"}


def native_architecture(artifact: Path) -> str:
    """The architecture of the artifact's native code (its first shared library's ELF
    header): what the build was made for, whatever the template's parameter says."""
    for library in sorted(artifact.rglob("*.so")):
        header = library.read_bytes()[:20]
        if header[:4] == b"\x7fELF":
            machine = int.from_bytes(header[18:20], "little")
            return _ELF_MACHINES.get(machine, f"ELF machine {machine}")
    return "no native code"


def sam_local_environment(
    function: BuiltFunction,
    env_vars_file: Path,
    sqs_endpoint: str,
    airtable_url: str,
    name: str = FUNCTION,
) -> dict[str, str]:
    """What the function sees under `sam local invoke --env-vars FILE`: each variable the
    template declares (an unresolved intrinsic is empty), overridden by the file's value for
    it (the file cannot add a variable: SAM drops undeclared ones), the container's view of
    the host replaced by the local stack's addresses, and what the runtime sets."""
    env = {k: v if isinstance(v, str | int | float) else "" for k, v in function.declared.items()}
    env = {k: str(v) for k, v in env.items()}
    overrides = json.loads(env_vars_file.read_text(encoding="utf-8")).get(name, {})
    for variable, value in overrides.items():
        if variable in env:
            env[variable] = (
                str(value)
                .replace(CONTAINER_SQS, sqs_endpoint)
                .replace(CONTAINER_AIRTABLE, airtable_url)
            )
    env.update(RUNTIME_ENV)
    env.update(
        {
            "_HANDLER": function.handler,
            "AWS_LAMBDA_FUNCTION_NAME": "sqs-airtable-poller-poller",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "LAMBDA_TIMEOUT_MS": str(function.timeout_s * 1000),
        }
    )
    return env


def invoke(
    python: Path,
    function: BuiltFunction,
    env: Mapping[str, str],
    event_file: Path,
    *,
    invocations: int = 1,
    log: Any = None,
) -> dict[str, Any]:
    """Run the built handler in `python` with `function.artifact` as its task root and
    nothing of this repository or its venv on the path; return `{"results": [each call's
    return value], "module_files": {module: file}}`. The handler's output goes to `log`
    (default: this process's stderr), line by line as it comes."""
    log = log or sys.stderr
    # absolute, not resolved: the venv's python is a link that must stay in its venv
    process = subprocess.Popen(
        [str(python.absolute()), "-I", str(RUNTIME), str(event_file.absolute())],
        cwd=function.artifact,
        env={
            **env,
            "LAMBDA_TASK_ROOT": str(function.artifact),
            "LAMBDA_INVOCATIONS": str(invocations),
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    result: dict[str, Any] | None = None
    for line in process.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
        else:
            print(line, end="", file=log, flush=True)
    status = process.wait()
    if status != 0 or result is None:
        raise RuntimeError(f"the built handler's runtime exited with status {status}")
    return result


@contextlib.contextmanager
def local_stack(env_file: Path, messages: Path) -> Iterator[tuple[str, str, str]]:
    """(SQS endpoint, Airtable URL, where they come from): the stack `make serve` runs when
    `env_file` describes a live one, else one started here with the sample messages."""
    from .__main__ import live_stack, read_messages

    if live_stack(env_file):
        env = json.loads(env_file.read_text(encoding="utf-8"))
        yield env["AWS_ENDPOINT_URL_SQS"], env["AIRTABLE_API_URL"], f"make serve ({env_file.name})"
        return
    from .stack import LocalStack

    with LocalStack.start(queue_name="donations") as stack:
        bodies = read_messages(messages)
        stack.send_messages(bodies)
        origin = f"a local stack of its own, with the {len(bodies)} messages of {messages.name}"
        yield stack.sqs_endpoint, stack.airtable_url, origin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.built", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build-host")
    parser.add_argument(
        "--python", type=Path, required=True, help="a python3.13 with only boto3 installed"
    )
    parser.add_argument("--event", type=Path, default=DEFAULT_EVENT)
    parser.add_argument("--env-vars", type=Path, default=DEFAULT_ENV_VARS)
    parser.add_argument(
        "--env-file", type=Path, default=ROOT / "local.json", help="make serve's local.json"
    )
    parser.add_argument("--messages", type=Path, default=DEFAULT_MESSAGES)
    args = parser.parse_args(argv)

    function = built_function(args.build_dir)
    with local_stack(args.env_file, args.messages) as (sqs_endpoint, airtable_url, origin):
        env = sam_local_environment(function, args.env_vars, sqs_endpoint, airtable_url)
        print(
            f"invoking {function.handler} from {_shown(function.artifact)} "
            f"({function.architecture}, {_shown(args.python)}) with {_shown(args.event)} "
            f"against {origin}; its log follows on stderr, its summary on stdout",
            file=sys.stderr,
            flush=True,
        )
        report = invoke(args.python, function, env, args.event)
    (result,) = report["results"]
    print(json.dumps(result, indent=2))
    failed = isinstance(result, dict) and "errorType" in result
    return 1 if failed else 0


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
