"""Helpers shared by the emulator tests (imported by name: keep this module name unique)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from airtable_emulator import ALL_SCOPES, DEFAULT_TOKEN, DONATIONS_BASE_ID, Emulator
from pyairtable import Api
from pyairtable.api.table import Table

__all__ = [
    "ALL_SCOPES",
    "BASE",
    "KINDS_BASE",
    "TABLE",
    "TOKEN",
    "FakeClock",
    "Running",
    "custom_schema",
]

TOKEN = DEFAULT_TOKEN
BASE = DONATIONS_BASE_ID
TABLE = "Donations"


class FakeClock:
    """A clock that moves only when told: pass it as ``EmulatorConfig(clock=...)`` and every
    request arrives at ``clock.now``, so windows, lockouts and neighbours are exact."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class Running:
    """An emulator serving on a free port, with helpers to reach it."""

    emu: Emulator
    url: str
    sessions: list[requests.Session] = field(default_factory=list)

    def api(self, token: str = TOKEN, **kwargs: Any) -> Api:
        """A real pyairtable client; no retries unless asked, so each call is one request."""
        kwargs.setdefault("retry_strategy", None)
        kwargs.setdefault("timeout", (5, 10))
        api = Api(token, endpoint_url=self.url, **kwargs)
        self.sessions.append(api.session)
        return api

    def table(self, name: str = TABLE, base: str = BASE, **kwargs: Any) -> Table:
        return self.api(**kwargs).table(base, name)

    def http(self, token: str | None = TOKEN) -> requests.Session:
        """A plain requests session (with a bearer token unless ``token`` is None)."""
        session = requests.Session()
        if token is not None:
            session.headers["Authorization"] = f"Bearer {token}"
        self.sessions.append(session)
        return session

    def records_url(self, base: str = BASE, table: str = TABLE) -> str:
        return f"{self.url}/v0/{base}/{table}"

    def close(self) -> None:
        for session in self.sessions:
            session.close()
        self.emu.stop()


def custom_schema() -> dict[str, Any]:
    """A base whose one table has a field of each kind the validators treat differently."""
    return {
        "tables": [
            {
                "id": "tblKitchenSink001",
                "name": "Kinds",
                "primaryFieldId": "fldName0000000001",
                "fields": [
                    {"id": "fldName0000000001", "name": "Name", "type": "singleLineText"},
                    {"id": "fldNotes000000001", "name": "Notes", "type": "multilineText"},
                    {"id": "fldCount000000001", "name": "Count", "type": "number"},
                    {"id": "fldDone0000000001", "name": "Done", "type": "checkbox"},
                    {"id": "fldDay00000000001", "name": "Day", "type": "date"},
                    {
                        "id": "fldStatus00000001",
                        "name": "Status",
                        "type": "singleSelect",
                        "options": {
                            "choices": [
                                {"id": "selOpen0000000001", "name": "Open"},
                                {"id": "selClosed00000001", "name": "Closed"},
                            ]
                        },
                    },
                    {
                        "id": "fldTags0000000001",
                        "name": "Tags",
                        "type": "multipleSelects",
                        "options": {"choices": [{"id": "selRed00000000001", "name": "red"}]},
                    },
                    {
                        "id": "fldFormula0000001",
                        "name": "Computed",
                        "type": "formula",
                        "options": {"formula": "1+1"},
                    },
                    {"id": "fldAuto0000000001", "name": "Auto", "type": "autoNumber"},
                    {"id": "fldRating00000001", "name": "Stars", "type": "rating"},
                ],
                "views": [{"id": "viwKinds000000001", "name": "Grid view", "type": "grid"}],
            }
        ]
    }


KINDS_BASE = "appKitchenSink001"


def error_of(response: requests.Response) -> Any:
    """The ``error`` member of an Airtable error body."""
    return response.json()["error"]
