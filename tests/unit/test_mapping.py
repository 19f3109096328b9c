"""Mapping a message body to Airtable fields."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from devstack.factories import DONATION_FIELD_MAP_JSON, Budget, donation
from devstack.memory import MemoryQueue, MemorySink

import poller
from poller.capacity import Capacity
from poller.convert import key_text
from poller.drain import Drain, Limits
from poller.errors import ConfigError, MappingError
from poller.fieldmap import FieldMap
from poller.model import DEFAULT_ROUTE, Attribute, Message
from poller.pacing import Deadline, Pacer
from poller.routing import Router, single_route
from poller.writer import Destination, Writer


def message(body: str) -> Message:
    return Message(id="m1", receipt="r1", body=body)


def single(field_map: FieldMap, merge_on: tuple[str, ...] = (), envelope: str = "auto") -> Router:
    """What the single-table variables make: one route that takes every message."""
    return Router([single_route("appDonations00001", "Donations", field_map, merge_on)], envelope)


MAPPER = single(FieldMap.parse(DONATION_FIELD_MAP_JSON), ("Id",))


def test_maps_keys_to_fields_and_ignores_unknown_keys():
    body = donation(1, Currency="USD")
    record = MAPPER(message(json.dumps(body)))
    assert record.fields["Donation Amount"] == body["DonationAmount"]
    assert record.fields["Donor Id"] == body["UserId"]
    assert "Currency" not in record.fields and len(record.fields) == 6
    assert record.key == (key_text(body["Id"]),)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "body is empty"),
        ("   ", "body is empty"),
        ("{", "body is not valid JSON"),
        ("42", "body is JSON int, expected an object"),
        ('"text"', "body is JSON str, expected an object"),
        ('{"Id": "", "UserId": "u"}', 'merge key field "Id" (MERGE_ON) is missing or empty'),
        ('{"Id": null, "UserId": "u"}', 'merge key field "Id" (MERGE_ON) is missing or empty'),
        ('{"Id": ""}', 'no FIELD_MAP source found (top-level keys: ["Id"])'),
        ('{"Id": "1", "DonationAmount": Infinity}', "Infinity is not a valid JSON number"),
    ],
)
def test_poison_gets_a_reason(body, reason):
    with pytest.raises(MappingError, match=re.escape(reason)):
        MAPPER(message(body))


# -- richer entries: typed conversion, nested paths, envelope values, defaults -------------

DONATIONS_FILE = Path(poller.__file__).parent / "field_maps" / "donations.json"


def mapper(entries: dict, merge_on: tuple[str, ...] = ()) -> Router:
    return single(FieldMap.parse(json.dumps(entries)), merge_on)


def fields_of(entries: dict, body: dict, **envelope) -> dict:
    return dict(
        mapper(entries)(Message(id="m1", receipt="r1", body=json.dumps(body), **envelope)).fields
    )


def reason_of(entries: dict, body: dict) -> str:
    with pytest.raises(MappingError) as raised:
        mapper(entries)(message(json.dumps(body)))
    return raised.value.reason


def test_plain_and_typed_entries_mix_and_unknown_keys_are_never_sent():
    # GIVEN a map with a plain entry and a typed one, and a body with extra keys
    entries = {"Id": "Id", "Amount": {"field": "Donation Amount", "type": "currency"}}
    # WHEN mapped
    fields = fields_of(entries, {"Id": "a", "Amount": 12, "Secret": "x", "Other": {"y": 1}})
    # THEN only the mapped fields are present, with their values
    assert fields == {"Id": "a", "Donation Amount": 12}


@pytest.mark.parametrize(
    ("source", "body", "expected"),
    [
        ("donor.name", {"donor": {"name": "Ada"}}, "Ada"),
        ("lines.1.sku", {"lines": [{"sku": "A"}, {"sku": "B"}]}, "B"),
        ("donor.name", {"donor.name": "literal wins", "donor": {"name": "nested"}}, "literal wins"),
    ],
)
def test_nested_source_paths(source, body, expected):
    assert fields_of({source: {"field": "Out", "type": "text"}}, body) == {"Out": expected}


def test_missing_nested_path_is_left_out_or_defaulted():
    # GIVEN a nested source with a default and one without, WHEN the body lacks both paths
    entries = {
        "Id": "Id",
        "donor.name": {"field": "Donor", "type": "text", "default": "Anonymous"},
        "donor.email": {"field": "Email", "type": "text"},
    }
    # THEN the default is written and the other field is left out (not sent as null)
    got = fields_of(entries, {"Id": "a", "donor": "not an object"})
    assert got == {"Id": "a", "Donor": "Anonymous"}
    got = fields_of(entries, {"Id": "a", "donor": {"name": None}})
    assert got == {"Id": "a", "Donor": "Anonymous"}


def test_envelope_values():
    # GIVEN a map reading SQS envelope values
    entries = {
        "Id": "Id",
        "$MessageId": "Message",
        "$SentTimestamp": {"field": "Queued At", "type": "dateTime"},
        "$ApproximateReceiveCount": {"field": "Receives", "type": "integer"},
        "$MessageAttributes.Channel": {"field": "Channel", "type": "singleSelect"},
        "$MessageGroupId": "Group",
    }
    # WHEN a message with attributes is mapped
    fields = fields_of(
        entries,
        {"Id": "a"},
        sent_at_ms=1_525_176_000_123,
        receive_count=2,
        attributes={"Channel": Attribute("String", "web")},
    )
    # THEN each comes from the envelope (SentTimestamp is epoch ms); absent ones are left out
    assert fields == {
        "Id": "a",
        "Message": "m1",
        "Queued At": "2018-05-01T12:00:00.123Z",
        "Receives": 2,
        "Channel": "web",
    }


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        (Attribute("Number", "25"), 25),
        (Attribute("Number", "-2.5"), -2.5),
        (Attribute("Number.int", "7"), 7),
        (Attribute("Number", "1e3"), 1000.0),
        (Attribute("String", "25"), "25"),
        (Attribute("String.custom", "web"), "web"),
    ],
)
def test_a_number_attribute_reads_as_a_number_and_a_string_as_sent(attribute, expected):
    # GIVEN a plain entry for a message attribute WHEN the message is mapped
    fields = fields_of(
        {"Id": "Id", "$MessageAttributes.a": "A"}, {"Id": "x"}, attributes={"a": attribute}
    )
    # THEN a Number attribute (with or without a custom type) is a JSON number, a String is text
    assert fields["A"] == expected and type(fields["A"]) is type(expected)


def test_a_number_attribute_converts_like_a_body_number():
    # GIVEN typed entries for Number attributes: an integer, and one beyond 2^53
    entries = {"Id": "Id", "$MessageAttributes.n": {"field": "N", "type": "integer"}}
    number = {"n": Attribute("Number", "42")}
    assert fields_of(entries, {"Id": "x"}, attributes=number)["N"] == 42
    # WHEN the value is one Airtable would round THEN it is poison, as in a body
    too_big = Message(
        id="m1",
        receipt="r1",
        body='{"Id": "x"}',
        attributes={"n": Attribute("Number", "1234567890123456789")},
    )
    with pytest.raises(MappingError, match="would round it"):
        mapper(entries)(too_big)


def test_a_binary_attribute_into_a_typed_entry_is_poison_with_a_reason():
    # GIVEN a Binary attribute (bytes) and a text entry for it
    body = Message(
        id="m1", receipt="r1", body='{"Id": "x"}', attributes={"b": Attribute("Binary", b"\x00")}
    )
    # WHEN mapped THEN the reason names the field and the value's type
    with pytest.raises(MappingError, match=r'^field "B": cannot convert bytes'):
        mapper({"Id": "Id", "$MessageAttributes.b": {"field": "B", "type": "text"}})(body)


def test_a_binary_attribute_into_a_plain_entry_is_poison_with_a_reason():
    # GIVEN a Binary attribute (bytes) mapped by a plain entry (sent as-is)
    body = Message(
        id="m1", receipt="r1", body='{"Id": "x"}', attributes={"b": Attribute("Binary", b"\x00")}
    )
    # WHEN mapped THEN it is poison naming the field: bytes are not JSON, Airtable cannot take them
    with pytest.raises(MappingError, match=r'^field "B": '):
        mapper({"Id": "Id", "$MessageAttributes.b": "B"})(body)


@pytest.mark.parametrize(
    ("entry", "value", "expected"),
    [
        ({"type": "text"}, 25, "25"),
        ({"type": "text"}, 2.5, "2.5"),
        ({"type": "currency"}, 25, 25),
        ({"type": "currency"}, 25.5, 25.5),
        ({"type": "number", "coerce": True}, " 25.50 ", 25.5),
        ({"type": "number", "coerce": True}, "-3", -3),
        ({"type": "integer"}, 25.0, 25),
        ({"type": "integer", "coerce": True}, "7", 7),
        ({"type": "checkbox"}, True, True),
        ({"type": "checkbox"}, "False", False),
        ({"type": "checkbox"}, 1, True),
        ({"type": "checkbox"}, 0, False),
        ({"type": "date"}, "2018-05-01", "2018-05-01"),
        ({"type": "date"}, "2018-05-01T23:30:00Z", "2018-05-01"),
        ({"type": "date", "timezone": "Europe/Paris"}, "2018-05-01T23:30:00Z", "2018-05-02"),
        ({"type": "dateTime"}, "2018-05-01T12:00:00.000Z", "2018-05-01T12:00:00.000Z"),
        ({"type": "dateTime"}, "2018-05-01T14:00:00+02:00", "2018-05-01T12:00:00.000Z"),
        ({"type": "dateTime"}, "2018-05-01T07:00:00-0500", "2018-05-01T12:00:00.000Z"),
        ({"type": "dateTime"}, "2018-05-01T12:00:00", "2018-05-01T12:00:00.000Z"),
        (
            {"type": "dateTime", "timezone": "Europe/Paris"},
            "2018-05-01T14:00",
            "2018-05-01T12:00:00.000Z",
        ),
        ({"type": "dateTime"}, "2018-05-01", "2018-05-01T00:00:00.000Z"),
        ({"type": "dateTime", "epoch": "s"}, 1_525_176_000, "2018-05-01T12:00:00.000Z"),
        ({"type": "singleSelect", "choices": ["web", "app"]}, "app", "app"),
        ({"type": "singleLineText"}, "alias", "alias"),
    ],
)
def test_conversions(entry, value, expected):
    # GIVEN a typed entry WHEN a value is mapped THEN it is what Airtable's field type accepts
    result = fields_of({"v": {"field": "Out", **entry}}, {"v": value})["Out"]
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("entry", "value", "reason"),
    [
        ({"type": "currency"}, "twenty", "cannot convert str 'twenty' to currency"),
        (
            {"type": "currency"},
            "25",
            "cannot convert str '25' to currency (numeric strings need \"coerce\": true)",
        ),
        ({"type": "currency", "coerce": True}, "NaN", "cannot convert str 'NaN' to currency"),
        ({"type": "number"}, True, "cannot convert bool True to number"),
        ({"type": "number"}, [1], "cannot convert list [1] to number"),
        ({"type": "integer"}, 2.5, "cannot convert float 2.5 to integer (has a fractional part)"),
        ({"type": "checkbox"}, "yes", "cannot convert str 'yes' to checkbox"),
        ({"type": "checkbox"}, 2, "cannot convert int 2 to checkbox"),
        (
            {"type": "date"},
            "05/01/2018",
            "cannot convert str '05/01/2018' to date (expected ISO 8601)",
        ),
        (
            {"type": "date"},
            "2018-02-30",
            "cannot convert str '2018-02-30' to date (not a valid date)",
        ),
        ({"type": "dateTime"}, "yesterday-ish", "cannot convert str 'yesterday-ish' to dateTime"),
        (
            {"type": "dateTime"},
            1_525_176_000,
            'cannot convert int 1525176000 to dateTime (numbers need "epoch"',
        ),
        ({"type": "text"}, {"a": 1}, "cannot convert dict {'a': 1} to text"),
        (
            {"type": "text"},
            "x" * 100_001,
            "text of 100,001 characters is longer than Airtable's 100,000",
        ),
        (
            {"type": "singleSelect", "choices": ["web"]},
            "fax",
            "'fax' is not one of the options ['web']",
        ),
    ],
)
def test_a_value_that_cannot_be_converted_names_the_field_and_the_type(entry, value, reason):
    # GIVEN a typed entry WHEN the value does not fit THEN the reason names the field and type
    text = reason_of({"v": {"field": "Donation Amount", **entry}}, {"v": value})
    assert text.startswith('field "Donation Amount": ' + reason)


def test_a_number_too_large_for_a_float_is_refused():
    # GIVEN a body whose number overflows to infinity (valid JSON, unlike Infinity)
    body = '{"v": 1e999}'
    # WHEN mapped THEN it is poison, not a NaN/inf sent to Airtable
    with pytest.raises(MappingError, match=r"cannot convert float inf to number \(not a finite"):
        mapper({"v": {"field": "N", "type": "number"}})(message(body))
    with pytest.raises(MappingError, match='"v" is not a finite number'):
        mapper({"v": "N"})(message(body))


def test_long_values_are_abbreviated_in_reasons():
    # GIVEN a long unconvertible value WHEN mapped THEN the reason quotes only its start
    text = reason_of({"v": {"field": "N", "type": "number"}}, {"v": "9" * 50 + "x"})
    assert "..." in text and len(text) < 120


def test_required_fields_and_every_problem_in_one_reason():
    # GIVEN two required fields and a bad amount
    entries = {
        "Id": {"field": "Id", "type": "text", "required": True},
        "donor.name": {"field": "Donor", "type": "text", "required": True},
        "Amount": {"field": "Amount", "type": "currency"},
    }
    # WHEN a body misses one, has the other empty, and a bad amount
    text = reason_of(entries, {"Id": "", "Amount": "ten"})
    # THEN one reason lists all three problems
    assert text == (
        'field "Id": required, but "Id" is missing or empty; '
        'field "Donor": required, but "donor.name" is missing or empty; '
        "field \"Amount\": cannot convert str 'ten' to currency "
        '(numeric strings need "coerce": true)'
    )


def test_one_source_can_fill_several_fields():
    entries = {
        "CreationDate": [
            {"field": "Created", "type": "dateTime"},
            {"field": "Day", "type": "date", "timezone": "America/New_York"},
        ]
    }
    fields = fields_of(entries, {"CreationDate": "2018-05-01T02:00:00Z"})
    assert fields == {"Created": "2018-05-01T02:00:00.000Z", "Day": "2018-04-30"}


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ({"a": {"field": "A", "type": "money"}}, "entry \"a\" has type 'money'; expected one of"),
        ({"a": {"field": "A", "requried": True}}, "entry \"a\" has unknown key(s) ['requried']"),
        ({"a": {"type": "text"}}, 'entry "a" needs "field"'),
        (
            {"a": {"field": "A", "type": "currency", "default": "free"}},
            "entry \"a\": default cannot convert str 'free' to currency",
        ),
        (
            {"a": {"field": "A", "type": "dateTime", "timezone": "Mars/Base"}},
            "unknown timezone 'Mars/Base'",
        ),
        ({"a": {"field": "A", "type": "dateTime", "epoch": "us"}}, '"epoch" must be "s" or "ms"'),
        (
            {"a": {"field": "A", "type": "text", "choices": ["x"]}},
            '"choices" applies to the select types',
        ),
        ({"$Body": "A"}, 'source "$Body" is not an SQS or envelope value'),
        ({"$Envelope.": "A"}, 'source "$Envelope." is not an SQS or envelope value'),
        ({"$MessageId": "A"}, "maps only $ values (envelope and SQS attributes)"),
        ({"a": "A", "b": {"field": "A"}}, "maps several keys to the same field(s): ['A']"),
    ],
)
def test_mapping_mistakes_are_config_errors(entries, problem):
    with pytest.raises(ConfigError) as raised:
        FieldMap.parse(json.dumps(entries))
    assert raised.value.variable == "FIELD_MAP"
    assert problem in str(raised.value)


def test_every_mapping_mistake_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        FieldMap.parse(json.dumps({"a": {"field": "A", "type": "x"}, "b": {"type": "text"}}))
    assert 'entry "a"' in str(raised.value) and 'entry "b"' in str(raised.value)


def test_defaults_are_converted_once_at_parse_time():
    # GIVEN a currency default written as a number WHEN the source is missing
    entries = {"Id": "Id", "a": {"field": "A", "type": "integer", "default": 5.0}}
    fields = fields_of(entries, {"Id": "x"})
    # THEN the converted default is written
    assert fields == {"Id": "x", "A": 5} and type(fields["A"]) is int


def test_the_shipped_donations_mapping_maps_the_sample_event():
    # GIVEN the packaged Donations mapping (a wrapped map with a description)
    field_map = FieldMap.parse(DONATIONS_FILE.read_text(encoding="utf-8"))
    body = donation(7, CreationDate="2018-05-01T14:00:00+02:00")
    # WHEN a donation is mapped
    record = single(field_map, ("Id",))(message(json.dumps(body)))
    # THEN every field of the Donations table is filled, the date normalised to UTC
    assert field_map.description.startswith("DonationCreatedIntegrationEvent")
    assert record.fields == {
        "Id": body["Id"],
        "Creation Date": "2018-05-01T12:00:00.000Z",
        "Donor Id": body["UserId"],
        "Fundraiser Id": body["FundraiserId"],
        "Donation Amount": body["DonationAmount"],
        "Donor Display Name": body["DonorDisplayName"],
    }


def drain_of(queue: MemoryQueue, sink: MemorySink, router: Router) -> Drain:
    """A drain over the fakes: no long polls, a short linger, a pace that never waits."""
    deadline = Deadline(Budget(30), 0.5)
    writer = Writer(deadline, max_attempts=3, suspect=lambda message, error: False)
    destination = Destination(DEFAULT_ROUTE, sink, Pacer(Capacity(1000.0)))
    limits = Limits(wait_time_seconds=0, linger_seconds=0.05, poll_seconds=0.005)
    return Drain(queue, router, {DEFAULT_ROUTE: destination}, deadline, writer, limits=limits)


def test_a_bad_value_is_dead_lettered_and_the_rest_of_the_batch_is_written():
    # GIVEN ten donations, one with an amount that is not a number, and the typed mapping
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    bodies = [donation(n) for n in range(10)]
    bodies[4]["DonationAmount"] = "twenty"
    for body in bodies:
        queue.send(body)
    router = single(FieldMap.parse(DONATIONS_FILE.read_text(encoding="utf-8")), ("Id",))
    drain = drain_of(queue, sink, router)
    # WHEN drained
    summary = drain.run()
    # THEN nine rows are written in one request, the bad message never reaches Airtable,
    # and it is in the DLQ with a reason naming the field and the value's type
    assert len(sink.rows) == 9 and sink.requests == [[r["fields"] for r in sink.rows]]
    assert bodies[4]["Id"] not in sink.values("Id")
    assert queue.dead_letters == [
        (
            json.dumps(bodies[4]),
            {
                "reason": "field \"Donation Amount\": cannot convert str 'twenty' to currency "
                '(numeric strings need "coerce": true)',
                "error_type": "MAPPING_ERROR",
            },
        )
    ]
    assert summary.dead_lettered == 1 and queue.depth() == 0


# -- data faults: what Airtable would store wrongly is poison ------------------------------

MAX_SAFE = 9_007_199_254_740_991  # 2^53 - 1: the largest integer an IEEE double holds exactly


@pytest.mark.parametrize("kind", ["number", "currency", "percent", "integer"])
@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ('{"v": 1234567890123456789}', "1234567890123456789"),
        ('{"v": -9007199254740992}', "-9007199254740992"),
        ('{"v": "1234567890123456790"}', "1234567890123456790"),  # with coerce
        ('{"v": 12345678901234567891.0}', "12345678901234567891.0"),  # digits a double loses
    ],
)
def test_an_integer_beyond_2_to_the_53_into_a_number_field_is_poison(kind, body, shown):
    # GIVEN a numeric entry (coerce on, so numeric strings are read too)
    entries = {"v": {"field": "Donation Amount", "type": kind, "coerce": True}}
    # WHEN a body carries an integer that Airtable's doubles would round
    with pytest.raises(MappingError) as raised:
        mapper(entries)(message(body))
    # THEN it is poison, naming the field and why
    assert raised.value.reason == (
        f'field "Donation Amount": cannot convert {shown} to {kind} (beyond +/-2^53 = '
        "9,007,199,254,740,991: Airtable stores numbers as IEEE doubles and would round it)"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f'{{"v": {MAX_SAFE}}}', MAX_SAFE),
        (f'{{"v": {-MAX_SAFE}}}', -MAX_SAFE),
        (f'{{"v": "{MAX_SAFE}"}}', MAX_SAFE),
        ('{"v": 1e20}', 1e20),  # a double literal Airtable stores exactly as written
    ],
)
def test_numbers_a_double_holds_exactly_pass(body, expected):
    entries = {"v": {"field": "N", "type": "number", "coerce": True}}
    assert mapper(entries)(message(body)).fields == {"N": expected}


def test_two_ids_that_airtable_would_merge_are_both_refused_not_collapsed():
    # GIVEN the two ids that become the same IEEE double on Airtable
    entries = {"ext": {"field": "Ext", "type": "number"}}
    for body in ('{"ext": 1234567890123456789}', '{"ext": 1234567890123456790}'):
        # WHEN each is mapped THEN neither is written (no silent merge of two donations)
        with pytest.raises(MappingError, match="would round it"):
            mapper(entries, ("Ext",))(message(body))


def table_fields(Ext: str) -> list[dict[str, str]]:
    """The meta endpoint's fields of a table with a text "Id" and an "Ext" of type `Ext`."""
    return [
        {"id": "fldId000000000001", "name": "Id", "type": "singleLineText"},
        {"id": "fldExt00000000001", "name": "Ext", "type": Ext},
    ]


