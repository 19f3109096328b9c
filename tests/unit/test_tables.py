"""init-tables' planner and applier, against fake schemas and a fake pyairtable (no socket)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from poller.mapping import FieldMap
from poller.policies import RateLimiter
from poller_ops.tables import InitTablesError, Plan, TableSpec, apply, plan, plan_from_schemas

BASE = "appDonations00001"
DONATIONS_MAP = FieldMap.load(
    Path(__file__).resolve().parents[2] / "src" / "poller" / "field_maps" / "donations.json"
)
DONATIONS = TableSpec(BASE, "Donations", DONATIONS_MAP, ("Id",))


def field_map(data: dict[str, Any]) -> FieldMap:
    return FieldMap.parse(json.dumps(data))


def existing_table(*fields: tuple[str, str], name: str = "Donations") -> dict[str, Any]:
    return {
        "id": "tblDonations00001",
        "name": name,
        "primaryFieldId": "fld0",
        "fields": [
            {"id": f"fld{n}", "name": field_name, "type": field_type}
            for n, (field_name, field_type) in enumerate(fields)
        ],
    }


def test_a_missing_table_is_created_with_typed_fields_and_the_merge_field_first() -> None:
    # GIVEN an empty base and the typed Donations mapping, merging on Id
    # WHEN the plan is made
    result = plan_from_schemas({BASE: {"tables": []}}, [DONATIONS])
    # THEN one table is created, Id first (primary), each field with Airtable's options
    assert result.has_changes and not result.misfits and not result.add_fields
    (create,) = result.create_tables
    bodies = {f.name: f.body() for f in create.fields}
    assert create.fields[0].name == "Id"
    assert bodies == {
        "Id": {"name": "Id", "type": "singleLineText"},
        "Creation Date": {
            "name": "Creation Date",
            "type": "dateTime",
            "options": {
                "dateFormat": {"name": "iso", "format": "YYYY-MM-DD"},
                "timeFormat": {"name": "24hour", "format": "HH:mm"},
                "timeZone": "utc",
            },
        },
        "Donor Id": {"name": "Donor Id", "type": "singleLineText"},
        "Fundraiser Id": {"name": "Fundraiser Id", "type": "singleLineText"},
        "Donation Amount": {
            "name": "Donation Amount",
            "type": "currency",
            "options": {"precision": 2, "symbol": "$"},
        },
        "Donor Display Name": {"name": "Donor Display Name", "type": "singleLineText"},
    }
    assert result.describe()[0].startswith(
        'base appDonations00001: create table "Donations" with "Id" (singleLineText) (primary)'
    )


@pytest.mark.parametrize(
    ("entry", "airtable_type", "options"),
    [
        ("X", "singleLineText", None),
        ({"field": "X", "type": "number"}, "number", {"precision": 8}),
        ({"field": "X", "type": "integer"}, "number", {"precision": 0}),
        ({"field": "X", "type": "percent"}, "percent", {"precision": 8}),
        ({"field": "X", "type": "checkbox"}, "checkbox", {"icon": "check", "color": "greenBright"}),
        (
            {"field": "X", "type": "date"},
            "date",
            {"dateFormat": {"name": "iso", "format": "YYYY-MM-DD"}},
        ),
        (
            {"field": "X", "type": "singleSelect", "choices": ["web", "app"]},
            "singleSelect",
            {"choices": [{"name": "web"}, {"name": "app"}]},
        ),
    ],
)
def test_each_mapping_type_gets_its_airtable_type(
    entry: Any, airtable_type: str, options: Any
) -> None:
    # GIVEN a table that has only its key, and a mapping with one more entry
    spec = TableSpec(BASE, "Donations", field_map({"Id": "Id", "x": entry}))
    schema = {BASE: {"tables": [existing_table(("Id", "singleLineText"))]}}
    # WHEN the plan is made
    result = plan_from_schemas(schema, [spec])
    # THEN the missing field is added with the type and options Airtable requires
    (add,) = result.add_fields
    assert (add.field.type, add.field.options) == (airtable_type, options)
    assert not result.create_tables and not result.misfits


def test_a_complete_table_needs_nothing() -> None:
    # GIVEN a table with every mapped field, of fitting types
    table = existing_table(
        ("Id", "singleLineText"),
        ("Creation Date", "dateTime"),
        ("Donor Id", "singleLineText"),
        ("Fundraiser Id", "multilineText"),
        ("Donation Amount", "currency"),
        ("Donor Display Name", "singleLineText"),
    )
    # WHEN the plan is made
    result = plan_from_schemas({BASE: {"tables": [table]}}, [DONATIONS])
    # THEN it has no changes and says so
    assert not result.has_changes and not result.misfits
    assert result.describe() == [
        'base appDonations00001, table "Donations": every mapped field exists'
    ]


def test_an_existing_field_of_the_wrong_type_is_a_misfit_and_left_alone() -> None:
    # GIVEN a table whose Donation Amount is a checkbox and that lacks Donor Id
    table = existing_table(
        ("Id", "singleLineText"),
        ("Creation Date", "dateTime"),
        ("Fundraiser Id", "singleLineText"),
        ("Donation Amount", "checkbox"),
        ("Donor Display Name", "singleLineText"),
    )
    # WHEN the plan is made
    result = plan_from_schemas({BASE: {"tables": [table]}}, [DONATIONS])
    # THEN Donor Id is added, and the checkbox is reported, with no change planned for it
    assert [a.field.name for a in result.add_fields] == ["Donor Id"]
    (misfit,) = result.misfits
    assert 'writes currency to "Donation Amount", a checkbox field' in misfit.problem
    assert any("left as it is" in line and "Donation Amount" in line for line in result.describe())
    assert result.to_dict()["misfits"] == [
        {"base": BASE, "table": "Donations", "problem": misfit.problem}
    ]


def test_a_name_that_differs_only_in_case_is_not_created_twice() -> None:
    # GIVEN a table with "donor id" while the mapping writes "Donor Id"
    spec = TableSpec(BASE, "Donations", field_map({"Id": "Id", "UserId": "Donor Id"}))
    table = existing_table(("Id", "singleLineText"), ("donor id", "singleLineText"))
    # WHEN the plan is made
    result = plan_from_schemas({BASE: {"tables": [table]}}, [spec])
    # THEN nothing is created (Airtable would refuse the duplicate) and it is explained once
    assert not result.has_changes
    (misfit,) = result.misfits
    assert "unique ignoring case" in misfit.problem


def test_merge_fields_and_ids_that_cannot_be_planned_are_misfits() -> None:
    # GIVEN a checkbox merge field, a merge field nobody maps, and a table named by an id
    checkbox_key = TableSpec(
        BASE, "Flags", field_map({"on": {"field": "On", "type": "checkbox"}}), ("On", "Nope")
    )
    by_id = TableSpec(BASE, "tblDoesNotExist01", field_map({"Id": "Id"}))
    # WHEN the plan is made
    result = plan_from_schemas({BASE: {"tables": []}}, [checkbox_key, by_id])
    problems = [m.problem for m in result.misfits]
    # THEN each is reported; the Flags table still gets a text primary field it can have
    assert any('merge field "Nope"' in p for p in problems)
    assert any('names "On", a checkbox field' in p for p in problems)
    assert any("no table has this id" in p for p in problems)
    (create,) = result.create_tables
    assert [(f.name, f.type) for f in create.fields] == [
        ("Name", "singleLineText"),
        ("On", "checkbox"),
    ]


def test_two_routes_into_one_table_make_one_table() -> None:
    # GIVEN two mappings into the same new table
    first = TableSpec(BASE, "Events", field_map({"Id": "Id", "a": "A"}), ("Id",))
    second = TableSpec(
        BASE, "Events", field_map({"Id": "Id", "b": {"field": "B", "type": "number"}})
    )
    # WHEN the plan is made
    result = plan_from_schemas({BASE: {"tables": []}}, [first, second])
    # THEN one table holds the union of their fields, each once
    (create,) = result.create_tables
    assert [f.name for f in create.fields] == ["Id", "A", "B"]


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self._body = body

    def json(self) -> Any:
        return self._body


class FakeTable:
    def __init__(self, api: FakeApi, base_id: str, name: str) -> None:
        self.api, self.base_id, self.name = api, base_id, name

    def create_field(self, name: str, field_type: str, options: Any = None) -> None:
        self.api.call(("create_field", self.base_id, self.name, name, field_type, options))


class FakeBase:
    def __init__(self, api: FakeApi, base_id: str) -> None:
        self.api, self.id = api, base_id
        self.urls = type("Urls", (), {"tables": f"meta/bases/{base_id}/tables"})()

    def create_table(self, name: str, fields: list[dict[str, Any]]) -> None:
        self.api.call(("create_table", self.id, name, [f["name"] for f in fields]))


class FakeApi:
    """The slice of pyairtable.Api that plan and apply use; refuses from call `fail_at` on."""

    def __init__(self, schemas: dict[str, Any], fail_at: int | None = None) -> None:
        self.schemas = schemas
        self.calls: list[tuple[Any, ...]] = []
        self.fail_at = fail_at

    def call(self, what: tuple[Any, ...]) -> None:
        if self.fail_at is not None and len(self.calls) >= self.fail_at:
            body = {"error": {"type": "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "message": "no"}}
            raise requests.HTTPError("403", response=FakeResponse(403, body))  # type: ignore[arg-type]
        self.calls.append(what)

    def get(self, url: str) -> Any:
        self.call(("get", url))
        return self.schemas[url.split("/")[2]]

    def base(self, base_id: str) -> FakeBase:
        return FakeBase(self, base_id)

    def table(self, base_id: str, name: str) -> FakeTable:
        return FakeTable(self, base_id, name)


def unpaced(_: str) -> RateLimiter:
    return RateLimiter(1000.0)


def test_plan_reads_each_base_once_and_apply_makes_tables_then_fields() -> None:
    # GIVEN base A without Donations, and base B whose Events table lacks a field
    other = "appOtherBase00001"
    api = FakeApi(
        {
            BASE: {"tables": []},
            other: {"tables": [existing_table(("Id", "singleLineText"), name="Events")]},
        }
    )
    specs = [
        DONATIONS,
        TableSpec(other, "Events", field_map({"Id": "Id", "n": "Note"})),
        TableSpec(BASE, "Fundraisers", field_map({"FundraiserId": "Fundraiser Id"})),
    ]
    # WHEN it is planned and applied
    result = plan(api, specs)  # type: ignore[arg-type]
    done = apply(api, result, limiter_for=unpaced)  # type: ignore[arg-type]
    # THEN each schema was read once, and the changes were made in order
    assert [c[0] for c in api.calls] == [
        "get",
        "get",
        "create_table",
        "create_table",
        "create_field",
    ]
    # (by the table's id, which pyairtable needs no schema read to resolve)
    assert api.calls[-1] == (
        "create_field",
        other,
        "tblDonations00001",
        "Note",
        "singleLineText",
        None,
    )
    assert done == [
        'base appDonations00001: created table "Donations" with 6 fields',
        'base appDonations00001: created table "Fundraisers" with 1 fields',
        'base appOtherBase00001, table "Events": added field "Note" (singleLineText)',
    ]


def test_a_refusal_names_the_step_the_scope_and_what_was_done() -> None:
    # GIVEN a plan of two tables, and an Airtable that refuses the second create
    api = FakeApi({BASE: {"tables": []}}, fail_at=2)
    specs = [DONATIONS, TableSpec(BASE, "Fundraisers", field_map({"F": "F"}))]
    result = plan(api, specs)  # type: ignore[arg-type]
    # WHEN it is applied
    with pytest.raises(InitTablesError) as raised:
        apply(api, result, limiter_for=unpaced)  # type: ignore[arg-type]
    # THEN the error says what failed, why, what to do, and what was already done
    message = str(raised.value)
    assert 'could not create table "Fundraisers"' in message
    assert "403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND" in message
    assert "schema.bases:write" in message
    assert 'done before this: base appDonations00001: created table "Donations"' in message


def test_an_unreadable_schema_is_a_clear_error() -> None:
    # GIVEN an Airtable that refuses the schema read
    api = FakeApi({}, fail_at=0)
    # WHEN a plan is made, THEN it fails naming the read scope
    with pytest.raises(InitTablesError, match=r"schema\.bases:read"):
        plan(api, [DONATIONS])  # type: ignore[arg-type]


def test_an_empty_plan_applies_nothing() -> None:
    # GIVEN a plan without changes
    api = FakeApi({})
    # WHEN it is applied, THEN no request is made
    assert apply(api, Plan()) == []  # type: ignore[arg-type]
    assert api.calls == []
