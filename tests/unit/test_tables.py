"""init-tables' planner and applier, against fake schemas and a fake pyairtable (no socket)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from devstack import mirror

from poller.capacity import Capacity
from poller.fieldmap import FieldMap
from poller.pacing import Pacer
from poller.routes import parse_routes
from poller.schema import fit
from poller_ops.tables import InitTablesError, Plan, TableSpec, apply, plan, plan_from_schemas

BASE = "appDonations00001"
DONATIONS_MAP = FieldMap.parse(
    (Path(__file__).resolve().parents[2] / "src/poller/field_maps/donations.json").read_text()
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
    assert any('merges on "Nope", which the table does not have' in p for p in problems)
    assert any('merges on "On", a checkbox field' in p for p in problems)
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
        self.headers = {"Content-Type": "application/json"}
        self.text = json.dumps(body)

    def json(self) -> Any:
        return self._body


class Urls:
    def __init__(self, **urls: str) -> None:
        self.__dict__.update(urls)


class FakeApi:
    """The slice of pyairtable.Api that plan and apply use (`request`, and the meta URLs of
    a base and a table); refuses from call `fail_at` on. A created table gets an id."""

    def __init__(self, schemas: dict[str, Any], fail_at: int | None = None) -> None:
        self.schemas = schemas
        self.calls: list[tuple[Any, ...]] = []
        self.fail_at = fail_at

    def request(self, method: str, url: str, params: Any = None, json: Any = None) -> Any:
        if self.fail_at is not None and len(self.calls) >= self.fail_at:
            body = {"error": {"type": "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "message": "no"}}
            raise requests.HTTPError("403", response=FakeResponse(403, body))  # type: ignore[arg-type]
        self.calls.append((method, url, json))
        parts = url.split("/")
        if method == "GET":
            return self.schemas[parts[2]]
        if url.endswith("/tables"):
            return {"id": f"tblCreated{len(self.calls):07d}", "name": json["name"]}
        return {"id": f"fldCreated{len(self.calls):07d}", **json}

    def base(self, base_id: str) -> Any:
        return Urls(urls=Urls(tables=f"meta/bases/{base_id}/tables"))

    def table(self, base_id: str, table: str) -> Any:
        return Urls(urls=Urls(fields=f"meta/bases/{base_id}/tables/{table}/fields"))


class CountingPacer(Pacer):
    """A pacer that lets everything through at once and counts the slots taken."""

    def __init__(self) -> None:
        super().__init__(Capacity(1000.0), sleep=lambda s: None)
        self.slots = 0

    def send(self, slot: float, not_after: float) -> float | None:
        self.slots += 1
        return super().send(slot, not_after)


def pacers() -> tuple[dict[str, CountingPacer], Any]:
    made: dict[str, CountingPacer] = {}
    return made, lambda base: made.setdefault(base, CountingPacer())


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
    made, pace = pacers()
    # WHEN it is planned and applied
    result = plan(api, specs, limiter_for=pace)  # type: ignore[arg-type]
    done = apply(api, result, limiter_for=pace)  # type: ignore[arg-type]
    # THEN each schema was read once, and the changes were made in order, by the table's id
    assert [(c[0], c[1]) for c in api.calls] == [
        ("GET", f"meta/bases/{BASE}/tables"),
        ("GET", f"meta/bases/{other}/tables"),
        ("POST", f"meta/bases/{BASE}/tables"),
        ("POST", f"meta/bases/{BASE}/tables"),
        ("POST", f"meta/bases/{other}/tables/tblDonations00001/fields"),
    ]
    assert api.calls[-1][2] == {"name": "Note", "type": "singleLineText"}
    assert done == [
        'base appDonations00001: created table "Donations" with 6 fields',
        'base appDonations00001: created table "Fundraisers" with 1 fields',
        'base appOtherBase00001, table "Events": added field "Note" (singleLineText)',
    ]
    # AND every request took a slot of its own base's pacer
    assert {base: p.slots for base, p in made.items()} == {BASE: 3, other: 2}


def test_a_refusal_names_the_step_the_scope_and_what_was_done() -> None:
    # GIVEN a plan of two tables, and an Airtable that refuses the second create
    api = FakeApi({BASE: {"tables": []}}, fail_at=2)
    specs = [DONATIONS, TableSpec(BASE, "Fundraisers", field_map({"F": "F"}))]
    result = plan(api, specs, limiter_for=pacers()[1])  # type: ignore[arg-type]
    # WHEN it is applied
    with pytest.raises(InitTablesError) as raised:
        apply(api, result, limiter_for=pacers()[1])  # type: ignore[arg-type]
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
        plan(api, [DONATIONS], limiter_for=pacers()[1])  # type: ignore[arg-type]


def test_an_empty_plan_applies_nothing() -> None:
    # GIVEN a plan without changes
    api = FakeApi({})
    # WHEN it is applied, THEN no request is made
    assert apply(api, Plan()) == []  # type: ignore[arg-type]
    assert api.calls == []


# -- the faithful mirror: links, selects, attachments, versions, soft deletes ----------------

MIRROR = [TableSpec.of(route) for route in parse_routes(json.dumps(mirror.routes()))]


def test_the_mirror_s_routes_make_two_tables_that_fit_them() -> None:
    # GIVEN the routes contract's three routes and an empty base
    # WHEN the plan is made
    result = plan_from_schemas({BASE: {"tables": []}}, MIRROR)
    # THEN Fundraisers and Donations are created with every field a run writes, typed as
    # the contract's base has them, the link added once both tables exist
    assert not result.misfits
    created = {c.table: {f.name: f.type for f in c.fields} for c in result.create_tables}
    assert created == {
        "Fundraisers": {"Fundraiser Id": "singleLineText", "Name": "singleLineText"},
        "Donations": {
            "Id": "singleLineText",
            "Donation Amount": "currency",
            "Status": "singleSelect",
            "Tags": "multipleSelects",
            "Receipt": "multipleAttachments",
            "Version": "number",
            "Deleted": "checkbox",
        },
    }
    (link,) = result.add_fields
    assert (link.table, link.field.name, link.field.type, link.field.links_to) == (
        "Donations",
        "Fundraiser",
        "multipleRecordLinks",
        "Fundraisers",
    )
    # AND the selects created without declared choices are noted
    assert sum('"Tags" is created without options' in n for n in result.notes) == 1


def test_apply_creates_the_linked_table_first_and_links_it_by_its_new_id() -> None:
    # GIVEN the mirror's plan for an empty base
    api = FakeApi({BASE: {"tables": []}})
    result = plan(api, MIRROR, limiter_for=pacers()[1])  # type: ignore[arg-type]
    # WHEN applied
    apply(api, result, limiter_for=pacers()[1])  # type: ignore[arg-type]
    # THEN both tables come first, then the link field, on Donations' new id, pointing at
    # the id Airtable gave Fundraisers
    posts = api.calls[1:]
    assert [c[2]["name"] for c in posts] == ["Fundraisers", "Donations", "Fundraiser"]
    fundraisers_id = "tblCreated0000002"
    donations_id = "tblCreated0000003"
    assert posts[2][1] == f"meta/bases/{BASE}/tables/{donations_id}/fields"
    assert posts[2][2]["options"] == {"linkedTableId": fundraisers_id}


def test_a_linked_table_no_route_writes_is_created_with_its_key() -> None:
    # GIVEN a route linking to a Campaigns table that no route writes, in an empty base
    spec = TableSpec(
        BASE,
        "Gifts",
        field_map(
            {
                "Id": "Id",
                "Campaign": {
                    "field": "Campaign",
                    "type": "link",
                    "table": "Campaigns",
                    "key": "Code",
                },
            }
        ),
        ("Id",),
    )
    # WHEN planned
    result = plan_from_schemas({BASE: {"tables": []}}, [spec])
    # THEN Campaigns is created with its key field as the primary, and the link fits
    assert not result.misfits
    tables = {c.table: [f.name for f in c.fields] for c in result.create_tables}
    assert tables == {"Gifts": ["Id"], "Campaigns": ["Code"]}
    assert [a.field.links_to for a in result.add_fields] == ["Campaigns"]


def test_an_existing_linked_table_gets_its_missing_key_and_the_link_its_id() -> None:
    # GIVEN Donations and Fundraisers exist, Fundraisers without its key field
    schema = mirror.schema()
    fundraisers, donations = schema["tables"]
    fundraisers["fields"] = [f for f in fundraisers["fields"] if f["name"] != "Fundraiser Id"]
    donations["fields"] = [f for f in donations["fields"] if f["name"] != "Fundraiser"]
    # WHEN planned
    result = plan_from_schemas({BASE: schema}, MIRROR)
    # THEN the key is added to Fundraisers, and the link to Donations with Fundraisers' id
    assert [(a.table, a.field.name) for a in result.add_fields] == [
        ("Fundraisers", "Fundraiser Id"),
        ("Donations", "Fundraiser"),
    ]
    assert result.add_fields[1].linked_table_id == mirror.FUNDRAISERS
    assert not result.create_tables


def test_a_link_field_that_links_another_table_is_a_misfit() -> None:
    # GIVEN the contract's base, with Donations' link pointing at Donations itself
    schema = mirror.schema()
    link = next(f for f in schema["tables"][1]["fields"] if f["name"] == "Fundraiser")
    link["options"] = {"linkedTableId": mirror.DONATIONS}
    # WHEN planned THEN nothing is created and the link is reported, left alone
    result = plan_from_schemas({BASE: schema}, MIRROR)
    assert not result.has_changes
    assert any("links another table" in m.problem for m in result.misfits)


@pytest.mark.parametrize(
    ("entry", "airtable_type"),
    [(None, "number"), ({"field": "Updated", "type": "dateTime"}, "dateTime")],
)
def test_a_version_field_is_a_number_unless_its_entry_declares_a_date_time(
    entry: Any, airtable_type: str
) -> None:
    # GIVEN a versioned route whose version field is not in its table
    fields: dict[str, Any] = {"Id": "Id"}
    if entry is not None:
        fields["UpdatedAt"] = entry
    route = {
        "name": "versioned",
        "base": BASE,
        "table": "Donations",
        "fields": fields,
        "merge_on": ["Id"],
        "version": {"source": "UpdatedAt", "field": "Updated"},
    }
    (spec,) = [TableSpec.of(r) for r in parse_routes(json.dumps({"routes": [route]}))]
    schema = {"tables": [existing_table(("Id", "singleLineText"))]}
    # WHEN planned
    result = plan_from_schemas({BASE: schema}, [spec])
    # THEN the version field is added with that type, and the route fits the result
    (add,) = result.add_fields
    assert (add.field.name, add.field.type) == ("Updated", airtable_type)
    assert not result.misfits


def test_a_soft_delete_gets_its_checkbox_and_selects_their_declared_choices() -> None:
    # GIVEN a soft-delete route and a route with a multiple select of declared choices
    routes = {
        "routes": [
            {
                "name": "tagged",
                "when": {"Tags": {"exists": True}},
                "base": BASE,
                "table": "Donations",
                "fields": {
                    "Id": "Id",
                    "Tags": {"field": "Tags", "type": "multipleSelects", "choices": ["a", "b"]},
                },
                "merge_on": ["Id"],
            },
            {
                "name": "deleted",
                "base": BASE,
                "table": "Donations",
                "action": "delete",
                "fields": {"Id": "Id"},
                "merge_on": ["Id"],
                "deleted_field": "Gone",
            },
        ]
    }
    specs = [TableSpec.of(r) for r in parse_routes(json.dumps(routes))]
    schema = {"tables": [existing_table(("Id", "singleLineText"))]}
    # WHEN planned
    result = plan_from_schemas({BASE: schema}, specs)
    # THEN the checkbox and the select are added, the select with its choices, and both fit
    bodies = {a.field.name: a.field.body() for a in result.add_fields}
    assert bodies["Gone"]["type"] == "checkbox"
    assert bodies["Tags"]["options"] == {"choices": [{"name": "a"}, {"name": "b"}]}
    assert not result.misfits and not result.notes
    after = {
        "tables": [
            {
                **schema["tables"][0],
                "fields": [
                    *schema["tables"][0]["fields"],
                    *({"id": f"fldNew{n:011d}", **body} for n, body in enumerate(bodies.values())),
                ],
            }
        ]
    }
    assert all(fit(after, s.as_route()).problems == [] for s in specs)
