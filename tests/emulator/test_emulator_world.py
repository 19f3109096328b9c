"""World changes at runtime: bases defined from a schema, fields renamed, retyped and
deleted, tables renamed. Each through the Python API and through its control endpoint,
with the effect seen by the real pyairtable over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_testkit import BASE, TABLE, Running, error_of

AMOUNT_ID = "fldDonationAmt001"
DISPLAY_ID = "fldDonorDisplay01"
NEW_BASE = "appRuntimeBase001"


def fundraisers_schema() -> dict[str, Any]:
    """A schema without ids, as a test would write it."""
    return {
        "tables": [
            {
                "name": "Fundraisers",
                "fields": [
                    {"name": "Fundraiser Id", "type": "singleLineText"},
                    {
                        "name": "Goal",
                        "type": "currency",
                        "options": {"precision": 2, "symbol": "$"},
                    },
                    {
                        "name": "Status",
                        "type": "singleSelect",
                        "options": {"choices": [{"name": "Open"}]},
                    },
                ],
            }
        ]
    }


def test_define_base_generates_airtable_shaped_ids_and_serves_the_default_token(
    emu: Running,
) -> None:
    # GIVEN a schema without ids
    # WHEN it is defined as a new base through the Python API
    served = emu.emu.define_base(NEW_BASE, fundraisers_schema())
    # THEN tables, fields, views and choices got ids of Airtable's shape
    table = served["tables"][0]
    assert table["id"].startswith("tbl") and len(table["id"]) == 17
    assert all(f["id"].startswith("fld") and len(f["id"]) == 17 for f in table["fields"])
    assert table["primaryFieldId"] == table["fields"][0]["id"]
    assert table["views"][0]["id"].startswith("viw")
    assert table["fields"][2]["options"]["choices"][0]["id"].startswith("sel")
    # AND the default token writes to it, reads its schema and lists it, through pyairtable
    api = emu.api()
    api.table(NEW_BASE, "Fundraisers").create({"Fundraiser Id": "f1", "Goal": 100})
    assert api.base(NEW_BASE).schema().table("Fundraisers").id == table["id"]
    assert emu.emu.records(NEW_BASE, "Fundraisers")[0]["fields"] == {
        "Fundraiser Id": "f1",
        "Goal": 100,
    }


def test_define_base_endpoint_replaces_a_base_and_its_records(emu: Running) -> None:
    # GIVEN a Donations record
    emu.table().create({"Id": "a"})
    control = emu.http(token=None)
    # WHEN the Donations base is replaced through PUT /__emulator/bases/{base}
    response = control.put(f"{emu.url}/__emulator/bases/{BASE}", json=fundraisers_schema())
    # THEN the new schema is served (and returned), and the old table and records are gone
    assert response.status_code == 200
    assert [t["name"] for t in response.json()["tables"]] == ["Fundraisers"]
    assert control.get(f"{emu.url}/__emulator/bases/{BASE}").json() == response.json()
    assert emu.http().get(emu.records_url()).status_code == 403
    assert emu.table("Fundraisers").all() == []


@pytest.mark.parametrize(
    "schema",
    [
        {"tables": "nope"},
        {"tables": [{"name": "T", "fields": [{"name": "A"}]}]},  # a field without a type
        {"tables": [{"name": "T", "fields": [{"name": "A", "type": "singleLineText"}] * 2}]},
    ],
)
def test_define_base_refuses_a_malformed_schema(emu: Running, schema: Any) -> None:
    # GIVEN a malformed schema
    control = emu.http(token=None)
    # WHEN it is PUT, THEN it is a 400 and the base is unchanged
    response = control.put(f"{emu.url}/__emulator/bases/{BASE}", json=schema)
    assert response.status_code == 400
    with pytest.raises(ValueError):
        emu.emu.define_base(BASE, schema)
    assert emu.emu.schema(BASE)["tables"][0]["name"] == TABLE


def test_renamed_field_refuses_its_old_name_but_takes_its_id(emu: Running) -> None:
    # GIVEN a record written by field name
    emu.table().create({"Id": "a", "Donor Display Name": "Ann"})
    # WHEN "Donor Display Name" is renamed to "Donor Name" through the control endpoint
    response = emu.http(token=None).patch(
        f"{emu.url}/__emulator/bases/{BASE}/tables/{TABLE}/fields/Donor Display Name",
        json={"name": "Donor Name"},
    )
    assert response.json() == {"id": DISPLAY_ID, "name": "Donor Name", "type": "singleLineText"}
    # THEN a write by the old name gets 422 UNKNOWN_FIELD_NAME
    refused = emu.http().post(emu.records_url(), json={"fields": {"Donor Display Name": "Bo"}})
    assert refused.status_code == 422
    assert error_of(refused) == {
        "type": "UNKNOWN_FIELD_NAME",
        "message": 'Unknown field name: "Donor Display Name"',
    }
    # AND a write by field id still works, and the old cell is there under the new name
    emu.table().create({"Id": "b", DISPLAY_ID: "Bo"})
    assert [r["fields"].get("Donor Name") for r in emu.emu.records(BASE, TABLE)] == ["Ann", "Bo"]


def test_retyped_field_refuses_values_of_the_old_type_naming_the_field(emu: Running) -> None:
    # GIVEN a donation with an amount
    emu.table().create({"Id": "a", "Donation Amount": 25.0})
    # WHEN Donation Amount becomes a checkbox (Python API, default options)
    field = emu.emu.retype_field(BASE, TABLE, "Donation Amount", "checkbox")
    assert field["options"] == {"icon": "check", "color": "greenBright"}
    # THEN a currency value is refused, by name or by id, with the field's name in the message
    for key in ("Donation Amount", AMOUNT_ID):
        response = emu.http().post(emu.records_url(), json={"fields": {"Id": "b", key: 30.0}})
        assert response.status_code == 422
        assert error_of(response) == {
            "type": "INVALID_VALUE_FOR_COLUMN",
            "message": 'Field "Donation Amount" cannot accept the provided value',
        }
    # AND the old cell was cleared, and a checkbox value is accepted
    assert "Donation Amount" not in emu.emu.records(BASE, TABLE)[0]["fields"]
    emu.table().create({"Id": "c", "Donation Amount": True})
    assert emu.emu.records(BASE, TABLE)[1]["fields"]["Donation Amount"] is True


def test_retype_endpoint_checks_options_and_can_rename_too(emu: Running) -> None:
    control = emu.http(token=None)
    url = f"{emu.url}/__emulator/bases/{BASE}/tables/{TABLE}/fields/{AMOUNT_ID}"
    # GIVEN bad retypes, WHEN they are sent, THEN they are 400 and change nothing
    for body in (
        {"type": "checkbox", "options": {"icon": "check"}},  # color missing
        {"type": "noSuchType"},
        {"options": {"precision": 1}},  # options without a type
        {"colour": "red"},
    ):
        assert control.patch(url, json=body).status_code == 400
    assert emu.emu.schema(BASE)["tables"][0]["fields"][4]["type"] == "currency"
    # WHEN a type and a name are sent together
    response = control.patch(
        url, json={"name": "Gift", "type": "number", "options": {"precision": 1}}
    )
    # THEN both apply to the same field id
    assert response.json() == {
        "id": AMOUNT_ID,
        "name": "Gift",
        "type": "number",
        "options": {"precision": 1},
    }


def test_deleted_field_is_unknown_and_its_cells_are_gone(emu: Running) -> None:
    # GIVEN a record with a display name
    emu.table().create({"Id": "a", "Donor Display Name": "Ann"})
    control = emu.http(token=None)
    # WHEN the field is deleted through the control endpoint
    url = f"{emu.url}/__emulator/bases/{BASE}/tables/{TABLE}/fields/{DISPLAY_ID}"
    assert control.delete(url).status_code == 200
    # THEN writes by name or id get UNKNOWN_FIELD_NAME, and the cell is gone
    for key in ("Donor Display Name", DISPLAY_ID):
        response = emu.http().post(emu.records_url(), json={"fields": {key: "x"}})
        assert error_of(response)["type"] == "UNKNOWN_FIELD_NAME"
    assert emu.emu.records(BASE, TABLE)[0]["fields"] == {"Id": "a"}
    # AND deleting it again is a 404, and the primary field cannot be deleted
    assert control.delete(url).status_code == 404
    primary = f"{emu.url}/__emulator/bases/{BASE}/tables/{TABLE}/fields/Id"
    assert control.delete(primary).status_code == 400


def test_renamed_table_answers_by_its_new_name_and_id_only(emu: Running) -> None:
    # GIVEN the Donations table
    control = emu.http(token=None)
    # WHEN it is renamed to Gifts through the control endpoint
    response = control.patch(
        f"{emu.url}/__emulator/bases/{BASE}/tables/{TABLE}", json={"name": "Gifts"}
    )
    assert response.status_code == 200
    # THEN the old name is unknown (403), while the new name and the table id work
    assert emu.http().get(emu.records_url()).status_code == 403
    emu.table("Gifts").create({"Id": "a"})
    assert emu.table("tblDonations00001").all()[0]["fields"] == {"Id": "a"}


def test_renames_refuse_names_already_taken_ignoring_case(emu: Running) -> None:
    # GIVEN the Donations table
    # WHEN a field is renamed to another field's name in another case, THEN it is refused
    with pytest.raises(ValueError, match="already named"):
        emu.emu.rename_field(BASE, TABLE, "Donor Id", "fundraiser id")
    # AND an unknown field or table is a KeyError (a 404 over HTTP)
    with pytest.raises(KeyError):
        emu.emu.rename_field(BASE, TABLE, "Nope", "X")
    response = emu.http(token=None).patch(
        f"{emu.url}/__emulator/bases/{BASE}/tables/Nope", json={"name": "X"}
    )
    assert response.status_code == 404


def test_world_changes_are_not_counted_as_api_requests(emu: Running) -> None:
    # GIVEN a running emulator
    control = emu.http(token=None)
    # WHEN the world is changed through the control endpoints
    control.patch(
        f"{emu.url}/__emulator/bases/{BASE}/tables/{TABLE}/fields/Id", json={"name": "Key"}
    )
    control.put(f"{emu.url}/__emulator/bases/appOther000000001", json=fundraisers_schema())
    # THEN no API request was counted
    assert emu.emu.stats.requests == 0
