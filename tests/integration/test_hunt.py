"""The world changes while a warm container lives: scenarios of the mirror's routes (fundraisers,
versioned donations with a link, a soft delete) that test_world_changes.py and test_mirror.py do
not cover. One process, the real handler (a warm container; `run(cold=True)` a new one), moto's
SQS and the Airtable emulator over real HTTP.

The rules: a valid message never reaches the DLQ for something that is not its fault; such a
condition holds the queue (or the route), says why, and heals by itself once the world is right;
a warm container ends up doing what a cold one would do."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack.mirror import BASE_ID, FUNDRAISERS, Event, schema
from devstack.stack import TOKEN, LocalStack, default_emulator_config
from harness import (
    EMPTY,
    by_id,
    donation,
    hard_delete,
    mirror_runs,
    on_first,
    receive_counts,
    rows,
    send,
    with_routes,
)
from pyairtable import Api

MAX_RECEIVE_COUNT = 3
BROKEN_RUNS = 4  # more than MAX_RECEIVE_COUNT: a poller that spent receives would lose messages
#: each scenario takes several runs (3 to 15 s): `make test-fast` leaves them out
pytestmark = pytest.mark.slow


@pytest.fixture
def world(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=1.0, bases={BASE_ID: schema()})
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint, emulator_config=config, max_receive_count=MAX_RECEIVE_COUNT
    ) as local:
        yield local


@pytest.fixture
def run(
    world: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., dict[str, Any]]]:
    from poller import handler

    handler.runtime.cache_clear()  # every test starts with a cold container
    yield mirror_runs(world, monkeypatch)
    handler.runtime.cache_clear()


# -- helpers ------------------------------------------------------------------------------


def fundraiser(key: str, name: str) -> Event:
    return Event("FundraiserCreated", {"FundraiserId": key, "Name": name})


def airtable(world: LocalStack) -> Api:
    return Api(TOKEN, endpoint_url=world.airtable_url)


def by_hand(world: LocalStack, action: Callable[[Api], Any]) -> Any:
    """Someone else changes rows in Airtable (through the API, as a script or the app would)."""
    done = action(airtable(world))
    time.sleep(1.1)  # let the base's 1 s window forget this client's requests (speed only)
    return done


def assert_held(summary: dict[str, Any], *words: str) -> None:
    """The run stopped for a condition that is not a message's fault, and said which."""
    assert summary["stopped_because"] == "systemic", summary
    assert summary["dead_lettered"] == 0, summary
    said = json.dumps(summary.get("stopped_routes", {})) + str(summary.get("raised", ""))
    for word in words:
        assert word in said, (word, said)


def is_lookup(request: Any) -> bool:
    return request.method == "POST" and request.path.endswith("/listRecords")


def is_write(request: Any) -> bool:
    return (
        request.method in ("PATCH", "POST")
        and "/meta/" not in request.path
        and not (request.path.endswith("/listRecords"))
    )


def drain(run: Callable[..., dict[str, Any]], world: LocalStack) -> list[dict[str, Any]]:
    summaries = [run()]
    while world.counts()["visible"] and len(summaries) < 5:
        summaries.append(run())
    return summaries


def written_once(world: LocalStack) -> dict[str, dict[str, Any]]:
    """The end state every scenario must reach: the queue empty, the DLQ empty."""
    assert world.dead_letters() == []
    assert world.counts() == EMPTY
    return by_id(world)


# -- the linked table changes -------------------------------------------------------------
def test_a_renamed_linked_table_is_no_failure(world: LocalStack, run) -> None:
    # GIVEN a warm container that wrote fundraiser fr-1 and a donation linking it
    send(world, fundraiser("fr-1", "Spring walk"), donation(1, 1, 10.0))
    run()
    send(world, donation(2, 1, 10.0))
    assert run()["written"] == 1
    # WHEN the linked table is renamed in Airtable (its id stays), and donations arrive that
    # link a known fundraiser and a new one
    world.emulator.rename_table(BASE_ID, "Fundraisers", "Campaigns")
    send(world, donation(3, 1, 30.0), donation(4, 1, 40.0, fundraiser="fr-5"))
    summary = run()
    # THEN the poller writes by id: no failure at all (as for the route's own table)
    assert "raised" not in summary and summary["stopped_routes"] == {}, summary
    linked = {r["Fundraiser Id"]: r["_id"] for r in rows(world, "Campaigns")}
    donations = written_once(world)
    assert donations["d3"]["Fundraiser"] == [linked["fr-1"]]
    assert donations["d4"]["Fundraiser"] == [linked["fr-5"]]


