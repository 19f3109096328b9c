"""One queue, many event types: routes into two tables of two bases, through every envelope.

The donations app publishes every integration event to one queue as plain JSON with no type
marker; teams put SNS or EventBridge in front. Here moto's SQS server carries donations as raw
JSON, wrapped by SNS (without raw delivery) and by EventBridge, and `FundraiserCreated` events
from EventBridge; the real handler routes them with ROUTES into a Donations table in one base
and a Fundraisers table in another of the Airtable emulator (Airtable's real 5 requests/s
per base), through the real pyairtable.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from devstack import donation
from devstack.stack import BASE_ID, TABLE, TOKEN, LocalStack, default_emulator_config
from harness import EMPTY, LOCKOUT_SECONDS, receive_counts, rows_by_id
from pyairtable import Api

FUNDRAISERS_BASE = "appFundraisers001"
FUNDRAISERS_SCHEMA = {
    "tables": [
        {
            "name": "Fundraisers",
            "fields": [
                {"name": "Fundraiser Id", "type": "singleLineText"},
                {"name": "Name", "type": "singleLineText"},
                {"name": "Goal", "type": "currency", "options": {"precision": 2, "symbol": "$"}},
                {"name": "Source", "type": "singleLineText"},
            ],
        }
    ]
}
DONATION_FIELDS = {
    "Id": "Id",
    "CreationDate": {"field": "Creation Date", "type": "dateTime"},
    "UserId": "Donor Id",
    "FundraiserId": "Fundraiser Id",
    "DonationAmount": {"field": "Donation Amount", "type": "currency"},
    "DonorDisplayName": "Donor Display Name",
}
ROUTES = {
    "routes": [
        {
            "name": "donations",
            "when": {"DonationAmount": {"exists": True}},
            "base": BASE_ID,
            "table": TABLE,
            "fields": DONATION_FIELDS,
            "merge_on": ["Id"],
        },
        {
            "name": "fundraisers",
            "when": {"$Envelope.detail-type": "FundraiserCreated"},
            "base": FUNDRAISERS_BASE,
            "table": "Fundraisers",
            "fields": {
                "FundraiserId": "Fundraiser Id",
                "Name": "Name",
                "Goal": {"field": "Goal", "type": "currency"},
                "$Envelope.source": "Source",
            },
            "merge_on": ["Fundraiser Id"],
        },
    ]
}


def sns(payload: dict[str, Any]) -> str:
    """A notification as SNS delivers it to SQS without raw message delivery."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:fundraise-events",
            "Subject": None,
            "Message": json.dumps(payload),
            "Timestamp": "2026-11-30T12:00:00.200Z",
            "SignatureVersion": "1",
            "Signature": "c2lnbmF0dXJl",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


def eventbridge(detail_type: str, detail: dict[str, Any]) -> str:
    """An event as an EventBridge rule delivers it to an SQS target without InputPath."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "fundraise.app",
            "account": "123456789012",
            "time": "2026-11-30T12:00:05Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def fundraiser(n: int) -> dict[str, Any]:
    return {"FundraiserId": f"fr-{n:04d}", "Name": f"Walk {n}", "Goal": 1000.0 + n}


@pytest.fixture
def stack(sqs_endpoint: str) -> Iterator[LocalStack]:
    """The conftest's stack (which `invoke` drives), with a second base for fundraisers."""
    config = default_emulator_config(lockout_seconds=LOCKOUT_SECONDS)
    with LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config) as local:
        local.emulator.define_base(FUNDRAISERS_BASE, FUNDRAISERS_SCHEMA)
        yield local


def single_table_env() -> dict[str, str]:
    return {"FIELD_MAP": json.dumps(DONATION_FIELDS), "MERGE_ON": "Id"}


def routes_env() -> dict[str, str | None]:
    return {
        "ROUTES": json.dumps(ROUTES),
        "AIRTABLE_BASE_ID": None,
        "AIRTABLE_TABLE": None,
        "FIELD_MAP": None,
        "MERGE_ON": None,
    }


