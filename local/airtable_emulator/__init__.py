"""A local emulator of the Airtable REST API, for dev runs and tests.

pyairtable talks to it through ``Api(token, endpoint_url=url)``. It enforces what the
poller must survive: tokens and scopes, the 5 requests/s per-base limit and its lockout,
the 10-record cap, typed fields with whole-request rejection, upsert rules, latency and
injected faults. See README.md in this package for what it does not model.
"""

from .config import (
    ALL_SCOPES,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOKEN,
    SCOPE_READ,
    SCOPE_SCHEMA,
    SCOPE_WRITE,
    EmulatorConfig,
    Faults,
)
from .emulator import Emulator
from .schema import DONATIONS_BASE_ID, DONATIONS_TABLE_ID, donations_schema
from .stats import EmulatorStats, WriteLogEntry

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOKEN",
    "DONATIONS_BASE_ID",
    "DONATIONS_TABLE_ID",
    "SCOPE_READ",
    "SCOPE_SCHEMA",
    "SCOPE_WRITE",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "Faults",
    "WriteLogEntry",
    "donations_schema",
]