def test_a_renamed_linked_key_field_is_no_failure(world: LocalStack, run) -> None:
    # GIVEN a warm container that wrote fundraiser fr-1 and a donation linking it
    send(world, fundraiser("fr-1", "Spring walk"), donation(1, 1, 10.0))
    run()
    send(world, donation(2, 1, 10.0))
    assert run()["written"] == 1
    # WHEN the linked table's key field is renamed (its id stays)
    world.emulator.rename_field(BASE_ID, "Fundraisers", "Fundraiser Id", "Fundraiser Code")
    send(world, donation(3, 1, 30.0), donation(4, 1, 40.0, fundraiser="fr-5"))
    summary = run()
    # THEN nothing failed: both donations are written, fr-5 got its stub
    assert "raised" not in summary and summary["stopped_routes"] == {}, summary
    linked = {r["Fundraiser Code"]: r["_id"] for r in rows(world, "Fundraisers")}
    donations = written_once(world)
    assert donations["d4"]["Fundraiser"] == [linked["fr-5"]]


def test_a_retyped_linked_key_field_holds_the_queue_and_says_why(world: LocalStack, run) -> None:
    # GIVEN a warm container that wrote a donation linking fr-1
    send(world, fundraiser("fr-1", "Spring walk"), donation(1, 1, 10.0))
    run()
    # WHEN the Fundraisers key field becomes a number field (a mergeable type), and a
    # donation linking a fundraiser the container has not met arrives
    world.emulator.retype_field(BASE_ID, "Fundraisers", "Fundraiser Id", "number")
    send(world, donation(2, 1, 20.0, fundraiser="fr-2"))
    broken = [run() for _ in range(BROKEN_RUNS)]
    # THEN each run is held by a systemic condition that names the field, not a crash
    for summary in broken:
        assert_held(summary, "Fundraiser Id")
    # WHEN the type is restored
    world.emulator.retype_field(BASE_ID, "Fundraisers", "Fundraiser Id", "singleLineText")
    drain(run, world)
    # THEN the donation is written, nothing was dead-lettered
    assert "d2" in written_once(world)


def test_the_link_field_retyped_to_text_holds_the_queue_until_it_links_again(
    world: LocalStack, run
) -> None:
    send(world, fundraiser("fr-1", "Spring walk"), donation(1, 1, 10.0))
    run()
    # WHEN the donations' link field becomes a text field
    world.emulator.retype_field(BASE_ID, "Donations", "Fundraiser", "singleLineText")
    send(world, donation(2, 1, 20.0), donation(3, 1, 30.0, fundraiser="fr-3"))
    broken = [run() for _ in range(BROKEN_RUNS)]
    # THEN every run is held before it receives, naming the field
    for summary in broken:
        assert_held(summary, "Fundraiser")
        assert summary["received"] == 0
    # WHEN it links Fundraisers again
    world.emulator.retype_field(
        BASE_ID, "Donations", "Fundraiser", "multipleRecordLinks", {"linkedTableId": FUNDRAISERS}
    )
    drain(run, world)
    # THEN both are written, linking the rows with their keys
    keys = {r["Fundraiser Id"]: r["_id"] for r in rows(world, "Fundraisers")}
    donations = written_once(world)
    assert donations["d2"]["Fundraiser"] == [keys["fr-1"]]
    assert donations["d3"]["Fundraiser"] == [keys["fr-3"]]


