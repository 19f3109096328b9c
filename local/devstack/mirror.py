"""The donations app's events mirrored into two linked tables (Fundraisers, Donations), as
the routes contract shows them: shared by the tests, the bench and the docs' example."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

BASE_ID = "appDonations00001"
FUNDRAISERS = "tblFundraisers0001"
DONATIONS = "tblDonations000001"


def _field(n: int, name: str, kind: str, **options: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": f"fld{n:014d}", "name": name, "type": kind}
    if options:
        spec["options"] = options
    return spec


def _choices(prefix: str, *names: str) -> list[dict[str, str]]:
    return [{"id": f"sel{prefix}{n:013d}", "name": name} for n, name in enumerate(names)]


def schema() -> dict[str, Any]:
    """The base: Fundraisers, and Donations linking to it (a "Total raised" rollup over
    the link is what its owners add by hand)."""
    return {
        "tables": [
            {
                "id": FUNDRAISERS,
                "name": "Fundraisers",
                "primaryFieldId": "fld00000000000001",
                "fields": [
                    _field(1, "Fundraiser Id", "singleLineText"),
                    _field(2, "Name", "singleLineText"),
                ],
                "views": [{"id": "viwFundraisers001", "name": "Grid view", "type": "grid"}],
            },
            {
                "id": DONATIONS,
                "name": "Donations",
                "primaryFieldId": "fld00000000000011",
                "fields": [
                    _field(11, "Id", "singleLineText"),
                    _field(12, "Donation Amount", "currency", precision=2, symbol="$"),
                    _field(13, "Status", "singleSelect", choices=_choices("S", "paid", "refunded")),
                    _field(14, "Fundraiser", "multipleRecordLinks", linkedTableId=FUNDRAISERS),
                    _field(
                        15,
                        "Tags",
                        "multipleSelects",
                        choices=_choices("T", "gift", "recurring", "matched"),
                    ),
                    _field(16, "Receipt", "multipleAttachments"),
                    _field(17, "Version", "number", precision=0),
                    _field(18, "Deleted", "checkbox", icon="check", color="greenBright"),
                ],
                "views": [{"id": "viwDonations00001", "name": "Grid view", "type": "grid"}],
            },
        ]
    }


def routes(base_id: str = BASE_ID) -> dict[str, Any]:
    """The routes contract, as given: fundraisers, versioned donations with a link, and a
    soft delete."""
    return {
        "routes": [
            {
                "name": "fundraisers",
                "when": {"$MessageAttributes.EventType": "FundraiserCreated"},
                "base": base_id,
                "table": "Fundraisers",
                "fields": {"FundraiserId": "Fundraiser Id", "Name": "Name"},
                "merge_on": ["Fundraiser Id"],
            },
            {
                "name": "donations",
                "when": {
                    "$MessageAttributes.EventType": {"in": ["DonationCreated", "DonationUpdated"]}
                },
                "base": base_id,
                "table": "Donations",
                "fields": {
                    "Id": "Id",
                    "DonationAmount": {"field": "Donation Amount", "type": "currency"},
                    "Status": {"field": "Status", "type": "singleSelect"},
                    "FundraiserId": {
                        "field": "Fundraiser",
                        "type": "link",
                        "table": "Fundraisers",
                        "key": "Fundraiser Id",
                    },
                    "Tags": {"field": "Tags", "type": "multipleSelects"},
                    "ReceiptUrl": {"field": "Receipt", "type": "attachment"},
                },
                "merge_on": ["Id"],
                "version": {"source": "Version", "field": "Version"},
            },
            {
                "name": "donation-deleted",
                "when": {"$MessageAttributes.EventType": "DonationDeleted"},
                "base": base_id,
                "table": "Donations",
                "action": "delete",
                "fields": {"Id": "Id"},
                "merge_on": ["Id"],
                "version": {"source": "Version", "field": "Version"},
                "deleted_field": "Deleted",
            },
        ]
    }


@dataclass(frozen=True)
class Event:
    kind: str  # the EventType attribute
    body: dict[str, Any]

    def message(self) -> dict[str, Any]:
        """`SendMessageBatch` entry fields for this event."""
        attributes = {"EventType": {"DataType": "String", "StringValue": self.kind}}
        return {"MessageBody": json.dumps(self.body), "MessageAttributes": attributes}


@dataclass
class Stream:
    """A shuffled stream of the app's events, and the final state it must converge to."""

    events: list[Event] = field(default_factory=list)
    donations: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # None: deleted
    fundraisers: dict[str, str | None] = field(default_factory=dict)  # name (None: only linked)


def stream(seed: int, donations: int = 600, fundraisers: int = 200) -> Stream:
    """Each donation has 1-4 versions (created, then updated or refunded), 10% end deleted,
    5% of the events are sent twice; some FundraiserCreated events come after the donations
    that link them, and some never."""
    rng = random.Random(seed)
    out = Stream()
    for n in range(fundraisers):
        key = f"fr-{n:04d}"
        created = rng.random() < 0.9  # some fundraisers are never created: only linked
        out.fundraisers[key] = f"Fundraiser {n}" if created else None
        if created:
            out.events.append(
                Event("FundraiserCreated", {"FundraiserId": key, "Name": f"Fundraiser {n}"})
            )
    keys = list(out.fundraisers)
    for n in range(donations):
        donation_id = f"don-{n:05d}"
        fundraiser = rng.choice(keys)
        last: dict[str, Any] = {}
        for version in range(1, rng.randint(1, 4) + 1):
            kind = "DonationCreated" if version == 1 else "DonationUpdated"
            status = "refunded" if version > 1 and rng.random() < 0.3 else "paid"
            body = {
                "Id": donation_id,
                "DonationAmount": round(5 + rng.random() * 200, 2),
                "Status": status,
                "FundraiserId": fundraiser,
                "Tags": rng.sample(["gift", "recurring", "matched"], rng.randint(1, 2)),
                "Version": version,
            }
            out.events.append(Event(kind, body))
            last = body
        if rng.random() < 0.1:
            out.events.append(
                Event("DonationDeleted", {"Id": donation_id, "Version": last["Version"] + 1})
            )
            out.donations[donation_id] = None
        else:
            out.donations[donation_id] = last
    out.events += [e for e in out.events if rng.random() < 0.05]  # redelivered
    rng.shuffle(out.events)
    return out
