"""A local emulator of the Airtable REST API, for dev runs and tests.

pyairtable talks to it through ``Api(token, endpoint_url=url)``. It enforces what the
poller must survive: tokens and scopes, the 5 requests/s per-base limit and its lockout,
the 10-record cap, typed fields (links and attachments included) with whole-request
rejection, upsert rules, latency, arrival jitter and injected faults; account conditions
(capacity per base, a neighbour client, the monthly billing block, permission levels,
record caps, outages with HTML pages); and world changes (bases defined at runtime, fields
renamed, retyped or deleted, tokens rotated). See README.md in this package for what it
does not model.
"""

from .conditions import ALL_BASES
from .config import (
    ALL_SCOPES,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOKEN,
    SCOPE_READ,
    SCOPE_SCHEMA,
    SCOPE_SCHEMA_WRITE,
    SCOPE_WRITE,
    EmulatorConfig,
    Faults,
)
from .emulator import USER_ID, Emulator
from .schema import DONATIONS_BASE_ID, DONATIONS_TABLE_ID, donations_schema
from .stats import BaseStats, EmulatorStats, WriteLogEntry

__all__ = [
    "ALL_BASES",
    "ALL_SCOPES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOKEN",
    "DONATIONS_BASE_ID",
    "DONATIONS_TABLE_ID",
    "SCOPE_READ",
    "SCOPE_SCHEMA",
    "SCOPE_SCHEMA_WRITE",
    "SCOPE_WRITE",
    "USER_ID",
    "BaseStats",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "Faults",
    "WriteLogEntry",
    "donations_schema",
]
