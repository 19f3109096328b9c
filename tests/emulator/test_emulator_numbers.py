"""Numbers are IEEE doubles, as Airtable stores them: big integers collide."""

from __future__ import annotations

import pytest
from airtable_emulator.fields import json_number
from emulator_testkit import Running, error_of

BASE = "appNumbers0000001"
BIG = 1234567890123456789  # beyond 2**53: the double nearest to it is 1234567890123456768
NEIGHBOUR = 1234567890123456790  # the same double


@pytest.fixture
def numbers(emu: Running) -> Running:
    """The default emulator with a base whose merge key is a number field."""
    emu.emu.define_base(
        BASE,
        {
            "tables": [
                {
                    "name": "Events",
                    "fields": [
                        {"name": "Key", "type": "number", "options": {"precision": 0}},
                        {"name": "Label", "type": "singleLineText"},
                        {"name": "Share", "type": "percent", "options": {"precision": 1}},
                    ],
                }
            ]
        },
    )
    return emu


def test_two_big_integers_that_round_to_one_double_are_one_merge_key(numbers: Running) -> None:
    # GIVEN an upsert merging on a number field
    table = numbers.table("Events", base=BASE)
    first = table.batch_upsert([{"fields": {"Key": BIG, "Label": "first"}}], key_fields=["Key"])
    # WHEN a second upsert sends a key that differs only beyond a double's precision
    second = table.batch_upsert(
        [{"fields": {"Key": NEIGHBOUR, "Label": "second"}}], key_fields=["Key"]
    )
    # THEN it matched the first record instead of creating a second one
    assert first["createdRecords"] and second["updatedRecords"] == first["createdRecords"]
    rows = numbers.emu.records(BASE, "Events")
    assert len(rows) == 1
    # AND the value comes back as Airtable's JSON writes that double
    assert rows[0]["fields"] == {"Key": 1234567890123456800, "Label": "second"}
    assert float(rows[0]["fields"]["Key"]) == float(BIG)


def test_numbers_come_back_as_javascript_writes_them(numbers: Running) -> None:
    # GIVEN numbers written as floats and ints
    table = numbers.table("Events", base=BASE)
    table.batch_create([{"Key": 25.0, "Share": 0.5}, {"Key": -3, "Share": 1e-7}])
    # WHEN they are read back over HTTP
    rows = [record["fields"] for record in table.all()]
    # THEN integral values are JSON integers and others keep their digits
    assert rows == [{"Key": 25, "Share": 0.5}, {"Key": -3, "Share": 1e-7}]
    assert isinstance(rows[0]["Key"], int)
    # AND the rule itself, at its edges
    assert json_number(1e21) == 1e21 and isinstance(json_number(1e21), float)
    assert json_number(-0.0) == 0 and isinstance(json_number(-0.0), int)
    assert json_number(float(2**53 + 1)) == 9007199254740992


def test_a_number_beyond_a_double_is_an_invalid_body(numbers: Running) -> None:
    # GIVEN a body whose integer overflows a double
    session = numbers.http()
    session.headers["Content-Type"] = "application/json"
    # WHEN it is posted
    response = session.post(
        numbers.records_url(BASE, "Events"), data='{"fields": {"Key": 1' + "0" * 400 + "}}"
    )
    # THEN it is 422 INVALID_REQUEST_BODY, not a server error
    assert response.status_code == 422
    assert error_of(response)["type"] == "INVALID_REQUEST_BODY"