def test_a_plain_entry_gets_the_2_to_the_53_rule_once_the_schema_says_the_field_is_numeric():
    # GIVEN a plain entry: without a schema the value passes as-is
    field_map = FieldMap.parse('{"Id": "Id", "ext": "Ext"}')
    body = message('{"Id": "a", "ext": 1234567890123456789}')
    assert single(field_map)(body).fields["Ext"] == 1234567890123456789
    # WHEN the schema says "Ext" is a number field
    ids = {"Id": "fldId000000000001", "Ext": "fldExt00000000001"}
    resolved = field_map.resolved(ids, table_fields(Ext="number"))
    # THEN the same value is poison, with the human field name
    with pytest.raises(MappingError, match=r'^field "Ext": cannot convert 1234567890123456789 '):
        single(resolved)(body)
    # AND a text field still takes it as-is
    text = field_map.resolved(ids, table_fields(Ext="singleLineText"))
    assert single(text)(body).fields == {
        "fldId000000000001": "a",
        "fldExt00000000001": 1234567890123456789,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234.0", "1234"),  # the fault: not "1234.0", which would duplicate the "1234" row
        ("1234", "1234"),
        ("-0.0", "0"),
        ("25.5", "25.5"),
        ("0.1", "0.1"),  # shortest round-trip repr, not 0.1000000000000000055...
        ("1e3", "1000"),
        ("123456789012345.0", "123456789012345"),  # no exponent for ordinary ids
        ("0.00001", "1e-05"),  # documented: repr's exponent below 1e-4
        ("1e16", "1e+16"),  # and from 1e16 on
        ("12345678901234567891", "12345678901234567891"),  # an int stays exact in text
    ],
)
def test_numbers_into_text(value, expected):
    # GIVEN a text entry WHEN a JSON number is mapped THEN the text is the number as written
    fields = mapper({"ext_id": {"field": "Ext", "type": "text"}})(
        message(f'{{"ext_id": {value}}}')
    ).fields
    assert fields == {"Ext": expected}


