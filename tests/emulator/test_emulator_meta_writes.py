"""The meta API's writes: create a table, create a field (scope schema.bases:write)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from airtable_emulator import SCOPE_READ, SCOPE_SCHEMA, SCOPE_WRITE
from emulator_testkit import BASE, TABLE, TOKEN, Running, error_of

TABLES_URL = "/v0/meta/bases/{base}/tables"
FIELDS_URL = "/v0/meta/bases/{base}/tables/{table}/fields"


def test_create_table_through_pyairtable_answers_the_table_model(emu: Running) -> None:
    # GIVEN a token with schema.bases:write
    base = emu.api().base(BASE)
    # WHEN a table is created with typed fields
    created = base.create_table(
        "Fundraisers",
        [
            {"name": "Fundraiser Id", "type": "singleLineText"},
            {"name": "Goal", "type": "currency", "options": {"precision": 2, "symbol": "€"}},
            {
                "name": "Open",
                "type": "checkbox",
                "options": {"icon": "check", "color": "greenBright"},
            },
            {
                "name": "Started",
                "type": "dateTime",
                "options": {
                    "dateFormat": {"name": "iso"},
                    "timeFormat": {"name": "24hour"},
                    "timeZone": "utc",
                },
            },
        ],
        description="One per FundraiserCreated",
    )
    # THEN the table exists with generated ids, its first field as primary, and full options
    schema = emu.emu.schema(BASE)["tables"][1]
    assert created.id == schema["id"] and schema["id"].startswith("tbl")
    assert schema["primaryFieldId"] == schema["fields"][0]["id"]
    assert schema["description"] == "One per FundraiserCreated"
    assert schema["fields"][3]["options"]["dateFormat"] == {"name": "iso", "format": "YYYY-MM-DD"}
    # AND records can be written to it at once
    created.create({"Fundraiser Id": "f1", "Goal": 10, "Open": True})
    assert len(emu.emu.records(BASE, "Fundraisers")) == 1


def test_create_field_through_pyairtable_answers_the_field_model(emu: Running) -> None:
    # GIVEN the Donations table
    table = emu.table()
    # WHEN a single select field is created
    field = table.create_field(
        "Channel", "singleSelect", description="where", options={"choices": [{"name": "web"}]}
    )
    # THEN it is in the schema, with a choice id, and takes writes by name
    assert field.id.startswith("fld") and field.name == "Channel"
    stored = emu.emu.schema(BASE)["tables"][0]["fields"][-1]
    assert stored["options"]["choices"][0]["id"].startswith("sel")
    assert stored["description"] == "where"
    table.create({"Id": "a", "Channel": "web"})


def _post(emu: Running, path: str, body: Any, token: str = TOKEN) -> requests.Response:
    return emu.http(token=token).post(emu.url + path, json=body)


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"name": "Donor Id", "type": "singleLineText"}, "DUPLICATE_OR_EMPTY_FIELD_NAME"),
        ({"name": "donor id", "type": "singleLineText"}, "DUPLICATE_OR_EMPTY_FIELD_NAME"),
        ({"name": " ", "type": "singleLineText"}, "DUPLICATE_OR_EMPTY_FIELD_NAME"),
        (
            {"name": "A", "type": "currency", "options": {"precision": 2}},
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        ),
        ({"name": "A", "type": "currency"}, "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE"),
        ({"name": "A", "type": "number"}, "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE"),
        (
            {"name": "A", "type": "percent", "options": {"precision": 9}},
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        ),
        ({"name": "A", "type": "date"}, "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE"),
        (
            {
                "name": "A",
                "type": "dateTime",
                "options": {"dateFormat": {"name": "iso"}, "timeZone": "utc"},
            },
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        ),
        (
            {"name": "A", "type": "checkbox", "options": {"icon": "check"}},
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        ),
        (
            {"name": "A", "type": "checkbox", "options": {"icon": "tick", "color": "greenBright"}},
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        ),
        ({"name": "A", "type": "singleSelect"}, "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE"),
        (
            {"name": "A", "type": "singleLineText", "options": {}},
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        ),
        ({"name": "A", "type": "formula", "options": {"formula": "1"}}, "INVALID_REQUEST_UNKNOWN"),
        ({"name": "A", "type": "noSuchType"}, "INVALID_REQUEST_UNKNOWN"),
        ({"name": "A", "type": "singleLineText", "color": "red"}, "INVALID_REQUEST_UNKNOWN"),
    ],
)
def test_create_field_validates_like_airtable(emu: Running, body: Any, error_type: str) -> None:
    # GIVEN an invalid create-field body
    # WHEN it is posted
    response = _post(emu, FIELDS_URL.format(base=BASE, table=TABLE), body)
    # THEN it is a 422 of the expected type and no field was added
    assert response.status_code == 422
    assert error_of(response)["type"] == error_type
    assert len(emu.emu.schema(BASE)["tables"][0]["fields"]) == 6


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (
            {"name": "donations", "fields": [{"name": "A", "type": "singleLineText"}]},
            "DUPLICATE_TABLE_NAME",
        ),
        (
            {
                "name": "T",
                "fields": [{"name": "A", "type": "singleLineText"}, {"name": "a", "type": "email"}],
            },
            "DUPLICATE_OR_EMPTY_FIELD_NAME",
        ),
        ({"name": "T", "fields": []}, "INVALID_REQUEST_UNKNOWN"),
        (
            {"name": "", "fields": [{"name": "A", "type": "singleLineText"}]},
            "INVALID_REQUEST_UNKNOWN",
        ),
        (
            {
                "name": "T",
                "fields": [
                    {
                        "name": "A",
                        "type": "checkbox",
                        "options": {"icon": "check", "color": "greenBright"},
                    }
                ],
            },
            "INVALID_REQUEST_UNKNOWN",
        ),
        (
            {"name": "T", "fields": [{"name": "A", "type": "number"}]},
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
        ),
        (
            {
                "name": "T",
                "primaryFieldId": "A",
                "fields": [{"name": "A", "type": "singleLineText"}],
            },
            "INVALID_REQUEST_UNKNOWN",
        ),
    ],
)
def test_create_table_validates_like_airtable(emu: Running, body: Any, error_type: str) -> None:
    # GIVEN an invalid create-table body
    # WHEN it is posted
    response = _post(emu, TABLES_URL.format(base=BASE), body)
    # THEN it is a 422 of the expected type and no table was added
    assert response.status_code == 422
    assert error_of(response)["type"] == error_type
    assert len(emu.emu.schema(BASE)["tables"]) == 1


def test_schema_writes_need_the_schema_write_scope(start: Callable[..., Running]) -> None:
    # GIVEN a token with every scope but schema.bases:write
    running = start(tokens={TOKEN: (SCOPE_READ, SCOPE_WRITE, SCOPE_SCHEMA)})
    table_body = {"name": "T", "fields": [{"name": "A", "type": "singleLineText"}]}
    # WHEN it creates a table or a field
    responses = [
        _post(running, TABLES_URL.format(base=BASE), table_body),
        _post(running, FIELDS_URL.format(base=BASE, table=TABLE), {"name": "B", "type": "email"}),
    ]
    # THEN both are 403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND and nothing changed
    for response in responses:
        assert response.status_code == 403
        assert error_of(response)["type"] == "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND"
    assert len(running.emu.schema(BASE)["tables"]) == 1
    # AND a field for an unknown table is a 403 too
    unknown = _post(
        running, FIELDS_URL.format(base=BASE, table="Nope"), {"name": "B", "type": "email"}
    )
    assert unknown.status_code == 403


def test_schema_writes_count_against_the_base_rate_limit(start: Callable[..., Running]) -> None:
    # GIVEN a limit of 1 request/s (the window logic is the same as at 5/s)
    running = start(rate_limit_rps=1, lockout_seconds=5)
    url = FIELDS_URL.format(base=BASE, table=TABLE)
    # WHEN two fields are created back to back
    statuses = [
        _post(running, url, {"name": f"Extra {n}", "type": "singleLineText"}).status_code
        for n in range(2)
    ]
    # THEN the second is a 429 that starts a lockout, during which a table create is a 429 too
    assert statuses == [200, 429]
    assert running.emu.stats.lockouts == 1
    table_body = {"name": "T", "fields": [{"name": "A", "type": "singleLineText"}]}
    assert _post(running, TABLES_URL.format(base=BASE), table_body).status_code == 429
