"""Sample data shared by the tests, the local run and the benchmark."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

#: The Donations mapping: DonationCreatedIntegrationEvent keys -> the Donations table's fields.
DONATION_FIELD_MAP: dict[str, str] = {
    "Id": "Id",
    "CreationDate": "Creation Date",
    "UserId": "Donor Id",
    "FundraiserId": "Fundraiser Id",
    "DonationAmount": "Donation Amount",
    "DonorDisplayName": "Donor Display Name",
}
DONATION_FIELD_MAP_JSON = json.dumps(DONATION_FIELD_MAP)


def donation(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid DonationCreatedIntegrationEvent body, distinct per `n`."""
    body: dict[str, Any] = {
        "Id": str(uuid.UUID(int=n)),
        "CreationDate": "2018-05-01T12:00:00.000Z",
        "UserId": f"user-{n}",
        "FundraiserId": str(uuid.UUID(int=10_000_000 + n % 7)),
        "DonationAmount": round(5 + (n % 200) * 1.25, 2),
        "DonorDisplayName": f"Donor {n}",
    }
    body.update(overrides)
    return body


class Budget:
    """A Lambda's remaining time, `seconds` from creation, on the real clock."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def __call__(self) -> int:
        return max(int((self.ends - time.monotonic()) * 1000), 0)
