"""The check before every run (the token, the bases, the schema, one read per base), through
pyairtable against the emulator's meta endpoints, and typed mappings end to end: a table
whose names and types differ from the message keys.

Whatever the check finds, the run receives nothing: a failure that every message would meet
costs no receive count.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from airtable_emulator import SCOPE_READ, SCOPE_SCHEMA, SCOPE_WRITE, donations_schema
from devstack import donation
from devstack.feeder import as_bodies
from devstack.stack import BASE_ID, TOKEN, LocalStack, default_emulator_config
from harness import LOCKOUT_SECONDS, Container, untouched

TYPED_DONATIONS = {
    "Id": {"field": "Id", "type": "text", "required": True},
    "CreationDate": {"field": "Creation Date", "type": "dateTime"},
    "UserId": {"field": "Donor Id", "type": "text"},
    "DonationAmount": {"field": "Donation Amount", "type": "currency"},
    "DonorDisplayName": {"field": "Donor Display Name", "type": "text"},
    "GiftAid": {"field": "Gift Aid", "type": "checkbox"},
}
Start = Callable[..., Container]


@pytest.fixture
def start(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """A local stack with a custom base schema and token scopes, and the real handler on it."""
    with contextlib.ExitStack() as stacks:

        def start(
            schema: dict[str, Any] | None = None,
            scopes: tuple[str, ...] = (SCOPE_READ, SCOPE_WRITE, SCOPE_SCHEMA),
            **env: str | None,
        ) -> Container:
            config = default_emulator_config(
                lockout_seconds=LOCKOUT_SECONDS,
                bases={BASE_ID: schema or donations_schema()},
                tokens={TOKEN: scopes},
            )
            stack = stacks.enter_context(
                LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config)
            )
            return Container(stack, monkeypatch, **env)

        yield start


def base_schema() -> dict[str, Any]:
    """The Donations table plus a checkbox field, "Gift Aid"."""
    schema = donations_schema()
    schema["tables"][0]["fields"].append(
        {"id": "fldGiftAid0000001", "name": "Gift Aid", "type": "checkbox"}
    )
    return schema


def field_named(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["tables"][0]["fields"] if f["name"] == name)


def held(container: Container, count: int) -> dict[str, Any]:
    """The systemic-failure line of a run that received nothing and left `count` messages
    untouched."""
    summary = container.run()
    assert summary["stopped_because"] == "systemic" and summary["received"] == 0, summary
    assert untouched(container.stack, count) and container.stack.rows() == []
    [line] = container.logged("systemic failure")
    return line


# Each breaks the table (or MERGE_ON) in one way: (the problem expected, its cause, MERGE_ON).
def renamed(schema: dict[str, Any]) -> tuple[str, str, str]:
    field_named(schema, "Donor Display Name")["name"] = "Display Name"
    return (
        'targets "Donor Display Name" (from "DonorDisplayName"), which the table does not '
        'have (it has "Id", "Creation Date", "Donor Id", "Fundraiser Id", "Donation Amount", '
        '"Display Name", "Gift Aid"); did you mean "Display Name"?',
        "field",
        "Id",
    )


def retyped(schema: dict[str, Any]) -> tuple[str, str, str]:
    field_named(schema, "Donation Amount").update(type="singleLineText", options=None)
    return 'writes currency to "Donation Amount", a singleLineText field', "type", "Id"


def bad_merge_key(schema: dict[str, Any]) -> tuple[str, str, str]:
    return 'merges on "Gift Aid", a checkbox field', "type", "Id,Gift Aid"


@pytest.mark.parametrize("break_table", [renamed, retyped, bad_merge_key])
def test_a_table_that_does_not_fit_stops_the_run_before_any_receive(start, break_table):
    # GIVEN a table changed behind the mapping's back, and five waiting messages
    schema = base_schema()
    expected, cause, merge_on = break_table(schema)
    container = start(schema, FIELD_MAP=json.dumps(TYPED_DONATIONS), MERGE_ON=merge_on)
    container.stack.send_messages(as_bodies([donation(n) for n in range(5)]))
    # WHEN the handler runs
    line = held(container, 5)
    # THEN it names that one problem, its cause and the fix, having received nothing
    assert line["systemic_cause"] == cause and line["route"] == "default"
    assert line["detail"].startswith(expected)
    assert line["fix"] and line["fix"] in line["message"]


def test_every_problem_is_listed_in_one_line(start):
    # GIVEN a renamed field, a wrong type and an invalid merge key at once
    schema = base_schema()
    expected = [renamed(schema)[0], retyped(schema)[0], bad_merge_key(schema)[0]]
    container = start(schema, FIELD_MAP=json.dumps(TYPED_DONATIONS), MERGE_ON="Id,Gift Aid")
    container.stack.send_messages(as_bodies([donation(1)]))
    # WHEN the handler runs
    line = held(container, 1)
    # THEN one structured line lists all three (a missing field is the cause named)
    assert line["level"] == "ERROR" and line["systemic_cause"] == "field"
    assert all(e in line["detail"] for e in expected)


@pytest.mark.parametrize("schema_check", [None, "on", "off"])
def test_a_token_without_the_schema_scope_is_refused_before_any_receive(start, schema_check):
    # GIVEN a token that may write records but not read the schema, and SCHEMA_CHECK unset
    # or set (a retired variable: it changes nothing)
    container = start(scopes=(SCOPE_READ, SCOPE_WRITE), SCHEMA_CHECK=schema_check)
    container.stack.send_messages(as_bodies([donation(n) for n in range(3)]))
    # WHEN the handler runs THEN it names the missing scope and receives nothing
    line = held(container, 3)
    assert line["systemic_cause"] == "token" and "schema.bases:read" in line["detail"]
    assert bool(container.logged("SCHEMA_CHECK is no longer read")) == bool(schema_check)


def test_a_token_without_the_write_scope_is_refused_before_any_receive(start):
    # GIVEN a token that may read records and the schema, but not write records
    container = start(scopes=(SCOPE_READ, SCOPE_SCHEMA))
    container.stack.send_messages(as_bodies([donation(n) for n in range(3)]))
    # WHEN the handler runs THEN it names the missing scope and receives nothing
    line = held(container, 3)
    assert line["systemic_cause"] == "token" and "data.records:write" in line["detail"]


def test_a_token_without_the_read_scope_is_refused_before_any_receive(start):
    # GIVEN a token that may write records and read the schema, but not read records (the
    # check's data read and a mirror's lookups need it)
    container = start(scopes=(SCOPE_WRITE, SCOPE_SCHEMA))
    container.stack.send_messages(as_bodies([donation(n) for n in range(3)]))
    # WHEN the handler runs THEN it names the missing scope and receives nothing
    line = held(container, 3)
    assert line["systemic_cause"] == "token" and "data.records:read" in line["detail"]
    assert "data.records:write" not in line["detail"]


def test_the_check_costs_four_requests_per_run_that_finds_messages_none_when_empty(start):
    # GIVEN a warm container on one base
    container = start()
    stack, emulator = container.stack, container.stack.emulator
    stack.send_messages(as_bodies([donation(n) for n in range(3)]))
    container()
    # WHEN a run finds the queue empty
    emulator.reset_stats()
    empty = container()
    # THEN it made no Airtable request at all
    assert empty["received"] == 0 and emulator.stats.requests == 0
    # WHEN a run finds messages waiting
    stack.send_messages(as_bodies([donation(n) for n in range(3, 6)]))
    summary = container()
    stats = emulator.stats
    # THEN it checked before it wrote: whoami and the bases list (no base), then the base's
    # schema and one read of its table, then one write for the three records
    base = stats.base(BASE_ID)
    assert stats.requests - base.data_requests - base.meta_requests == 2
    assert base.operations == {"meta": 1, "list": 1, "update": 1}
    # AND the summary counts every one of them, the write alone as a write request
    assert summary["airtable_requests"] == stats.requests == 5
    assert summary["requests"] == 1 and summary["written"] == 3


# -- a table whose names and types differ from the message keys --------------------------

GIFTS_TABLE = "Gifts"
GIFTS_MAP = {
    "description": "nested events into a table with its own names and types",
    "fields": {
        "ref": {"field": "Gift Ref", "type": "text", "required": True},
        "at": [
            {"field": "Received At", "type": "dateTime"},
            {"field": "Day", "type": "date", "timezone": "America/New_York"},
        ],
        "amount.value": {"field": "Amount", "type": "currency", "coerce": True, "required": True},
        "donor.name": {"field": "Donor", "type": "text", "default": "Anonymous"},
        "giftAid": {"field": "Gift Aid", "type": "checkbox"},
        "$MessageAttributes.Channel": {
            "field": "Channel",
            "type": "singleSelect",
            "choices": ["web", "app"],
        },
        "$MessageId": {"field": "Queue Message", "type": "text"},
        "units": {"field": "Units", "type": "integer"},
    },
}


def field_id(name: str) -> str:
    return "fld" + name.replace(" ", "").ljust(14, "0")[:14]


def gifts_schema() -> dict[str, Any]:
    def field(name: str, kind: str, **options: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": field_id(name), "name": name, "type": kind}
        if options:
            entry["options"] = options
        return entry

    return {
        "tables": [
            {
                "id": "tblGifts000000001",
                "name": GIFTS_TABLE,
                "primaryFieldId": field_id("Gift Ref"),
                "fields": [
                    field("Gift Ref", "singleLineText"),
                    field(
                        "Received At",
                        "dateTime",
                        timeZone="utc",
                        dateFormat={"name": "iso", "format": "YYYY-MM-DD"},
                        timeFormat={"name": "24hour", "format": "HH:mm"},
                    ),
                    field("Day", "date", dateFormat={"name": "iso", "format": "YYYY-MM-DD"}),
                    field("Amount", "currency", precision=2, symbol="£"),
                    field("Donor", "singleLineText"),
                    field("Gift Aid", "checkbox", icon="check", color="greenBright"),
                    field(
                        "Channel",
                        "singleSelect",
                        choices=[{"id": "selWeb", "name": "web"}, {"id": "selApp", "name": "app"}],
                    ),
                    field("Queue Message", "singleLineText"),
                    field("Units", "number", precision=0),
                ],
            }
        ]
    }


@pytest.mark.parametrize("variable", ["FIELD_MAP", "FIELD_MAP_FILE"])
def test_a_table_with_other_names_and_types_gets_correct_rows(start, tmp_path, variable):
    # GIVEN a "Gifts" table whose fields differ in name and type from the message keys, and
    # a mapping file with nested paths, conversions and envelope values, named by FIELD_MAP
    # or by its deprecated alias FIELD_MAP_FILE
    map_file = tmp_path / "gifts.json"
    map_file.write_text(json.dumps(GIFTS_MAP))
    mapping = {"FIELD_MAP": None, variable: str(map_file)}
    container = start(gifts_schema(), AIRTABLE_TABLE=GIFTS_TABLE, MERGE_ON="Gift Ref", **mapping)
    stack = container.stack
    gifts = [
        {"ref": "g-1", "at": "2018-05-01T02:30:00+02:00", "amount": {"value": "25.50"},
         "donor": {"name": "Ada"}, "giftAid": "true", "units": 2.0, "note": "never sent"},
        {"ref": "g-2", "at": "2018-05-01T12:00:00Z", "amount": {"value": 10},
         "giftAid": 0},
        {"ref": "g-3", "at": "2018-05-01T12:00:00Z", "amount": {"value": "lots"}},
    ]  # fmt: skip
    channels = ["web", "app", "web"]
    ids = []
    for gift, channel in zip(gifts, channels, strict=True):
        ids.append(
            stack.sqs.send_message(
                QueueUrl=stack.queue_url,
                MessageBody=json.dumps(gift),
                MessageAttributes={"Channel": {"DataType": "String", "StringValue": channel}},
            )["MessageId"]
        )
    # WHEN the handler drains the queue (the check before the run passes first)
    summary = container()
    # THEN the two good messages are rows with converted values, under the table's names
    rows = {
        r["fields"]["Gift Ref"]: r["fields"] for r in stack.emulator.records(BASE_ID, GIFTS_TABLE)
    }
    assert rows == {
        "g-1": {
            "Gift Ref": "g-1",
            "Received At": "2018-05-01T00:30:00.000Z",
            "Day": "2018-04-30",
            "Amount": 25.5,
            "Donor": "Ada",
            "Gift Aid": True,
            "Channel": "web",
            "Queue Message": ids[0],
            "Units": 2,
        },
        "g-2": {
            "Gift Ref": "g-2",
            "Received At": "2018-05-01T12:00:00.000Z",
            "Day": "2018-05-01",
            "Amount": 10,
            "Donor": "Anonymous",
            "Channel": "app",
            "Queue Message": ids[1],
        },
    }
    # AND the unconvertible one is dead-lettered with a reason naming the field and the type
    [(body, attributes)] = stack.dead_letters()
    assert json.loads(body)["ref"] == "g-3"
    assert attributes["poller.reason"] == (
        "field \"Amount\": cannot convert str 'lots' to currency"
    )
    assert summary["written"] == 2 and summary["dead_lettered"] == 1
    # AND the deprecated alias works, with one warning that names the variable to set
    deprecated = container.logged("FIELD_MAP_FILE is deprecated: set FIELD_MAP")
    assert len(deprecated) == (variable == "FIELD_MAP_FILE")
