"""What a scenario drains and where it goes: the message bodies, the bases the emulator
serves, and the poller's routes (`ROUTES`).

* One base (`single`): donations into the Donations table of the devstack's base, with the
  single-table variables, as the deployed function is configured by default.
* Two bases (`two_bases`): one queue carrying an even mix of raw donations and
  `FundraiserCreated` events in EventBridge envelopes (the donations app publishes both),
  routed to the Donations table of one base and the Fundraisers table of another.
* N bases (`sharded`): donations only, sharded over N bases by `FundraiserId`, so that
  Airtable's per-base limit (5 requests/s) is not what bounds one poller (the cpu-share
  scenario: N x 50 records/s, up to the token's 50 requests/s).
* Two pollers on one base (`two_pollers`): one queue each, donations into two tables of
  the same base (Donations and Donations B), so that the write log tells their records
  apart while they share the base's 5 requests/s.
* The faithful mirror (`mirror`): DonationCreated events (the `EventType` attribute) into
  the Donations table of `devstack.mirror`'s base, through its versioned donations route,
  with its link to Fundraisers or without it, or through that route unversioned.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

from airtable_emulator import donations_schema
from devstack import mirror as faithful
from devstack.factories import DONATION_FIELD_MAP, donation
from devstack.stack import BASE_ID, TABLE

#: The second base of the two-base scenario (app + 14 letters/digits, as Airtable's ids).
FUNDRAISERS_BASE_ID = "appFundraisers001"
FUNDRAISERS_TABLE = "Fundraisers"
#: EventBridge's `detail-type` of the donations app's fundraiser event.
FUNDRAISER_CREATED = "FundraiserCreated"
#: FundraiserCreated's payload (`detail`) keys -> the Fundraisers table's fields.
FUNDRAISER_FIELD_MAP: dict[str, Any] = {
    "FundraiserId": {"field": "Fundraiser Id", "type": "text", "required": True},
    "Name": {"field": "Name", "type": "text"},
    "Goal": {"field": "Goal", "type": "currency"},
    "CreationDate": {"field": "Creation Date", "type": "dateTime"},
}


def fundraisers_schema() -> dict[str, Any]:
    """The Fundraisers base, in the meta API's shape without ids (the emulator makes them)."""
    return {
        "tables": [
            {
                "name": FUNDRAISERS_TABLE,
                "fields": [
                    {"name": "Fundraiser Id", "type": "singleLineText"},
                    {"name": "Name", "type": "singleLineText"},
                    {
                        "name": "Goal",
                        "type": "currency",
                        "options": {"precision": 2, "symbol": "$"},
                    },
                    {
                        "name": "Creation Date",
                        "type": "dateTime",
                        "options": {
                            "timeZone": "utc",
                            "dateFormat": {"name": "iso", "format": "YYYY-MM-DD"},
                            "timeFormat": {"name": "24hour", "format": "HH:mm"},
                        },
                    },
                ],
            }
        ]
    }


def donations_schema_without_ids() -> dict[str, Any]:
    """The Donations base's schema with every id dropped, to define it again under another
    base id (the emulator generates fresh ids)."""
    schema = copy.deepcopy(donations_schema())
    for table in schema["tables"]:
        for key in ("id", "primaryFieldId", "views"):
            table.pop(key, None)
        for field in table["fields"]:
            field.pop("id", None)
    return schema


def fundraiser_created(n: int) -> dict[str, Any]:
    """A `FundraiserCreated` event as EventBridge delivers it to an SQS target (without
    InputPath): the envelope, with the payload in `detail` (`poller.envelopes`)."""
    return {
        "version": "0",
        "id": str(uuid.UUID(int=(1 << 64) + n)),
        "detail-type": FUNDRAISER_CREATED,
        "source": "fundraise.app",
        "account": "123456789012",
        "time": "2026-11-30T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "FundraiserId": str(uuid.UUID(int=(2 << 64) + n)),
            "Name": f"Fundraiser {n}",
            "Goal": 1000 + (n % 50) * 10,
            "CreationDate": "2026-11-30T12:00:00Z",
        },
    }


def _fundraiser_of_shard(shard: int) -> str:
    return str(uuid.UUID(int=(3 << 64) + shard))


def shard_base_id(shard: int) -> str:
    """`appShard000000000`, `appShard000000001`, ...: 14 characters after `app`."""
    return f"appShard{shard:09d}"


@dataclass(frozen=True)
class Workload:
    """Bodies in queue order, the bases to define on the emulator (beyond the one it starts
    with), and the poller's environment for the routes (None drops a variable)."""

    bodies: list[Any]  # a body, or SendMessageBatch entry fields (`feeder.Item`)
    #: base id -> schema, each defined through `PUT /__emulator/bases/{base}`
    extra_bases: dict[str, dict[str, Any]]
    env: dict[str, str | None]
    #: base id -> a short label for the report and the plot
    base_labels: dict[str, str]


#: The single-table variables, dropped when ROUTES is set (both styles: a config error).
SINGLE_TABLE_VARIABLES = ("AIRTABLE_BASE_ID", "AIRTABLE_TABLE", "FIELD_MAP", "MERGE_ON")


