"""What the emulator saw: counters for assertions and benchmarks, and the write log."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True)
class EmulatorStats:
    """A snapshot of the counters (API requests only; control endpoints are not counted).

    Every API request ends in exactly one of ``by_status`` or ``lost_responses``, so
    ``requests == sum(by_status.values()) + lost_responses`` once no request is in flight.
    """

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    #: 429 answers (the request that started a lockout and those refused during it).
    throttled: int = 0
    #: Lockouts started, by the limiter or by ``trigger_lockout``.
    lockouts: int = 0
    #: Record writes (POST/PATCH/PUT) that passed auth and the limiter.
    write_requests: int = 0
    #: Records in each applied write, in order of application.
    records_per_write: list[int] = field(default_factory=list)
    records_created: int = 0
    records_updated: int = 0
    records_deleted: int = 0
    #: Writes whose response was dropped (the write itself was processed).
    lost_responses: int = 0
    #: Writes answered with an injected 503 (not applied).
    injected_5xx: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (status codes become string keys)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["by_status"] = {str(code): n for code, n in sorted(self.by_status.items())}
        return data


class WriteLogEntry(NamedTuple):
    """One applied write: lets tests check *when* a record was confirmed.

    ``time`` is ``time.monotonic()`` at the moment the write was applied, just before
    the response was sent (or dropped). ``kind`` is "created", "updated" or "deleted";
    an upsert that does both yields two entries. ``table`` is the table's name.
    """

    time: float
    base: str
    table: str
    method: str
    record_ids: list[str]
    kind: str


class Counters:
    """Mutable counters behind :class:`EmulatorStats`; guarded by the emulator lock."""

    def __init__(self) -> None:
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.throttled = 0
        self.lockouts = 0
        self.write_requests = 0
        self.records_per_write: list[int] = []
        self.records_created = 0
        self.records_updated = 0
        self.records_deleted = 0
        self.lost_responses = 0
        self.injected_5xx = 0

    def snapshot(self) -> EmulatorStats:
        return EmulatorStats(
            requests=self.requests,
            by_status=dict(self.by_status),
            throttled=self.throttled,
            lockouts=self.lockouts,
            write_requests=self.write_requests,
            records_per_write=list(self.records_per_write),
            records_created=self.records_created,
            records_updated=self.records_updated,
            records_deleted=self.records_deleted,
            lost_responses=self.lost_responses,
            injected_5xx=self.injected_5xx,
        )
