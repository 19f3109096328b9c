"""Ordinary events in the life of an Airtable account never put a valid donation in the DLQ.

One process, the real handler called again and again (a warm Lambda container), moto's SQS
server and the Airtable emulator over real HTTP. The queue's redrive policy has
maxReceiveCount 3. Each condition (the monthly quota used up, write access or base access
lost, the base full, an outage) lasts 5 runs, more than maxReceiveCount, then is lifted. A
poller that received while it could not write would have moved every donation to the DLQ
through the redrive policy, without a reason. The promise: each blocked run's summary and
log line name the cause, no receive count is spent without a write attempt, and in the end
every donation landed once and the DLQ is empty.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack import LambdaContext, donation
from devstack.stack import BASE_ID, TOKEN, LocalStack, default_emulator_config
from harness import receive_counts

from poller.errors import RunFailedError
from poller_ops.samples import SCHEDULED_EVENT

MAX_RECEIVE_COUNT = 3
BLOCKED_RUNS = 5


@pytest.fixture
def world(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=1.0)
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint, emulator_config=config, max_receive_count=MAX_RECEIVE_COUNT
    ) as local:
        yield local


@pytest.fixture
def invoke(world: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[[], dict[str, Any]]:
    """The real handler in this process, with the systemic-failure lines it logged through
    its own JSON formatter (the container stays warm between calls)."""
    for name, value in world.poller_env(POWERTOOLS_METRICS_DISABLED="true").items():
        monkeypatch.setenv(name, value)

    def call() -> dict[str, Any]:
        from poller.handler import lambda_handler, logger

        stream = io.StringIO()
        capture = logging.StreamHandler(stream)
        capture.setFormatter(logger.registered_formatter)
        logger.addHandler(capture)
        try:
            summary = lambda_handler(SCHEDULED_EVENT, LambdaContext(timeout_ms=60_000))
        except RunFailedError as failed:
            summary = {**failed.summary, "raised": str(failed)}
        finally:
            logger.removeHandler(capture)
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        return {**summary, "systemic": [line for line in lines if "systemic_cause" in line]}

    return call


def landed(world: LocalStack, count: int) -> None:
    """Every donation is one row, the DLQ is empty and the queue drained."""
    ids = [r["fields"]["Id"] for r in world.rows()]
    assert sorted(ids) == sorted(donation(n)["Id"] for n in range(count)) and len(set(ids)) == len(
        ids
    )
    assert world.dead_letters() == []
    assert world.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def hold(world: LocalStack, invoke: Callable[[], dict[str, Any]], cause: str, fix: str) -> None:
    """BLOCKED_RUNS runs while the condition lasts: each one names it and spends no receive."""
    for _ in range(BLOCKED_RUNS):
        summary = invoke()
        assert summary["stopped_because"] == "systemic", summary
        assert [line["systemic_cause"] for line in summary["systemic"]] == [cause]
        assert fix in summary["systemic"][0]["fix"]
        assert summary["received"] == 0
        assert max(receive_counts(world), default=0) <= 1


def drain(invoke: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
    summaries = [invoke()]
    while summaries[-1]["received"] and len(summaries) < 6:
        summaries.append(invoke())
    return summaries


def test_the_monthly_quota_used_up_holds_the_queue_until_the_block_lifts(
    world: LocalStack, invoke
) -> None:
    # GIVEN a warm container that wrote the first donations
    world.send_messages([donation(n) for n in range(10)])
    assert invoke()["written"] == 10
    # WHEN the workspace uses up its monthly API calls (every data request: 429
    # PUBLIC_API_BILLING_LIMIT_EXCEEDED, the meta endpoints still answer) for 5 runs
    world.emulator.set_billing_block(BASE_ID, True)
    world.send_messages([donation(n) for n in range(10, 30)])
    hold(world, invoke, "billing", "upgrade the plan or wait for the month to turn")
    world.emulator.set_billing_block(BASE_ID, False)
    # THEN writing resumes by itself, and nothing went to the DLQ
    drain(invoke)
    landed(world, 30)


def test_write_access_lost_holds_the_queue_though_the_schema_still_reads(
    world: LocalStack, invoke
) -> None:
    world.send_messages([donation(n) for n in range(10)])
    assert invoke()["written"] == 10
    # WHEN the token keeps schema.bases:read but may only read the base
    world.emulator.set_permission(TOKEN, BASE_ID, "read")
    world.send_messages([donation(n) for n in range(10, 30)])
    hold(world, invoke, "permission", "editor access")
    world.emulator.set_permission(TOKEN, BASE_ID, "create")
    drain(invoke)
    landed(world, 30)


def test_a_base_moved_out_of_the_tokens_reach_holds_the_queue(world: LocalStack, invoke) -> None:
    world.send_messages([donation(n) for n in range(10)])
    assert invoke()["written"] == 10
    # WHEN the base is out of the token's reach (403 on data and on meta)
    world.emulator.set_permission(TOKEN, BASE_ID, "none")
    world.send_messages([donation(n) for n in range(10, 30)])
    hold(world, invoke, "base_access", "give the token access to the base")
    world.emulator.set_permission(TOKEN, BASE_ID, "create")
    drain(invoke)
    landed(world, 30)


def test_an_outage_longer_than_max_receive_count_runs_dead_letters_nothing(
    world: LocalStack, invoke
) -> None:
    world.send_messages([donation(n) for n in range(10)])
    assert invoke()["written"] == 10
    # WHEN Airtable answers 503 with an HTML page to everything for 5 runs
    world.emulator.set_outage("*", True)
    world.send_messages([donation(n) for n in range(10, 30)])
    for _ in range(BLOCKED_RUNS):
        summary = invoke()
        assert summary["received"] == 0 and summary["systemic"][0]["systemic_cause"] == "outage"
        assert "<" not in summary["systemic"][0]["detail"]  # the page's title, never markup
    world.emulator.set_outage("*", False)
    drain(invoke)
    landed(world, 30)


def test_a_full_base_is_tested_one_batch_per_run_and_no_valid_message_is_lost(
    world: LocalStack, invoke
) -> None:
    world.send_messages([donation(n) for n in range(10)])
    assert invoke()["written"] == 10
    # WHEN the base reaches its plan's record cap: new records are refused with a 422
    world.emulator.set_record_cap(BASE_ID, 10)
    world.send_messages([donation(n) for n in range(10, 30)])
    summaries = [invoke() for _ in range(BLOCKED_RUNS + 1)]
    # THEN each run names the cause, receives at most one batch to test the base, and no
    # message reaches its last receive without a fresh copy taking its place
    for summary in summaries:
        assert [line["systemic_cause"] for line in summary["systemic"]] == ["base_full"]
        assert summary["received"] <= 10 and summary["dead_lettered"] == 0
    assert max(receive_counts(world)) <= MAX_RECEIVE_COUNT
    # WHEN the cap is lifted (records deleted, or the plan upgraded)
    world.emulator.set_record_cap(BASE_ID, None)
    drain(invoke)
    # THEN every donation landed once, and nothing is in the DLQ
    landed(world, 30)
