"""Property: whatever the body (and its attributes), the router returns a sendable record or
raises MappingError.

Sendable: strict JSON (no NaN/Infinity), UTF-8 encodable, only the map's targets as keys.
Deterministic (derandomize) and bounded (max_examples), so the verdict never depends on luck
or on machine speed."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poller.errors import MappingError
from poller.fieldmap import FieldMap
from poller.model import Attribute, Message, Record
from poller.routes import parse_routes
from poller.routing import Router, single_route

SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: Strings including lone surrogates and control characters (json.dumps escapes them).
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
KEYS = st.sampled_from(["Id", "Amount", "When", "Flag", "donor", "n", "", "Id.x"]) | TEXT
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(["25.50", "2018-05-01T12:00:00Z", "true", "1e999", "12345678901234567891"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
BODIES = st.dictionaries(KEYS, JSON, max_size=6)
#: SQS message attributes as SQS delivers them: String values as sent, Number values as the
#: decimal text SQS accepts (with or without a custom type suffix).
NUMBER_TEXT = st.integers(min_value=-(10**38), max_value=10**38).map(str) | st.floats(
    allow_nan=False, allow_infinity=False, min_value=-1e38, max_value=1e38
).map(repr)
ATTRIBUTES = st.dictionaries(
    st.sampled_from(["n", "s", "channel"]),
    st.builds(Attribute, st.sampled_from(["Number", "Number.int"]), NUMBER_TEXT)
    | st.builds(Attribute, st.sampled_from(["String", "String.x"]), TEXT),
    max_size=3,
)


def envelope(payload: dict, kind: str) -> dict:
    if kind == "sns":
        return {
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": json.dumps(payload),
            "MessageAttributes": {"channel": {"Type": "String", "Value": "web"}},
        }
    if kind == "eventbridge":
        return {"version": "0", "id": "e", "detail-type": "X", "source": "s", "detail": payload}
    return payload


#: Raw JSON text: valid JSON of every shape, plus literals the strict parser must refuse.
RAW_TEXT = st.one_of(
    JSON.map(json.dumps),
    st.tuples(BODIES, st.sampled_from(["raw", "sns", "eventbridge"])).map(
        lambda pair: json.dumps(envelope(*pair))
    ),
    TEXT,
    st.sampled_from(
        ['{"Id": NaN}', '{"Id": 1, "Id": 2}', '{"Id": 1e400}', '{"Amount": -Infinity}', "", "{"]
    ),
    st.tuples(KEYS, st.sampled_from(["1e999", "12345678901234567891.0", '"\\udc00"', "-0"])).map(
        lambda pair: f'{{{json.dumps(pair[0])}: {pair[1]}, "Id": {pair[1]}}}'
    ),
)

TYPED = FieldMap.parse(
    json.dumps(
        {
            "Id": {"field": "Id", "type": "text"},
            "Amount": [
                {"field": "Amount", "type": "currency", "coerce": True},
                {"field": "Count", "type": "integer", "coerce": True},
            ],
            "When": {"field": "When", "type": "dateTime", "epoch": "ms"},
            "Flag": {"field": "Flag", "type": "checkbox", "default": False},
            "donor.name": {"field": "Donor", "type": "singleSelect"},
            "$Envelope.MessageAttributes.channel": "Channel",
            "$MessageAttributes.n": {"field": "Attr N", "type": "number"},
            "$MessageAttributes.s": {"field": "Attr S", "type": "text"},
        }
    )
)
PLAIN = FieldMap.parse(
    json.dumps(
        {"Id": "Id", "donor": "Donor", "n": "N", "$MessageId": "Msg", "$MessageAttributes.n": "A"}
    )
)
#: Each target of PLAIN: its field id and its Airtable type.
PLAIN_TABLE = {
    "Id": ("fldAAAAAAAAAAAAAA", "singleLineText"),
    "Donor": ("fldBBBBBBBBBBBBBB", "multilineText"),
    "N": ("fldCCCCCCCCCCCCCC", "number"),
    "Msg": ("fldDDDDDDDDDDDDDD", "singleLineText"),
    "A": ("fldEEEEEEEEEEEEEE", "number"),
}
RESOLVED = PLAIN.resolved(
    {name: field_id for name, (field_id, _) in PLAIN_TABLE.items()},
    [{"id": i, "name": n, "type": t} for n, (i, t) in PLAIN_TABLE.items()],
)


def single(field_map: FieldMap, merge_on: tuple[str, ...] = (), envelope: str = "auto") -> Router:
    return Router([single_route("appAAAAAAAAAAAAAA", "T", field_map, merge_on)], envelope)


MAPPERS = [
    single(TYPED, ("Id",)),
    single(TYPED),
    single(PLAIN, ("Id", "N")),
    single(RESOLVED, ("fldAAAAAAAAAAAAAA",)),
    single(PLAIN, (), "raw"),
    Router(
        parse_routes(
            json.dumps(
                {
                    "routes": [
                        {
                            "name": "amounts",
                            "when": {"Amount": {"exists": True}},
                            "base": "appAAAAAAAAAAAAAA",
                            "table": "A",
                            "fields": {"Id": "Id", "Amount": {"field": "Amount", "type": "number"}},
                            "merge_on": ["Id"],
                        },
                        {
                            "name": "events",
                            "envelope": "eventbridge",
                            "base": "appBBBBBBBBBBBBBB",
                            "table": "E",
                            "fields": {"n": "N", "$Envelope.detail-type": "Type"},
                        },
                        {
                            "name": "flags",
                            "when": {"Flag": {"in": [True, 1, "yes"]}},
                            "base": "appAAAAAAAAAAAAAA",
                            "table": "F",
                            "fields": {"Flag": {"field": "Flag", "type": "checkbox"}},
                        },
                    ]
                }
            )
        )
    ),
]
TARGETS = [
    {s.key for s in TYPED.specs},
    {s.key for s in TYPED.specs},
    {s.key for s in PLAIN.specs},
    {s.key for s in RESOLVED.specs},
    {s.key for s in PLAIN.specs},
    {"Id", "Amount", "N", "Type", "Flag"},
]


def assert_sendable(record: Record, targets: set[str]) -> None:
    assert set(record.fields) <= targets
    assert record.fields, "a record is never empty"
    text = json.dumps(dict(record.fields), allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # raises on a lone surrogate

    def finite(value: object) -> None:
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, list):
            for item in value:
                finite(item)
        elif isinstance(value, dict):
            for item in value.values():
                finite(item)

    finite(dict(record.fields))
    if record.key is not None:
        assert all(isinstance(part, str) for part in record.key)


def check(text: str, attributes: dict[str, Attribute] | None = None) -> None:
    message = Message(id="m1", receipt="r1", body=text, attributes=attributes or {})
    for mapper, targets in zip(MAPPERS, TARGETS, strict=True):
        try:
            record = mapper(message)
        except MappingError as exc:
            assert exc.reason and isinstance(exc.reason, str)
            exc.reason.encode("utf-8")  # a reason can go into an SQS message attribute
            continue
        assert_sendable(record, targets)


@SETTINGS
@given(BODIES, st.sampled_from(["raw", "sns", "eventbridge"]), ATTRIBUTES)
def test_any_json_object_maps_to_a_sendable_record_or_a_mapping_error(body, kind, attributes):
    check(json.dumps(envelope(body, kind)), attributes)


@SETTINGS
@given(RAW_TEXT)
def test_any_text_maps_to_a_sendable_record_or_a_mapping_error(text):
    check(text)