def test_an_integral_float_into_text_matches_the_integer_row_key():
    # GIVEN a merge on a text field, and the same id sent once as 1234 and once as 1234.0
    m = mapper({"ext_id": {"field": "Ext", "type": "text"}}, ("Ext",))
    # WHEN both are mapped THEN they have the same merge key (one row, not two)
    assert m(message('{"ext_id": 1234}')).key == m(message('{"ext_id": 1234.0}')).key
    assert m(message('{"ext_id": 1234}')).key == (key_text("1234"),)
    assert m(message('{"ext_id": 1234}')).key != m(message('{"ext_id": 1235}')).key


def test_a_number_merge_key_is_one_key_whatever_its_json_form():
    # GIVEN a merge on a number field, and the same amount as 25 and as 25.0
    m = mapper({"ext_id": {"field": "Ext", "type": "number"}}, ("Ext",))
    # WHEN both are mapped THEN they have one key, as Airtable's doubles do; the text "25"
    # of a text entry is another key
    assert m(message('{"ext_id": 25}')).key == m(message('{"ext_id": 25.0}')).key
    text = mapper({"ext_id": {"field": "Ext", "type": "text"}}, ("Ext",))
    assert text(message('{"ext_id": 25}')).key != m(message('{"ext_id": 25}')).key


