"""The schema check at cold start, through pyairtable against the emulator's meta endpoint,
and typed mappings end to end: a table whose names and types differ from the message keys."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from airtable_emulator import SCOPE_READ, SCOPE_WRITE, donations_schema
from devstack import LambdaContext, donation
from devstack.feeder import as_bodies
from devstack.stack import BASE_ID, TOKEN, LocalStack, default_emulator_config

from poller.errors import ConfigErrors
from poller.schema import SchemaMismatchError
from poller_ops.samples import SCHEDULED_EVENT

TYPED_DONATIONS = {
    "Id": {"field": "Id", "type": "text", "required": True},
    "CreationDate": {"field": "Creation Date", "type": "dateTime"},
    "UserId": {"field": "Donor Id", "type": "text"},
    "DonationAmount": {"field": "Donation Amount", "type": "currency"},
    "DonorDisplayName": {"field": "Donor Display Name", "type": "text"},
    "GiftAid": {"field": "Gift Aid", "type": "checkbox"},
}

StartStack = Callable[..., LocalStack]


@pytest.fixture
def start_stack(sqs_endpoint: str) -> Iterator[StartStack]:
    """A local stack with a custom base schema and token scopes."""
    with contextlib.ExitStack() as stacks:

        def start(
            schema: dict[str, Any] | None = None,
            scopes: tuple[str, ...] = (SCOPE_READ, SCOPE_WRITE, "schema.bases:read"),
        ) -> LocalStack:
            config = default_emulator_config(
                lockout_seconds=1.0,
                bases={BASE_ID: schema or donations_schema()},
                tokens={TOKEN: scopes},
            )
            return stacks.enter_context(
                LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config)
            )

        yield start


@pytest.fixture
def run_handler(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """The real handler on `stack`, with the poller's environment plus `env`."""

    def call(stack: LocalStack, **env: str) -> dict[str, Any]:
        for name, value in stack.poller_env(POWERTOOLS_METRICS_DISABLED="true", **env).items():
            monkeypatch.setenv(name, value)
        for name, value in env.items():
            if value == "":
                monkeypatch.delenv(name, raising=False)
        from poller.handler import lambda_handler

        return lambda_handler(SCHEDULED_EVENT, LambdaContext(timeout_ms=60_000))

    return call


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The handler's JSON log lines, read from its own stream (robust to pytest's capture)."""
    from poller import handler

    buffer = io.StringIO()
    stream_handler = handler.logger.registered_handler
    previous, stream_handler.stream = stream_handler.stream, buffer  # no flush of the old one
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    stream_handler.stream = previous


def base_schema() -> dict[str, Any]:
    """The Donations table plus a checkbox field, "Gift Aid"."""
    schema = donations_schema()
    schema["tables"][0]["fields"].append(
        {"id": "fldGiftAid0000001", "name": "Gift Aid", "type": "checkbox"}
    )
    return schema


def field_named(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["tables"][0]["fields"] if f["name"] == name)


def untouched(stack: LocalStack, count: int) -> bool:
    """Every message still visible and never received (nothing in flight, no DLQ)."""
    return stack.counts() == {"visible": count, "in_flight": 0, "delayed": 0} and not (
        stack.dead_letters()
    )


# Each breaks the table (or MERGE_ON) in one way: (the problem expected, MERGE_ON).
def renamed(schema: dict[str, Any]) -> tuple[str, str]:
    field_named(schema, "Donor Display Name")["name"] = "Display Name"
    return (
        'FIELD_MAP targets "Donor Display Name" (from "DonorDisplayName"), which the table '
        'does not have (it has "Id", "Creation Date", "Donor Id", "Fundraiser Id", '
        '"Donation Amount", "Display Name", "Gift Aid"); did you mean "Display Name"?',
        "Id",
    )


def retyped(schema: dict[str, Any]) -> tuple[str, str]:
    field_named(schema, "Donation Amount").update(type="singleLineText", options=None)
    return 'FIELD_MAP writes currency to "Donation Amount", a singleLineText field', "Id"


def bad_merge_key(schema: dict[str, Any]) -> tuple[str, str]:
    return 'MERGE_ON names "Gift Aid", a checkbox field', "Id,Gift Aid"


@pytest.mark.parametrize("break_table", [renamed, retyped, bad_merge_key])
def test_a_table_that_does_not_fit_stops_the_run_before_any_receive(
    start_stack, run_handler, break_table
):
    # GIVEN a table changed behind the mapping's back, and five waiting messages
    schema = base_schema()
    expected, merge_on = break_table(schema)
    stack = start_stack(schema)
    stack.send_messages(as_bodies([donation(n) for n in range(5)]))
    # WHEN the handler starts cold
    started = time.monotonic()
    with pytest.raises(SchemaMismatchError) as raised:
        run_handler(stack, FIELD_MAP=json.dumps(TYPED_DONATIONS), MERGE_ON=merge_on)
    # THEN it fails at once with that one problem, having received and written nothing
    assert time.monotonic() - started < 2.0
    [problem] = [str(e) for e in raised.value.errors]
    assert problem.startswith(expected)
    assert untouched(stack, 5) and stack.rows() == []


def test_every_problem_is_listed_in_one_error(start_stack, run_handler, logs):
    # GIVEN a renamed field, a wrong type and an invalid merge key at once
    schema = base_schema()
    expected = [renamed(schema)[0], retyped(schema)[0], bad_merge_key(schema)[0]]
    stack = start_stack(schema)
    stack.send_messages(as_bodies([donation(1)]))
    # WHEN the handler starts
    with pytest.raises(SchemaMismatchError) as raised:
        run_handler(stack, FIELD_MAP=json.dumps(TYPED_DONATIONS), MERGE_ON="Id,Gift Aid")
    # THEN one error lists all three, one per line, and one structured log line has them
    text = str(raised.value)
    assert "(3 problem(s)); no message was received" in text
    assert all(e in text for e in expected) and len(text.splitlines()) == 4
    [line] = [entry for entry in logs() if entry["message"].startswith("schema check failed")]
    assert line["level"] == "ERROR" and len(line["problems"]) == 3
    assert untouched(stack, 1)


def test_without_the_schema_scope_the_check_is_skipped_and_logged_once(
    start_stack, run_handler, logs
):
    # GIVEN a token that may write records but not read the schema
    stack = start_stack(scopes=(SCOPE_READ, SCOPE_WRITE))
    stack.send_messages(as_bodies([donation(n) for n in range(3)]))
    # WHEN the handler runs cold, then warm
    first = run_handler(stack)
    stack.send_messages(as_bodies([donation(n) for n in range(3, 5)]))
    second = run_handler(stack)
    # THEN both runs write, and "skipped" is logged once, with how to enable the check
    assert (first["written"], second["written"]) == (3, 2)
    skipped = [e for e in logs() if e["message"].startswith("schema check skipped")]
    assert len(skipped) == 1 and "schema.bases:read" in skipped[0]["message"]


def test_schema_check_on_requires_the_scope(start_stack, run_handler):
    # GIVEN SCHEMA_CHECK=on and a token without schema.bases:read
    stack = start_stack(scopes=(SCOPE_READ, SCOPE_WRITE))
    stack.send_messages(as_bodies([donation(1)]))
    # WHEN the handler runs THEN it refuses to start, naming SCHEMA_CHECK
    with pytest.raises(ConfigErrors) as raised:
        run_handler(stack, SCHEMA_CHECK="on")
    assert [e.variable for e in raised.value.errors] == ["SCHEMA_CHECK"]
    assert untouched(stack, 1)


def test_schema_check_off_leaves_the_mismatch_to_the_first_write(start_stack, run_handler):
    # GIVEN a renamed field and SCHEMA_CHECK=off
    schema = base_schema()
    renamed(schema)
    stack = start_stack(schema)
    stack.send_messages(as_bodies([donation(1)]))
    # WHEN the handler runs THEN no schema error: Airtable's 422 stops the run instead
    with pytest.raises(Exception, match="UNKNOWN_FIELD_NAME"):
        run_handler(stack, FIELD_MAP=json.dumps(TYPED_DONATIONS), SCHEMA_CHECK="off")


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


def test_a_table_with_other_names_and_types_gets_correct_rows(start_stack, run_handler, tmp_path):
    # GIVEN a "Gifts" table whose fields differ in name and type from the message keys, and
    # a mapping file (FIELD_MAP_FILE) with nested paths, conversions and envelope values
    stack = start_stack(gifts_schema())
    map_file = tmp_path / "gifts.json"
    map_file.write_text(json.dumps(GIFTS_MAP))
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
    # WHEN the handler drains the queue (the schema check passes first)
    summary = run_handler(
        stack,
        AIRTABLE_TABLE=GIFTS_TABLE,
        FIELD_MAP="",
        FIELD_MAP_FILE=str(map_file),
        MERGE_ON="Gift Ref",
        SCHEMA_CHECK="on",
    )
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
