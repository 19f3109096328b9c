"""`make run` and `make serve` (`python -m devstack run|serve`) as a newcomer meets them: a
port that another program holds, a second `make serve`, and `local.json`, which describes a
running stack or none. Each command runs as a subprocess, against real sockets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: Only a guard against a hang: no test here asserts how long anything took.
HANG_GUARD_S = 120


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on loopback that another program holds (bound and listening), as a
    `make serve` left running holds 9324."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def devstack_env(**variables: str) -> dict[str, str]:
    """This environment with the given DEVSTACK_* ports; every port not given is 0 (any free
    one), so that a developer's own `make serve` on 9324/8787 does not matter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVSTACK_")}
    return {"DEVSTACK_SQS_PORT": "0", "DEVSTACK_AIRTABLE_PORT": "0", **env, **variables}


def devstack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        stdin=subprocess.DEVNULL,
    )


PORTS = [
    ("DEVSTACK_SQS_PORT", "moto's SQS"),
    ("DEVSTACK_AIRTABLE_PORT", "the Airtable emulator"),
]


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize(("variable", "service"), PORTS, ids=["sqs", "airtable"])
def test_a_taken_port_fails_in_one_line_naming_it_and_the_fix(
    command, variable, service, held_port, tmp_path
):
    # GIVEN a port held by another program, named as the one the stack must use
    env = devstack_env(**{variable: str(held_port)})
    extra = ["--env-file", str(tmp_path / "local.json")] if command == "serve" else []
    # WHEN the stack is started on it
    done = devstack(command, *extra, env=env)
    # THEN it stops with status 1 and one line: the port, what needed it, and the way out
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {held_port} ({service}) is taken" in lines[0]
    assert variable in lines[0] and "stop the other local stack" in lines[0]
    # AND it wrote nothing for the CLI to read, and sent nothing anywhere
    assert not (tmp_path / "local.json").exists()
    assert "sent" not in done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_run_fails_on_a_taken_port_with_the_same_line(held_port):
    # GIVEN the venv make run would use (installed already: -o keeps make from reinstalling)
    venv = Path(sys.prefix)
    stamps = [f"-o{venv}/{name}" for name in (".installed", ".installed-local")]
    # WHEN `make run` starts with its SQS port held by another program
    done = subprocess.run(
        ["make", "-s", *stamps, f"VENV={venv}", "run"],
        cwd=ROOT,
        env=devstack_env(DEVSTACK_SQS_PORT=str(held_port)),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        stdin=subprocess.DEVNULL,
    )
    # THEN it fails, and the line that says why names the port and the variable
    assert done.returncode != 0
    assert f"port {held_port} (moto's SQS) is taken" in done.stderr
    assert "DEVSTACK_SQS_PORT" in done.stderr and "Traceback" not in done.stderr


class Serving:
    """`python -m devstack serve` in the background, until it has said it is serving."""

    def __init__(self, env_file: Path) -> None:
        self.env_file = env_file
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "serve", "--env-file", str(env_file)],
            cwd=ROOT,
            env=devstack_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.printed = []
        for line in self.process.stdout:
            self.printed.append(line)
            if line.startswith("serving"):
                break
        assert self.printed and self.printed[-1].startswith("serving"), self.stop()

    def stop(self) -> tuple[int, str]:
        """SIGTERM, as a terminal closing or `kill` would send; (exit status, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=HANG_GUARD_S)
        return self.process.returncode, err


def test_a_second_serve_refuses_while_the_first_runs_and_the_file_goes_with_the_first(tmp_path):
    # GIVEN one local stack serving (on free ports), and the file it wrote
    env_file = tmp_path / "local.json"
    first = Serving(env_file)
    try:
        written = json.loads(env_file.read_text())
        # WHEN a second one starts, on other ports, to write the same file
        second = devstack("serve", "--env-file", str(env_file), env=devstack_env())
        # THEN it refuses in one line, naming the file and the way out, and leaves the file
        # describing the first stack
        assert second.returncode == 1
        (line,) = second.stderr.strip().splitlines()
        assert "local.json describes a local stack that is running" in line
        assert written["AWS_ENDPOINT_URL_SQS"] in line and "--env-file" in line
        assert json.loads(env_file.read_text()) == written
    finally:
        status, err = first.stop()
    # AND when the first one stops, it takes its file with it
    assert status == 0, err
    assert not env_file.exists()


def test_a_stale_file_left_by_a_stack_that_died_is_replaced(tmp_path):
    # GIVEN a local.json whose stack is gone (nothing listens where it points)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env_file = tmp_path / "local.json"
    env_file.write_text(json.dumps({"AWS_ENDPOINT_URL_SQS": dead, "AIRTABLE_API_URL": dead}))
    # WHEN a stack starts
    serving = Serving(env_file)
    try:
        # THEN it writes its own file in place of the stale one
        assert json.loads(env_file.read_text())["AWS_ENDPOINT_URL_SQS"] != dead
    finally:
        serving.stop()