def test_a_float_literal_with_digits_a_double_loses_is_refused_into_text():
    # GIVEN a JSON float literal whose integer digits a double cannot keep
    with pytest.raises(MappingError) as raised:
        mapper({"v": {"field": "Ext", "type": "text"}})(message('{"v": 12345678901234567891.0}'))
    assert raised.value.reason == (
        'field "Ext": cannot convert number 12345678901234567891.0 to text (more digits than a '
        "JSON double holds; send it as a string)"
    )


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ("{}", "[]"),
        ('{"unrelated": 1}', '["unrelated"]'),
        ('{"Id": null, "Other": {"Id": "nested is not top-level"}}', '["Id", "Other"]'),
    ],
)
def test_a_message_with_nothing_mapped_is_poison_not_an_empty_row(body, keys):
    # GIVEN a create-mode map (no merge key) with a default and an SQS value
    entries = {
        "Id": "Id",
        "Amount": {"field": "Amount", "type": "currency", "default": 0},
        "$MessageId": "Message Id",
    }
    # WHEN a message carries none of the mapped body keys
    with pytest.raises(MappingError) as raised:
        mapper(entries)(message(body))
    # THEN it is poison listing only the top-level keys (never values)
    assert raised.value.reason == f"no FIELD_MAP source found (top-level keys: {keys})"


