"""Upserts (PATCH/PUT with performUpsert): the poller's idempotent write path."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emulator_testkit import BASE, KINDS_BASE, TABLE, Running, error_of


def upsert_body(records: list[dict[str, Any]], merge_on: list[str]) -> dict[str, Any]:
    return {
        "performUpsert": {"fieldsToMergeOn": merge_on},
        "records": [{"fields": fields} for fields in records],
    }


def test_upsert_creates_then_updates(emu: Running) -> None:
    # GIVEN an empty table
    table = emu.table()
    first = [{"fields": {"Id": "a", "Donor Id": "u1"}}, {"fields": {"Id": "b", "Donor Id": "u2"}}]
    # WHEN two new keys are upserted
    created = table.batch_upsert(first, key_fields=["Id"])
    # THEN both are created
    assert len(created["createdRecords"]) == 2
    assert created["updatedRecords"] == []
    # WHEN the same keys are upserted again with one new key
    again = [
        {"fields": {"Id": "a", "Donation Amount": 10}},
        {"fields": {"Id": "b", "Donation Amount": 20}},
        {"fields": {"Id": "c"}},
    ]
    result = table.batch_upsert(again, key_fields=["Id"])
    # THEN the existing records are updated (PATCH keeps other fields) and one is created
    assert result["updatedRecords"] == created["createdRecords"]
    assert len(result["createdRecords"]) == 1
    by_id = {r["fields"]["Id"]: r["fields"] for r in emu.emu.records(BASE, TABLE)}
    assert by_id["a"] == {"Id": "a", "Donor Id": "u1", "Donation Amount": 10}
    assert len(by_id) == 3
    kinds = [(e.method, e.kind, len(e.record_ids)) for e in emu.emu.write_log]
    assert kinds == [("PATCH", "created", 2), ("PATCH", "created", 1), ("PATCH", "updated", 2)]


def test_upsert_with_put_replaces_the_matched_record(emu: Running) -> None:
    # GIVEN a record with several fields
    table = emu.table()
    table.create({"Id": "a", "Donor Id": "u1", "Donation Amount": 5})
    # WHEN it is upserted with replace=True (PUT)
    table.batch_upsert([{"fields": {"Id": "a", "Donor Id": "u9"}}], ["Id"], replace=True)
    # THEN only the sent fields remain
    assert emu.emu.records(BASE, TABLE)[0]["fields"] == {"Id": "a", "Donor Id": "u9"}


def test_composite_key_matches_equal_values_in_other_notations(emu: Running) -> None:
    # GIVEN a record keyed by a date-time and an amount
    table = emu.table()
    table.create({"Id": "a", "Creation Date": "2018-05-01T12:00:00.000Z", "Donation Amount": 25})
    # WHEN the same instant (another offset) and amount (as a float) are upserted
    result = table.batch_upsert(
        [{"fields": {"Creation Date": "2018-05-01T14:00:00+02:00", "Donation Amount": 25.0}}],
        key_fields=["Creation Date", "Donation Amount"],
    )
    # THEN they match the existing record
    assert len(result["updatedRecords"]) == 1
    assert len(emu.emu.records(BASE, TABLE)) == 1


def test_key_matching_several_records_fails_the_whole_request(emu: Running) -> None:
    # GIVEN two records sharing the key "dup" and one record "a"
    table = emu.table()
    table.batch_create([{"Id": "dup", "Donor Id": "1"}, {"Id": "dup", "Donor Id": "2"}])
    table.create({"Id": "a", "Donor Id": "3"})
    before = emu.emu.records(BASE, TABLE)
    # WHEN a batch upserts "a" (fine on its own) and "dup"
    with pytest.raises(requests.HTTPError) as caught:
        table.batch_upsert(
            [{"fields": {"Id": "a", "Donor Id": "x"}}, {"fields": {"Id": "dup", "Donor Id": "x"}}],
            key_fields=["Id"],
        )
    # THEN the request fails and nothing changed, not even "a"
    assert caught.value.response.status_code == 422
    assert error_of(caught.value.response)["type"] == "INVALID_RECORDS"
    assert emu.emu.records(BASE, TABLE) == before


def test_same_key_twice_in_one_request_fails_the_whole_request(emu: Running) -> None:
    # GIVEN a batch that carries the key "a" twice (Airtable's behaviour is unverified)
    records = [{"Id": "a", "Donor Id": "1"}, {"Id": "b"}, {"Id": "a", "Donor Id": "2"}]
    # WHEN it is upserted
    response = emu.http().patch(emu.records_url(), json=upsert_body(records, ["Id"]))
    # THEN the emulator is strict: 422 and nothing written
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_RECORDS"
    assert emu.emu.records(BASE, TABLE) == []


@pytest.mark.parametrize("value", ["", None])
def test_record_without_a_merge_value_fails_the_request(emu: Running, value: Any) -> None:
    # GIVEN a batch whose second record has an empty key
    records = [{"Id": "a"}, {"Id": value, "Donor Id": "u"}]
    # WHEN it is upserted
    response = emu.http().patch(emu.records_url(), json=upsert_body(records, ["Id"]))
    # THEN it is refused with INVALID_REQUEST_MISSING_FIELDS and nothing written
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_REQUEST_MISSING_FIELDS"
    assert emu.emu.records(BASE, TABLE) == []


@pytest.mark.parametrize(
    ("merge_on", "error_type"),
    [
        (["Nope"], "UNKNOWN_FIELD_NAME"),
        ([], "INVALID_REQUEST_UNKNOWN"),
        (["Name", "Count", "Day", "Status"], "INVALID_REQUEST_UNKNOWN"),  # more than 3
        (["Done"], "INVALID_REQUEST_UNKNOWN"),  # checkbox is not mergeable
        (["Computed"], "INVALID_REQUEST_UNKNOWN"),  # computed fields never are
    ],
)
def test_invalid_merge_fields_are_refused(
    kinds: Running, merge_on: list[str], error_type: str
) -> None:
    # GIVEN a valid record and an invalid fieldsToMergeOn
    body = upsert_body([{"Name": "a", "Count": 1, "Day": "2024-01-01", "Status": "Open"}], merge_on)
    # WHEN it is upserted
    response = kinds.http().patch(kinds.records_url(KINDS_BASE, "Kinds"), json=body)
    # THEN it is refused
    assert response.status_code == 422
    assert error_of(response)["type"] == error_type
    assert kinds.emu.records(KINDS_BASE, "Kinds") == []


def test_upsert_accepts_up_to_three_merge_fields_of_mergeable_types(kinds: Running) -> None:
    # GIVEN text, number and select merge fields
    table = kinds.table("Kinds", base=KINDS_BASE)
    key = {"Name": "a", "Count": 1, "Status": "Open"}
    # WHEN the same key is upserted twice
    table.batch_upsert([{"fields": {**key, "Notes": "1"}}], ["Name", "Count", "Status"])
    result = table.batch_upsert([{"fields": {**key, "Notes": "2"}}], ["Name", "Count", "Status"])
    # THEN the second one updates the first
    assert len(result["updatedRecords"]) == 1
    assert [r["fields"]["Notes"] for r in kinds.emu.records(KINDS_BASE, "Kinds")] == ["2"]


def test_more_than_ten_upserts_are_refused(emu: Running) -> None:
    # GIVEN eleven records in one upsert request
    records = [{"Id": str(n)} for n in range(11)]
    # WHEN it is sent
    response = emu.http().patch(emu.records_url(), json=upsert_body(records, ["Id"]))
    # THEN the 10-record cap applies to upserts too
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_RECORDS"
    assert emu.emu.records(BASE, TABLE) == []


def test_matching_follows_updates_and_deletes(emu: Running) -> None:
    # GIVEN a record keyed "a", re-keyed to "b" by an update, and a record "c" deleted
    table = emu.table()
    first = table.batch_upsert([{"fields": {"Id": "a"}}], ["Id"])["createdRecords"][0]
    table.batch_upsert([{"fields": {"Id": "c"}}], ["Id"])
    table.update(first, {"Id": "b"})
    table.delete(table.first(formula="{Id}='c'")["id"])
    # WHEN "a", "b" and "c" are upserted
    result = table.batch_upsert(
        [{"fields": {"Id": key, "Donor Id": "x"}} for key in ("a", "b", "c")], ["Id"]
    )
    # THEN only "b" matches (the old key and the deleted record are gone)
    assert result["updatedRecords"] == [first]
    assert len(result["createdRecords"]) == 2
    assert sorted(r["fields"]["Id"] for r in emu.emu.records(BASE, TABLE)) == ["a", "b", "c"]
