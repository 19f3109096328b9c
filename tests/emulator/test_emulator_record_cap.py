"""A base's record cap (a plan's records per base): new records beyond it are refused,
updates still work."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from airtable_emulator import donations_schema
from emulator_testkit import BASE, TABLE, Running, error_of

CAP_MESSAGE = "This base is or will be over its record limits with new records added."


def two_tables() -> dict[str, object]:
    schema = donations_schema()
    schema["tables"].append(
        {"name": "Notes", "fields": [{"name": "Title", "type": "singleLineText"}]}
    )
    return schema


@pytest.fixture
def capped(start: Callable[..., Running]) -> Running:
    """A base with two tables holding three records (two and one) and a cap of 5."""
    running = start()
    running.emu.define_base(BASE, two_tables())
    running.table().batch_create([{"Id": "a"}, {"Id": "b"}])
    running.table("Notes").create({"Title": "n"})
    running.emu.set_record_cap(BASE, 5)
    return running


def test_a_create_over_the_cap_is_refused_whole(capped: Running) -> None:
    # GIVEN three records of five (across both tables)
    # WHEN three more are created in one request
    with pytest.raises(requests.HTTPError) as caught:
        capped.table().batch_create([{"Id": "c"}, {"Id": "d"}, {"Id": "e"}])
    # THEN it is a 422 with Airtable's message, and none of them was created
    assert caught.value.response.status_code == 422
    assert error_of(caught.value.response) == {"type": "INVALID_RECORDS", "message": CAP_MESSAGE}
    assert [r["fields"]["Id"] for r in capped.emu.records(BASE, TABLE)] == ["a", "b"]
    # AND two more still fit
    capped.table().batch_create([{"Id": "c"}, {"Id": "d"}])
    assert len(capped.emu.records(BASE, TABLE)) == 4


def test_updates_still_work_on_a_full_base(capped: Running) -> None:
    # GIVEN a base that is full (its cap lowered below its record count)
    capped.emu.set_record_cap(BASE, 2)
    table = capped.table()
    first = capped.emu.records(BASE, TABLE)[0]["id"]
    # WHEN a record is updated, and an upsert only matches existing records
    table.update(first, {"Donor Id": "u1"})
    result = table.batch_upsert([{"fields": {"Id": "b", "Donor Id": "u2"}}], key_fields=["Id"])
    # THEN both are applied
    assert result["createdRecords"] == [] and len(result["updatedRecords"]) == 1
    assert [r["fields"].get("Donor Id") for r in capped.emu.records(BASE, TABLE)] == ["u1", "u2"]
    # BUT an upsert that would create a record is refused whole (its update too)
    with pytest.raises(requests.HTTPError) as caught:
        table.batch_upsert(
            [{"fields": {"Id": "a", "Donor Id": "v"}}, {"fields": {"Id": "new"}}],
            key_fields=["Id"],
        )
    assert error_of(caught.value.response)["message"] == CAP_MESSAGE
    assert capped.emu.records(BASE, TABLE)[0]["fields"]["Donor Id"] == "u1"


def test_no_cap_again_accepts_creates(capped: Running) -> None:
    # GIVEN a full base, WHEN its cap is removed
    capped.emu.set_record_cap(BASE, 3)
    capped.emu.set_record_cap(BASE, None)
    # THEN creates are accepted again
    capped.table().batch_create([{"Id": str(n)} for n in range(10)])
    assert len(capped.emu.records(BASE, TABLE)) == 12


def test_record_cap_endpoint(emu: Running) -> None:
    # GIVEN a control session
    control = emu.http(token=None)
    endpoint = f"{emu.url}/__emulator/record-cap/{BASE}"
    # WHEN a cap of 0 is posted
    assert control.post(endpoint, json={"cap": 0}).json() == {"base": BASE, "cap": 0}
    # THEN a create is refused, and the cap is reported
    assert emu.http().post(emu.records_url(), json={"fields": {"Id": "x"}}).status_code == 422
    assert emu.emu.conditions()["record_caps"] == {BASE: 0}
    # AND null removes it, while bad caps are 400
    assert control.post(endpoint, json={"cap": None}).status_code == 200
    assert emu.http().post(emu.records_url(), json={"fields": {"Id": "x"}}).status_code == 200
    for bad in ({"cap": -1}, {"cap": 1.5}, {}):
        assert control.post(endpoint, json=bad).status_code == 400
