"""What the emulator saw: counters for assertions and benchmarks, and the write log."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True)
class BaseStats:
    """What one base saw. Requests are counted once routed to a base the emulator serves,
    whatever their answer (a 401, 403, 429 or outage page included); requests to no base
    (``whoami``, the bases list) are not in any base's stats."""

    #: Record reads, writes and deletes (list, listRecords, get, create, update, upsert,
    #: delete): the "Airtable requests" a client spent on data.
    data_requests: int = 0
    #: Schema reads and writes (``/v0/meta/bases/{baseId}/...``).
    meta_requests: int = 0
    #: Requests the rate limiter admitted (they may still fail, e.g. with a 422).
    accepted: int = 0
    #: 429 RATE_LIMIT_REACHED answers (over the window, or during a lockout).
    rate_limited: int = 0
    #: 429 PUBLIC_API_BILLING_LIMIT_EXCEEDED answers.
    billing_blocked: int = 0
    #: Answers from an outage (HTML pages).
    outage_answers: int = 0
    #: Lockouts started, by real requests, by the neighbour or by ``trigger_lockout``.
    lockouts: int = 0
    #: Requests by operation ("list", "list_post", "get_record", "create", "update", ...).
    operations: dict[str, int] = field(default_factory=dict)


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
    #: 429 PUBLIC_API_BILLING_LIMIT_EXCEEDED answers (not in ``throttled``).
    billing_blocked: int = 0
    #: Per base id: see :class:`BaseStats`.
    by_base: dict[str, BaseStats] = field(default_factory=dict)

    def base(self, base_id: str) -> BaseStats:
        """The stats of one base (all zero if it saw no request)."""
        return self.by_base.get(base_id) or BaseStats()

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (status codes become string keys)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["by_status"] = {str(code): n for code, n in sorted(self.by_status.items())}
        data["by_base"] = {base_id: asdict(s) for base_id, s in sorted(self.by_base.items())}
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
        self.billing_blocked = 0
        self.by_base: dict[str, BaseCounters] = {}

    def of(self, base_id: str) -> BaseCounters:
        """The counters of one base (created on first use)."""
        found = self.by_base.get(base_id)
        if found is None:
            found = self.by_base[base_id] = BaseCounters()
        return found

    def lockout(self, base_id: str, count: int = 1) -> None:
        """Count ``count`` lockouts of ``base_id``."""
        self.lockouts += count
        self.of(base_id).lockouts += count

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
            billing_blocked=self.billing_blocked,
            by_base={base_id: c.snapshot() for base_id, c in self.by_base.items()},
        )


class BaseCounters:
    """Mutable counters behind :class:`BaseStats`."""

    def __init__(self) -> None:
        self.data_requests = 0
        self.meta_requests = 0
        self.accepted = 0
        self.rate_limited = 0
        self.billing_blocked = 0
        self.outage_answers = 0
        self.lockouts = 0
        self.operations: Counter[str] = Counter()

    def snapshot(self) -> BaseStats:
        return BaseStats(
            data_requests=self.data_requests,
            meta_requests=self.meta_requests,
            accepted=self.accepted,
            rate_limited=self.rate_limited,
            billing_blocked=self.billing_blocked,
            outage_answers=self.outage_answers,
            lockouts=self.lockouts,
            operations=dict(self.operations),
        )