def test_keys_in_the_nothing_mapped_reason_are_abbreviated():
    body = json.dumps({f"k{n}-" + "x" * 60: n for n in range(25)})
    with pytest.raises(MappingError) as raised:
        mapper({"Id": "Id"})(message(body))
    reason = raised.value.reason
    assert "... 5 more]" in reason and "x" * 60 not in reason and len(reason) < 1200


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"Id": "a", "Id": "b"}', '"Id"'),
        ('{"Id": "a", "donor": {"name": "x", "name": "y"}}', '"name"'),
        ('{"Id": "a", "lines": [{"sku": 1}, {"sku": 2, "sku": 3}]}', '"sku"'),
    ],
)
def test_duplicate_keys_at_any_depth_are_poison(body, key):
    # GIVEN a body with a key twice in one object WHEN mapped
    with pytest.raises(MappingError) as raised:
        mapper({"Id": "Id", "donor.name": "Donor"})(message(body))
    # THEN it is poison, and the reason names the key
    assert raised.value.reason.startswith(f"body has the key {key} twice; it is ambiguous")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_stay_refused(constant):
    with pytest.raises(MappingError, match=f"{constant} is not a valid JSON number"):
        mapper({"Id": "Id"})(message(f'{{"Id": "a", "x": {constant}}}'))


