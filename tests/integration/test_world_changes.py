"""The world changes under a warm container, and no message pays for it.

One process, the real handler called again and again (a warm Lambda container), moto's SQS
(and Secrets Manager) over real HTTP, the Airtable emulator through the real pyairtable. The
source queue's redrive policy has maxReceiveCount 3, so any run that receives while the world is
broken brings every valid message closer to the DLQ: after 6 broken runs a poller that kept
receiving would have lost them all there, without a reason.

Each scenario: write some rows, break the world (rename, retype, rotate the token), send more,
run 6 times, fix the world, run again. The promise: every valid message is a row exactly once,
the DLQ holds nothing but real poison, the queue ends empty, and no token appears in any output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack import LambdaContext, donation
from devstack.stack import BASE_ID, TABLE, TOKEN, LocalStack, default_emulator_config
from pyairtable import Api

from poller.errors import RunFailedError
from poller_ops.samples import SCHEDULED_EVENT

BROKEN_RUNS = 6
MAX_RECEIVE_COUNT = 3
POISON = ["not json at all", '{"DonationAmount": 1.0}']  # no Id: MERGE_ON=Id needs one


@pytest.fixture
def world(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=1.0)
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint, emulator_config=config, max_receive_count=MAX_RECEIVE_COUNT
    ) as local:
        yield local


Run = Callable[[], dict[str, Any]]


@pytest.fixture
def run(world: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """`run(**env)` sets the poller's environment once and returns a function that invokes the
    real handler in this process: the container stays warm between calls. A run that stops on
    an error returns its summary too (from `RunFailedError`)."""

    def configure(**env: str) -> Run:
        for name, value in world.poller_env(POWERTOOLS_METRICS_DISABLED="true", **env).items():
            monkeypatch.setenv(name, value)
        for name, value in env.items():
            if value == "":
                monkeypatch.delenv(name, raising=False)

        def invoke() -> dict[str, Any]:
            from poller.handler import lambda_handler

            try:
                return lambda_handler(SCHEDULED_EVENT, LambdaContext(timeout_ms=60_000))
            except RunFailedError as failed:
                return {**failed.summary, "raised": str(failed)}

        return invoke

    return configure


def donations(first: int, count: int) -> list[dict[str, Any]]:
    return [donation(n) for n in range(first, first + count)]


def rows_by_id(world: LocalStack) -> dict[str, dict[str, Any]]:
    rows = world.rows()
    by_id = {r["fields"]["Id"]: r["fields"] for r in rows}
    assert len(by_id) == len(rows), "a donation was written twice"
    return by_id


def break_for_six_runs(invoke: Run) -> list[dict[str, Any]]:
    return [invoke() for _ in range(BROKEN_RUNS)]


def assert_promise_kept(
    world: LocalStack, valid: list[dict[str, Any]], written_after: list[dict[str, Any]]
) -> None:
    """Every valid donation is a row exactly once (values checked for those written after
    the world was fixed: the emulator clears a retyped field's cells, as its README says)."""
    by_id = rows_by_id(world)
    assert sorted(by_id) == sorted(d["Id"] for d in valid)
    for body in written_after:
        assert by_id[body["Id"]]["Donation Amount"] == body["DonationAmount"]
    assert sorted(body for body, _ in world.dead_letters()) == sorted(POISON)
    assert world.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_renamed_field_is_no_failure_at_all(world: LocalStack, run) -> None:
    # GIVEN a warm container that has written the first donations
    invoke = run()
    first = donations(0, 10)
    world.send_messages(first)
    assert invoke()["written"] == 10
    # WHEN a mapped field and the table are renamed in Airtable, and more donations arrive
    world.emulator.rename_field(BASE_ID, TABLE, "Donor Display Name", "Donor Name")
    world.emulator.rename_table(BASE_ID, TABLE, "Gifts")
    later = donations(10, 30)
    world.send_messages([*later[:15], *POISON, *later[15:]])
    summaries = break_for_six_runs(invoke)
    # THEN the poller writes by field and table id: nothing failed, every row landed
    assert all("raised" not in s for s in summaries)
    rows = world.emulator.records(BASE_ID, "Gifts")
    assert len(rows) == 40
    assert {r["fields"]["Donor Name"] for r in rows} >= {d["DonorDisplayName"] for d in later}
    assert sorted(body for body, _ in world.dead_letters()) == sorted(POISON)
    assert world.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_retyped_field_holds_the_queue_until_it_is_fixed(world: LocalStack, run) -> None:
    # GIVEN a warm container that has written the first donations
    invoke = run()
    first = donations(0, 10)
    world.send_messages(first)
    assert invoke()["written"] == 10
    # WHEN "Donation Amount" becomes a checkbox and more donations (and poison) arrive
    world.emulator.retype_field(BASE_ID, TABLE, "Donation Amount", "checkbox")
    later = donations(10, 30)
    world.send_messages([*later, *POISON])
    broken = break_for_six_runs(invoke)
    # THEN the first broken run releases what it holds, and no later run receives anything
    assert broken[0]["stopped_because"] == "systemic"
    assert "is now checkbox" in broken[0]["raised"]
    assert [s["received"] for s in broken[1:]] == [0] * (BROKEN_RUNS - 1)
    assert all(s["stopped_because"] == "systemic" for s in broken)
    assert all(s["dead_lettered"] == 0 for s in broken[1:])
    # WHEN the field's type is restored
    world.emulator.retype_field(
        BASE_ID, TABLE, "Donation Amount", "currency", {"precision": 2, "symbol": "$"}
    )
    fixed = invoke()
    # THEN every valid donation is a row exactly once and only real poison is dead
    assert fixed["stopped_because"] == "empty", fixed
    assert_promise_kept(world, first + later, later)


def test_a_deleted_field_holds_the_queue_until_it_is_back(world: LocalStack, run) -> None:
    # GIVEN a warm container that has written the first donations
    invoke = run()
    first = donations(0, 10)
    world.send_messages(first)
    assert invoke()["written"] == 10
    # WHEN a mapped field is deleted
    world.emulator.delete_field(BASE_ID, TABLE, "Donor Display Name")
    later = donations(10, 20)
    world.send_messages([*later, *POISON])
    broken = break_for_six_runs(invoke)
    assert all(s["stopped_because"] == "systemic" for s in broken)
    assert [s["received"] for s in broken[1:]] == [0] * (BROKEN_RUNS - 1)
    # WHEN it is created again (a new field id, the old name)
    airtable = Api(TOKEN, endpoint_url=world.airtable_url)
    airtable.table(BASE_ID, TABLE).create_field("Donor Display Name", "singleLineText")
    assert invoke()["stopped_because"] == "empty"
    # THEN nothing was lost
    assert_promise_kept(world, first + later, later)


def test_a_rotated_token_is_read_again_from_the_secret(
    world: LocalStack, run, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a warm container reading its token from a Secrets Manager secret
    old, new = "patOldToken000001.aaaa", "patNewToken000002.bbbb"
    world.emulator.rotate_token(TOKEN, old)
    arn = world.create_token_secret(old)
    invoke = run(AIRTABLE_TOKEN="", AIRTABLE_TOKEN_SECRET_ARN=arn)
    first = donations(0, 10)
    world.send_messages(first)
    assert invoke()["written"] == 10
    # WHEN Airtable stops accepting the token before the secret holds the new one
    world.emulator.rotate_token(old, new)
    later = donations(10, 20)
    world.send_messages([*later, *POISON])
    broken = break_for_six_runs(invoke)
    # THEN the runs stop on auth, and after the first one nothing is received
    assert all(s["stopped_because"] == "systemic" for s in broken)
    assert [s["received"] for s in broken[1:]] == [0] * (BROKEN_RUNS - 1)
    # WHEN the new token is put in the secret, the next run re-reads it and drains
    world.put_token(arn, new)
    assert invoke()["stopped_because"] == "empty"
    assert_promise_kept(world, first + later, later)
    # AND a rotation done in the right order heals inside one run (a 401, a forced re-read)
    newer = "patNewerToken0003.cccc"
    world.put_token(arn, newer)
    world.emulator.rotate_token(new, newer)
    last = donations(30, 10)
    world.send_messages(last)
    healed = invoke()
    assert (healed["stopped_because"], healed["written"]) == ("empty", 10)
    # AND no token appears in any byte of output
    out, err = capfd.readouterr()
    for token in (old, new, newer):
        assert token not in out + err


def test_an_empty_secret_is_not_configured_yet(world: LocalStack, run) -> None:
    # GIVEN a fresh deploy: the stack's secret exists but holds no value yet
    arn = str(world.secrets.create_secret(Name="fresh-deploy-airtable-token")["ARN"])
    invoke = run(AIRTABLE_TOKEN="", AIRTABLE_TOKEN_SECRET_ARN=arn)
    valid = donations(0, 10)
    world.send_messages(valid)
    # WHEN the schedule runs before the token is put in
    waiting = [invoke() for _ in range(3)]
    # THEN each run succeeds (no failed invocation, no alarm), says why, and touches nothing
    assert all(s["stopped_because"] == "not_configured" and "raised" not in s for s in waiting)
    assert "put-secret-value" in str(waiting[0]["error"])
    assert world.counts()["visible"] == 10 and world.rows() == []
    # WHEN an empty string is put in, it is still not configured
    world.put_token(arn, " ")
    assert invoke()["stopped_because"] == "not_configured"
    # WHEN the token is put in, the next run drains the queue
    world.put_token(arn, TOKEN)
    assert invoke()["stopped_because"] == "empty"
    assert sorted(rows_by_id(world)) == sorted(d["Id"] for d in valid)
