"""The faithful mirror over real HTTP: the routes contract's three routes (fundraisers,
versioned donations with a link, a soft delete) into two linked tables of the emulator,
through the real handler in one process (a warm container), with moto's SQS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack.mirror import BASE_ID, FUNDRAISERS, Event, schema, stream
from devstack.stack import TOKEN, LocalStack, default_emulator_config
from harness import (
    by_id,
    dead_letter_missing_links,
    donation,
    failing_once,
    hard_delete,
    mirror_runs,
    on_first,
    rows,
    send,
    with_routes,
)
from pyairtable import Api

from poller import pacing
from poller.airtable import AirtableTable, make_api


@pytest.fixture
def world(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=1.0, bases={BASE_ID: schema()})
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint, emulator_config=config, max_receive_count=5
    ) as local:
        yield local


@pytest.fixture
def run(world: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    return mirror_runs(world, monkeypatch)


def test_an_older_version_never_overwrites_a_newer_one_within_a_run(world: LocalStack, run) -> None:
    # GIVEN versions 1, 3 and 2 of one donation, in that order
    send(world, donation(1, 1, 10.0), donation(1, 3, 30.0), donation(1, 2, 20.0))
    # WHEN one run drains them
    summary = run()
    # THEN the row holds version 3; the two others are stale and deleted from the queue
    assert by_id(world)["d1"]["Donation Amount"] == 30.0 and by_id(world)["d1"]["Version"] == 3
    assert summary["stale"] == 2 and world.counts()["visible"] == 0


def test_an_older_version_is_stale_across_runs_and_after_a_cold_start(
    world: LocalStack, run
) -> None:
    # GIVEN version 3 written by an earlier run
    send(world, donation(1, 3, 30.0))
    assert run()["written"] == 1
    # WHEN version 2 arrives late, in the same container and then in a new one
    send(world, donation(1, 2, 20.0))
    warm = run()
    send(world, donation(1, 2, 21.0))
    cold = run(cold=True)
    # THEN neither overwrote the row: the new container read the stored version
    assert warm["stale"] == 1 and cold["stale"] == 1
    assert by_id(world)["d1"]["Donation Amount"] == 30.0
    # AND a newer version still goes through
    send(world, donation(1, 4, 40.0))
    run(cold=True)
    assert by_id(world)["d1"]["Donation Amount"] == 40.0


def test_a_message_without_its_version_is_poison(world: LocalStack, run) -> None:
    send(
        world, Event("DonationCreated", {"Id": "d1", "DonationAmount": 1.0, "FundraiserId": "fr-1"})
    )
    summary = run()
    [(_body, attributes)] = world.dead_letters()
    assert summary["dead_lettered"] == 1 and "Version" in attributes["poller.reason"]


def test_a_link_points_at_the_row_with_that_key(world: LocalStack, run) -> None:
    # GIVEN a fundraiser already in the table
    send(world, Event("FundraiserCreated", {"FundraiserId": "fr-1", "Name": "Spring walk"}))
    run()
    [fundraiser] = rows(world, "Fundraisers")
    # WHEN a donation links it (in a new container, which must look it up)
    send(world, donation(1, 1, 10.0))
    run(cold=True)
    # THEN the link holds that row's record id
    assert by_id(world)["d1"]["Fundraiser"] == [fundraiser["_id"]]
    assert len(rows(world, "Fundraisers")) == 1


def test_a_missing_linked_record_gets_a_stub_that_its_own_event_fills_in(
    world: LocalStack, run
) -> None:
    # GIVEN a donation linking a fundraiser the table does not have yet
    send(world, donation(1, 1, 10.0, fundraiser="fr-9"))
    run()
    [stub] = rows(world, "Fundraisers")
    assert stub["Fundraiser Id"] == "fr-9" and "Name" not in stub
    # WHEN its FundraiserCreated event arrives later
    send(world, Event("FundraiserCreated", {"FundraiserId": "fr-9", "Name": "Late"}))
    run()
    # THEN the stub is filled in: one row, the one the donation links
    [filled] = rows(world, "Fundraisers")
    assert filled == stub | {"Name": "Late"} and by_id(world)["d1"]["Fundraiser"] == [stub["_id"]]


def test_a_key_that_matches_several_linked_rows_is_poison_naming_it(world: LocalStack, run) -> None:
    # GIVEN two Fundraisers rows with one key (made by hand, outside the poller)
    table = Api(TOKEN, endpoint_url=world.airtable_url).table(BASE_ID, "Fundraisers")
    for _ in range(2):
        table.create({"Fundraiser Id": "fr-2"})
    time.sleep(1.1)  # let the base's 1 s window forget this client's requests (speed only)
    send(world, donation(1, 1, 10.0, fundraiser="fr-2"))
    summary = run()
    [(_body, attributes)] = world.dead_letters()
    assert summary["dead_lettered"] == 1 and "fr-2" in attributes["poller.reason"]
    assert "Fundraisers" in attributes["poller.reason"]


def test_a_soft_delete_keeps_the_version_so_an_older_update_cannot_bring_the_row_back(
    world: LocalStack, run
) -> None:
    send(world, donation(1, 1, 10.0))
    run()
    # WHEN the donation is deleted (version 2), then version 1's update is redelivered late
    send(world, Event("DonationDeleted", {"Id": "d1", "Version": 2}))
    run()
    send(world, donation(1, 1, 10.0, Status="paid"))
    summary = run(cold=True)
    # THEN the row is ticked deleted with version 2, and the late update was stale
    row = by_id(world)["d1"]
    assert row["Deleted"] is True and row["Version"] == 2 and summary["stale"] == 1


def test_a_hard_delete_removes_the_rows_and_a_key_without_a_row_is_a_success(
    world: LocalStack, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the delete route without deleted_field (and so without a version: a hard
    # delete leaves no row to hold one), and two donations written
    with_routes(monkeypatch, hard_delete)
    send(world, donation(1, 1, 10.0), donation(2, 1, 20.0))
    run()
    assert sorted(by_id(world)) == ["d1", "d2"]
    # WHEN d1 is deleted, and so is a donation the table never had
    send(world, Event("DonationDeleted", {"Id": "d1"}), Event("DonationDeleted", {"Id": "d404"}))
    summary = run()
    # THEN d1's row is gone, d2's stays, and both deletes succeeded (deleted from the queue)
    assert sorted(by_id(world)) == ["d2"]
    assert summary["deleted"] == 2 and summary["dead_lettered"] == 0
    assert world.dead_letters() == [] and world.counts() == {
        "visible": 0,
        "in_flight": 0,
        "delayed": 0,
    }
    # AND the delete is idempotent: the same event again changes nothing and succeeds
    send(world, Event("DonationDeleted", {"Id": "d1"}))
    assert run()["deleted"] == 1 and sorted(by_id(world)) == ["d2"]


@pytest.mark.parametrize("answer", ["503", "429"])
def test_a_hard_delete_answered_503_or_429_is_made_again_in_the_same_run(
    world: LocalStack, run, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # GIVEN the hard-delete route and a donation written
    with_routes(monkeypatch, hard_delete)
    send(world, donation(1, 1, 10.0), donation(2, 1, 20.0))
    run()
    # WHEN its delete request meets an outage, or a lockout, once
    is_delete = lambda request: request.method == "DELETE"  # noqa: E731
    if answer == "503":
        failing_once(world, is_delete, BASE_ID)
    else:
        on_first(world, is_delete, lambda: world.emulator.trigger_lockout(BASE_ID))
    send(world, Event("DonationDeleted", {"Id": "d1"}))
    summary = run()
    # THEN the same run made it again: the row is gone, the message is deleted, and the
    # route was not stopped
    assert summary["stopped_routes"] == {} and summary["deleted"] == 1
    assert summary["retries" if answer == "503" else "throttled"] == 1
    assert sorted(by_id(world)) == ["d2"] and world.dead_letters() == []
    assert world.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_link_with_if_missing_dead_letter_makes_a_missing_key_poison(
    world: LocalStack, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the donations' link set to dead-letter a key the Fundraisers table lacks, and one
    # fundraiser in the table
    with_routes(monkeypatch, dead_letter_missing_links)
    send(world, Event("FundraiserCreated", {"FundraiserId": "fr-1", "Name": "Spring walk"}))
    run()
    # WHEN a donation links it and another links a fundraiser that does not exist
    send(world, donation(1, 1, 10.0), donation(2, 1, 20.0, fundraiser="fr-404"))
    summary = run()
    # THEN the first is written, the second is dead-lettered naming the key and the table,
    # and no stub was made for it
    assert sorted(by_id(world)) == ["d1"] and summary["dead_lettered"] == 1
    [(_body, attributes)] = world.dead_letters()
    assert "fr-404" in attributes["poller.reason"] and "Fundraisers" in attributes["poller.reason"]
    assert [r["Fundraiser Id"] for r in rows(world, "Fundraisers")] == ["fr-1"]


def test_multiple_selects_and_attachments_are_written_as_the_field_means_them(
    world: LocalStack, run
) -> None:
    send(
        world,
        donation(1, 1, 10.0, Tags=["gift", "matched"], ReceiptUrl="https://example.org/r/1.pdf"),
    )
    send(world, donation(2, 1, 10.0, Tags="recurring", ReceiptUrl="http://example.org/r/2.pdf"))
    run()
    row = by_id(world)["d1"]
    assert (
        row["Tags"] == ["gift", "matched"]
        and row["Receipt"][0]["url"] == "https://example.org/r/1.pdf"
    )
    [(_body, attributes)] = world.dead_letters()  # d2: an attachment must be https
    assert "https" in attributes["poller.reason"] and "d2" not in by_id(world)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a hang guard: the stream takes about two minutes here
def test_a_shuffled_stream_converges_to_the_true_final_state(world: LocalStack, run) -> None:
    # GIVEN 600 donations (1-4 versions each, 10% deleted, 5% redelivered) and 200
    # fundraisers, some created after the donations that link them and some never, shuffled
    events = stream(seed=20261202)
    for start in range(0, len(events.events), 10):
        entries = [
            {"Id": str(i), **e.message()} for i, e in enumerate(events.events[start : start + 10])
        ]
        world.sqs.send_message_batch(QueueUrl=world.queue_url, Entries=entries)
    # WHEN runs drain the queue
    summaries = [run()]
    while world.counts()["visible"] and len(summaries) < 10:
        summaries.append(run())
    # THEN every donation holds its newest version's values, or is ticked deleted
    donations = by_id(world)
    fundraisers = {r["Fundraiser Id"]: r for r in rows(world, "Fundraisers")}
    for donation_id, last in events.donations.items():
        row = donations[donation_id]
        if last is None:
            assert row.get("Deleted") is True, donation_id
            continue
        assert (row["Version"], row["Donation Amount"], row["Status"]) == (
            last["Version"],
            last["DonationAmount"],
            last["Status"],
        )
        # every link points at the one Fundraisers row with that key
        assert row["Fundraiser"] == [fundraisers[last["FundraiserId"]]["_id"]]
    # AND each fundraiser is one row, never a duplicate stub; the created ones have their name
    assert len(fundraisers) == len(rows(world, "Fundraisers"))
    for key, name in events.fundraisers.items():
        if name is not None:
            assert fundraisers[key]["Name"] == name
    # AND there was no 429, and no dead letter (there is no poison in the stream)
    assert world.emulator.stats.lockouts == 0 and world.dead_letters() == []
    assert sum(s["throttled"] for s in summaries) == 0 and world.counts()["visible"] == 0


def test_a_lookup_reads_every_page_of_the_rows_it_finds(world: LocalStack) -> None:
    # GIVEN 150 fundraiser rows with one key, more than Airtable's page of 100, and another
    seed = Api(TOKEN, endpoint_url=world.airtable_url).table(BASE_ID, "Fundraisers")
    made = [{"Fundraiser Id": "fr-many", "Name": f"n{i}"} for i in range(150)]
    for start in range(0, len(made), 10):
        seed.batch_create(made[start : start + 10])
        time.sleep(0.25)  # within the emulator's 5 requests/s
    seed.create({"Fundraiser Id": "fr-other"})
    time.sleep(1.1)  # the emulator's 1 s window is empty again
    # WHEN the poller's Airtable adapter looks that key up
    api = make_api(token=TOKEN, api_url=world.airtable_url, timeout=10)
    sink = AirtableTable(api.table(BASE_ID, FUNDRAISERS))
    pages = list(sink.find([("fr-many",)], ["Fundraiser Id"], ["fld00000000000001"]))
    # THEN it read two pages, each row once, its fields keyed by field id
    assert [len(page) for page in pages] == [100, 50]
    found = [record for page in pages for record in page]
    assert len({r["id"] for r in found}) == 150
    assert {r["fields"]["fld00000000000001"] for r in found} == {"fr-many"}


def test_the_adapter_tells_the_pacer_when_each_request_is_on_its_socket(
    world: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the poller's Airtable adapter, and a pacer's mark for the request about to go
    api = make_api(token=TOKEN, api_url=world.airtable_url, timeout=10)
    sink = AirtableTable(api.table(BASE_ID, FUNDRAISERS))
    marks: list[str] = []
    monkeypatch.setattr(
        pacing._leaving, "mark", lambda: marks.append("on its socket"), raising=False
    )
    # WHEN one lookup is made over HTTP
    pages = list(sink.find([("fr-1",)], ["Fundraiser Id"], ["fld00000000000001"]))
    # THEN the mark was called once, when the request was written, and then cleared
    assert pages == [[]] and marks == ["on its socket"]
    assert pacing._leaving.mark is None


def delete_by_hand(world: LocalStack, table: str, record_id: str) -> None:
    """A row deleted in Airtable by someone else, while the container remembers its id."""
    Api(TOKEN, endpoint_url=world.airtable_url).table(BASE_ID, table).delete(record_id)
    time.sleep(1.1)  # let the base's 1 s window forget this client's request (speed only)


def test_a_linked_row_deleted_in_airtable_is_read_again_not_blamed_on_the_message(
    world: LocalStack, run
) -> None:
    # GIVEN a warm container that linked a donation to fundraiser fr-1 (it remembers the
    # row's record id), and fr-1's row then deleted in Airtable by hand
    send(world, Event("FundraiserCreated", {"FundraiserId": "fr-1", "Name": "Spring walk"}))
    send(world, donation(1, 1, 10.0))
    run()
    [fundraiser] = rows(world, "Fundraisers")
    delete_by_hand(world, "Fundraisers", fundraiser["_id"])
    # WHEN another donation links fr-1, in the same container
    send(world, donation(2, 1, 20.0))
    summary = run()
    # THEN it is written, linking a new stub row of fr-1; nothing is dead-lettered
    [stub] = rows(world, "Fundraisers")
    assert stub["Fundraiser Id"] == "fr-1" and stub["_id"] != fundraiser["_id"]
    assert by_id(world)["d2"]["Fundraiser"] == [stub["_id"]]
    assert summary["written"] == 1 and summary["dead_lettered"] == 0
    assert world.dead_letters() == []


def test_a_bad_value_in_a_linking_request_is_still_dead_lettered_alone(
    world: LocalStack, run
) -> None:
    # GIVEN a warm container that knows fundraiser fr-1's row
    send(world, Event("FundraiserCreated", {"FundraiserId": "fr-1", "Name": "Spring walk"}))
    run()
    # WHEN two donations link it, one with a Status that the select field does not have
    send(world, donation(1, 1, 10.0, Status="weird"), donation(2, 1, 20.0))
    summary = run()
    # THEN the good one is written and the bad one dead-lettered with Airtable's reason;
    # reading the link again made no second row of fr-1
    assert sorted(by_id(world)) == ["d2"] and summary["dead_lettered"] == 1
    [(_body, attributes)] = world.dead_letters()
    assert "INVALID_MULTIPLE_CHOICE_OPTIONS" in attributes["poller.reason"]
    assert "weird" in attributes["poller.reason"]
    assert len(rows(world, "Fundraisers")) == 1


def test_a_hard_delete_of_a_row_deleted_in_airtable_succeeds(
    world: LocalStack, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the hard-delete route, and a warm container that wrote d1 (it remembers d1's
    # record id), and d1's row then deleted in Airtable by hand
    with_routes(monkeypatch, hard_delete)
    send(world, donation(1, 1, 10.0), donation(2, 1, 20.0))
    run()
    delete_by_hand(world, "Donations", by_id(world)["d1"]["_id"])
    # WHEN d1's delete event arrives, in the same container
    send(world, Event("DonationDeleted", {"Id": "d1"}))
    summary = run()
    # THEN the delete succeeds (the row is gone, as asked): the route is not stopped, the
    # message is deleted from the queue, and d2 is untouched
    assert "raised" not in summary and summary["stopped_routes"] == {}
    assert summary["deleted"] == 1 and summary["dead_lettered"] == 0
    assert sorted(by_id(world)) == ["d2"] and world.dead_letters() == []
    assert world.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_duplicate_key_fixed_in_airtable_is_read_again(world: LocalStack, run) -> None:
    # GIVEN two Fundraisers rows with key fr-2 (made by hand), and a warm container that
    # dead-lettered a donation linking fr-2 for it
    table = Api(TOKEN, endpoint_url=world.airtable_url).table(BASE_ID, "Fundraisers")
    made = [table.create({"Fundraiser Id": "fr-2"}) for _ in range(2)]
    time.sleep(1.1)  # let the base's 1 s window forget this client's requests (speed only)
    send(world, donation(1, 1, 10.0, fundraiser="fr-2"))
    assert run()["dead_lettered"] == 1
    # WHEN the operator deletes one of the two rows, and another donation links fr-2
    delete_by_hand(world, "Fundraisers", made[1]["id"])
    send(world, donation(2, 1, 20.0, fundraiser="fr-2"))
    summary = run()
    # THEN it is written, linking the row that is left
    assert summary["dead_lettered"] == 0 and by_id(world)["d2"]["Fundraiser"] == [made[0]["id"]]


def test_a_missing_linked_row_added_in_airtable_is_read_again(
    world: LocalStack, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN links that dead-letter a missing key, and a warm container that dead-lettered a
    # donation linking fr-7, which the Fundraisers table lacked
    with_routes(monkeypatch, dead_letter_missing_links)
    send(world, donation(1, 1, 10.0, fundraiser="fr-7"))
    assert run()["dead_lettered"] == 1
    # WHEN the operator adds fr-7 in Airtable, and another donation links it
    table = Api(TOKEN, endpoint_url=world.airtable_url).table(BASE_ID, "Fundraisers")
    added = table.create({"Fundraiser Id": "fr-7"})
    time.sleep(1.1)  # let the base's 1 s window forget this client's request (speed only)
    send(world, donation(2, 1, 20.0, fundraiser="fr-7"))
    summary = run()
    # THEN it is written, linking the added row
    assert summary["dead_lettered"] == 0 and by_id(world)["d2"]["Fundraiser"] == [added["id"]]
