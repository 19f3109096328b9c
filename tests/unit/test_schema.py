"""The schema check, pure: a meta-endpoint payload in, every problem out; and its start-up modes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from airtable_emulator import donations_schema

import poller
from poller.config import Config
from poller.errors import ConfigErrors
from poller.mapping import FieldMap
from poller.schema import (
    SchemaMismatchError,
    SchemaUnavailableError,
    schema_problems,
    verify_at_start,
)

DONATIONS = FieldMap.load(Path(poller.__file__).parent / "field_maps" / "donations.json")


def table_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema["tables"][0]["fields"]


def field_named(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in table_fields(schema) if f["name"] == name)


def problems(
    schema: dict[str, Any], field_map: FieldMap = DONATIONS, merge_on=("Id",)
) -> list[str]:
    return [str(p) for p in schema_problems(schema, "Donations", field_map, merge_on)]


def test_the_donations_mapping_fits_the_donations_table():
    assert problems(donations_schema()) == []


def test_the_table_can_be_named_by_id():
    assert schema_problems(donations_schema(), "tblDonations00001", DONATIONS, ("Id",)) == []


def test_a_renamed_field_is_named_with_a_suggestion():
    # GIVEN the table's "Donation Amount" renamed to "Donation Amount (USD)"
    schema = donations_schema()
    field_named(schema, "Donation Amount")["name"] = "Donation Amount (USD)"
    # WHEN checked THEN the problem names the field, its source and the likely new name
    [problem] = problems(schema)
    assert problem.startswith(
        'FIELD_MAP targets "Donation Amount" (from "DonationAmount"), which the table does not have'
    )
    assert 'did you mean "Donation Amount (USD)"?' in problem


def test_a_type_that_does_not_fit_is_named():
    # GIVEN "Donation Amount" turned into a checkbox, "Creation Date" into a date-only field
    schema = donations_schema()
    field_named(schema, "Donation Amount")["type"] = "checkbox"
    field_named(schema, "Creation Date").update(type="date", options={})
    # WHEN checked THEN both are reported
    assert problems(schema) == [
        'FIELD_MAP writes dateTime to "Creation Date", a date field (a dateTime value fits '
        "dateTime, email, multilineText, phoneNumber, richText, singleLineText, url); change the "
        'entry\'s "type" or the target field',
        'FIELD_MAP writes currency to "Donation Amount", a checkbox field (a currency value '
        'fits currency, duration, number, percent); change the entry\'s "type" or the target field',
    ]


@pytest.mark.parametrize(
    ("kind", "field_type", "fits"),
    [
        ("text", "singleLineText", True),
        ("text", "singleSelect", True),
        ("text", "number", False),
        ("number", "percent", True),
        ("integer", "rating", True),
        ("number", "rating", False),
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
    assert problems(schema, field_map, ("Id", "Gift Aid")) == [
        'MERGE_ON names "Gift Aid", a checkbox field; merge fields must be text, number, date '
        "or select fields (not computed ones)"
    ]


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
    [problem] = [str(p) for p in schema_problems(donations_schema(), "Donation", DONATIONS)]
    assert (
        problem
        == 'AIRTABLE_TABLE "Donation" is not in the base (it has "Donations"); did you mean "Donations"?'
    )


# -- verify_at_start: the modes, and Airtable's answers --------------------------------------


def fake_table(answer: Any) -> SimpleNamespace:
    """A pyairtable Table as far as the check uses it: `api.get(base.urls.tables)`."""
    calls: list[str] = []

    def get(url: str) -> Any:
        calls.append(url)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return SimpleNamespace(
        api=SimpleNamespace(get=get),
        base=SimpleNamespace(urls=SimpleNamespace(tables="meta/bases/app/tables")),
        calls=calls,
    )


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status}", response=response)


def verify(table: Any, mode: str = "auto", field_map: FieldMap = DONATIONS) -> Any:
    return verify_at_start(table, "Donations", field_map, ("Id",), mode)


def test_a_mismatch_raises_one_error_listing_every_problem(caplog):
    # GIVEN a table with a renamed field and a wrong type
    schema = donations_schema()
    field_named(schema, "Donor Id")["name"] = "Donor"
    field_named(schema, "Donation Amount")["type"] = "singleLineText"
    # WHEN checked at start
    with caplog.at_level(logging.ERROR), pytest.raises(SchemaMismatchError) as raised:
        verify(fake_table(schema))
    # THEN one error (a ConfigErrors) lists both, and says nothing was received
    text = str(raised.value)
    assert isinstance(raised.value, ConfigErrors) and len(raised.value.errors) == 2
    assert text.startswith('table "Donations" does not fit the mapping (2 problem(s)); no message')
    assert '"Donor Id"' in text and 'currency to "Donation Amount"' in text
    # AND it is logged once as a structured line with the problems
    [record] = [r for r in caplog.records if r.name == "poller.schema"]
    assert record.problems == [str(e) for e in raised.value.errors]


def test_a_matching_table_passes():
    check = verify(fake_table(donations_schema()))
    assert check.checked and check.fields == 6


def test_off_does_not_call_airtable():
    table = fake_table(AssertionError("must not be called"))
    assert not verify(table, "off").checked and table.calls == []


def test_without_the_schema_scope_auto_skips_and_logs_why(caplog):
    # GIVEN a token without schema.bases:read (403 on the meta endpoint)
    with caplog.at_level(logging.WARNING, logger="poller.schema"):
        check = verify(fake_table(http_error(403)))
    # THEN the check is skipped, and one warning says how to enable it
    assert not check.checked and "schema.bases:read" in check.skipped_because
    [record] = caplog.records
    assert record.getMessage().startswith("schema check skipped: the token cannot read")


@pytest.mark.parametrize(
    ("mode", "status", "variable"),
    [
        ("on", 403, "SCHEMA_CHECK"),
        ("auto", 401, "AIRTABLE_TOKEN"),
        ("auto", 404, "AIRTABLE_BASE_ID"),
    ],
)
def test_refusals_that_no_run_survives_are_config_errors(mode, status, variable):
    with pytest.raises(ConfigErrors) as raised:
        verify(fake_table(http_error(status)), mode)
    assert [e.variable for e in raised.value.errors] == [variable]


@pytest.mark.parametrize(
    "failure", [http_error(503), requests.ConnectionError("refused"), requests.Timeout("slow")]
)
def test_an_unreadable_schema_is_skipped_in_auto_and_fatal_in_on(failure):
    assert not verify(fake_table(failure), "auto").checked
    with pytest.raises(SchemaUnavailableError, match="no message was received"):
        verify(fake_table(failure), "on")


def test_the_meta_request_takes_a_slot_of_the_rate_limiter():
    # GIVEN the container's limiter (the meta GET counts against the base's 5 req/s too)
    events: list[str] = []
    limiter = SimpleNamespace(acquire=lambda **_: events.append("acquire") or True)
    table = fake_table(donations_schema())
    table.api.get = lambda url: events.append("get") or donations_schema()
    # WHEN the check runs THEN it takes a slot before the request
    verify_at_start(table, "Donations", DONATIONS, (), "auto", limiter=limiter)
    assert events == ["acquire", "get"]


@pytest.mark.parametrize(("raw", "mode"), [("", "auto"), ("ON", "on"), ("off", "off")])
def test_schema_check_mode_is_read_from_the_environment(raw, mode):
    env = {
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/donations",
        "AIRTABLE_BASE_ID": "appDonations00001",
        "AIRTABLE_TABLE": "Donations",
        "AIRTABLE_TOKEN": "pat",
        "FIELD_MAP": '{"Id": "Id"}',
        "SCHEMA_CHECK": raw,
    }
    assert Config.from_env(env).schema_check == mode
    with pytest.raises(
        ConfigErrors, match="SCHEMA_CHECK must be one of auto, on, off, got 'maybe'"
    ):
        Config.from_env({**env, "SCHEMA_CHECK": "maybe"})
