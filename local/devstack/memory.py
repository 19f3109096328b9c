"""In-memory stand-ins for the two ports, for unit tests that open no socket.

`MemoryQueue` models what the core relies on in SQS: visibility, receive counts, a new
receipt handle per receive (stale ones fail to delete), partial batch failures, FIFO groups
that are locked while any of their messages is in flight and come back in order, and the
redrive policy (a receive past `max_receive_count` moves the message to `redriven`, without
a reason). `MemorySink` models Airtable's write rules: 10 records per request, the whole
request rejected when one record is bad, and upsert on the merge key. `StrictWindow` is
Airtable's rate limit on a fake clock: a strict 1 s window and its 30 s lockout, with an
optional neighbour client sharing the base.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from poller.errors import RecordsRejectedError, SinkError, ThrottledError
from poller.model import Action, Attribute, Message, Record, Verdict, WriteResult


@dataclass
class _Stored:
    id: str
    body: str
    sent_at_ms: int
    group_id: str | None
    sequence: int
    attributes: dict[str, Attribute]
    receive_count: int = 0
    visible_at: float = 0.0
    receipt: str | None = None


class MemoryQueue:
    """A queue with SQS's delivery semantics, driven by an injectable clock."""

    def __init__(
        self,
        *,
        fifo: bool = False,
        with_dlq: bool = True,
        max_receive_count: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fifo = fifo
        self.max_receive_count = max_receive_count
        #: what the redrive policy moved, without a reason
        self.redriven: list[str] = []
        #: bodies of requeued copies, in order
        self.requeued: list[str] = []
        self.clock = clock
        self.messages: list[_Stored] = []
        self.dead_letters: list[tuple[str, dict[str, str]]] = []
        self._with_dlq = with_dlq
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        #: message ids whose next delete / release fails (reported in Failed)
        self.fail_delete_ids: set[str] = set()
        self.fail_release_ids: set[str] = set()
        #: every call, for assertions: (name, number of entries)
        self.calls: list[tuple[str, int]] = []
        #: (message id, clock time) of each confirmed delete
        self.deleted_log: list[tuple[str, float]] = []

    # -- producer side
    def send(
        self, body: str | dict[str, Any], *, group_id: str | None = None, **attributes: str
    ) -> str:
        with self._lock:
            n = next(self._ids)
            text = body if isinstance(body, str) else json.dumps(body)
            typed = {k: Attribute("String", v) for k, v in attributes.items()}
            stored = _Stored(f"msg-{n}", text, n, group_id, n, typed)
            self.messages.append(stored)
            return stored.id

    def depth(self) -> int:
        return len(self.messages)

    def visible(self) -> int:
        now = self.clock()
        return sum(1 for m in self.messages if m.visible_at <= now)

    def bodies(self) -> list[str]:
        return [m.body for m in self.messages]

    # -- QueuePort
    @property
    def has_dead_letter_queue(self) -> bool:
        return self._with_dlq

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]:
        with self._lock:
            self.calls.append(("receive", max_messages))
            now = self.clock()
            locked_groups = {m.group_id for m in self.messages if self.fifo and m.visible_at > now}
            out = []
            for stored in list(self.messages):
                if len(out) == max_messages:
                    break
                if stored.visible_at > now:
                    continue
                if self.fifo and stored.group_id in locked_groups:
                    continue
                if (
                    self.max_receive_count is not None
                    and stored.receive_count >= self.max_receive_count
                ):
                    self.messages.remove(stored)
                    self.redriven.append(stored.body)
                    continue
                stored.receive_count += 1
                stored.visible_at = now + visibility_seconds
                stored.receipt = f"{stored.id}:{stored.sequence}:{stored.receive_count}"
                out.append(self._message(stored))
            if self.fifo:  # a group is taken whole, in order, up to max_messages
                for m in out:
                    locked_groups.add(m.group_id)
            return out

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        with self._lock:
            self.calls.append(("delete", len(messages)))
            done = []
            for message in messages:
                stored = self._find(message)
                if stored is None or message.id in self.fail_delete_ids:
                    continue
                self.messages.remove(stored)
                self.deleted_log.append((message.id, self.clock()))
                done.append(message)
            return done

    def release(self, messages: Sequence[Message]) -> list[Message]:
        with self._lock:
            self.calls.append(("release", len(messages)))
            done = []
            for message in messages:
                stored = self._find(message)
                if stored is None or message.id in self.fail_release_ids:
                    continue
                stored.visible_at = 0.0
                done.append(message)
            return done

    def dead_letter(self, letters: Sequence[Verdict]) -> list[Message]:
        with self._lock:
            self.calls.append(("dead_letter", len(letters)))
            if not self._with_dlq:
                return []
            for letter in letters:
                self.dead_letters.append(
                    (
                        letter.message.body,
                        {"reason": letter.reason, "error_type": letter.error_type},
                    )
                )
            return [letter.message for letter in letters]

    def requeue(self, messages: Sequence[Message]) -> list[Message]:
        with self._lock:
            self.calls.append(("requeue", len(messages)))
            for message in messages:
                n = next(self._ids)
                copy = _Stored(
                    message.id,
                    message.body,
                    message.sent_at_ms,
                    message.group_id,
                    n,
                    dict(message.attributes),
                )
                self.messages.append(copy)
                self.requeued.append(message.body)
            return list(messages)

    def _find(self, message: Message) -> _Stored | None:
        for stored in self.messages:
            if stored.receipt == message.receipt:
                return stored
        return None

    @staticmethod
    def _message(stored: _Stored) -> Message:
        return Message(
            id=stored.id,
            receipt=stored.receipt or "",
            body=stored.body,
            receive_count=stored.receive_count,
            sent_at_ms=stored.sent_at_ms,
            group_id=stored.group_id,
            sequence=stored.sequence,
            attributes=dict(stored.attributes),
        )


