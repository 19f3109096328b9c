"""Field types and options that change what a value means, and deletes by batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from emulator_testkit import BASE, TABLE, Running, error_of
from pyairtable.api.table import Table


@pytest.fixture
def table(start: Callable[..., Running]) -> Table:
    """Donations plus fields made through the meta API: Tags, Paris time, Stars, Share."""
    donations = start().table()
    donations.create_field("Tags", "multipleSelects", options={"choices": [{"name": "red"}]})
    donations.create_field(
        "Paris Time",
        "dateTime",
        options={
            "dateFormat": {"name": "iso"},
            "timeFormat": {"name": "24hour"},
            "timeZone": "Europe/Paris",
        },
    )
    donations.create_field(
        "Stars", "rating", options={"max": 3, "icon": "star", "color": "yellowBright"}
    )
    donations.create_field("Share", "percent", options={"precision": 1})
    return donations


def error_writing(table: Table, fields: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(requests.HTTPError) as caught:
        table.create(fields, **kwargs)
    assert caught.value.response.status_code == 422
    return error_of(caught.value.response)


def test_multiple_selects_take_existing_options(table: Table) -> None:
    # GIVEN the Tags field with the option "red"
    # WHEN a record is written with it, THEN it reads back as a list
    assert table.create({"Tags": ["red"]})["fields"]["Tags"] == ["red"]
    # WHEN an unknown option is written without typecast, THEN it is refused
    assert error_writing(table, {"Tags": ["red", "blue"]})["type"] == (
        "INVALID_MULTIPLE_CHOICE_OPTIONS"
    )
    # WHEN it is written with typecast, THEN the option is created in the schema
    assert table.create({"Tags": ["blue", "red"]}, typecast=True)["fields"]["Tags"] == [
        "blue",
        "red",
    ]
    tags = table.schema(force=True).field("Tags")
    assert [choice.name for choice in tags.options.choices] == ["red", "blue"]
    assert all(choice.id.startswith("sel") for choice in tags.options.choices)


def test_a_zone_less_datetime_is_read_in_the_field_zone_with_typecast(table: Table) -> None:
    # GIVEN a dateTime field in Europe/Paris (UTC+2 in July)
    assert table.schema().field("Paris Time").options.time_zone == "Europe/Paris"
    # WHEN a time without a zone is written with typecast
    record = table.create({"Paris Time": "2024-07-01T12:00:00"}, typecast=True)
    # THEN it is read as Paris time and stored in UTC
    assert record["fields"]["Paris Time"] == "2024-07-01T10:00:00.000Z"
    # AND a time with a zone keeps its instant
    with_zone = table.create({"Paris Time": "2024-07-01T12:00:00Z"})
    assert with_zone["fields"]["Paris Time"] == "2024-07-01T12:00:00.000Z"
    # BUT without typecast a zone-less time is refused (its instant is ambiguous)
    assert error_writing(table, {"Paris Time": "2024-07-01T12:00:00"})["type"] == (
        "INVALID_VALUE_FOR_COLUMN"
    )


@pytest.mark.parametrize(("value", "accepted"), [(1, True), (3, True), (4, False), (0, False)])
def test_rating_cells_stay_within_the_field_max(table: Table, value: int, accepted: bool) -> None:
    # GIVEN a rating field with max 3
    # WHEN a rating is written
    if accepted:
        # THEN values from 1 to max are stored
        assert table.create({"Stars": value})["fields"]["Stars"] == value
    else:
        # THEN others are INVALID_VALUE_FOR_COLUMN
        assert error_writing(table, {"Stars": value}) == {
            "type": "INVALID_VALUE_FOR_COLUMN",
            "message": 'Field "Stars" cannot accept the provided value',
        }


def test_percent_stores_the_fraction_as_given(table: Table) -> None:
    # GIVEN a percent field, WHEN 0.25 (25%) is written, THEN 0.25 is stored
    assert table.create({"Share": 0.25})["fields"]["Share"] == 0.25
    assert [r["fields"]["Share"] for r in table.all()] == [0.25]


def test_batch_delete_answers_each_id_and_refuses_unknown_ids_whole(emu: Running) -> None:
    # GIVEN three records
    table = emu.table()
    ids = [r["id"] for r in table.batch_create([{"Id": str(n)} for n in range(3)])]
    # WHEN two known ids and an unknown one are deleted in one request
    with pytest.raises(requests.HTTPError) as caught:
        table.batch_delete([ids[0], "recDoesNotExist01", ids[1]])
    # THEN it is a 422 ROW_DOES_NOT_EXIST and nothing is deleted
    assert error_of(caught.value.response)["type"] == "ROW_DOES_NOT_EXIST"
    assert len(emu.emu.records(BASE, TABLE)) == 3
    # WHEN the known ids are deleted, THEN the answer lists each as deleted
    assert table.batch_delete(ids) == [{"id": i, "deleted": True} for i in ids]
    # AND eleven ids in one request are refused
    response = emu.http().delete(emu.records_url(), params={"records[]": [ids[0]] * 11})
    assert response.status_code == 422 and error_of(response)["type"] == "INVALID_RECORDS"
