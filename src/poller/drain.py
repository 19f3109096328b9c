"""The drain loop: receive -> map -> write -> delete what Airtable confirmed -> go on or stop.

Written against `QueuePort` and `SinkPort` only. Three kinds of worker share one lock:

* one receiver thread long-polls the queue while writes are in flight, maps each message,
  dead-letters poison at once and buffers the rest (at most `max_buffered` messages);
* the calling thread assembles a request of up to 10 records when the rate limiter's next
  slot comes up (so requests fill up while they wait) and hands it to
* a small pool of writers, each of which sends one request, retries it within the policy,
  bisects a rejected request to find its bad records, and deletes the messages whose
  records Airtable confirmed.

When the run stops (queue empty, deadline, or an error) nothing is left half-done: writes
in flight finish, and every message still held is released for the next run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from .errors import (
    MappingError,
    RecordsRejectedError,
    SinkConfigurationError,
    SinkError,
    ThrottledError,
    TransientSinkError,
)
from .model import DeadLetter, Message, Record
from .policies import Backoff, Clock, Deadline, RateLimiter, Sleep
from .ports import QueuePort, SinkPort

log = logging.getLogger(__name__)

StopReason = Literal["empty", "deadline", "error"]
SQS_BATCH = 10


@dataclass(frozen=True)
class Settings:
    """What the core needs to know; built from `config.Tuning`."""

    wait_time_seconds: int = 1
    max_in_flight: int = 4
    max_attempts: int = 4
    dead_letter_after_receives: int = 4
    batch_linger_seconds: float = 1.0
    max_buffered: int = 100
    lockout_seconds: float = 30.0
    fifo: bool = False


@dataclass
class RunSummary:
    """What one run confirmed. Every count is of confirmed outcomes, never attempts."""

    received: int = 0
    written: int = 0
    created: int = 0
    updated: int = 0
    superseded: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    released: int = 0
    failed: int = 0
    delete_failures: int = 0
    batches: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    elapsed_ms: int = 0
    stopped_because: StopReason = "empty"
    error: str | None = None
    batch_latency_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k != "batch_latency_ms"}
        data["records_per_request"] = (
            round(self.written / self.requests, 2) if self.requests else 0.0
        )
        return data


@dataclass
class _Entry:
    """One record waiting to be written, and every message it stands for (duplicates of
    the same merge key collapse into one entry, keeping the latest message's fields)."""

    record: Record
    messages: list[Message]
    since: float

    @property
    def latest(self) -> Message:
        return max(self.messages, key=lambda m: (m.sent_at_ms, m.sequence))

    @property
    def groups(self) -> set[str]:
        return {m.group_id for m in self.messages if m.group_id is not None}


@dataclass
class _Outcome:
    """What became of the entries of one request, after retries and bisection."""

    written: list[_Entry] = field(default_factory=list)
    rejected: list[tuple[_Entry, SinkError]] = field(default_factory=list)
    failed: list[tuple[_Entry, SinkError]] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    requests: int = 0

    def merge(self, other: _Outcome) -> None:
        self.written += other.written
        self.rejected += other.rejected
        self.failed += other.failed
        self.created += other.created
        self.updated += other.updated
        self.requests += other.requests


class _Stop(Exception):
    """Internal: a writer decided the run must stop (fatal error or no time left)."""

    def __init__(self, reason: StopReason, error: Exception | None = None) -> None:
        self.reason = reason
        self.error = error


class Drain:
    """One run of the drain loop. Create, call `run()` once, read the summary."""

    def __init__(
        self,
        queue: QueuePort,
        sink: SinkPort,
        mapper: Callable[[Message], Record],
        deadline: Deadline,
        limiter: RateLimiter,
        settings: Settings = Settings(),
        *,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.queue = queue
        self.sink = sink
        self.mapper = mapper
        self.deadline = deadline
        self.limiter = limiter
        self.settings = settings
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.sleep = sleep
        self.summary = RunSummary()

        self._cond = threading.Condition()
        self._buffer: list[_Entry] = []
        self._by_key: dict[tuple[str, ...], _Entry] = {}
        self._keys_in_flight: set[tuple[str, ...]] = set()
        self._groups_in_flight: set[str] = set()
        self._blocked_groups: set[str] = set()
        self._held = 0  # messages received and not yet finished
        self._in_flight = 0
        self._awaiting: list[_Entry] | None = None  # the request waiting for its limiter slot
        self._to_release: list[Message] = []
        self._receiver_done = False
        self._stop: _Stop | None = None
        self._halt = threading.Event()

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunSummary:
        started = self.clock()
        receiver = threading.Thread(target=self._receive_loop, name="poller-receiver", daemon=True)
        receiver.start()
        writes: list[Future[None]] = []
        # Leaving the pool waits for the writes in flight: nothing is half-done when it returns.
        with ThreadPoolExecutor(
            self.settings.max_in_flight, thread_name_prefix="poller-writer"
        ) as pool:
            try:
                while (batch := self._next_batch()) is not None:
                    writes.append(pool.submit(self._write_batch, batch))
            finally:
                self._halt.set()
                with self._cond:
                    self._cond.notify_all()
        for write in writes:  # a bug in settling must not vanish inside a future
            if (exc := write.exception()) is not None:
                log.error("a writer failed", exc_info=exc)
                self._stop = self._stop or _Stop("error", exc)
        receiver.join()
        self._release_held()
        self.summary.elapsed_ms = int((self.clock() - started) * 1000)
        if self._stop is not None:
            self.summary.stopped_because = self._stop.reason
            if self._stop.error is not None:
                self.summary.error = str(self._stop.error)
        return self.summary

    def _next_batch(self) -> list[_Entry] | None:
        """Block until a request is worth sending and the limiter's next slot is due; None = stop.

        At most one assembled request waits for the limiter at any time, so each request
        is filled as late as possible, with everything that arrived while it waited."""
        with self._cond:
            while True:
                if self._stop is not None:
                    return None
                if self.deadline.expired():
                    self._stop = _Stop("deadline")
                    return None
                takeable = self._takeable()
                if self._receiver_done and not takeable and self._in_flight == 0:
                    self._stop = _Stop("empty")
                    return None
                ready = (
                    self._in_flight < self.settings.max_in_flight
                    and self._awaiting is None
                    and self._worth_sending(takeable)
                )
                if ready:
                    due = self.limiter.next_free() - self.clock()
                    if due > self.deadline.usable():
                        self._stop = _Stop("deadline")  # e.g. a lockout longer than the time left
                        return None
                    if due <= 0:
                        batch = self._take_batch()
                        self._in_flight += 1
                        self._awaiting = batch
                        return batch
                self._cond.wait(timeout=min(max(due, 0.001), 0.05) if ready else 0.05)

    def _takeable(self) -> list[_Entry]:
        """Entries that may go into a request now, in arrival order.

        Not takeable: an entry whose merge key is being written (two concurrent upserts of
        a new key could both create it), and, on FIFO queues, an entry whose group has a
        write in flight, has failed in this run, or has an earlier entry waiting."""
        out: list[_Entry] = []
        skipped_groups: set[str] = set()
        for entry in self._buffer:
            groups = entry.groups
            if groups & (self._groups_in_flight | self._blocked_groups | skipped_groups):
                skipped_groups |= groups
                continue
            if entry.record.key is not None and entry.record.key in self._keys_in_flight:
                skipped_groups |= groups
                continue
            out.append(entry)
        return out

    def _worth_sending(self, takeable: list[_Entry]) -> bool:
        """Send only full requests, unless the queue is drained or the oldest record has
        waited `batch_linger_seconds` (fewer, fuller requests: Airtable bills per call)."""
        if not takeable:
            return False
        if len(takeable) >= self.sink.max_records or self._receiver_done:
            return True
        return self.clock() - takeable[0].since >= self.settings.batch_linger_seconds

    def _take_batch(self) -> list[_Entry]:
        batch = self._takeable()[: self.sink.max_records]
        for entry in batch:
            self._buffer.remove(entry)
            if entry.record.key is not None:
                del self._by_key[entry.record.key]
                self._keys_in_flight.add(entry.record.key)
            self._groups_in_flight |= entry.groups
        return batch

    # ------------------------------------------------------------------ receiving
    def _receive_loop(self) -> None:
        try:
            while not self._halt.is_set():
                with self._cond:
                    while (
                        self._held + SQS_BATCH > self.settings.max_buffered
                        and not self._halt.is_set()
                    ):
                        self._cond.wait(timeout=0.05)
                    held_at_receive = self._held
                if self._halt.is_set() or self.deadline.expired():
                    break
                messages = self.queue.receive(
                    max_messages=SQS_BATCH,
                    wait_seconds=self.settings.wait_time_seconds,
                    visibility_seconds=self.deadline.visibility_seconds(),
                )
                if not messages:
                    if self.settings.fifo and self._held_groups_may_settle(held_at_receive):
                        continue
                    break
                self._accept(messages)
        except Exception as exc:
            log.exception("receiving from the queue failed; stopping the run")
            with self._cond:
                self._stop = self._stop or _Stop("error", exc)
        finally:
            with self._cond:
                self._receiver_done = True
                self._cond.notify_all()

    def _accept(self, messages: list[Message]) -> None:
        poison: list[DeadLetter] = []
        now = self.clock()
        with self._cond:
            self.summary.received += len(messages)
            self._held += len(messages)
        for message in messages:
            try:
                record = self.mapper(message)
                _check_sendable(record)
            except MappingError as exc:
                poison.append(DeadLetter(message, exc.reason, "MAPPING_ERROR"))
                continue
            except Exception as exc:
                # One message must never stop the run: a body that crashes the mapper (JSON
                # nested 100,000 deep raises RecursionError) is that message's poison. Logged
                # with its traceback, in case it is a bug of the mapping instead.
                log.exception("mapping crashed on message %s; dead-lettering it", message.id)
                reason = f"mapping failed: {type(exc).__name__}: {exc}"
                poison.append(DeadLetter(message, reason, "MAPPING_ERROR"))
                continue
            with self._cond:
                self._add(record, message, now)
        with self._cond:
            self._cond.notify_all()
        if poison:
            self._dead_letter(poison)

    def _held_groups_may_settle(self, held_at_receive: int) -> bool:
        """FIFO only. SQS returns nothing from a group while this run holds any of its
        messages, so an empty receive proves the queue empty only if the run held nothing
        when it asked. Otherwise receive again once something held has settled (its group
        may be unlocked now; it may have settled during the long poll already), or stop
        receiving when nothing held can settle any more (only blocked groups are left)."""
        with self._cond:
            while self._held and self._held == held_at_receive and not self._halt.is_set():
                if self._in_flight == 0 and not self._takeable():
                    return False
                self._cond.wait(timeout=0.05)
            return bool(held_at_receive) and not self._halt.is_set()

    def _add(self, record: Record, message: Message, now: float) -> None:
        """Buffer a record, collapsing it into a waiting entry with the same merge key."""
        entry = self._by_key.get(record.key) if record.key is not None else None
        if entry is None:
            entry = _Entry(record, [message], now)
            self._buffer.append(entry)
            if record.key is not None:
                self._by_key[record.key] = entry
            return
        entry.messages.append(message)
        self.summary.superseded += 1
        if entry.latest is message:
            entry.record = record

    # ------------------------------------------------------------------ writing
    def _write_batch(self, batch: list[_Entry]) -> None:
        started = self.clock()
        outcome = _Outcome()
        try:
            outcome = self._write(batch, first=True)
        except _Stop as stop:
            with self._cond:
                self._stop = self._stop or stop
            outcome.failed += [(e, SinkError(str(stop.error or "run stopped"))) for e in batch]
        except Exception as exc:
            log.exception("unexpected error while writing a batch; its messages are released")
            with self._cond:
                self._stop = self._stop or _Stop("error", exc)
            outcome.failed += [(e, SinkError(repr(exc))) for e in batch]
        finally:
            self._slot_taken(batch)
            try:
                self._settle(outcome, batch)
            finally:
                with self._cond:
                    self.summary.batch_latency_ms.append((self.clock() - started) * 1000)
                    self._in_flight -= 1
                    for entry in batch:
                        if entry.record.key is not None:
                            self._keys_in_flight.discard(entry.record.key)
                        self._groups_in_flight -= entry.groups
                    self._cond.notify_all()

    def _write(self, entries: list[_Entry], *, first: bool = False) -> _Outcome:
        """Write entries in one request, retrying transient failures and bisecting rejections.

        Every attempt takes its limiter slot immediately before it is sent."""
        attempt = 0
        while True:
            acquired = self._acquire_slot()
            if first:
                first = False
                self._slot_taken(entries)
            if not acquired:
                # Out of time, not out of messages: the run must say "deadline" (and take no
                # more batches), even if the queue happens to run dry meanwhile.
                with self._cond:
                    self._stop = self._stop or _Stop("deadline")
                return _Outcome(
                    failed=[(e, SinkError("no time left for another request")) for e in entries]
                )
            attempt += 1
            try:
                result = self.sink.write([e.record for e in entries])
            except RecordsRejectedError as exc:
                outcome = self._bisect(entries, exc)
                outcome.requests += attempt - 1
                return outcome
            except SinkConfigurationError as exc:
                raise _Stop("error", exc) from exc
            except ThrottledError as exc:
                with self._cond:
                    self.summary.throttled += 1
                if not self._wait_out_lockout():
                    outcome = _Outcome(failed=[(e, exc) for e in entries], requests=attempt)
                    with self._cond:
                        self._stop = self._stop or _Stop("deadline")
                    return outcome
                continue
            except TransientSinkError as exc:
                delay = self.backoff.delay(attempt)
                out_of_time = not self.deadline.allows(delay + 1)
                if attempt >= self.settings.max_attempts or out_of_time:
                    if out_of_time:
                        with self._cond:  # out of time for the retry: see above
                            self._stop = self._stop or _Stop("deadline")
                    log.warning("write failed after %d attempt(s): %s", attempt, exc)
                    return _Outcome(failed=[(e, exc) for e in entries], requests=attempt)
                with self._cond:
                    self.summary.retries += 1
                self.sleep(delay)
                continue
            return _Outcome(
                written=list(entries),
                created=result.created,
                updated=result.updated,
                requests=attempt,
            )

    def _bisect(self, entries: list[_Entry], exc: RecordsRejectedError) -> _Outcome:
        """Find the records that made Airtable reject the request, and write the others."""
        if len(entries) == 1:
            return _Outcome(rejected=[(entries[0], exc)], requests=1)
        middle = len(entries) // 2
        outcome = _Outcome(requests=1)
        outcome.merge(self._write(entries[:middle]))
        # FIFO: once a message of a group has failed, a later one of that group must not be
        # written (it would overtake it); it fails with it and is released in order.
        failed_groups = {group for entry, _ in outcome.failed for group in entry.groups}
        later = entries[middle:]
        kept_back = [e for e in later if e.groups & failed_groups]
        if kept_back:
            why = SinkError("an earlier message of its FIFO group failed; kept back for order")
            outcome.failed += [(e, why) for e in kept_back]
            later = [e for e in later if not e.groups & failed_groups]
        if later:
            outcome.merge(self._write(later))
        return outcome

    def _slot_taken(self, batch: list[_Entry]) -> None:
        """The waiting request got its slot (or gave up): the next one may be assembled."""
        with self._cond:
            if self._awaiting is batch:
                self._awaiting = None
                self._cond.notify_all()

    def _acquire_slot(self) -> bool:
        return self.limiter.acquire(not_after=self.clock() + max(self.deadline.usable(), 0))

    def _wait_out_lockout(self) -> bool:
        """After a 429 every request fails for the lockout. Hold all writers back and wait
        it out if the run has time for it; otherwise give up without hammering."""
        lockout = self.settings.lockout_seconds
        self.limiter.pause_until(self.clock() + lockout)
        if not self.deadline.allows(lockout + 1):
            log.warning(
                "Airtable rate limit hit and no time left to wait out the %.0f s lockout", lockout
            )
            return False
        log.warning("Airtable rate limit hit: waiting out the %.1f s lockout", lockout)
        return True

    # ------------------------------------------------------------------ settling
    def _settle(self, outcome: _Outcome, batch: list[_Entry]) -> None:
        """Delete what was confirmed, dead-letter what was rejected, keep the rest for release."""
        with self._cond:
            self.summary.batches += 1
            self.summary.requests += outcome.requests
            self.summary.written += len(outcome.written)
            self.summary.created += outcome.created
            self.summary.updated += outcome.updated
        self._delete([m for e in outcome.written for m in e.messages])

        letters = [
            DeadLetter(m, f"{exc.error_type or 'REJECTED'}: {exc}", exc.error_type or "REJECTED")
            for e, exc in outcome.rejected
            for m in e.messages
        ]
        retry_later: list[Message] = []
        for entry, exc in outcome.failed:
            for message in entry.messages:
                threshold = self.settings.dead_letter_after_receives
                # Only a write that was tried and kept failing (5xx, timeout, no answer) makes a
                # message suspect. A 429, a configuration error, the deadline or a FIFO
                # kept-back are the run's circumstances, not the message's fault: release it.
                if (
                    threshold
                    and isinstance(exc, TransientSinkError)
                    and message.receive_count >= threshold
                    and self.queue.has_dead_letter_queue
                ):
                    reason = f"failed on {message.receive_count} receives; last error: {exc}"
                    letters.append(
                        DeadLetter(message, reason, exc.error_type or "REPEATED_FAILURE")
                    )
                else:
                    retry_later.append(message)
        if letters:
            self._dead_letter(letters)
        if retry_later:
            with self._cond:
                self.summary.failed += len(retry_later)
                self._to_release += retry_later
                self._held -= len(retry_later)
                if self.settings.fifo:
                    self._blocked_groups |= {m.group_id for m in retry_later if m.group_id}

    def _delete(self, messages: Sequence[Message]) -> None:
        deleted = 0
        for chunk in _chunks(messages, SQS_BATCH):
            try:
                deleted += len(self.queue.delete(chunk))
            except Exception:
                log.exception(
                    "DeleteMessageBatch failed; %d message(s) will be redelivered", len(chunk)
                )
        with self._cond:
            self.summary.deleted += deleted
            self.summary.delete_failures += len(messages) - deleted
            self._held -= len(messages)
            self._cond.notify_all()

    def _dead_letter(self, letters: list[DeadLetter]) -> None:
        """Move poison to the DLQ (send, then delete from the source). Without a DLQ, leave
        it hidden until this run's visibility ends; the queue's redrive policy takes over."""
        for letter in letters:
            log.warning(
                "dead-lettering message",
                extra={
                    "message_id": letter.message.id,
                    "reason": letter.reason,
                    "error_type": letter.error_type,
                    "receive_count": letter.message.receive_count,
                    "message_group_id": letter.message.group_id,
                },
            )
        stored: list[Message] = []
        if self.queue.has_dead_letter_queue:
            try:
                stored = self.queue.dead_letter(letters)
            except Exception:
                log.exception("sending to the dead-letter queue failed")
        deleted = 0
        for chunk in _chunks(stored, SQS_BATCH):
            try:
                deleted += len(self.queue.delete(chunk))
            except Exception:
                log.exception("deleting dead-lettered messages failed; they will be redelivered")
        with self._cond:
            self.summary.dead_lettered += len(stored)
            self.summary.deleted += deleted
            self.summary.delete_failures += len(stored) - deleted
            self.summary.failed += len(letters) - len(stored)
            self._held -= len(letters)
            if self.settings.fifo:
                self._blocked_groups |= {
                    lt.message.group_id
                    for lt in letters
                    if lt.message.group_id and lt.message not in stored
                }
            self._cond.notify_all()

    def _release_held(self) -> None:
        """Give back every message this run still holds, so the next run gets it at once."""
        with self._cond:
            held = self._to_release + [m for e in self._buffer for m in e.messages]
            self._to_release, self._buffer = [], []
            self._by_key.clear()
        released = 0
        for chunk in _chunks(held, SQS_BATCH):
            try:
                released += len(self.queue.release(chunk))
            except Exception:
                log.exception(
                    "releasing %d message(s) failed; they reappear when visibility ends", len(chunk)
                )
        with self._cond:
            self.summary.released += released


def _check_sendable(record: Record) -> None:
    """A record travels as strict JSON in UTF-8. A lone surrogate ("\\ud800" is a legal JSON
    escape, so SQS and the parser let it through) or a NaN cannot: caught here it is one
    message's poison; caught by the sink it would fail the whole request of ten, every time."""
    try:
        json.dumps(record.fields, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise MappingError(
            f"a value is not valid Unicode ({exc.reason}: {bad!r}) and cannot be sent as UTF-8"
        ) from None
    except ValueError as exc:
        raise MappingError(f"a value cannot be sent as JSON: {exc}") from None
    except TypeError:
        return  # not JSON-serialisable at all: the sink's concern (a bug, not poison)


def _chunks(items: Sequence[Message], size: int) -> Iterable[list[Message]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


__all__ = ["Drain", "RunSummary", "Settings", "StopReason"]