def test_the_link_field_deleted_and_made_again_is_used_by_its_new_id(
    world: LocalStack, run
) -> None:
    send(world, fundraiser("fr-1", "Spring walk"), donation(1, 1, 10.0))
    run()
    # WHEN the link field is deleted, donations arrive, and the field is made again
    world.emulator.delete_field(BASE_ID, "Donations", "Fundraiser")
    send(world, donation(2, 1, 20.0), donation(3, 1, 30.0, fundraiser="fr-3"))
    for summary in [run() for _ in range(BROKEN_RUNS)]:
        assert_held(summary, "Fundraiser")
        assert summary["received"] == 0
    by_hand(
        world,
        lambda api: api.table(BASE_ID, "Donations").create_field(
            "Fundraiser", "multipleRecordLinks", options={"linkedTableId": FUNDRAISERS}
        ),
    )
    drain(run, world)
    keys = {r["Fundraiser Id"]: r["_id"] for r in rows(world, "Fundraisers")}
    donations = written_once(world)
    assert donations["d2"]["Fundraiser"] == [keys["fr-1"]]
    assert donations["d3"]["Fundraiser"] == [keys["fr-3"]]


# -- rows changed by hand -----------------------------------------------------------------
def test_a_stub_whose_key_was_edited_by_hand_is_not_linked_for_its_old_key(
    world: LocalStack, run
) -> None:
    # GIVEN a warm container that made a stub for fr-9 (it remembers the stub's record id)
    send(world, donation(1, 1, 10.0, fundraiser="fr-9"))
    run()
    [stub] = rows(world, "Fundraisers")
    # WHEN the operator corrects the stub's key to fr-10 by hand, and a donation for fr-9
    # arrives in the same container
    by_hand(
        world,
        lambda api: api.table(BASE_ID, "Fundraisers").update(
            stub["_id"], {"Fundraiser Id": "fr-10"}
        ),
    )
    send(world, donation(2, 1, 20.0, fundraiser="fr-9"))
    run()
    # THEN, as a cold container would, d2 links a row whose key is fr-9, never fr-10's row
    keys = {r["Fundraiser Id"]: r["_id"] for r in rows(world, "Fundraisers")}
    donations = written_once(world)
    assert donations["d2"]["Fundraiser"] != [stub["_id"]], "d2 links fr-10's row"
    assert donations["d2"]["Fundraiser"] == [keys.get("fr-9")]
    assert keys["fr-10"] == stub["_id"]


