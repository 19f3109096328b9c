"""Taking the payload out of SNS and EventBridge envelopes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poller.envelopes import parse_json_object, unwrap
from poller.errors import MappingError
from poller.fieldmap import FieldMap
from poller.model import Message
from poller.routing import Router, single_route

DATA = Path(__file__).parent / "data"
#: The field samples (copied from the team's shared samples): one JSON body per line.
SNS_DONATION, EB_DONATION, EB_FUNDRAISER, LOOKALIKE, SNS_NOT_JSON = (
    (DATA / "envelopes.jsonl").read_text(encoding="utf-8").splitlines()
)
DOTNET = (DATA / "dotnet-producer.jsonl").read_text(encoding="utf-8").splitlines()


def body(text: str) -> dict:
    return parse_json_object(text)


def sns(payload: object, **extra: object) -> dict:
    """An SNS notification as SQS receives it without raw message delivery."""
    return {
        "Type": "Notification",
        "MessageId": "5d3c1b2a-0000-4000-8000-00000000000a",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:fundraise-events",
        "Subject": None,
        "Message": payload if isinstance(payload, str) else json.dumps(payload),
        "Timestamp": "2026-11-30T12:00:00.200Z",
        **extra,
    }


def eventbridge(detail: object, **extra: object) -> dict:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "DonationCreated",
        "source": "fundraise.app",
        "account": "123456789012",
        "time": "2026-11-30T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
        **extra,
    }


# -- the field samples ----------------------------------------------------------------------


def test_sns_sample_unwraps_to_the_donation_and_keeps_the_envelope_readable():
    # GIVEN the SNS-wrapped donation WHEN unwrapped in auto mode
    result = unwrap(body(SNS_DONATION))
    # THEN the payload is the donation from the Message string
    assert result.kind == "sns"
    assert result.payload["Id"] == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert result.payload["DonationAmount"] == 25.0
    # AND the envelope keys, without the Message, are what $Envelope reads
    assert result.envelope["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:fundraise-events"
    assert result.envelope["MessageId"] == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    assert result.envelope["Subject"] is None and "Message" not in result.envelope


def test_eventbridge_sample_unwraps_and_its_id_is_not_the_payload_id():
    result = unwrap(body(EB_DONATION))
    assert result.kind == "eventbridge"
    assert result.payload["Id"] == "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert result.envelope["id"] == "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert result.envelope["detail-type"] == "DonationCreated"
    assert "detail" not in result.envelope and "id" not in result.payload


def test_fundraiser_sample_unwraps_with_its_detail_type():
    result = unwrap(body(EB_FUNDRAISER))
    assert result.payload == {
        "FundraiserId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "Name": "Spring walk",
        "Goal": 5000.0,
    }
    assert result.envelope["detail-type"] == "FundraiserCreated"
    assert result.envelope["source"] == "fundraise.app"


def test_lookalike_sample_with_id_and_detail_is_not_unwrapped():
    data = body(LOOKALIKE)
    result = unwrap(data)
    assert result.kind == "raw" and result.payload == data and dict(result.envelope) == {}


def test_sns_sample_whose_message_is_not_json_is_poison():
    with pytest.raises(MappingError) as raised:
        unwrap(body(SNS_NOT_JSON))
    assert raised.value.reason.startswith("SNS Message is not valid JSON: Expecting value")
    assert "hello" not in raised.value.reason  # the value itself never goes into a reason


@pytest.mark.parametrize("line", DOTNET)
def test_dotnet_producer_bodies_are_raw_payloads(line):
    data = body(line)
    assert unwrap(data) == unwrap(data, "raw") and unwrap(data).payload == data


# -- the rules, one by one ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("[1, 2]", "SNS Message is JSON list, expected an object"),
        ('"text"', "SNS Message is JSON str, expected an object"),
        ("", "SNS Message is empty"),
        ('{"Id": "a", "Id": "b"}', 'SNS Message has the key "Id" twice'),
        ('{"Id": NaN}', "SNS Message is not valid JSON: NaN is not a valid JSON number"),
    ],
)
def test_an_sns_message_that_is_not_a_strict_json_object_is_poison(message, reason):
    with pytest.raises(MappingError) as raised:
        unwrap(sns(message))
    assert raised.value.reason.startswith(reason)


@pytest.mark.parametrize(
    "lookalike",
    [
        {k: v for k, v in sns({"Id": "a"}).items() if k != "TopicArn"},
        {k: v for k, v in sns({"Id": "a"}).items() if k != "MessageId"},
        {**sns({"Id": "a"}), "Type": "SubscriptionConfirmation"},
        {**sns({"Id": "a"}), "Message": {"Id": "a"}},  # Message not a string
        {"Message": '{"Id": "a"}', "Type": "Notification"},
        {k: v for k, v in eventbridge({"Id": "a"}).items() if k != "source"},
        {k: v for k, v in eventbridge({"Id": "a"}).items() if k != "detail-type"},
        {k: v for k, v in eventbridge({"Id": "a"}).items() if k != "version"},
        eventbridge('{"Id": "a"}'),  # detail not an object
        {"id": "x", "detail": {"Id": "a"}, "source": "me", "version": "1"},
    ],
)
def test_a_body_missing_any_required_envelope_key_is_raw(lookalike):
    # GIVEN a raw payload whose keys merely look like an envelope's WHEN unwrapped (auto)
    result = unwrap(lookalike)
    # THEN it is the payload, untouched
    assert result.kind == "raw" and result.payload is lookalike


def test_unwrapping_happens_at_most_once():
    # GIVEN SNS carrying an EventBridge event, and SNS carrying SNS
    inner_eb = eventbridge({"Id": "a"})
    inner_sns = sns({"Id": "b"})
    # WHEN unwrapped THEN only the outer envelope is removed
    assert unwrap(sns(inner_eb)).payload == inner_eb
    assert unwrap(sns(inner_sns)).payload == inner_sns


def test_sns_message_attributes_are_flattened_to_their_values():
    attributes = {
        "channel": {"Type": "String", "Value": "web"},
        "priority": {"Type": "Number", "Value": "1"},
        "broken": "not an attribute object",
    }
    result = unwrap(sns({"Id": "a"}, MessageAttributes=attributes))
    assert result.envelope["MessageAttributes"] == {"channel": "web", "priority": "1"}


def test_raw_mode_never_unwraps():
    data = sns({"Id": "a"})
    assert unwrap(data, "raw").payload is data


def test_explicit_modes_take_only_their_envelope():
    # GIVEN an EventBridge event and an SNS notification
    eb, note = eventbridge({"Id": "a"}), sns({"Id": "b"})
    # WHEN each mode reads the envelope it expects THEN it unwraps
    assert unwrap(eb, "eventbridge").payload == {"Id": "a"}
    assert unwrap(note, "sns").payload == {"Id": "b"}
    # AND WHEN it gets another shape THEN the message is poison, with a clear reason
    with pytest.raises(MappingError) as raised:
        unwrap(eb, "sns")
    assert raised.value.reason == (
        'body is not an SNS notification (ENVELOPE=sns): missing ["Type", "MessageId", '
        '"TopicArn", "Message"]; top-level keys: ["version", "id", "detail-type", "source", '
        '"account", "time", "region", "resources", "detail"]'
    )
    with pytest.raises(MappingError, match='its "detail" is not an object'):
        unwrap(eventbridge("x"), "eventbridge")
    with pytest.raises(MappingError, match='its "Type" is not "Notification"'):
        unwrap({**note, "Type": "SubscriptionConfirmation"}, "sns")
    with pytest.raises(MappingError, match=r"missing \[\"version\"\]"):
        unwrap({k: v for k, v in eb.items() if k != "version"}, "eventbridge")


# -- through the single-table route ---------------------------------------------------------

DONATIONS = FieldMap.parse(
    json.dumps(
        {
            "Id": {"field": "Id", "type": "text", "required": True},
            "DonationAmount": {"field": "Donation Amount", "type": "currency"},
            "$Envelope.TopicArn": "Topic",
            "$Envelope.detail-type": "Event Type",
            "$Envelope.MessageAttributes.channel": "Channel",
        }
    )
)


def mapped(text: str, envelope: str = "auto") -> dict:
    message = Message(id="m1", receipt="r1", body=text)
    route = single_route("appDonations00001", "Donations", DONATIONS, ("Id",))
    return dict(Router([route], envelope)(message).fields)


def test_the_single_table_mapper_writes_every_sample_donation_whatever_its_envelope():
    # GIVEN donations raw, via SNS and via EventBridge WHEN mapped with ENVELOPE=auto
    # THEN each is its donation, never the envelope's own id
    assert mapped(DOTNET[0]) == {
        "Id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "Donation Amount": 25.0,
    }
    assert mapped(SNS_DONATION) == {
        "Id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "Donation Amount": 25.0,
        "Topic": "arn:aws:sns:us-east-1:123456789012:fundraise-events",
    }
    assert mapped(EB_DONATION) == {
        "Id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "Donation Amount": 20.5,
        "Event Type": "DonationCreated",
    }
    assert mapped(LOOKALIKE) == {
        "Id": "c1d2e3f4-0000-4000-8000-000000000001",
        "Donation Amount": 5.0,
    }


def test_envelope_message_attributes_are_a_mapping_source():
    text = json.dumps(
        sns({"Id": "a"}, MessageAttributes={"channel": {"Type": "String", "Value": "web"}})
    )
    assert mapped(text)["Channel"] == "web"


def test_envelope_values_alone_do_not_count_as_found():
    # GIVEN an SNS notification whose payload has none of the mapped keys
    with pytest.raises(MappingError) as raised:
        mapped(json.dumps(sns({"unrelated": 1})))
    # THEN it is poison even though $Envelope.TopicArn has a value
    assert raised.value.reason == (
        'no FIELD_MAP source found (top-level keys of the SNS payload: ["unrelated"])'
    )


def test_raw_mode_maps_the_envelope_itself():
    # GIVEN ENVELOPE=raw WHEN an SNS body is mapped THEN its keys are the payload (no Id)
    with pytest.raises(MappingError, match="no FIELD_MAP source found"):
        mapped(SNS_DONATION, "raw")
