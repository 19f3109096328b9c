"""Creates and updates: the 10-record cap, typed fields and all-or-nothing requests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from emulator_testkit import BASE, KINDS_BASE, TABLE, Running, error_of

DONATION = {
    "Id": "3f2b6a1e-0000-4000-8000-000000000001",
    "Creation Date": "2018-05-01T12:00:00.000Z",
    "Donor Id": "user-1",
    "Fundraiser Id": "3f2b6a1e-0000-4000-8000-0000000000f1",
    "Donation Amount": 25.0,
    "Donor Display Name": "Ada",
}


def donation(n: int, **changes: Any) -> dict[str, Any]:
    return {**DONATION, "Id": f"donation-{n}", **changes}


def post_records(emu: Running, records: list[dict[str, Any]], **extra: Any) -> requests.Response:
    body = {"records": [{"fields": fields} for fields in records], **extra}
    return emu.http().post(emu.records_url(), json=body)


def test_ten_records_are_accepted_in_one_request(emu: Running) -> None:
    # GIVEN ten valid donations
    records = [donation(n) for n in range(10)]
    # WHEN pyairtable creates them (one request of 10)
    created = emu.table().batch_create(records)
    # THEN all ten exist, in order, with Airtable-shaped ids
    assert [r["fields"]["Id"] for r in created] == [f"donation-{n}" for n in range(10)]
    assert all(re.fullmatch(r"rec[A-Za-z0-9]{14}", r["id"]) for r in created)
    assert emu.emu.stats.records_per_write == [10]
    assert len(emu.emu.records(BASE, TABLE)) == 10


def test_eleven_records_are_refused_and_nothing_is_written(emu: Running) -> None:
    # GIVEN eleven valid donations sent in one request (pyairtable would split them)
    api = emu.api()
    table = api.table(BASE, TABLE)
    body = {"records": [{"fields": donation(n)} for n in range(11)]}
    # WHEN they are posted
    with pytest.raises(requests.HTTPError) as caught:
        api.post(table.urls.records, json=body)
    # THEN the request fails with INVALID_RECORDS and Airtable's message, writing nothing
    response = caught.value.response
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "type": "INVALID_RECORDS",
            "message": "A maximum of 10 records can be created per request"
            " but you have provided 11.",
        }
    }
    assert emu.emu.records(BASE, TABLE) == []


@pytest.mark.parametrize(("method", "verb"), [("PATCH", "updated"), ("DELETE", "deleted")])
def test_eleven_updates_or_deletes_are_refused(emu: Running, method: str, verb: str) -> None:
    # GIVEN eleven existing records
    table = emu.table()
    ids = [r["id"] for r in table.batch_create([donation(n) for n in range(11)])]
    # WHEN one request updates or deletes all eleven
    session = emu.http()
    if method == "PATCH":
        body = {"records": [{"id": i, "fields": {"Donor Id": "x"}} for i in ids]}
        response = session.patch(emu.records_url(), json=body)
    else:
        response = session.delete(emu.records_url(), params={"records[]": ids})
    # THEN it is refused with the cap message and every record is unchanged
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_RECORDS"
    assert f"can be {verb} per request but you have provided 11." in error_of(response)["message"]
    after = emu.emu.records(BASE, TABLE)
    assert len(after) == 11
    assert {r["fields"]["Donor Id"] for r in after} == {"user-1"}


def test_unknown_field_rejects_the_whole_batch(emu: Running) -> None:
    # GIVEN a batch whose last record names a field the table does not have
    records = [donation(1), donation(2), {**donation(3), "Donor Email": "a@example.org"}]
    # WHEN it is created
    with pytest.raises(requests.HTTPError) as caught:
        emu.table().batch_create(records)
    # THEN Airtable's UNKNOWN_FIELD_NAME comes back and not even the good records exist
    assert caught.value.response.status_code == 422
    assert caught.value.response.json() == {
        "error": {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "Donor Email"'}
    }
    assert emu.emu.records(BASE, TABLE) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Donation Amount", "25.00"),  # a numeric string needs typecast
        ("Donation Amount", True),  # booleans are not numbers
        ("Donation Amount", [25]),
        ("Donor Id", 42),  # a number is not text without typecast
        ("Donor Id", {"id": "x"}),
        ("Donor Display Name", "x" * 100_001),  # over the 100,000-character cap
        ("Creation Date", "2018-05-01T12:00:00"),  # no zone: ambiguous instant
        ("Creation Date", "01/05/2018"),
        ("Creation Date", "2018-02-30"),
        ("Creation Date", 1525176000),
    ],
)
def test_invalid_value_rejects_the_whole_batch(emu: Running, field: str, value: Any) -> None:
    # GIVEN a batch with one value of the wrong type for its field
    records = [donation(1), {**donation(2), field: value}]
    # WHEN it is created
    response = post_records(emu, records)
    # THEN INVALID_VALUE_FOR_COLUMN names the field and nothing is written
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "type": "INVALID_VALUE_FOR_COLUMN",
            "message": f'Field "{field}" cannot accept the provided value',
        }
    }
    assert emu.emu.records(BASE, TABLE) == []


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2018-05-01T12:00:00.000Z", "2018-05-01T12:00:00.000Z"),
        ("2018-05-01T12:00:00Z", "2018-05-01T12:00:00.000Z"),
        ("2018-05-01T14:00:00+02:00", "2018-05-01T12:00:00.000Z"),
        ("2018-05-01T12:00:00.123456-01:00", "2018-05-01T13:00:00.123Z"),
        ("2018-05-01", "2018-05-01T00:00:00.000Z"),
    ],
)
def test_date_times_are_stored_in_utc_like_airtable(emu: Running, value: str, stored: str) -> None:
    # GIVEN an ISO 8601 date-time with a zone (or a plain date)
    # WHEN it is written to the dateTime field
    record = emu.table().create({"Id": "d", "Creation Date": value})
    # THEN it comes back in UTC with milliseconds
    assert record["fields"]["Creation Date"] == stored


def test_typecast_converts_strings_and_numbers(emu: Running) -> None:
    # GIVEN values of the wrong JSON type that typecast can convert
    fields = {"Id": 1234, "Donation Amount": "25.50", "Creation Date": "2018-05-01T12:00:00"}
    table = emu.table()
    # WHEN they are sent without typecast, THEN they are refused
    with pytest.raises(requests.HTTPError):
        table.create(fields)
    # WHEN they are sent with typecast=true
    record = table.create(fields, typecast=True)
    # THEN they are converted (and a zone-less time is read in the field's zone, UTC)
    assert record["fields"] == {
        "Id": "1234",
        "Donation Amount": 25.5,
        "Creation Date": "2018-05-01T12:00:00.000Z",
    }


def test_typecast_does_not_rescue_non_numeric_strings(emu: Running) -> None:
    # GIVEN a currency value that is not a number at all
    # WHEN it is sent with typecast
    response = post_records(emu, [donation(1, **{"Donation Amount": "lots"})], typecast=True)
    # THEN it is still refused
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_VALUE_FOR_COLUMN"


def test_select_option_needs_typecast_to_be_created(kinds: Running) -> None:
    # GIVEN a single-select field with options Open and Closed
    table = kinds.table("Kinds", base=KINDS_BASE)
    # WHEN a new option is written without typecast
    with pytest.raises(requests.HTTPError) as caught:
        table.create({"Name": "a", "Status": "Blocked"})
    # THEN it is refused as Airtable does
    assert caught.value.response.status_code == 422
    assert error_of(caught.value.response) == {
        "type": "INVALID_MULTIPLE_CHOICE_OPTIONS",
        "message": 'Insufficient permissions to create new select option ""Blocked""',
    }
    # WHEN it is written with typecast
    record = table.create({"Name": "a", "Status": "Blocked", "Tags": "red, blue"}, typecast=True)
    # THEN the options are created and appear in the schema
    assert record["fields"]["Status"] == "Blocked"
    assert record["fields"]["Tags"] == ["red", "blue"]
    fields = {f["name"]: f for f in kinds.emu.schema(KINDS_BASE)["tables"][0]["fields"]}
    assert "Blocked" in [c["name"] for c in fields["Status"]["options"]["choices"]]
    assert "blue" in [c["name"] for c in fields["Tags"]["options"]["choices"]]


def test_typecast_options_are_not_added_when_the_request_fails(kinds: Running) -> None:
    # GIVEN a typecast request that would add an option but has an invalid record
    body = {
        "records": [{"fields": {"Status": "New"}}, {"fields": {"Count": "many"}}],
        "typecast": True,
    }
    # WHEN it is sent
    response = kinds.http().post(kinds.records_url(KINDS_BASE, "Kinds"), json=body)
    # THEN it fails and the schema is untouched
    assert response.status_code == 422
    status = kinds.emu.schema(KINDS_BASE)["tables"][0]["fields"][5]
    assert [c["name"] for c in status["options"]["choices"]] == ["Open", "Closed"]


@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ({"Done": True}, True),
        ({"Done": "yes"}, False),
        ({"Day": "2024-02-29"}, True),
        ({"Day": "2024-02-29T10:00:00Z"}, False),
        ({"Count": 3}, True),
        ({"Count": 2.5}, True),
        ({"Stars": 3}, True),
        ({"Stars": 9}, False),
        ({"Tags": ["red"]}, True),
        ({"Tags": "red"}, False),
        ({"Computed": 2}, False),
        ({"Computed": None}, False),
        ({"Auto": 7}, False),
        ({"Notes": "line 1\nline 2"}, True),
    ],
)
def test_field_kinds(kinds: Running, fields: dict[str, Any], accepted: bool) -> None:
    # GIVEN one value for one kind of field
    # WHEN it is written without typecast
    response = kinds.http().post(
        kinds.records_url(KINDS_BASE, "Kinds"), json={"records": [{"fields": fields}]}
    )
    # THEN it is accepted or refused as Airtable would
    assert (response.status_code == 200) is accepted, response.text
    assert len(kinds.emu.records(KINDS_BASE, "Kinds")) == (1 if accepted else 0)


def test_computed_field_message(kinds: Running) -> None:
    # GIVEN a formula field
    # WHEN a value is written to it
    response = kinds.http().post(
        kinds.records_url(KINDS_BASE, "Kinds"), json={"fields": {"Computed": 2}}
    )
    # THEN Airtable's computed-field message comes back
    assert error_of(response) == {
        "type": "INVALID_VALUE_FOR_COLUMN",
        "message": 'Field "Computed" cannot accept a value because the field is computed',
    }


@pytest.mark.parametrize("body", [b'{"records": [', b'{"records": NaN}', b'{"x": 1e999}'])
def test_unparseable_body_is_invalid_request_body(emu: Running, body: bytes) -> None:
    # GIVEN a body that is not strict JSON (truncated, NaN, or a number out of range)
    # WHEN it is posted
    response = emu.http().post(
        emu.records_url(), data=body, headers={"Content-Type": "application/json"}
    )
    # THEN it is refused with INVALID_REQUEST_BODY
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_REQUEST_BODY"
    assert emu.emu.records(BASE, TABLE) == []


@pytest.mark.parametrize(
    "body",
    [
        {"records": [{"fields": {"Id": "a"}}], "typeCast": True},  # misspelt option
        {"records": [{"fields": {"Id": "a"}, "id": "recX"}]},  # ids are not for creates
        {"records": [{"fields": {"Id": "a"}}], "typecast": "yes"},
        {"records": {"fields": {"Id": "a"}}},
    ],
)
def test_malformed_body_is_invalid_request_unknown(emu: Running, body: dict[str, Any]) -> None:
    # GIVEN a JSON body with unknown keys or wrong shapes
    # WHEN it is posted
    response = emu.http().post(emu.records_url(), json=body)
    # THEN it is refused and nothing is written
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_REQUEST_UNKNOWN"
    assert emu.emu.records(BASE, TABLE) == []


def test_body_over_the_limit_gets_413_and_the_connection_survives(
    start: Callable[..., Running],
) -> None:
    # GIVEN an emulator that accepts bodies up to 4 KiB
    running = start(max_body_bytes=4096)
    session = running.http()
    # WHEN a larger body is posted
    response = session.post(
        running.records_url(), json={"records": [{"fields": {"Donor Display Name": "x" * 5000}}]}
    )
    # THEN it is a 413, nothing is written, and the same session keeps working
    assert response.status_code == 413
    assert error_of(response)["type"] == "REQUEST_ENTITY_TOO_LARGE"
    assert running.emu.records(BASE, TABLE) == []
    assert session.post(running.records_url(), json={"fields": {"Id": "ok"}}).status_code == 200


def test_patch_merges_put_replaces_and_null_clears(emu: Running) -> None:
    # GIVEN a full donation
    table = emu.table()
    record_id = table.create(donation(1))["id"]
    # WHEN PATCH changes one field, THEN the others stay
    assert table.update(record_id, {"Donor Id": "u2"})["fields"]["Donation Amount"] == 25.0
    # WHEN null is written, THEN the cell is cleared (and omitted, like Airtable)
    assert "Donor Id" not in table.update(record_id, {"Donor Id": None})["fields"]
    # WHEN PUT sends one field, THEN it is the only one left
    assert table.update(record_id, {"Id": "only"}, replace=True)["fields"] == {"Id": "only"}


def test_update_of_a_missing_record_rejects_the_batch(emu: Running) -> None:
    # GIVEN one existing record
    table = emu.table()
    record_id = table.create(donation(1))["id"]
    # WHEN a batch updates it and a record that does not exist
    with pytest.raises(requests.HTTPError) as caught:
        table.batch_update(
            [
                {"id": record_id, "fields": {"Donor Id": "changed"}},
                {"id": "recMissing0000001", "fields": {"Donor Id": "changed"}},
            ]
        )
    # THEN ROW_DOES_NOT_EXIST comes back and the existing record is unchanged
    assert error_of(caught.value.response)["type"] == "ROW_DOES_NOT_EXIST"
    assert table.get(record_id)["fields"]["Donor Id"] == "user-1"


def test_fields_may_be_named_by_id_and_returned_by_id(emu: Running) -> None:
    # GIVEN a write keyed by field id that asks for field ids back
    body = {"fields": {"fldDonationId0001": "by-id"}, "returnFieldsByFieldId": True}
    # WHEN it is posted
    response = emu.http().post(emu.records_url(), json=body)
    # THEN the record is stored and echoed by field id
    assert response.json()["fields"] == {"fldDonationId0001": "by-id"}
    assert emu.emu.records(BASE, TABLE)[0]["fields"] == {"Id": "by-id"}


def test_record_ids_are_reproducible_from_the_seed(start: Callable[..., Running]) -> None:
    # GIVEN two emulators with the same seed and one with another
    first, second, other = start(seed=3), start(seed=3), start(seed=4)
    # WHEN each creates the same records
    ids = [
        [r["id"] for r in e.table().batch_create([{"Id": "a"}, {"Id": "b"}])]
        for e in (first, second, other)
    ]
    # THEN the same seed gives the same ids and another seed different ones
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


def test_delete_by_batch_and_by_id(emu: Running) -> None:
    # GIVEN three records
    table = emu.table()
    ids = [r["id"] for r in table.batch_create([donation(n) for n in range(3)])]
    # WHEN two are deleted in a batch and one by id
    assert table.batch_delete(ids[:2]) == [{"id": i, "deleted": True} for i in ids[:2]]
    assert table.delete(ids[2]) == {"id": ids[2], "deleted": True}
    # THEN the table is empty and the deletes are logged
    assert emu.emu.records(BASE, TABLE) == []
    assert [e.kind for e in emu.emu.write_log] == ["created", "deleted", "deleted"]


def test_an_escaped_lone_surrogate_is_an_invalid_body_and_nothing_is_written():
    # GIVEN a create whose text is an escaped lone surrogate (legal JSON, not Unicode)
    import requests
    from airtable_emulator import DEFAULT_TOKEN, DONATIONS_BASE_ID, Emulator

    emulator = Emulator()
    with emulator.serve() as url:
        # WHEN it is sent
        response = requests.post(
            f"{url}/v0/{DONATIONS_BASE_ID}/Donations",
            data=b'{"records": [{"fields": {"Id": "x\\ud800"}}]}',
            headers={
                "Authorization": f"Bearer {DEFAULT_TOKEN}",
                "Content-Type": "application/json",
            },
            timeout=5,
        )
        # THEN it is refused as a body Airtable cannot read, and nothing is stored
        assert response.status_code == 422
        assert response.json()["error"]["type"] == "INVALID_REQUEST_BODY"
        assert emulator.records(DONATIONS_BASE_ID, "Donations") == []
