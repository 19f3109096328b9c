"""The world changes under a warm container, and no message pays for it.

One process, the real handler called again and again (a warm Lambda container), moto's SQS
(and Secrets Manager) over real HTTP, the Airtable emulator through the real pyairtable. The
source queue's redrive policy has maxReceiveCount 3, so any run that receives while the world is
broken brings every valid message closer to the DLQ: after 6 broken runs a poller that kept
receiving would have lost them all there, without a reason.

Each scenario: write some rows, break the world (rename, retype, delete a field, rotate the
token), send more, run 6 times, fix the world, run again. The promise: every valid message
is a row exactly once, the DLQ holds nothing but real poison, the queue ends empty, and no
token appears in any output. Every run checks the token, the base and the schema before it
receives, so a break that the check can see costs no receive at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from devstack import donation
from devstack.stack import BASE_ID, TABLE, TOKEN, LocalStack, default_emulator_config
from harness import EMPTY, LOCKOUT_SECONDS, Container, receive_counts, rows_by_id
from pyairtable import Api

BROKEN_RUNS = 6
MAX_RECEIVE_COUNT = 3
POISON = ["not json at all", '{"DonationAmount": 1.0}']  # no Id: MERGE_ON=Id needs one


@pytest.fixture
def world(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=LOCKOUT_SECONDS)
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint, emulator_config=config, max_receive_count=MAX_RECEIVE_COUNT
    ) as local:
        yield local


@pytest.fixture
def container(world: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Container:
    return Container(world, monkeypatch)


def donations(first: int, count: int) -> list[dict[str, Any]]:
    return [donation(n) for n in range(first, first + count)]


def causes(summary: dict[str, Any], container: Container) -> list[str]:
    """The systemic causes the handler logged for the run that returned `summary`."""
    lines = container.logged("systemic failure")
    return [line["systemic_cause"] for line in lines[-len(summary["stopped_routes"]) :]]


def break_for_six_runs(container: Container) -> list[dict[str, Any]]:
    return [container.run() for _ in range(BROKEN_RUNS)]


def held_without_a_receive(world: LocalStack, broken: list[dict[str, Any]]) -> None:
    """Every broken run stopped before its first receive: no message was received while the
    world was broken (the poison was never received either)."""
    assert all(s["stopped_because"] == "systemic" and "raised" in s for s in broken)
    assert [s["received"] for s in broken] == [0] * BROKEN_RUNS
    assert max(receive_counts(world)) == 0


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
    assert world.counts() == EMPTY


def test_a_renamed_field_is_no_failure_at_all(world: LocalStack, container: Container) -> None:
    # GIVEN a warm container that has written the first donations
    world.send_messages(donations(0, 10))
    assert container()["written"] == 10
    # WHEN a mapped field and the table are renamed in Airtable, and more donations arrive
    world.emulator.rename_field(BASE_ID, TABLE, "Donor Display Name", "Donor Name")
    world.emulator.rename_table(BASE_ID, TABLE, "Gifts")
    later = donations(10, 30)
    world.send_messages([*later[:15], *POISON, *later[15:]])
    summaries = break_for_six_runs(container)
    # THEN the poller writes by field and table id: nothing failed, every row landed
    assert all("raised" not in s for s in summaries)
    rows = world.emulator.records(BASE_ID, "Gifts")
    assert len(rows) == 40
    assert {r["fields"]["Donor Name"] for r in rows} >= {d["DonorDisplayName"] for d in later}
    assert sorted(body for body, _ in world.dead_letters()) == sorted(POISON)
    assert world.counts() == EMPTY


def test_a_retyped_field_holds_the_queue_until_it_is_fixed(
    world: LocalStack, container: Container
) -> None:
    # GIVEN a warm container that has written the first donations (plain entries: the
    # mapping sends values as they come, so the check cannot see a type that changed)
    first = donations(0, 10)
    world.send_messages(first)
    assert container()["written"] == 10
    # WHEN "Donation Amount" becomes a checkbox and more donations (and poison) arrive
    world.emulator.retype_field(BASE_ID, TABLE, "Donation Amount", "checkbox")
    later = donations(10, 30)
    world.send_messages([*later, *POISON])
    broken = break_for_six_runs(container)
    # THEN the first broken run finds every record of its first batch refused alike on
    # that field, checks the table again, and releases what it holds (until a write
    # succeeds in a run, one batch at a time is received)
    assert broken[0]["stopped_because"] == "systemic"
    assert "is now checkbox" in broken[0]["raised"]
    assert causes(broken[0], container) == ["type"]
    assert 0 < broken[0]["received"] <= 10
    # AND no later run receives anything: the check before each run remembers the change
    assert [s["received"] for s in broken[1:]] == [0] * (BROKEN_RUNS - 1)
    assert all(s["stopped_because"] == "systemic" for s in broken)
    assert max(receive_counts(world)) <= 1
    # WHEN the field's type is restored
    world.emulator.retype_field(
        BASE_ID, TABLE, "Donation Amount", "currency", {"precision": 2, "symbol": "$"}
    )
    fixed = container.run()
    # THEN every valid donation is a row exactly once and only real poison is dead
    assert fixed["stopped_because"] == "empty", fixed
    assert_promise_kept(world, first + later, later)


def test_a_deleted_field_holds_the_queue_until_it_is_back(
    world: LocalStack, container: Container
) -> None:
    # GIVEN a warm container that has written the first donations
    first = donations(0, 10)
    world.send_messages(first)
    assert container()["written"] == 10
    # WHEN a mapped field is deleted
    world.emulator.delete_field(BASE_ID, TABLE, "Donor Display Name")
    later = donations(10, 20)
    world.send_messages([*later, *POISON])
    broken = break_for_six_runs(container)
    # THEN every run names the missing field before it receives anything
    held_without_a_receive(world, broken)
    assert causes(broken[0], container) == ["field"]
    assert '"Donor Display Name"' in broken[0]["raised"]
    # WHEN it is created again (a new field id, the old name)
    airtable = Api(TOKEN, endpoint_url=world.airtable_url)
    airtable.table(BASE_ID, TABLE).create_field("Donor Display Name", "singleLineText")
    assert container()["stopped_because"] == "empty"
    # THEN nothing was lost
    assert_promise_kept(world, first + later, later)


def test_a_rotated_token_is_read_again_from_the_secret(
    world: LocalStack, container: Container, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a warm container reading its token from a Secrets Manager secret
    old, new = "patOldToken000001.aaaa", "patNewToken000002.bbbb"
    world.emulator.rotate_token(TOKEN, old)
    arn = world.create_token_secret(old)
    container.set(AIRTABLE_TOKEN=None, AIRTABLE_TOKEN_SECRET_ARN=arn)
    first = donations(0, 10)
    world.send_messages(first)
    assert container()["written"] == 10
    # WHEN Airtable stops accepting the token before the secret holds the new one
    world.emulator.rotate_token(old, new)
    later = donations(10, 20)
    world.send_messages([*later, *POISON])
    broken = break_for_six_runs(container)
    # THEN every run re-reads the secret, meets the refusal before it receives, and says so
    held_without_a_receive(world, broken)
    assert causes(broken[0], container) == ["token"]
    # WHEN the new token is put in the secret, the next run reads it and drains
    world.put_token(arn, new)
    assert container()["stopped_because"] == "empty"
    assert_promise_kept(world, first + later, later)
    # AND a rotation done in the right order (the secret first) is picked up by the next run
    newer = "patNewerToken0003.cccc"
    world.put_token(arn, newer)
    world.emulator.rotate_token(new, newer)
    world.send_messages(donations(30, 10))
    healed = container()
    assert (healed["stopped_because"], healed["written"]) == ("empty", 10)
    # AND a rotation after the check, before the first write, heals inside that run: the
    # write meets a 401, the secret is read again, and the request is sent again
    newest = "patNewestToken004.dddd"
    rotate_at_the_first_write(world, arn, newer, newest)
    world.send_messages(donations(40, 10))
    mid_run = container()
    assert (mid_run["stopped_because"], mid_run["written"]) == ("empty", 10)
    assert world.emulator.stats.by_status.get(401, 0) >= 1
    assert len(rows_by_id(world)) == 50
    # AND no token appears in any byte of output
    out, err = capfd.readouterr()
    lines = "".join(str(line) for line in container.lines)
    for token in (old, new, newer, newest):
        assert token not in out + err + lines


def rotate_at_the_first_write(world: LocalStack, arn: str, old: str, new: str) -> None:
    """When the next record write arrives: put `new` in the secret, then make Airtable refuse
    `old` (that write included)."""
    emulator = world.emulator
    inner = emulator.handle

    def handle(request: Any) -> Any:
        if request.method in ("PATCH", "POST") and "/meta/" not in request.path:
            emulator.handle = inner
            world.put_token(arn, new)
            emulator.rotate_token(old, new)
        return inner(request)

    emulator.handle = handle


def test_an_empty_secret_is_not_configured_yet(world: LocalStack, container: Container) -> None:
    # GIVEN a fresh deploy: the stack's secret exists but holds no value yet
    arn = str(world.secrets.create_secret(Name="fresh-deploy-airtable-token")["ARN"])
    container.set(AIRTABLE_TOKEN=None, AIRTABLE_TOKEN_SECRET_ARN=arn)
    valid = donations(0, 10)
    world.send_messages(valid)
    # WHEN the schedule runs before the token is put in
    waiting = [container.run() for _ in range(3)]
    # THEN each run succeeds (no failed invocation, no alarm), says why, and touches nothing
    assert all(s["stopped_because"] == "not_configured" and "raised" not in s for s in waiting)
    assert "put-secret-value" in str(waiting[0]["error"])
    assert world.counts() == {**EMPTY, "visible": 10} and world.rows() == []
    assert receive_counts(world) == [0] * 10
    # WHEN an empty string is put in, it is still not configured
    world.put_token(arn, " ")
    assert container()["stopped_because"] == "not_configured"
    # WHEN the token is put in, the next run drains the queue
    world.put_token(arn, TOKEN)
    assert container()["stopped_because"] == "empty"
    assert sorted(rows_by_id(world)) == sorted(d["Id"] for d in valid)