def test_a_plain_value_that_is_not_sendable_is_poison():
    # GIVEN plain entries WHEN a value holds a lone surrogate or an overflowing number
    with pytest.raises(MappingError) as raised:
        mapper({"Id": "Id", "lines": "Lines"})(message('{"Id": "\\ud800", "lines": [1e999]}'))
    # THEN both are named: Airtable could not read either as UTF-8 JSON
    assert raised.value.reason == (
        'field "Id": value is not valid Unicode (it holds a lone surrogate such as \\ud800); '
        'field "Lines": value holds a number that is not finite'
    )


def test_deeply_nested_bodies_are_poison_not_a_crash():
    with pytest.raises(MappingError, match="nested too deeply"):
        mapper({"Id": "Id"})(message('{"Id": ' + "[" * 100_000 + "]" * 100_000 + "}"))


def test_a_field_map_with_a_duplicate_key_is_a_config_error():
    # GIVEN a field map with the key "Id" twice WHEN parsed
    with pytest.raises(ConfigError) as raised:
        FieldMap.parse('{"Id": "Id", "Id": "Other"}')
    # THEN FIELD_MAP is named, with the key
    assert raised.value.variable == "FIELD_MAP"
    assert raised.value.problem.startswith('has the key "Id" twice')


# -- values whose meaning the table's field sets ---------------------------------------------


