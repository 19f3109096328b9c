"""Link fields (multipleRecordLinks): ids that must exist, typecast names, inverse fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from emulator_testkit import Running, error_of
from pyairtable.api.table import Table

BASE = "appLinkedBase0001"


class Linked:
    """A base with People (primary Name) and Gifts, linked by Gifts.Donor."""

    def __init__(self, running: Running) -> None:
        self.running = running
        running.emu.define_base(
            BASE,
            {
                "tables": [
                    {"name": "People", "fields": [{"name": "Name", "type": "singleLineText"}]},
                    {"name": "Gifts", "fields": [{"name": "Ref", "type": "singleLineText"}]},
                ]
            },
        )
        self.people_id = running.emu.schema(BASE)["tables"][0]["id"]
        self.donor = self.gifts.create_field(
            "Donor", "multipleRecordLinks", options={"linkedTableId": self.people_id}
        )

    @property
    def people(self) -> Table:
        return self.running.table("People", base=BASE)

    @property
    def gifts(self) -> Table:
        return self.running.table("Gifts", base=BASE)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [r["fields"] for r in self.running.emu.records(BASE, table)]


@pytest.fixture
def linked(start: Callable[..., Running]) -> Linked:
    return Linked(start())


def refused(call: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(requests.HTTPError) as caught:
        call()
    assert caught.value.response.status_code == 422
    return error_of(caught.value.response)


def test_creating_a_link_field_creates_its_inverse(linked: Linked) -> None:
    # GIVEN the Donor field created through the meta API
    options = linked.donor.options
    # THEN it links to People and names its inverse field
    assert options.linked_table_id == linked.people_id
    assert (options.is_reversed, options.prefers_single_record_link) == (False, False)
    people = linked.running.emu.schema(BASE)["tables"][0]
    inverse = people["fields"][-1]
    # AND People got that inverse field, named after Gifts, linking back
    assert inverse["id"] == options.inverse_link_field_id
    assert inverse["name"] == "Gifts" and inverse["type"] == "multipleRecordLinks"
    assert inverse["options"]["linkedTableId"] == linked.running.emu.schema(BASE)["tables"][1]["id"]
    assert inverse["options"]["inverseLinkFieldId"] == linked.donor.id


@pytest.mark.parametrize(
    "options",
    [None, {}, {"linkedTableId": "tblNope0000000001"}, {"linkedTableId": "People"}, {"x": 1}],
)
def test_a_link_field_needs_a_table_of_the_same_base(linked: Linked, options: Any) -> None:
    # GIVEN link options that are missing or name no table of this base by id
    # WHEN the field is created, THEN it is refused with the options error
    error = refused(
        lambda: linked.gifts.create_field("Bad", "multipleRecordLinks", options=options)
    )
    assert error["type"] == "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE"


def test_links_take_existing_record_ids_and_read_back_ids(linked: Linked) -> None:
    # GIVEN two people
    ann, bob = (linked.people.create({"Name": name})["id"] for name in ("Ann", "Bob"))
    # WHEN a gift links both (Ann twice)
    gift = linked.gifts.create({"Ref": "g1", "Donor": [ann, bob, ann]})
    # THEN it reads back the ids, once each, and each person links the gift back
    assert gift["fields"]["Donor"] == [ann, bob]
    assert linked.gifts.get(gift["id"])["fields"]["Donor"] == [ann, bob]
    assert linked.rows("People") == [
        {"Name": "Ann", "Gifts": [gift["id"]]},
        {"Name": "Bob", "Gifts": [gift["id"]]},
    ]
    # WHEN the gift is relinked to Bob only, THEN Ann's inverse cell empties
    linked.gifts.update(gift["id"], {"Donor": [bob]})
    assert linked.rows("People") == [{"Name": "Ann"}, {"Name": "Bob", "Gifts": [gift["id"]]}]
    # WHEN the inverse side is written, THEN the gift follows
    linked.people.update(ann, {"Gifts": [gift["id"]]})
    assert linked.rows("Gifts")[0]["Donor"] == [bob, ann]


def test_deleting_a_record_removes_it_from_link_cells(linked: Linked) -> None:
    # GIVEN a gift linked to two people
    ann, bob = (linked.people.create({"Name": name})["id"] for name in ("Ann", "Bob"))
    gift = linked.gifts.create({"Ref": "g1", "Donor": [ann, bob]})
    # WHEN Ann is deleted, THEN the gift links Bob only
    linked.people.delete(ann)
    assert linked.rows("Gifts") == [{"Ref": "g1", "Donor": [bob]}]
    # WHEN the gift is deleted, THEN Bob's inverse cell empties
    linked.gifts.delete(gift["id"])
    assert linked.rows("People") == [{"Name": "Bob"}]


def test_an_unknown_record_id_fails_the_whole_request(linked: Linked) -> None:
    # GIVEN one person
    ann = linked.people.create({"Name": "Ann"})["id"]
    # WHEN two gifts are created and one links a record that does not exist
    error = refused(
        lambda: linked.gifts.batch_create(
            [{"Ref": "ok", "Donor": [ann]}, {"Ref": "bad", "Donor": ["recDoesNotExist01"]}]
        )
    )
    # THEN the request fails with ROW_DOES_NOT_EXIST and nothing is written
    assert error["type"] == "ROW_DOES_NOT_EXIST"
    assert linked.rows("Gifts") == [] and linked.rows("People") == [{"Name": "Ann"}]


@pytest.mark.parametrize(
    "value", ["recAAAAAAAAAAAAAA", [1], [{"id": "recAAAAAAAAAAAAAA"}], ["Ann"]]
)
def test_values_that_are_not_lists_of_ids_are_refused(linked: Linked, value: Any) -> None:
    # GIVEN a value that is not a list of record-id strings (no typecast)
    # WHEN it is written, THEN it is INVALID_VALUE_FOR_COLUMN
    error = refused(lambda: linked.gifts.create({"Donor": value}))
    assert error == {
        "type": "INVALID_VALUE_FOR_COLUMN",
        "message": 'Field "Donor" cannot accept the provided value',
    }


def test_typecast_links_the_first_match_or_creates_a_record(linked: Linked) -> None:
    # GIVEN two people named Ann
    first, _second = (linked.people.create({"Name": "Ann"})["id"] for _ in range(2))
    # WHEN gifts name Ann and (twice) Cid, with typecast
    gifts = linked.gifts.batch_create(
        [
            {"Ref": "g1", "Donor": ["Ann"]},
            {"Ref": "g2", "Donor": "Cid"},
            {"Ref": "g3", "Donor": ["Cid", first]},
        ],
        typecast=True,
    )
    # THEN Ann is the first Ann, and one Cid was created for both gifts
    people = linked.running.emu.records(BASE, "People")
    cid = people[2]["id"]
    assert [p["fields"]["Name"] for p in people] == ["Ann", "Ann", "Cid"]
    assert [g["fields"]["Donor"] for g in gifts] == [[first], [cid], [cid, first]]
    # AND the created record is in the write log and the stats
    created = [
        e for e in linked.running.emu.write_log if e.table == "People" and e.kind == "created"
    ]
    assert created[-1].record_ids == [cid]
    assert linked.running.emu.stats.records_created == 2 + 1 + 3


def test_typecast_creations_count_against_the_record_cap(linked: Linked) -> None:
    # GIVEN a base with room for one more record
    linked.running.emu.set_record_cap(BASE, 1)
    # WHEN a gift names a person no record has, with typecast (two new records)
    error = refused(lambda: linked.gifts.create({"Ref": "g", "Donor": ["Dee"]}, typecast=True))
    # THEN the request is refused whole
    assert (
        error["message"] == "This base is or will be over its record limits with new records added."
    )
    assert linked.rows("People") == [] and linked.rows("Gifts") == []


def test_a_link_field_cannot_be_a_merge_field(linked: Linked) -> None:
    # GIVEN the Donor link field, WHEN an upsert merges on it, THEN it is refused
    ann = linked.people.create({"Name": "Ann"})["id"]
    error = refused(lambda: linked.gifts.batch_upsert([{"fields": {"Donor": [ann]}}], ["Donor"]))
    assert error["type"] == "INVALID_REQUEST_UNKNOWN"


def test_a_new_table_may_link_to_an_existing_one(linked: Linked) -> None:
    # GIVEN the People table, WHEN a table is created with a link field to it
    fields = [
        {"name": "Title", "type": "singleLineText"},
        {
            "name": "Host",
            "type": "multipleRecordLinks",
            "options": {"linkedTableId": linked.people_id},
        },
    ]
    events = linked.running.api().base(BASE).create_table("Events", fields)
    # THEN its link works and People got the inverse field
    ann = linked.people.create({"Name": "Ann"})["id"]
    event = events.create({"Title": "Gala", "Host": [ann]})
    assert linked.rows("People") == [{"Name": "Ann", "Events": [event["id"]]}]


def test_formulas_see_a_link_as_its_primary_values(linked: Linked) -> None:
    # GIVEN gifts linked to Ann, and to Ann and Bob
    ann, bob = (linked.people.create({"Name": name})["id"] for name in ("Ann", "Bob"))
    linked.gifts.batch_create([{"Ref": "a", "Donor": [ann]}, {"Ref": "ab", "Donor": [ann, bob]}])
    # WHEN they are filtered on the link field
    only_ann = linked.gifts.all(formula="{Donor}='Ann'")
    both = linked.gifts.all(formula="{Donor}='Ann, Bob'")
    # THEN the cell compares as the linked names joined with ", "
    assert [g["fields"]["Ref"] for g in only_ann] == ["a"]
    assert [g["fields"]["Ref"] for g in both] == ["ab"]


def test_a_replace_or_a_cleared_table_empties_the_inverse_cells(linked: Linked) -> None:
    # GIVEN a gift linked to Ann through an upsert
    ann = linked.people.create({"Name": "Ann"})["id"]
    upserted = linked.gifts.batch_upsert([{"fields": {"Ref": "g1", "Donor": [ann]}}], ["Ref"])
    gift = upserted["records"][0]["id"]
    assert linked.rows("People") == [{"Name": "Ann", "Gifts": [gift]}]
    # WHEN a PUT replaces the gift without its link, THEN Ann no longer links it
    linked.gifts.update(gift, {"Ref": "g1"}, replace=True)
    assert linked.rows("People") == [{"Name": "Ann"}]
    # WHEN it is linked again and the Gifts table is cleared through the control API
    linked.gifts.update(gift, {"Donor": [ann]})
    control = linked.running.http(token=None)
    control.delete(f"{linked.running.url}/__emulator/records/{BASE}/Gifts")
    # THEN Ann's inverse cell is empty too
    assert linked.rows("People") == [{"Name": "Ann"}]
