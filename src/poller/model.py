"""Plain data that crosses the ports. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """One received SQS message, as the core sees it."""

    id: str
    receipt: str
    body: str
    receive_count: int = 1
    sent_at_ms: int = 0
    group_id: str | None = None
    sequence: int = 0
    attributes: Mapping[str, str] = field(default_factory=dict)


#: The route of the single-table configuration (AIRTABLE_BASE_ID, AIRTABLE_TABLE, FIELD_MAP).
DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class Record:
    """The Airtable fields mapped from one message, its merge key (when the route merges),
    and the name of the route (destination table) it goes to."""

    fields: Mapping[str, Any]
    key: tuple[str, ...] | None = None
    route: str = DEFAULT_ROUTE


@dataclass(frozen=True)
class WriteResult:
    """What Airtable confirmed for one request: one record id per input record, in order."""

    record_ids: tuple[str, ...]
    created: int
    updated: int


@dataclass(frozen=True)
class DeadLetter:
    """A message that can never be written, and why."""

    message: Message
    reason: str
    error_type: str = "MAPPING_ERROR"