def bound(entries: dict, *fields: dict) -> Router:
    """A route whose map is resolved against a table with these fields (by name)."""
    field_map = FieldMap.parse(json.dumps(entries)).resolved(
        {f["name"]: f["id"] for f in fields}, list(fields)
    )
    return single(field_map)


PARIS_FIELD = {
    "id": "fldWhen0000000001",
    "name": "When",
    "type": "dateTime",
    "options": {"timeZone": "Europe/Paris"},
}


def test_a_naive_time_is_read_in_the_date_time_fields_own_zone():
    # GIVEN a dateTime field in Europe/Paris and an entry that names no zone
    router = bound({"t": {"field": "When", "type": "dateTime"}}, PARIS_FIELD)
    # WHEN a naive local time is mapped THEN it is that time in Paris (12:00 UTC in May)
    record = router(message('{"t": "2018-05-01T14:00"}'))
    assert record.fields == {"fldWhen0000000001": "2018-05-01T12:00:00.000Z"}
    # AND an entry's own "timezone" wins over the field's, and a time with an offset is as sent
    utc = bound({"t": {"field": "When", "type": "dateTime", "timezone": "UTC"}}, PARIS_FIELD)
    assert utc(message('{"t": "2018-05-01T14:00"}')).fields["fldWhen0000000001"] == (
        "2018-05-01T14:00:00.000Z"
    )
    assert router(message('{"t": "2018-05-01T14:00:00Z"}')).fields["fldWhen0000000001"] == (
        "2018-05-01T14:00:00.000Z"
    )


