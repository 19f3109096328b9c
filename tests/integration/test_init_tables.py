"""init-tables against the Airtable emulator over HTTP, with the real pyairtable, at
Airtable's real 5 requests/s per base (the emulator counts meta requests too). A table it
creates fits the mapping by the rules of the check before every run (`poller.schema.fit`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from airtable_emulator import SCOPE_READ, SCOPE_SCHEMA, SCOPE_WRITE, Emulator, EmulatorConfig
from pyairtable import Api

from poller.fieldmap import FieldMap
from poller.routing import single_route
from poller.schema import fit
from poller_ops.tables import InitTablesError, TableSpec, apply, per_base_limiters, plan

BASE = "appInitTables0001"
TOKEN = "patInitTables"
READ_ONLY_SCHEMA = "patSchemaReader"
DONATIONS_MAP = FieldMap.parse(
    (Path(__file__).resolve().parents[2] / "src/poller/field_maps/donations.json").read_text()
)
ROUTE = single_route(BASE, "Donations", DONATIONS_MAP, ("Id",))


SPEC = TableSpec(BASE, "Donations", DONATIONS_MAP, ("Id",))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An empty base (one unrelated table), the real rate limit, two tokens."""
    emu = Emulator(
        EmulatorConfig(
            bases={},
            tokens={READ_ONLY_SCHEMA: (SCOPE_READ, SCOPE_WRITE, SCOPE_SCHEMA)},
            rate_limit_rps=5,
            lockout_seconds=30,
        )
    )
    emu.define_base(
        BASE,
        {"tables": [{"name": "Notes", "fields": [{"name": "Text", "type": "singleLineText"}]}]},
    )
    emu.add_token(TOKEN)  # every scope, schema.bases:write included
    with emu.serve():
        yield emu


def api(emulator: Emulator, token: str = TOKEN) -> Api:
    return Api(token, endpoint_url=emulator.url, retry_strategy=None, timeout=(5, 10))


def test_init_tables_creates_the_table_then_finds_everything_exists(emulator: Emulator) -> None:
    # GIVEN a base without the Donations table
    client, pace = api(emulator), per_base_limiters()
    # WHEN the plan is made and applied
    first = plan(client, [SPEC], limiter_for=pace)
    done = apply(client, first, limiter_for=pace)
    # THEN the table exists with the mapped fields, Id as its primary field, and it fits
    # the mapping by the rules of the check before every run
    assert done == [f'base {BASE}: created table "Donations" with 6 fields']
    schema = emulator.schema(BASE)
    table = next(t for t in schema["tables"] if t["name"] == "Donations")
    types = {f["name"]: f["type"] for f in table["fields"]}
    assert types == {
        "Id": "singleLineText",
        "Creation Date": "dateTime",
        "Donor Id": "singleLineText",
        "Fundraiser Id": "singleLineText",
        "Donation Amount": "currency",
        "Donor Display Name": "singleLineText",
    }
    assert table["primaryFieldId"] == table["fields"][0]["id"]
    assert fit(schema, ROUTE).problems == []
    # AND an upsert of a donation works at once
    client.table(BASE, "Donations").batch_upsert(
        [
            {
                "fields": {
                    "Id": "d1",
                    "Donation Amount": 25.0,
                    "Creation Date": "2018-05-01T12:00:00.000Z",
                }
            }
        ],
        key_fields=["Id"],
    )
    # WHEN a second plan is made
    second = plan(client, [SPEC], limiter_for=pace)
    # THEN it has nothing to do and says that everything exists
    assert not second.has_changes and not second.misfits
    assert second.describe() == [f'base {BASE}, table "Donations": every mapped field exists']
    assert apply(client, second, limiter_for=pace) == []
    # AND Airtable's limit was never hit
    assert emulator.stats.throttled == 0


def test_a_field_of_the_wrong_type_is_reported_and_left_alone(emulator: Emulator) -> None:
    # GIVEN the table created, then Donation Amount turned into a checkbox and Donor Id deleted
    client, pace = api(emulator), per_base_limiters()
    apply(client, plan(client, [SPEC], limiter_for=pace), limiter_for=pace)
    emulator.retype_field(BASE, "Donations", "Donation Amount", "checkbox")
    emulator.delete_field(BASE, "Donations", "Donor Id")
    # WHEN it is planned and applied again
    result = plan(client, [SPEC], limiter_for=pace)
    done = apply(client, result, limiter_for=pace)
    # THEN the missing field is added back, and the checkbox is reported and left a checkbox
    assert done == [f'base {BASE}, table "Donations": added field "Donor Id" (singleLineText)']
    assert [m.problem for m in result.misfits] == [
        'FIELD_MAP writes currency to "Donation Amount", a checkbox field (a currency value fits '
        'currency, duration, number, percent); change the entry\'s "type" or the target field'
    ]
    fields = {f["name"]: f["type"] for f in emulator.schema(BASE)["tables"][1]["fields"]}
    assert fields["Donation Amount"] == "checkbox" and fields["Donor Id"] == "singleLineText"
    assert emulator.stats.throttled == 0


def test_a_token_without_schema_write_gets_a_clear_error(emulator: Emulator) -> None:
    # GIVEN a token that can read the schema but not change it
    client = api(emulator, READ_ONLY_SCHEMA)
    result = plan(client, [SPEC])
    assert result.has_changes
    # WHEN the plan is applied
    with pytest.raises(InitTablesError) as raised:
        apply(client, result)
    # THEN the error names the step, Airtable's answer and the missing scope, and no table exists
    message = str(raised.value)
    assert 'could not create table "Donations" in base appInitTables0001' in message
    assert "403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND" in message
    assert "schema.bases:write" in message and "nothing was changed before this" in message
    assert [t["name"] for t in emulator.schema(BASE)["tables"]] == ["Notes"]