@dataclass
class MemorySink:
    """A table with Airtable's write rules. `faults` is consumed one per request: None means
    answer normally, an exception instance is raised instead (after applying the write when
    `applied_before_fault` holds that index)."""

    merge_on: tuple[str, ...] = ()
    max_records: int = 10
    #: a record's problem (raised as INVALID_VALUE_FOR_COLUMN), or the error to raise, or None
    reject: Callable[[dict[str, Any]], str | SinkError | None] = lambda fields: None
    faults: list[SinkError | None] = field(default_factory=list)
    applied_before_fault: set[int] = field(default_factory=set)
    latency: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    requests: list[list[dict[str, Any]]] = field(default_factory=list)
    #: (the row's "Id" field, or its record id, clock time) for every record confirmed
    confirmed_log: list[tuple[Any, float]] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, records: Sequence[Record]) -> WriteResult:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            index = len(self.requests)
            batch = [dict(r.fields) for r in records]
            self.requests.append(batch)
            if len(batch) > self.max_records:
                raise RecordsRejectedError(
                    "too many records", error_type="INVALID_RECORDS", status=422
                )
            fault = self.faults[index] if index < len(self.faults) else None
            if fault is not None and index not in self.applied_before_fault:
                raise fault
            for fields in batch:
                problem = self.reject(fields)
                if isinstance(problem, SinkError):
                    raise problem
                if problem:
                    raise RecordsRejectedError(
                        problem, error_type="INVALID_VALUE_FOR_COLUMN", status=422
                    )
            upsert = bool(self.merge_on) and records[0].action is not Action.CREATE
            if upsert:
                keys = [tuple(f.get(k) for k in self.merge_on) for f in batch]
                if len(set(keys)) != len(keys):
                    raise RecordsRejectedError(
                        "duplicate merge key in one request",
                        error_type="INVALID_REQUEST_UNKNOWN",
                        status=422,
                    )
            created = 0
            ids = []
            for fields in batch:
                row = self._match(fields) if upsert else None
                if row is None:
                    row = {"id": f"rec{len(self.rows) + 1:014d}", "fields": {}}
                    self.rows.append(row)
                    created += 1
                row["fields"].update(fields)
                ids.append(row["id"])
                self.confirmed_log.append((row["fields"].get("Id", row["id"]), self.clock()))
            if fault is not None:
                raise fault
            return WriteResult(record_ids=tuple(ids), created=created, updated=len(batch) - created)

    def delete(self, record_ids: Sequence[str]) -> None:
        """Remove rows by record id in one request (`faults` consumed as by `write`)."""
        with self._lock:
            index = len(self.requests)
            self.requests.append([{"id": r} for r in record_ids])
            fault = self.faults[index] if index < len(self.faults) else None
            if fault is not None and index not in self.applied_before_fault:
                raise fault
            self.rows = [row for row in self.rows if row["id"] not in set(record_ids)]
            if fault is not None:
                raise fault

    def _match(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        if not self.merge_on:
            return None
        key = tuple(fields.get(k) for k in self.merge_on)
        for row in self.rows:
            if tuple(row["fields"].get(k) for k in self.merge_on) == key:
                return row
        return None

    def values(self, name: str) -> list[Any]:
        return [row["fields"].get(name) for row in self.rows]


class StrictWindow:
    """Airtable's rate limit for one base on a fake clock: a request is refused when, with
    it, more than `limit` requests arrived in the last second (the neighbour's included);
    a refusal starts a 30 s lockout in which every request is refused. The neighbour sends
    evenly at `neighbour_rps`. Refused requests do not fill the window (as the emulator).
    `jitter()` is how long after it left each request arrives (s): none by default."""

    def __init__(
        self,
        clock: Callable[[], float],
        limit: int,
        neighbour_rps: float = 0.0,
        lockout: float = 30.0,
        jitter: Callable[[], float] = lambda: 0.0,
    ):
        self.clock = clock
        self.jitter = jitter
        self.limit = limit
        self.neighbour_rps = neighbour_rps
        self.lockout = lockout
        self.arrivals: list[float] = []
        self.locked_until = -math.inf
        self.lockouts = 0
        self.refused = 0
        self.neighbour_refused = 0
        self._neighbour_next = 0.0

    def admit(self) -> bool:
        now = self.clock() + self.jitter()
        self._neighbour_until(now)
        ok = self._admit(now)
        if not ok:
            self.refused += 1
        return ok

    def _neighbour_until(self, now: float) -> None:
        if not self.neighbour_rps:
            return
        while self._neighbour_next <= now:
            if not self._admit(self._neighbour_next):
                self.neighbour_refused += 1
            self._neighbour_next += 1.0 / self.neighbour_rps

    def _admit(self, at: float) -> bool:
        if at < self.locked_until:
            return False
        recent = [t for t in self.arrivals if at - 1.0 < t <= at]
        if len(recent) + 1 > self.limit:
            self.locked_until = at + self.lockout
            self.lockouts += 1
            self.arrivals = []
            return False
        self.arrivals = [t for t in self.arrivals if t > at - 1.0] + [at]
        return True


@dataclass
class WindowSink:
    """A sink behind a `StrictWindow`: 429 when the window refuses, else written."""

    window: StrictWindow
    max_records: int = 10
    written: int = 0
    requests: int = 0

    def write(self, records: Sequence[Record]) -> WriteResult:
        self.requests += 1
        if not self.window.admit():
            raise ThrottledError(
                "Airtable answered 429 RATE_LIMIT_REACHED",
                error_type="RATE_LIMIT_REACHED",
                status=429,
            )
        self.written += len(records)
        return WriteResult(
            tuple(f"rec{i}" for i in range(len(records))), created=len(records), updated=0
        )


class FakeClock:
    """Monotonic and wall time that move only when something sleeps (single-threaded use)."""

    EPOCH = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)

    def wall(self) -> float:
        return self.EPOCH + self.now