@pytest.mark.parametrize(
    ("local", "what", "earlier", "later"),
    [
        (
            "2026-10-25T02:30",
            "happens twice",
            "2026-10-25T00:30:00.000Z",
            "2026-10-25T01:30:00.000Z",
        ),
        (
            "2026-03-29T02:30",
            "does not exist",
            "2026-03-29T00:30:00.000Z",
            "2026-03-29T01:30:00.000Z",
        ),
    ],
    ids=["overlap", "gap"],
)
def test_a_local_time_at_a_daylight_saving_change_is_poison_unless_the_entry_picks(
    local, what, earlier, later
):
    # GIVEN a naive time that Paris has twice (October) or never (March)
    body = message(json.dumps({"t": local}))
    # WHEN the entry says nothing THEN it is poison saying which, and how to choose
    with pytest.raises(MappingError) as raised:
        bound({"t": {"field": "When", "type": "dateTime"}}, PARIS_FIELD)(body)
    assert f"{local}:00 {what} in Europe/Paris" in raised.value.reason
    assert '"dst": "earlier" or "later"' in raised.value.reason
    # AND "dst" picks the instant before or after the change
    for dst, expected in (("earlier", earlier), ("later", later)):
        entry = {"t": {"field": "When", "type": "dateTime", "dst": dst}}
        assert bound(entry, PARIS_FIELD)(body).fields["fldWhen0000000001"] == expected


def test_a_percent_is_a_fraction_unless_the_entry_scales_it():
    fraction = mapper({"Id": "Id", "p": {"field": "P", "type": "percent"}})
    assert fraction(message('{"Id": "a", "p": 0.25}')).fields["P"] == 0.25
    # GIVEN a value that would show as 2,500% WHEN mapped THEN it is poison, saying why
    with pytest.raises(MappingError, match="would be 2,500%"):
        fraction(message('{"Id": "a", "p": 25}'))
    # AND with "scale": 100 percentages are sent as fractions
    scaled = mapper({"Id": "Id", "p": {"field": "P", "type": "percent", "scale": 100}})
    assert scaled(message('{"Id": "a", "p": 25}')).fields["P"] == 0.25


def test_a_rating_is_bounded_by_the_fields_max():
    rating = {"id": "fldStars000000001", "name": "Stars", "type": "rating", "options": {"max": 5}}
    router = bound({"Id": "Id", "s": {"field": "Stars", "type": "integer"}}, rating)
    assert router(message('{"Id": "a", "s": 5}')).fields["fldStars000000001"] == 5
    with pytest.raises(MappingError, match=r"6 is outside the rating field's 0 to 5"):
        router(message('{"Id": "a", "s": 6}'))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("web", ["web"]), (["web", "app", "web"], ["web", "app"])],
)
def test_multiple_selects_take_one_name_or_a_list_once_each(value, expected):
    entry = {"Id": "Id", "c": {"field": "C", "type": "multipleSelects", "choices": ["web", "app"]}}
    assert mapper(entry)(message(json.dumps({"Id": "a", "c": value}))).fields["C"] == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [(["fax"], "are not among the options"), ([], "expected a non-empty string or a list")],
)
def test_multiple_selects_refuse_unknown_options_and_nothing(value, reason):
    entry = {"Id": "Id", "c": {"field": "C", "type": "multipleSelects", "choices": ["web"]}}
    with pytest.raises(MappingError, match=reason):
        mapper(entry)(message(json.dumps({"Id": "a", "c": value})))


def test_an_attachment_is_an_https_url_airtable_can_fetch():
    entry = {"Id": "Id", "f": {"field": "File", "type": "attachment"}}
    record = mapper(entry)(message('{"Id": "a", "f": "https://files.example/receipt.pdf"}'))
    assert record.fields["File"] == [{"url": "https://files.example/receipt.pdf"}]
    with pytest.raises(MappingError, match="is not an https URL"):
        mapper(entry)(message('{"Id": "a", "f": ["http://files.example/receipt.pdf"]}'))
