"""In-memory stand-ins for the two ports, for unit tests that open no socket.

`MemoryQueue` models what the core relies on in SQS: visibility, receive counts, a new
receipt handle per receive (stale ones fail to delete), partial batch failures, and FIFO
groups that are locked while any of their messages is in flight and come back in order.
`MemorySink` models Airtable's write rules: 10 records per request, the whole request
rejected when one record is bad, and upsert on the merge key. `GatedPacer` is a pacer whose
slots and lockouts the test opens and closes, and `RecordingGuard` a systemic guard that
answers as told; both record every call.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from poller.errors import RecordsRejectedError, SinkConfigurationError, SinkError
from poller.model import DeadLetter, Message, Record, WriteResult


@dataclass
class _Stored:
    id: str
    body: str
    sent_at_ms: int
    group_id: str | None
    sequence: int
    attributes: dict[str, str]
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fifo = fifo
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
            stored = _Stored(f"msg-{n}", text, n, group_id, n, dict(attributes))
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
            for stored in self.messages:
                if len(out) == max_messages:
                    break
                if stored.visible_at > now:
                    continue
                if self.fifo and stored.group_id in locked_groups:
                    continue
                stored.receive_count += 1
                stored.visible_at = now + visibility_seconds
                stored.receipt = f"{stored.id}:{stored.receive_count}"
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

    def dead_letter(self, letters: Sequence[DeadLetter]) -> list[Message]:
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

    def _find(self, message: Message) -> _Stored | None:
        for stored in self.messages:
            if stored.id == message.id and stored.receipt == message.receipt:
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
            if self.merge_on:
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
                row = self._match(fields)
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


class GatedPacer:
    """A `Pacer` whose slots the test opens and closes (real clock, no pacing of its own).

    `acquire` waits while the gate is closed (or until `not_after`); `hold()` closes it with
    the slot still reported due, `pause_until()` (a lockout) closes it with the slot reported
    at `when`, and `resume()` opens it. Every call is recorded in `calls`."""

    def __init__(self, effective_rps: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.effective_rps = effective_rps
        self.clock = clock
        self.calls: list[str] = []
        self.granted = 0
        self.waiting = 0
        self.max_waiting = 0
        self._open = threading.Event()
        self._open.set()
        self._paused_until: float | None = None
        self._lock = threading.Lock()

    def next_free(self) -> float:
        paused = self._paused_until
        return paused if paused is not None and not self._open.is_set() else float("-inf")

    def acquire(self, *, not_after: float | None = None) -> bool:
        with self._lock:
            self.calls.append("acquire")
            self.waiting += 1
            self.max_waiting = max(self.max_waiting, self.waiting)
        try:
            timeout = None if not_after is None else max(not_after - self.clock(), 0)
            if not self._open.wait(timeout):
                return False
            with self._lock:
                self.granted += 1
            return True
        finally:
            with self._lock:
                self.waiting -= 1

    def mark_sent(self) -> None:
        self.calls.append("mark_sent")

    def pause_until(self, when: float) -> None:
        self.calls.append("pause_until")
        self._paused_until = when
        self._open.clear()

    def on_throttled(self) -> None:
        self.calls.append("on_throttled")

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    def hold(self) -> None:
        self._paused_until = None
        self._open.clear()

    def resume(self) -> None:
        self._paused_until = None
        self._open.set()


@dataclass
class RecordingGuard:
    """A `SystemicGuard` that answers from its fields and records every call as
    (method, route, error type, field)."""

    refused_fixed: bool = False
    uniform_systemic: bool = False
    calls: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def on_refused(self, route: str, error: SinkConfigurationError) -> bool:
        self.calls.append(("on_refused", route, error.error_type, error.field))
        return self.refused_fixed

    def on_uniform_rejection(self, route: str, error: RecordsRejectedError) -> bool:
        self.calls.append(("on_uniform_rejection", route, error.error_type, error.field))
        return self.uniform_systemic
