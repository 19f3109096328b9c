"""Capacity learned and kept, and the conditions that must be loud: one process, the real
handler, moto's SQS and SSM servers over real HTTP, and the Airtable emulator."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack import LambdaContext, donation
from devstack.stack import BASE_ID, LocalStack, default_emulator_config, moto_client

from poller.errors import ConfigError, RunFailedError
from poller_ops.samples import SCHEDULED_EVENT

PREFIX = "/sqs-airtable-poller-test/pace"


@pytest.fixture
def world(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=30.0)
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint, emulator_config=config, max_receive_count=3
    ) as local:
        yield local


@pytest.fixture
def ssm(sqs_endpoint: str) -> Any:
    client = moto_client("ssm", sqs_endpoint)
    yield client
    names = [
        p["Name"]
        for p in client.get_parameters_by_path(Path=PREFIX, Recursive=True).get("Parameters", [])
    ]
    for name in names:
        client.delete_parameter(Name=name)


@pytest.fixture
def run(
    world: LocalStack, sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, Any]]:
    """`run(cold=..., timeout_s=..., **env)`: the handler in this process; `cold` starts a
    new container first (its pacers then start from what SSM kept)."""

    def invoke(cold: bool = False, timeout_s: float = 90, **env: str) -> dict[str, Any]:
        overrides = {"AWS_ENDPOINT_URL_SSM": sqs_endpoint, "PACE_PARAMETER_PREFIX": PREFIX, **env}
        for name, value in world.poller_env(
            POWERTOOLS_METRICS_DISABLED="true", **overrides
        ).items():
            monkeypatch.setenv(name, value)
        from poller import handler

        if cold:
            handler.runtime.cache_clear()
        try:
            return handler.lambda_handler(
                SCHEDULED_EVENT, LambdaContext(timeout_ms=int(timeout_s * 1000))
            )
        except RunFailedError as failed:
            return {**failed.summary, "raised": str(failed)}

    return invoke


@pytest.mark.slow
@pytest.mark.timeout(600)  # a hang guard: one real 30 s lockout is waited out
def test_a_learned_pace_is_kept_and_a_new_container_writes_without_a_new_lockout(
    world: LocalStack, ssm: Any, run
) -> None:
    # GIVEN a base that takes 2 requests/s (a workspace slowed past its monthly quota)
    world.emulator.set_capacity(BASE_ID, 2)
    world.send_messages([donation(n) for n in range(60)])
    # WHEN a container meets it: one lockout, then it writes at the learned pace
    first = run(cold=True)
    assert first["written"] == 60 and first["throttled"] >= 1
    kept = json.loads(ssm.get_parameter(Name=f"{PREFIX}/{BASE_ID}")["Parameter"]["Value"])
    # (what it learns is at most what the base takes; on a busy machine requests bunch, and
    # it may learn less, down to the 1 request/s floor)
    assert 1.0 <= kept["limit"] <= 2.0 and kept["requests"] >= 6
    lockouts = world.emulator.stats.lockouts
    # THEN a new container starts from the kept pace: it writes with no new lockout
    world.send_messages([donation(n) for n in range(60, 120)])
    second = run(cold=True)
    assert second["written"] == 60 and second["throttled"] == 0
    assert world.emulator.stats.lockouts == lockouts and second["pacing_rps"] <= 2.0
    assert world.dead_letters() == []


def test_an_unreadable_kept_pace_falls_back_to_the_default_with_one_warning(
    world: LocalStack, ssm: Any, run
) -> None:
    # GIVEN a kept pace that is not JSON
    ssm.put_parameter(Name=f"{PREFIX}/{BASE_ID}", Value="not json", Type="String", Overwrite=True)
    world.send_messages([donation(n) for n in range(5)])
    # (the function's loggers do not propagate once Powertools formats them: listen on it)
    heard: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = heard.append  # type: ignore[method-assign]
    logging.getLogger("poller.paces").addHandler(listener)
    try:
        # WHEN a new container starts
        summary = run(cold=True)
    finally:
        logging.getLogger("poller.paces").removeHandler(listener)
    # THEN it writes at the default pace, having said so once
    assert summary["written"] == 5 and summary["pacing_rps"] == pytest.approx(4.9, abs=0.01)
    assert len([r for r in heard if "kept pace" in r.getMessage()]) == 1


def test_without_a_prefix_nothing_is_kept(world: LocalStack, ssm: Any, run) -> None:
    world.send_messages([donation(1)])
    assert run(cold=True, PACE_PARAMETER_PREFIX="")["written"] == 1
    assert ssm.get_parameters_by_path(Path=PREFIX, Recursive=True)["Parameters"] == []


def test_a_deleted_dead_letter_queue_fails_the_invocation_and_loses_nothing(
    world: LocalStack, run
) -> None:
    # GIVEN poison and a valid donation, and a DLQ that no longer exists
    world.send_messages([donation(1), "not json"])
    world.sqs.delete_queue(QueueUrl=world.dlq_url)
    # WHEN a run meets them
    summary = run(cold=True)
    # THEN the valid one is written, the poison stays in the source queue, and the
    # invocation fails (so that the errors alarm fires)
    assert summary["written"] == 1 and "does not exist" in summary["raised"]
    assert world.counts()["visible"] + world.counts()["in_flight"] == 1


def test_a_timeout_too_short_for_one_write_is_a_configuration_error(world: LocalStack, run) -> None:
    # GIVEN a function whose timeout is within its stop margin (WAIT_TIME_SECONDS 1 +
    # AIRTABLE_TIMEOUT_SECONDS 10 + 2 s)
    world.send_messages([donation(1)])
    # WHEN it runs THEN the run fails at once, naming the timeout, and receives nothing
    with pytest.raises(ConfigError, match="Timeout"):
        run(cold=True, timeout_s=13)
    assert world.counts()["visible"] == 1