def single(messages: int, start: int = 0) -> Workload:
    """Donations numbered from `start` (distinct Ids) into the Donations table."""
    return Workload(
        bodies=[json.dumps(donation(n)) for n in range(start, start + messages)],
        extra_bases={},
        env={},
        base_labels={BASE_ID: TABLE},
    )


#: The second poller's table in the two-poller scenario (same base, same fields).
SECOND_TABLE = "Donations B"
#: The second poller's donations are numbered from here (distinct Ids from the first's).
SECOND_START = 1_000_000


def two_pollers(messages: int) -> list[Workload]:
    """Two pollers on one base: the first into Donations, the second into Donations B."""
    schema = donations_schema_without_ids()
    twin = copy.deepcopy(schema["tables"][0])
    twin["name"] = SECOND_TABLE
    schema["tables"].append(twin)
    first = single(messages)
    second = single(messages, start=SECOND_START)
    return [
        Workload(first.bodies, {BASE_ID: schema}, {}, {BASE_ID: TABLE}),
        Workload(second.bodies, {}, {"AIRTABLE_TABLE": SECOND_TABLE}, {BASE_ID: SECOND_TABLE}),
    ]


#: The faithful mirror's variants: the versioned donations route of `devstack.mirror` with
#: its link to Fundraisers, the same without the link, and the same unversioned.
MIRROR_VARIANTS = ("versioned-linked", "versioned", "unversioned")
#: Fundraisers the linked donations point at (none exists: the poller creates each stub).
MIRROR_FUNDRAISERS = 200


def mirror(messages: int, variant: str) -> Workload:
    """`messages` DonationCreated events, each a new donation at version 1."""
    if variant not in MIRROR_VARIANTS:
        raise ValueError(f"mirror variant {variant!r}: one of {MIRROR_VARIANTS}")
    route = copy.deepcopy(next(r for r in faithful.routes()["routes"] if r["name"] == "donations"))
    route["when"] = {"$MessageAttributes.EventType": "DonationCreated"}
    route["fields"].pop("ReceiptUrl", None)
    if variant != "versioned-linked":
        route["fields"].pop("FundraiserId")
    if variant == "unversioned":
        route.pop("version")
    items = []
    for n in range(messages):
        body: dict[str, Any] = {
            "Id": f"don-{n:06d}",
            "DonationAmount": round(5 + (n % 200) * 1.25, 2),
            "Status": "paid",
            "Tags": ["gift"] if n % 2 else ["recurring", "matched"],
            "Version": 1,
        }
        if variant == "versioned-linked":
            body["FundraiserId"] = f"fr-{n % MIRROR_FUNDRAISERS:04d}"
        items.append(faithful.Event("DonationCreated", body).message())
    return Workload(
        bodies=items,
        extra_bases={faithful.BASE_ID: faithful.schema()},
        env={"ROUTES": json.dumps({"routes": [route]}), **dict.fromkeys(SINGLE_TABLE_VARIABLES)},
        base_labels={faithful.BASE_ID: "Donations"},
    )


def two_bases(messages: int) -> Workload:
    """Donations and FundraiserCreated events alternating (an even mix), into two bases."""
    bodies = [
        json.dumps(donation(n // 2) if n % 2 == 0 else fundraiser_created(n // 2))
        for n in range(messages)
    ]
    routes = {
        "routes": [
            {
                "name": "donations",
                "when": {"DonationAmount": {"exists": True}},
                "base": BASE_ID,
                "table": TABLE,
                "fields": DONATION_FIELD_MAP,
                "merge_on": ["Id"],
            },
            {
                "name": "fundraisers",
                "when": {"$Envelope.detail-type": FUNDRAISER_CREATED},
                "base": FUNDRAISERS_BASE_ID,
                "table": FUNDRAISERS_TABLE,
                "fields": FUNDRAISER_FIELD_MAP,
                "merge_on": ["Fundraiser Id"],
            },
        ]
    }
    return Workload(
        bodies=bodies,
        extra_bases={FUNDRAISERS_BASE_ID: fundraisers_schema()},
        env={"ROUTES": json.dumps(routes), **dict.fromkeys(SINGLE_TABLE_VARIABLES)},
        base_labels={BASE_ID: TABLE, FUNDRAISERS_BASE_ID: FUNDRAISERS_TABLE},
    )


def sharded(messages: int, bases: int) -> Workload:
    """Donations sharded over `bases` bases by FundraiserId (message n to shard n % bases),
    one route per shard: the first base is the emulator's own, the others are defined."""
    ids = [BASE_ID] + [shard_base_id(i) for i in range(1, bases)]
    bodies = [
        json.dumps(donation(n, FundraiserId=_fundraiser_of_shard(n % bases)))
        for n in range(messages)
    ]
    routes = {
        "routes": [
            {
                "name": f"shard-{i}",
                "when": {"FundraiserId": _fundraiser_of_shard(i)},
                "base": base,
                "table": TABLE,
                "fields": DONATION_FIELD_MAP,
                "merge_on": ["Id"],
            }
            for i, base in enumerate(ids)
        ]
    }
    return Workload(
        bodies=bodies,
        extra_bases={base: donations_schema_without_ids() for base in ids[1:]},
        env={"ROUTES": json.dumps(routes), **dict.fromkeys(SINGLE_TABLE_VARIABLES)},
        base_labels={base: f"shard {i}" for i, base in enumerate(ids)},
    )