def test_every_event_type_and_envelope_lands_once_in_its_own_table(stack, invoke):
    # GIVEN one queue carrying 30 donations (a third raw, a third through SNS, a third through
    # EventBridge), 12 FundraiserCreated events from EventBridge, and 3 events no route takes
    donations = [donation(n) for n in range(30)]
    fundraisers = [fundraiser(n) for n in range(12)]
    unroutable = [
        eventbridge("FundraiserClosed", {"FundraiserId": "fr-0001"}),
        json.dumps({"UserId": "auth0|x", "Email": "x@example.org"}),
        sns({"Kind": "Refund", "Amount": 3.0}),
    ]
    bodies = [json.dumps(d) for d in donations[:10]]
    bodies += [sns(d) for d in donations[10:20]]
    bodies += [eventbridge("DonationCreated", d) for d in donations[20:]]
    bodies += [eventbridge("FundraiserCreated", f) for f in fundraisers]
    bodies += unroutable
    stack.send_messages(bodies)
    # WHEN the handler drains it with ROUTES
    summary = invoke(timeout_s=120, **routes_env())
    # THEN each donation is one row of the Donations base with the payload's values (never
    # the EventBridge envelope's own id)
    rows = rows_by_id(stack)
    assert len(rows) == 30
    for body in donations:
        assert rows[body["Id"]]["Donation Amount"] == body["DonationAmount"]
        assert rows[body["Id"]]["Fundraiser Id"] == body["FundraiserId"]
    # AND each fundraiser is one row of the Fundraisers base, with the envelope's source
    raised = stack.emulator.records(FUNDRAISERS_BASE, "Fundraisers")
    by_id = {r["fields"]["Fundraiser Id"]: r["fields"] for r in raised}
    assert len(by_id) == len(raised) == 12
    assert by_id["fr-0003"] == {
        "Fundraiser Id": "fr-0003",
        "Name": "Walk 3",
        "Goal": 1003,
        "Source": "fundraise.app",
    }
    # AND only the unroutable messages are dead, each with a reason naming its keys, not values
    letters = stack.dead_letters()
    assert sorted(body for body, _ in letters) == sorted(unroutable)
    for _, attributes in letters:
        assert attributes["poller.reason"].startswith("no route matched")
        assert "x@example.org" not in attributes["poller.reason"]
    # AND the queue is empty, and each base's pace was its own: neither base was hammered (a
    # 429 of a busy machine costs at most one lockout per base)
    assert stack.counts() == EMPTY
    stats = stack.emulator.stats
    assert all(stats.base(b).lockouts <= 1 for b in (BASE_ID, FUNDRAISERS_BASE))
    assert stats.throttled <= 8
    assert summary["written"] == 42 and summary["dead_lettered"] == 3


def test_the_single_table_config_with_mixed_envelopes_writes_every_donation(stack, invoke):
    # GIVEN the single-table config (ENVELOPE defaults to auto) and donations in three shapes
    donations = [donation(n) for n in range(30)]
    bodies = [json.dumps(d) for d in donations[:10]]
    bodies += [sns(d) for d in donations[10:20]]
    bodies += [eventbridge("DonationCreated", d) for d in donations[20:]]
    stack.send_messages(bodies)
    # WHEN drained
    summary = invoke(timeout_s=120, **single_table_env())
    # THEN every donation is a row, none is dead-lettered
    assert sorted(rows_by_id(stack)) == sorted(d["Id"] for d in donations)
    assert stack.dead_letters() == []
    assert summary["dead_lettered"] == 0


def test_a_broken_route_holds_the_whole_queue_until_it_is_fixed(stack, invoke):
    # GIVEN a warm container, then a mapped field of the Fundraisers table deleted, and both
    # event types in the queue
    invoke.set(**routes_env())
    assert invoke()["stopped_because"] == "empty"
    stack.emulator.delete_field(FUNDRAISERS_BASE, "Fundraisers", "Name")
    donations = [donation(n) for n in range(20)]
    fundraisers = [fundraiser(n) for n in range(10)]
    stack.send_messages([json.dumps(d) for d in donations])
    stack.send_messages([eventbridge("FundraiserCreated", f) for f in fundraisers])
    # WHEN runs start while the field is missing
    held = [invoke.run() for _ in range(3)]
    # THEN each names the broken route and receives nothing, the donations included: a
    # receive cannot choose its route, and a fundraiser received would come closer to the
    # DLQ without a write attempt
    for summary in held:
        assert summary["stopped_because"] == "systemic" and summary["received"] == 0
        assert list(summary["stopped_routes"]) == ["fundraisers"]
        assert '"Name"' in summary["stopped_routes"]["fundraisers"]
    assert stack.rows() == [] and stack.dead_letters() == []
    assert receive_counts(stack) == [0] * 30
    # WHEN the field is back, the next run writes everything
    airtable = Api(TOKEN, endpoint_url=stack.airtable_url)
    airtable.table(FUNDRAISERS_BASE, "Fundraisers").create_field("Name", "singleLineText")
    assert invoke()["stopped_because"] == "empty"
    raised = stack.emulator.records(FUNDRAISERS_BASE, "Fundraisers")
    assert sorted(r["fields"]["Fundraiser Id"] for r in raised) == [
        f["FundraiserId"] for f in fundraisers
    ]
    assert sorted(rows_by_id(stack)) == sorted(d["Id"] for d in donations)
    assert stack.dead_letters() == [] and stack.counts() == EMPTY
