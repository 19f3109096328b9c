"""``python -m airtable_emulator``: starts, serves and exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from airtable_emulator import DEFAULT_MAX_BODY_BYTES
from emulator_testkit import custom_schema
from pyairtable import Api

LOCAL_DIR = Path(__file__).resolve().parents[2] / "local"
LISTENING = re.compile(r"^airtable-emulator listening on (http://127\.0\.0\.1:\d+)$")


@contextmanager
def cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run the CLI on a free port; yield the process and its URL; always reap it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(LOCAL_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "airtable_emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = LISTENING.match(line)
        if match is None:
            process.kill()
            pytest.fail(f"unexpected first line {line!r}; stderr: {process.communicate()[1]}")
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=5)


def test_cli_serves_pyairtable_and_exits_on_sigterm() -> None:
    # GIVEN the CLI started with a token, limits, latency, arrival jitter and faults
    with cli(
        "--token",
        "patCliToken",
        "--base",
        "appCliBase0000001",
        "--lockout-seconds",
        "2",
        "--rate-limit-rps",
        "7",
        "--latency",
        "0:0.01",
        "--error-5xx-rate",
        "0.1",
        "--lost-response-rate",
        "0.05",
        "--seed",
        "9",
        "--arrival-jitter-ms",
        "40",
    ) as (process, url):
        # WHEN its settings are read and pyairtable lists records through it
        settings = requests.get(f"{url}/__emulator/config", timeout=5).json()
        api = Api("patCliToken", endpoint_url=url, retry_strategy=None, timeout=(5, 10))
        rows = api.table("appCliBase0000001", "Donations").all()
        api.session.close()
        # THEN the flags are in effect and the base is served
        assert settings == {
            "latency": [0.0, 0.01],
            "faults": {"error_5xx_rate": 0.1, "lost_response_rate": 0.05},
            "lockout_seconds": 2.0,
            "rate_limit_rps": 7,
            "max_body_bytes": DEFAULT_MAX_BODY_BYTES,
            "arrival_jitter_ms": 40.0,
        }
        assert rows == []
        # WHEN it gets SIGTERM
        process.send_signal(signal.SIGTERM)
        # THEN it exits cleanly and promptly
        assert process.wait(timeout=5) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/__emulator/health", timeout=2)


def test_cli_loads_a_schema_file(tmp_path: Path) -> None:
    # GIVEN a schema file for another table
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(custom_schema()), encoding="utf-8")
    with cli("--schema", str(schema_file), "--rate-limit-rps", "none") as (process, url):
        # WHEN the schema and table are read
        headers = {"Authorization": "Bearer patLocalDevToken"}
        meta = requests.get(f"{url}/v0/meta/bases/appDonations00001/tables", headers=headers)
        created = requests.post(
            f"{url}/v0/appDonations00001/Kinds", json={"fields": {"Name": "x"}}, headers=headers
        )
        # THEN the file's schema is served (with the default token and base id)
        assert meta.json() == custom_schema()
        assert created.status_code == 200
        # AND SIGINT stops it as cleanly as SIGTERM
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0


def test_cli_rejects_a_bad_schema_file(tmp_path: Path) -> None:
    # GIVEN a schema file that is not an Airtable schema
    schema_file = tmp_path / "schema.json"
    schema_file.write_text('{"tables": [{"name": "x"}]}', encoding="utf-8")
    # WHEN the CLI is started with it
    result = subprocess.run(
        [sys.executable, "-m", "airtable_emulator", "--port", "0", "--schema", str(schema_file)],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "PYTHONPATH": str(LOCAL_DIR)},
    )
    # THEN it exits with an error instead of serving
    assert result.returncode == 2
    assert "every table needs" in result.stderr
