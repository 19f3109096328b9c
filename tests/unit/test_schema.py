"""Does a table fit its route? Pure: a meta-endpoint payload in, every problem out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import poller
from poller.fieldmap import FieldMap
from poller.routes import parse_routes
from poller.routing import Route, single_route
from poller.schema import Fit, find, fit, type_problem
from poller_ops.advice import advice

DONATIONS = FieldMap.parse(
    (Path(poller.__file__).parent / "field_maps" / "donations.json").read_text(encoding="utf-8")
)


def donations_schema() -> dict[str, Any]:
    """`GET /v0/meta/bases/{baseId}/tables` of a base with the Donations table."""
    return {
        "tables": [
            {
                "id": "tblDonations00001",
                "name": "Donations",
                "primaryFieldId": "fldDonationId0001",
                "fields": [
                    {"id": "fldDonationId0001", "name": "Id", "type": "singleLineText"},
                    {
                        "id": "fldCreationDate01",
                        "name": "Creation Date",
                        "type": "dateTime",
                        "options": {"timeZone": "utc"},
                    },
                    {"id": "fldDonorId0000001", "name": "Donor Id", "type": "singleLineText"},
                    {"id": "fldFundraiserId01", "name": "Fundraiser Id", "type": "singleLineText"},
                    {
                        "id": "fldDonationAmt001",
                        "name": "Donation Amount",
                        "type": "currency",
                        "options": {"precision": 2, "symbol": "$"},
                    },
                    {
                        "id": "fldDonorDisplay01",
                        "name": "Donor Display Name",
                        "type": "singleLineText",
                    },
                ],
            }
        ]
    }


def table_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema["tables"][0]["fields"]


def field_named(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in table_fields(schema) if f["name"] == name)


def route(
    field_map: FieldMap = DONATIONS, merge_on: tuple[str, ...] = ("Id",), table: str = "Donations"
) -> Route:
    return single_route("appDonations00001", table, field_map, merge_on)


def problems(
    schema: dict[str, Any],
    field_map: FieldMap = DONATIONS,
    merge_on: tuple[str, ...] = ("Id",),
    known: dict[str, str] | None = None,
) -> list[str]:
    return [str(p) for p in fit(schema, route(field_map, merge_on), known or {}).problems]


def test_the_donations_mapping_fits_the_donations_table():
    # GIVEN the shipped mapping and its table WHEN checked
    found = fit(donations_schema(), route())
    # THEN there is no problem, and every target is resolved to its field id
    assert found.problems == [] and found.table_id == "tblDonations00001"
    assert found.field_ids == {
        "Id": "fldDonationId0001",
        "Creation Date": "fldCreationDate01",
        "Donor Id": "fldDonorId0000001",
        "Fundraiser Id": "fldFundraiserId01",
        "Donation Amount": "fldDonationAmt001",
        "Donor Display Name": "fldDonorDisplay01",
    }
    assert find(found.fields, "fldDonationAmt001")["type"] == "currency"  # type: ignore[index]


def test_the_table_can_be_named_by_id():
    found = fit(donations_schema(), route(table="tblDonations00001"))
    assert found.problems == [] and found.table_id == "tblDonations00001"


def test_a_missing_field_is_named_with_a_suggestion():
    # GIVEN the table's "Donation Amount" renamed to "Donation Amount (USD)", ids not known yet
    schema = donations_schema()
    field_named(schema, "Donation Amount")["name"] = "Donation Amount (USD)"
    # WHEN checked THEN the problem names the field, its source and the likely new name
    (problem,) = fit(schema, route()).problems
    assert problem.kind == "field" and problem.variable == "FIELD_MAP"
    assert str(problem).startswith(
        'FIELD_MAP targets "Donation Amount" (from "DonationAmount"), which the table does not have'
    )
    assert 'did you mean "Donation Amount (USD)"?' in str(problem)


def test_a_renamed_field_is_found_by_the_id_it_resolved_to():
    # GIVEN a field renamed in Airtable after the route resolved it to its id
    schema = donations_schema()
    field_named(schema, "Donation Amount")["name"] = "Amount (USD)"
    known = {"": "tblDonations00001", "Donation Amount": "fldDonationAmt001"}
    # WHEN checked with the known ids THEN it fits, and the target keeps its id
    found = fit(schema, route(), known)
    assert found.problems == []
    assert found.field_ids["Donation Amount"] == "fldDonationAmt001"
    assert find(found.fields, "fldDonationAmt001")["type"] == "currency"  # type: ignore[index]


def test_a_renamed_table_is_found_by_the_id_it_resolved_to():
    # GIVEN the table renamed in Airtable after the route resolved it
    schema = donations_schema()
    schema["tables"][0]["name"] = "Gifts"
    # WHEN checked without, then with, the known table id
    (problem,) = fit(schema, route()).problems
    found = fit(schema, route(), {"": "tblDonations00001"})
    # THEN only the name is missing; by id the table is found and fits
    assert problem.kind == "table"
    assert found.problems == [] and found.table_id == "tblDonations00001"


def test_a_renamed_merge_field_is_checked_through_its_id():
    # GIVEN the merge field renamed and turned into a checkbox after it was resolved
    schema = donations_schema()
    field_named(schema, "Id").update(name="Donation Id", type="checkbox")
    plain = FieldMap.parse('{"Id": "Id"}')
    # WHEN checked with the known id THEN the merge field's new type is the problem
    found = fit(schema, route(plain), {"Id": "fldDonationId0001"})
    assert [str(p) for p in found.problems] == [
        'MERGE_ON merges on "Id", a checkbox field; merge fields must be text, number, date '
        "or select fields (not computed ones)"
    ]


def test_a_renamed_and_retyped_field_is_a_type_problem_not_a_missing_one():
    schema = donations_schema()
    field_named(schema, "Donation Amount").update(name="Amount", type="singleLineText")
    (problem,) = fit(schema, route(), {"Donation Amount": "fldDonationAmt001"}).problems
    assert problem.kind == "type" and 'currency to "Donation Amount"' in str(problem)


def test_a_type_that_does_not_fit_is_named():
    # GIVEN "Donation Amount" turned into a checkbox, "Creation Date" into a date-only field
    schema = donations_schema()
    field_named(schema, "Donation Amount")["type"] = "checkbox"
    field_named(schema, "Creation Date").update(type="date", options={})
    # WHEN checked THEN both are reported, in map order, as type problems
    found = fit(schema, route())
    assert [p.kind for p in found.problems] == ["type", "type"]
    creation, amount = (str(p) for p in found.problems)
    assert creation == (
        'FIELD_MAP writes dateTime to "Creation Date", a date field (a dateTime value fits '
        "dateTime, email, multilineText, phoneNumber, richText, singleLineText, url); change the "
        'entry\'s "type" or the target field'
    )
    assert amount.startswith(
        'FIELD_MAP writes currency to "Donation Amount", a checkbox field (a currency value fits '
    )
    assert amount.endswith('); change the entry\'s "type" or the target field')


@pytest.mark.parametrize(
    ("kind", "field_type", "fits"),
    [
        ("text", "singleLineText", True),
        ("text", "singleSelect", True),
        ("text", "number", False),
        ("number", "percent", True),
        ("integer", "rating", True),
        ("number", "rating", False),
        ("currency", "rating", False),
        ("checkbox", "checkbox", True),
        ("checkbox", "singleLineText", False),
        ("date", "dateTime", True),
        ("dateTime", "date", False),
        ("singleSelect", "multipleSelects", False),
    ],
)
def test_type_compatibility(kind, field_type, fits):
    schema = donations_schema()
    table_fields(schema).append({"id": "fldX", "name": "X", "type": field_type})
    field_map = FieldMap.parse(json.dumps({"x": {"field": "X", "type": kind}}))
    assert (problems(schema, field_map, ()) == []) is fits


def test_plain_entries_are_checked_for_existence_and_writability_only():
    # GIVEN a plain entry to a number field and one to a formula field
    schema = donations_schema()
    table_fields(schema).append({"id": "fldF", "name": "Total", "type": "formula"})
    field_map = FieldMap.parse('{"DonationAmount": "Donation Amount", "t": "Total"}')
    # WHEN checked THEN only the computed field is a problem
    assert problems(schema, field_map, ()) == [
        'FIELD_MAP targets "Total", a computed formula field that cannot be written'
    ]


def test_merge_keys_must_be_mergeable_types():
    # GIVEN MERGE_ON naming a checkbox field
    schema = donations_schema()
    table_fields(schema).append({"id": "fldG", "name": "Gift Aid", "type": "checkbox"})
    field_map = FieldMap.parse('{"Id": "Id", "GiftAid": {"field": "Gift Aid", "type": "checkbox"}}')
    # WHEN checked THEN MERGE_ON is named
    (problem,) = fit(schema, route(field_map, ("Id", "Gift Aid"))).problems
    assert problem.variable == "MERGE_ON"
    assert str(problem) == (
        'MERGE_ON merges on "Gift Aid", a checkbox field; merge fields must be text, number, date '
        "or select fields (not computed ones)"
    )


def test_a_merge_field_that_cannot_be_merged_on_is_a_merge_problem():
    schema = donations_schema()
    field_named(schema, "Id")["type"] = "checkbox"
    (problem,) = fit(schema, route(FieldMap.parse('{"Id": "Id"}'))).problems
    assert problem.kind == "merge"


@pytest.mark.parametrize("field_id", ["fldDonorId0000001", "fldNoSuchField001"])
def test_merging_on_a_field_id_the_route_does_not_fill_is_a_problem(field_id):
    # GIVEN MERGE_ON naming, by id, a field the mapping does not fill (or the table lacks)
    field_map = FieldMap.parse('{"Id": "Id", "DonationAmount": "Donation Amount"}')
    # WHEN checked THEN the table does not fit the route, and MERGE_ON is named
    found = fit(donations_schema(), route(field_map, (field_id,)))
    assert [p.variable for p in found.problems] == ["MERGE_ON"]


def test_declared_choices_must_be_options_of_the_select():
    schema = donations_schema()
    table_fields(schema).append(
        {
            "id": "fldC",
            "name": "Channel",
            "type": "singleSelect",
            "options": {"choices": [{"id": "sel1", "name": "web"}]},
        }
    )
    field_map = FieldMap.parse(
        '{"c": {"field": "Channel", "type": "singleSelect", "choices": ["web", "phone"]}}'
    )
    assert problems(schema, field_map, ()) == [
        "FIELD_MAP declares choices ['phone'] for \"Channel\", which are not options of the "
        "field (options: ['web'])"
    ]


def test_a_missing_table_is_the_only_problem_reported():
    (problem,) = fit(donations_schema(), route(table="Donation")).problems
    assert problem.kind == "table" and problem.variable == "AIRTABLE_TABLE"
    assert str(problem) == (
        'AIRTABLE_TABLE table "Donation" is not in the base (it has "Donations"); '
        'did you mean "Donations"?'
    )


def test_a_route_of_routes_names_the_routes_variable():
    # GIVEN a route of ROUTES whose table is missing and whose merge field cannot be merged on
    (donations,) = parse_routes(
        json.dumps(
            {
                "routes": [
                    {
                        "name": "donations",
                        "base": "appDonations00001",
                        "table": "Donations",
                        "fields": {"Flag": {"field": "Flag", "type": "checkbox"}},
                        "merge_on": ["Flag"],
                    }
                ]
            }
        )
    )
    schema = donations_schema()
    table_fields(schema).append({"id": "fldFlag0000000001", "name": "Flag", "type": "checkbox"})
    # WHEN checked THEN every problem names ROUTES, never the single-table variables
    assert [p.variable for p in fit(schema, donations).problems] == ["ROUTES"]
    missing = Route("donations", "appDonations00001", "Gifts", donations.field_map)
    assert [p.variable for p in fit(schema, missing).problems] == ["ROUTES"]


def test_an_empty_schema_means_every_table_is_missing():
    (problem,) = fit({}, route()).problems
    assert problem.kind == "table" and str(problem).startswith('AIRTABLE_TABLE table "Donations"')


# -- type_problem and advice ----------------------------------------------------------------


def test_type_problem_checks_one_entry_against_one_field():
    typed = DONATIONS.spec("Donation Amount")
    plain = FieldMap.parse('{"a": "Donation Amount"}').spec("Donation Amount")
    assert typed is not None and plain is not None
    currency = {"id": "fldA", "name": "Donation Amount", "type": "currency"}
    rollup = {"id": "fldA", "name": "Donation Amount", "type": "rollup"}
    assert type_problem(typed, currency) is None
    assert type_problem(plain, {**currency, "type": "checkbox"}) is None  # sent as it comes
    assert type_problem(plain, rollup) == (
        'targets "Donation Amount", a computed rollup field that cannot be written'
    )
    assert type_problem(typed, {**currency, "type": "url"}).startswith(
        'writes currency to "Donation Amount", a url field'
    )


def test_advice_suggests_a_type_for_plain_entries_to_typed_fields():
    # GIVEN plain entries to a currency field and to a text field, and a typed one
    field_map = FieldMap.parse(
        json.dumps(
            {
                "DonationAmount": "Donation Amount",
                "Id": "Id",
                "CreationDate": {"field": "Creation Date", "type": "dateTime"},
            }
        )
    )
    fields = table_fields(donations_schema())
    # WHEN advised THEN only the plain entry to the currency field gets a note, naming the type
    assert advice(route(field_map, ()), fields) == [
        '"Donation Amount" is a currency field but its entry has no "type": values are sent as '
        'they come; declare "type": "currency" to convert them and dead-letter bad ones before '
        "Airtable sees them"
    ]
    assert advice(route(), fields) == []


def test_a_fit_starts_empty():
    assert Fit().problems == [] and Fit().fields == ()


# -- versions, soft deletes, links and attachments ----------------------------------------------


def routes_route(**options: Any) -> Route:
    entry = {"name": "r", "base": "appDonations00001", "table": "Donations", **options}
    (parsed,) = parse_routes(json.dumps({"routes": [entry]}))
    return parsed


def test_the_version_must_be_stored_in_a_number_or_date_time_field():
    schema = donations_schema()
    fields = {"Id": "Id", "Seq": "Donor Id"}
    version = {"source": "Seq", "field": "Donor Id"}
    (problem,) = fit(schema, routes_route(fields=fields, merge_on=["Id"], version=version)).problems
    assert problem.kind == "type" and 'stores the version in "Donor Id"' in str(problem)
    table_fields(schema).append({"id": "fldSeq00000000001", "name": "Seq", "type": "number"})
    at_number = {"source": "Seq", "field": "Seq"}
    route = routes_route(fields={"Id": "Id", "Seq": "Seq"}, merge_on=["Id"], version=at_number)
    assert fit(schema, route).problems == []


def test_a_soft_delete_marks_a_checkbox_the_table_has():
    options = {"fields": {"Id": "Id"}, "merge_on": ["Id"], "action": "delete"}
    schema = donations_schema()
    (missing,) = fit(schema, routes_route(**options, deleted_field="Gone")).problems
    assert missing.kind == "field" and 'marks deletes in "Gone", the table does not have' in str(
        missing
    )
    (wrong,) = fit(schema, routes_route(**options, deleted_field="Donor Id")).problems
    assert wrong.kind == "type" and "a singleLineText field; it must be a checkbox" in str(wrong)
    table_fields(schema).append({"id": "fldGone0000000001", "name": "Gone", "type": "checkbox"})
    found = fit(schema, routes_route(**options, deleted_field="Gone"))
    assert found.problems == [] and found.field_ids["Gone"] == "fldGone0000000001"


def linked_schema() -> dict[str, Any]:
    schema = donations_schema()
    table_fields(schema).append(
        {
            "id": "fldFundraiser0001",
            "name": "Fundraiser",
            "type": "multipleRecordLinks",
            "options": {"linkedTableId": "tblFundraisers001"},
        }
    )
    schema["tables"].append(
        {
            "id": "tblFundraisers001",
            "name": "Fundraisers",
            "fields": [
                {"id": "fldFundKey0000001", "name": "Fundraiser Id", "type": "singleLineText"}
            ],
        }
    )
    return schema


def link(table: str = "Fundraisers", key: str = "Fundraiser Id") -> FieldMap:
    entry = {"field": "Fundraiser", "type": "link", "table": table, "key": key}
    return FieldMap.parse(json.dumps({"Id": "Id", "FundraiserId": entry}))


def test_a_link_entry_names_the_table_its_field_links_and_a_key_field_there():
    found = fit(linked_schema(), route(link()))
    assert found.problems == []
    (field_id, table_id, key) = found.links[0]
    assert (field_id, table_id, key["id"]) == (
        "fldFundraiser0001",
        "tblFundraisers001",
        "fldFundKey0000001",
    )
    (other,) = fit(linked_schema(), route(link(table="Donations"))).problems
    assert 'links "Fundraiser" to table "Donations", but the field links another table' in str(
        other
    )
    (no_key,) = fit(linked_schema(), route(link(key="Name"))).problems
    assert 'finds linked records by "Name", which table "Fundraisers" does not have' in str(no_key)


def test_plain_values_to_a_link_field_are_refused_only_with_typecast():
    plain = FieldMap.parse('{"Id": "Id", "FundraiserId": "Fundraiser"}')
    assert fit(linked_schema(), route(plain)).problems == []
    (problem,) = fit(linked_schema(), route(plain), typecast=True).problems
    assert "with AIRTABLE_TYPECAST on: Airtable would create a linked record" in str(problem)


def test_plain_values_to_an_attachment_field_are_refused():
    schema = donations_schema()
    table_fields(schema).append(
        {"id": "fldFile0000000001", "name": "File", "type": "multipleAttachments"}
    )
    (problem,) = fit(schema, route(FieldMap.parse('{"Id": "Id", "f": "File"}'))).problems
    assert 'writes plain values to "File", an attachment field; declare "type": "attachment"' in (
        str(problem)
    )
    typed = FieldMap.parse('{"Id": "Id", "f": {"field": "File", "type": "attachment"}}')
    assert fit(schema, route(typed)).problems == []