def test_a_hard_delete_never_removes_a_row_whose_key_was_edited_by_hand(
    world: LocalStack, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the hard-delete route, and a warm container that wrote d1 and d2 (it remembers
    # d1's record id)
    with_routes(monkeypatch, hard_delete)
    send(world, donation(1, 1, 10.0), donation(2, 1, 20.0))
    run()
    d1 = by_id(world)["d1"]["_id"]
    # WHEN the operator changes d1's row's Id to d1-refund by hand, and d1's delete arrives
    by_hand(world, lambda api: api.table(BASE_ID, "Donations").update(d1, {"Id": "d1-refund"}))
    send(world, Event("DonationDeleted", {"Id": "d1"}))
    summary = run()
    # THEN, as a cold container would, the delete finds no row of d1 and succeeds: the
    # d1-refund row (not d1's any more) is kept
    assert summary["deleted"] == 1 and summary["dead_lettered"] == 0
    assert sorted(written_once(world)) == ["d1-refund", "d2"]


def test_a_row_deleted_by_hand_on_a_versioned_route_is_written_again_by_a_newer_version(
    world: LocalStack, run
) -> None:
    # GIVEN a warm container that wrote d1 version 1 (it remembers its id and version)
    send(world, donation(1, 1, 10.0))
    run()
    d1 = by_id(world)["d1"]["_id"]
    by_hand(world, lambda api: api.table(BASE_ID, "Donations").delete(d1))
    # WHEN version 2 arrives in the same container
    send(world, donation(1, 2, 20.0))
    summary = run()
    # THEN the row is back with version 2; nothing is blamed
    row = written_once(world)["d1"]
    assert (row["Version"], row["Donation Amount"]) == (2, 20.0) and summary["written"] == 1


def test_a_soft_delete_of_a_row_deleted_by_hand_succeeds(world: LocalStack, run) -> None:
    send(world, donation(1, 1, 10.0))
    run()
    d1 = by_id(world)["d1"]["_id"]
    by_hand(world, lambda api: api.table(BASE_ID, "Donations").delete(d1))
    send(world, Event("DonationDeleted", {"Id": "d1", "Version": 2}))
    summary = run()
    assert summary["dead_lettered"] == 0 and summary["stopped_routes"] == {}
    row = written_once(world)["d1"]
    assert row["Deleted"] is True and row["Version"] == 2


# -- the version field changes ------------------------------------------------------------
def test_a_version_field_deleted_and_made_again_is_judged_alike_warm_and_cold(
    world: LocalStack, run
) -> None:
    # GIVEN d1 and d2 at version 3, written by a warm container (it remembers the versions)
    send(world, donation(1, 3, 30.0), donation(2, 3, 30.0))
    run()
    # WHEN the Version field is deleted (its cells with it) and made again, empty
    world.emulator.delete_field(BASE_ID, "Donations", "Version")
    send(world, donation(1, 2, 20.0))
    assert_held(run(), "Version")
    by_hand(
        world,
        lambda api: api.table(BASE_ID, "Donations").create_field(
            "Version", "number", options={"precision": 0}
        ),
    )
    # AND version 2 of d1 is run by the warm container, version 2 of d2 by a cold one
    warm = run()
    send(world, donation(2, 2, 20.0))
    cold = run(cold=True)
    # THEN both containers judge version 2 against the same stored state
    assert (warm["stale"], warm["written"]) == (cold["stale"], cold["written"]), (warm, cold)


def test_a_version_field_retyped_and_restored_is_judged_alike_warm_and_cold(
    world: LocalStack, run
) -> None:
    send(world, donation(1, 3, 30.0), donation(2, 3, 30.0))
    run()
    # WHEN Version becomes a text field (its cells cleared), then a number field again
    world.emulator.retype_field(BASE_ID, "Donations", "Version", "singleLineText")
    send(world, donation(1, 2, 20.0))
    assert_held(run(), "Version")
    world.emulator.retype_field(BASE_ID, "Donations", "Version", "number", {"precision": 0})
    warm = run()
    send(world, donation(2, 2, 20.0))
    cold = run(cold=True)
    assert (warm["stale"], warm["written"]) == (cold["stale"], cold["written"]), (warm, cold)


def test_the_deleted_checkbox_deleted_then_made_again_holds_deletes_until_it_is_back(
    world: LocalStack, run
) -> None:
    send(world, donation(1, 1, 10.0))
    run()
    world.emulator.delete_field(BASE_ID, "Donations", "Deleted")
    send(world, Event("DonationDeleted", {"Id": "d1", "Version": 2}), donation(2, 1, 20.0))
    for summary in [run() for _ in range(BROKEN_RUNS)]:
        assert_held(summary, "Deleted")
        assert summary["received"] == 0
    by_hand(
        world,
        lambda api: api.table(BASE_ID, "Donations").create_field(
            "Deleted", "checkbox", options={"icon": "check", "color": "greenBright"}
        ),
    )
    drain(run, world)
    donations = written_once(world)
    assert donations["d1"]["Deleted"] is True and "d2" in donations


def test_the_deleted_checkbox_retyped_holds_deletes_until_it_is_back(
    world: LocalStack, run
) -> None:
    send(world, donation(1, 1, 10.0))
    run()
    world.emulator.retype_field(BASE_ID, "Donations", "Deleted", "singleLineText")
    send(world, Event("DonationDeleted", {"Id": "d1", "Version": 2}))
    for summary in [run() for _ in range(BROKEN_RUNS)]:
        assert_held(summary, "Deleted")
    world.emulator.retype_field(BASE_ID, "Donations", "Deleted", "checkbox")
    drain(run, world)
    assert written_once(world)["d1"]["Deleted"] is True


# -- access and account conditions --------------------------------------------------------
def test_write_permission_dropped_to_read_and_back_between_warm_runs(
    world: LocalStack, run
) -> None:
    send(world, fundraiser("fr-1", "Spring walk"), donation(1, 1, 10.0))
    run()
    world.emulator.set_permission(TOKEN, BASE_ID, "read")
    send(
        world,
        donation(2, 1, 20.0, fundraiser="fr-2"),
        Event("DonationDeleted", {"Id": "d1", "Version": 2}),
    )
    for summary in [run() for _ in range(BROKEN_RUNS)]:
        assert_held(summary, "read")
        assert summary["received"] == 0
    world.emulator.set_permission(TOKEN, BASE_ID, "edit")
    drain(run, world)
    donations = written_once(world)
    assert donations["d1"]["Deleted"] is True and donations["d2"]["Fundraiser"]


def test_write_permission_lost_at_the_stub_write_costs_no_message(world: LocalStack, run) -> None:
    # GIVEN a warm container; the permission drops to read when its stub write arrives
    send(world, donation(1, 1, 10.0))
    run()
    on_first(world, is_write, lambda: world.emulator.set_permission(TOKEN, BASE_ID, "read"))
    send(world, donation(2, 1, 20.0, fundraiser="fr-2"))
    first = run()
    assert_held(first, "permission")
    for summary in [run() for _ in range(BROKEN_RUNS)]:
        assert_held(summary, "read")
    # WHEN it is back
    world.emulator.set_permission(TOKEN, BASE_ID, "edit")
    drain(run, world)
    assert "d2" in written_once(world)


def test_the_record_cap_reached_while_a_link_stub_must_be_made(world: LocalStack, run) -> None:
    # GIVEN a warm container that wrote d1 (and fr-1's stub): two records; the base full
    send(world, donation(1, 1, 10.0))
    run()
    world.emulator.set_record_cap(BASE_ID, 2)
    # WHEN an update of d1 (no new row of its own) links fr-2, which needs a stub
    send(world, donation(1, 2, 20.0, fundraiser="fr-2"))
    broken = [run() for _ in range(BROKEN_RUNS + 1)]
    # THEN each run names the full base; no message is dead, none reached its last life
    for summary in broken:
        assert_held(summary, "record limit")
    assert max(receive_counts(world)) <= MAX_RECEIVE_COUNT
    # WHEN the cap is lifted, the update lands linking fr-2's stub
    world.emulator.set_record_cap(BASE_ID, None)
    drain(run, world)
    keys = {r["Fundraiser Id"]: r["_id"] for r in rows(world, "Fundraisers")}
    row = written_once(world)["d1"]
    assert row["Version"] == 2 and row["Fundraiser"] == [keys["fr-2"]]


def test_an_outage_during_a_lookup_holds_the_route_and_heals(world: LocalStack, run) -> None:
    send(world, donation(1, 1, 10.0))
    run()
    # WHEN Airtable's data path goes down as the lookup arrives, for a few runs
    on_first(world, is_lookup, lambda: world.emulator.set_outage(BASE_ID, True, scope="data"))
    send(world, donation(2, 1, 20.0, fundraiser="fr-2"))
    for summary in [run() for _ in range(BROKEN_RUNS)]:
        assert_held(summary, "503")
    world.emulator.set_outage(BASE_ID, False)
    drain(run, world)
    assert "d2" in written_once(world)


def test_a_lockout_during_a_lookup_is_waited_out_in_the_same_run(world: LocalStack, run) -> None:
    send(world, donation(1, 1, 10.0))
    run()
    on_first(world, is_lookup, lambda: world.emulator.trigger_lockout(BASE_ID))
    send(world, donation(2, 1, 20.0, fundraiser="fr-2"))
    summary = run()
    assert summary["written"] == 1 and summary["stopped_routes"] == {}
    assert "d2" in written_once(world)
