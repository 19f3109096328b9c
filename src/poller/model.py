"""Plain data that crosses the ports: messages, records, verdicts and results. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .errors import RecordsRejectedError
from .systemic import SystemicFailure

if TYPE_CHECKING:
    from .batching import Entry

#: A release's reason when the base has no time left in this run for the request.
NO_TIME = "no time left in this run for its request"
#: The counts an `Outcome` adds up, named as the run summary names them.
COUNTS = (
    "written",
    "superseded",
    "stale",
    "created",
    "updated",
    "requests",
    "retries",
    "throttled",
)
#: The route of the single-table configuration (AIRTABLE_BASE_ID, AIRTABLE_TABLE, FIELD_MAP).
DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class Attribute:
    """One SQS message attribute: its `data_type` ("String", "Number", "Binary", or one of
    them with a custom suffix such as "Number.int") and its value (bytes for Binary)."""

    data_type: str
    value: str | bytes

    @property
    def typed(self) -> Any:
        """The value as the mapping reads it: a Number as int or float, else as sent."""
        if self.data_type.split(".")[0] == "Number" and isinstance(self.value, str):
            try:
                return int(self.value)
            except ValueError:
                return float(self.value)
        return self.value


@dataclass(frozen=True)
class Message:
    """One received SQS message, as the core sees it.

    `id` and `sent_at_ms` are the first delivery's, also for a copy the poller requeued;
    `unreadable` says why the body could not be read (an offloaded payload gone from S3)."""

    id: str
    receipt: str
    body: str
    receive_count: int = 1
    sent_at_ms: int = 0
    group_id: str | None = None
    sequence: int = 0
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    unreadable: str | None = None


class Action(StrEnum):
    """What a record asks of its table."""

    CREATE = "create"
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True)
class Record:
    """The Airtable fields mapped from one message, its merge key (when the route merges),
    its route, its action, and its version (on a versioned route) as a comparable value."""

    fields: Mapping[str, Any]
    key: tuple[str, ...] | None = None
    route: str = DEFAULT_ROUTE
    action: Action = Action.UPSERT
    version: float | None = None


@dataclass(frozen=True)
class WriteResult:
    """What Airtable confirmed for one request: one record id per input record, in order."""

    record_ids: tuple[str, ...]
    created: int
    updated: int


class Fate(StrEnum):
    """The three ends of a message in a run."""

    DELETE = "delete"  #: done: written, superseded, or stale; removed from the queue
    DEAD_LETTER = "dead_letter"  #: poison: to the DLQ with its reason
    RELEASE = "release"  #: not this run: visible again at once


@dataclass(frozen=True)
class Verdict:
    """What becomes of one message, and why. `error_type` and `reason` go with a dead letter;
    a release's reason says why the message was not written (for the log), and `blameless`
    that the message is not at fault (only a transient failure of its own write may be)."""

    message: Message
    fate: Fate
    reason: str = ""
    error_type: str = ""
    blameless: bool = True

    @classmethod
    def delete(cls, message: Message) -> Verdict:
        return cls(message, Fate.DELETE)

    @classmethod
    def dead_letter(cls, message: Message, reason: str, error_type: str) -> Verdict:
        return cls(message, Fate.DEAD_LETTER, reason, error_type)

    @classmethod
    def release(cls, message: Message, reason: str = "", *, blameless: bool = True) -> Verdict:
        return cls(message, Fate.RELEASE, reason, blameless=blameless)


@dataclass
class Outcome:
    """What one request confirmed, and a verdict for every message it carried."""

    verdicts: list[Verdict] = field(default_factory=list)
    written: int = 0
    #: messages collapsed into an entry that was written: by a later message (`superseded`),
    #: or on a versioned route by a newer version (`stale`, as a version older than the row)
    superseded: int = 0
    stale: int = 0
    created: int = 0
    updated: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    #: the route cannot be written in this run (it is stopped; its messages were released)
    failure: SystemicFailure | None = None
    #: the base has no time left in this run
    out_of_time: bool = False
    #: FIFO groups whose message was released: nothing later of them may be written
    released_groups: set[str] = field(default_factory=set)
    #: every record was rejected, and all alike (the same error type on the same field)
    rejected_alike: RecordsRejectedError | None = None
    #: how long each write or delete request took to be answered (ms)
    latency_ms: list[float] = field(default_factory=list)
    #: Airtable rejected record ids this container remembered; nothing was settled
    recalled: RecordsRejectedError | None = None

    def add(self, other: Outcome) -> None:
        self.verdicts += other.verdicts
        self.latency_ms += other.latency_ms
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failure = self.failure or other.failure
        self.out_of_time = self.out_of_time or other.out_of_time
        self.released_groups |= other.released_groups

    def cost(self) -> Outcome:
        """Only what this outcome cost: its requests, retries, 429s and latencies, without
        its verdicts or other counts (for an attempt whose verdicts do not stand)."""
        return Outcome(
            requests=self.requests,
            retries=self.retries,
            throttled=self.throttled,
            latency_ms=list(self.latency_ms),
        )

    def no_time(self, entries: list[Entry]) -> Outcome:
        """The base has no time left in this run: release the entries."""
        self.out_of_time = True
        self.settle(entries, Fate.RELEASE, NO_TIME)
        return self

    def settle(
        self,
        entries: list[Entry],
        fate: Fate,
        reason: str = "",
        error_type: str = "",
        *,
        blameless: bool = True,
    ) -> None:
        for entry in entries:
            for message in entry.messages:
                self.verdicts.append(Verdict(message, fate, reason, error_type, blameless))
            if fate is Fate.RELEASE:
                self.released_groups |= entry.groups
            elif fate is Fate.DELETE:  # written: the entry's other messages collapsed into it
                losers = len(entry.messages) - 1
                if entry.record.version is None:
                    self.superseded += losers
                else:
                    self.stale += losers
