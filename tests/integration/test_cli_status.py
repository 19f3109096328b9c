"""`poller status`'s Airtable calls this month, against moto's SSM and CloudWatch over HTTP:
the parameters the function itself keeps, and the metric it publishes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devstack.feeder import as_bodies
from devstack.stack import LocalStack, moto_client

from poller_ops import usage
from poller_ops.cli import main

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def prefix() -> str:
    """A prefix of its own per test: moto's SSM is shared by the session."""
    return f"/status-{time.time_ns()}/pace"


@pytest.fixture
def env_file(stack: LocalStack, tmp_path: Path, prefix: str) -> Path:
    """The local stack's environment, with PACE_PARAMETER_PREFIX and moto's SSM."""
    path = tmp_path / "env.json"
    env = stack.poller_env(
        POWERTOOLS_METRICS_DISABLED="true",
        PACE_PARAMETER_PREFIX=prefix,
        AWS_ENDPOINT_URL_SSM=stack.sqs_endpoint,
    )
    path.write_text(json.dumps(env))
    return path


@pytest.fixture
def cli(env_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("POLLER_ENV_FILE", "")
    for name in json.loads(env_file.read_text()):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main([*args, "--env-file", str(env_file)])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def calls(cli: Cli, *args: str) -> dict[str, Any]:
    status, out, err = cli("status", "--no-reasons", "--json", *args)
    assert status == 0, err
    return json.loads(out)["airtable_calls"]


def test_the_calls_kept_in_ssm_are_summed_over_the_bases_and_forecast(cli, stack, prefix):
    # GIVEN two bases' parameters of this month, as the function keeps them, and one of a
    # month that is over
    ssm = moto_client("ssm", stack.sqs_endpoint)
    month = usage.month_start(usage.now_utc()).strftime("%Y-%m")
    kept = {"limit": 5.0, "probe_interval": 120.0, "next_probe_at": 0.0}
    for base, requests, of in [
        ("appFirstBase00001", 1200, month),
        ("appSecondBase0001", 300, month),
        ("appOldBase0000001", 5000, "2001-01"),
    ]:
        ssm.put_parameter(
            Name=f"{prefix}/{base}",
            Value=json.dumps({**kept, "month": of, "requests": requests}),
            Type="String",
        )
    # WHEN status runs, with a budget
    before = usage.now_utc()
    found = calls(cli, "--budget", "100000")
    after = usage.now_utc()
    status, out, _ = cli("status", "--no-reasons", "--budget", "100000")
    # THEN the calls so far are this month's, from SSM, and the forecast is their rate over
    # the whole month
    assert (found["source"], found["where"], found["so_far"]) == ("ssm", prefix, 1500)
    assert found["by_base"]["appOldBase0000001"] == 0
    assert usage.forecast(1500, after) <= found["forecast"] <= usage.forecast(1500, before)
    assert found["forecast_of_budget"] == pytest.approx(found["forecast"] / 100000, abs=1e-4)
    # AND a person reads the same, with the source it came from and the budget
    assert status == 0 and "1,500 in" in out and "SSM" in out and "100,000" in out


def test_status_reads_the_calls_a_run_kept(cli, stack, prefix):
    # GIVEN a run of the real handler, which keeps its base's pace and calls in SSM
    stack.send_messages(as_bodies([{"Id": f"d-{n}", "DonationAmount": 5.0} for n in range(12)]))
    status, out, err = cli("run", "--no-progress", "--json")
    assert status == 0, err
    summary = json.loads(out)["summary"]
    # WHEN status runs
    found = calls(cli)
    # THEN it found the base's parameter the run wrote, with calls the run made
    assert found["source"] == "ssm" and list(found["by_base"]) == [
        stack.poller_env()["AIRTABLE_BASE_ID"]
    ]
    assert 0 < found["so_far"] <= summary["airtable_requests"]


def test_without_a_prefix_the_calls_come_from_cloudwatch(cli, stack, env_file):
    # GIVEN no PACE_PARAMETER_PREFIX, and the function's AirtableRequests metric for two of
    # this service's bases (and one of another service)
    env = json.loads(env_file.read_text())
    service = f"status-{time.time_ns()}"
    env.pop("PACE_PARAMETER_PREFIX")
    env["POWERTOOLS_SERVICE_NAME"] = service
    env_file.write_text(json.dumps(env))
    cloudwatch = moto_client("cloudwatch", stack.sqs_endpoint)
    for who, base, count in [(service, "appA", 40), (service, "appB", 2), ("else", "appA", 999)]:
        cloudwatch.put_metric_data(
            Namespace="SqsAirtablePoller",
            MetricData=[
                {
                    "MetricName": "AirtableRequests",
                    "Dimensions": [
                        {"Name": "service", "Value": who},
                        {"Name": "Base", "Value": base},
                    ],
                    "Value": count,
                    "Unit": "Count",
                }
            ],
        )
    # WHEN status runs THEN the sum is this service's, and it says where it came from
    found = calls(cli)
    assert (found["source"], found["so_far"]) == ("cloudwatch", 42)
    assert "PACE_PARAMETER_PREFIX" in found["note"]


@pytest.mark.parametrize("budget", ["lots", "0"])
def test_a_budget_that_is_not_a_count_is_a_usage_error(budget, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["status", "--budget", budget])
    assert exited.value.code == 2 and "--budget" in capsys.readouterr().err
