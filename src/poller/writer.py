"""The writer: one request, from its reserved slot to a verdict for each of its messages.

* Written (or, on a delete route, its rows removed): every message of the entry is deleted.
* Rejected by Airtable for its content (422, 413): the request is bisected until each bad
  record stands alone, and only that record's messages are dead-lettered. When every
  record of a request was rejected alike on one field, the route is checked again
  (`recheck`): a field whose type changed is the table's fault, not the records'.
* 429 RATE_LIMIT_REACHED: the base's pacer holds every request back for the lockout and
  learns the base's capacity; this request waits it out if the run has time for it.
* Rejected when it carried record ids this container remembered (a link's row, or the row a
  delete removes): the row may have been deleted in Airtable since. Those rows are forgotten,
  read again, and the request is made once more before a record is blamed.
* A refusal every record would meet (`SystemicSinkError`): the route is stopped for the run
  (`Outcome.failure`) and its messages are released. A 401 first re-reads the token, once
  per run, in case it was rotated.
* Transient (5xx, timeout, no answer): retried with backoff while attempts and time allow,
  then released, or dead-lettered with the last error once the message has failed on
  enough receives (`suspect`).

Runs on a writer thread. What it shares is thread-safe: the pacer, and the mirror's
directory and key locks; of the route's waiting entries (`Request.prefetch`) it reads only
their keys.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .batching import Entry
from .errors import (
    OutOfTimeError,
    RecordsRejectedError,
    SinkError,
    SystemicSinkError,
    ThrottledError,
    TransientSinkError,
)
from .mirror import Mirror
from .model import NO_TIME, Action, Fate, Message, Outcome, Verdict
from .pacing import Backoff, Clock, Deadline, Pacer, Sleep, Slots
from .ports import SinkPort
from .systemic import SystemicFailure

log = logging.getLogger(__name__)
T = TypeVar("T")

KEPT_BACK = "an earlier message of its FIFO group was not written; kept back for order"


@dataclass(frozen=True)
class Destination:
    """Where the records of one route go: its table and the pacer of its base."""

    name: str
    sink: SinkPort
    pacer: Pacer
    #: what the route needs resolved before it writes (versions, links, deletes)
    mirror: Mirror | None = None
    #: the table and key fields its keys belong to (`mirror.scope`): one writer per key
    scope: str = ""


@dataclass(eq=False)
class Request:
    """Entries of one route, written together from the reserved `slot` on."""

    destination: Destination
    entries: list[Entry]
    slot: float
    #: entries of the route still waiting: one lookup reads their keys too
    prefetch: list[Entry] = field(default_factory=list)

    @property
    def route(self) -> str:
        return self.destination.name


Recheck = Callable[[str, RecordsRejectedError], SystemicFailure | None]


class Writer:
    """`suspect(message, error)` says whether a message that failed transiently has failed
    on enough receives to be dead-lettered; `refresh_token()` re-reads the token and says
    whether it changed; `recheck(route, error)` checks the route's table again after a
    uniform rejection."""

    def __init__(
        self,
        deadline: Deadline,
        *,
        max_attempts: int,
        suspect: Callable[[Message, SinkError], bool],
        refresh_token: Callable[[], bool] = lambda: False,
        recheck: Recheck = lambda route, error: None,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.suspect = suspect
        self.refresh_token = refresh_token
        self.recheck = recheck
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.sleep = sleep
        self._token_lock = threading.Lock()
        self._token_refreshed = False

    def write(self, request: Request) -> Outcome:
        slots = Slots(request.destination.pacer, request.slot)
        mirror = request.destination.mirror
        mapped = [entry.record for entry in request.entries]  # links hold keys, not ids
        recall = mirror is not None and (bool(mirror.links) or mapped[0].action is Action.DELETE)
        outcome = self._write(request, slots, recall=recall)
        if outcome.recalled is not None and mirror is not None:
            log.info(
                "Airtable rejected a request that carried remembered record ids (%s); reading "
                "them again before a record is blamed (route %s)",
                outcome.recalled,
                request.route,
            )
            for entry, record in zip(request.entries, mapped, strict=True):
                entry.record = record
            mirror.forget(request.entries)
            spent, outcome = outcome, self._write(request, slots, recall=False)
            outcome.add(spent.cost())  # the first attempt's requests count; its verdicts do not
        return outcome

    def _write(self, request: Request, slots: Slots, *, recall: bool) -> Outcome:
        """The request once: prepared (when the route reads before it writes), then sent.
        `recall`: a rejection is reported as `Outcome.recalled`, with no verdicts."""
        entries, outcome = request.entries, Outcome()
        mirror = request.destination.mirror
        if mirror is not None:
            try:
                prepared = mirror.prepare(entries, slots.take, request.prefetch)
            except OutOfTimeError:
                return outcome.no_time(entries)
            except SinkError as exc:  # a lookup failed: the records are not at fault
                outcome.failure = SystemicFailure.of(request.route, exc)
                outcome.settle(entries, Fate.RELEASE, str(exc))
                return outcome
            outcome.verdicts += prepared.verdicts
            outcome.requests += prepared.requests
            outcome.stale = prepared.stale
            entries = prepared.entries
            if not entries:
                return outcome
        sent = self._send(request.destination, entries, slots.take(), recall)
        alike = sent.rejected_alike
        if alike is not None and (failure := self.recheck(request.route, alike)) is not None:
            # the table changed under the records: release them, not dead-letter them
            sent = sent.cost()
            sent.failure = failure
            sent.settle(entries, Fate.RELEASE, failure.detail)
        outcome.add(sent)
        outcome.recalled = sent.recalled
        outcome.rejected_alike = sent.rejected_alike
        return outcome

    def _send(
        self, destination: Destination, entries: list[Entry], slot: float, recall: bool = False
    ) -> Outcome:
        """Write `entries` in one request, or on a delete route remove their rows (Airtable
        deletes by record id only), retrying what may pass and bisecting rejected records
        (with `recall`, a rejection is only reported: `Outcome.recalled`)."""
        pacer, sink, records = destination.pacer, destination.sink, [e.record for e in entries]
        deleting = records[0].action is Action.DELETE
        if deleting:
            assert destination.mirror is not None
            ids = destination.mirror.resolver.delete_ids(destination.mirror.scope, entries)
            call: Callable[[], Any] = lambda: sink.delete(ids)  # type: ignore[attr-defined]  # noqa: E731
        else:
            call = lambda: sink.write(records)  # noqa: E731
        outcome = Outcome()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._call(outcome, pacer, slot, call)
            except OutOfTimeError:
                return outcome.no_time(entries)
            except RecordsRejectedError as exc:
                if recall:
                    outcome.recalled = exc
                    return outcome
                if deleting:  # record ids, not a record's content: no message is to blame
                    outcome.failure = SystemicFailure.of(destination.name, exc)
                    outcome.settle(entries, Fate.RELEASE, str(exc))
                    return outcome
                bisected = self._bisect(destination, entries, exc)
                outcome.add(bisected)
                outcome.rejected_alike = bisected.rejected_alike
                return outcome
            except ThrottledError:  # the pacer holds the base for the lockout
                outcome.throttled += 1
                ends = pacer.paused_until
                if not self.deadline.allows(ends - self.clock() + 1.0):
                    log.warning(
                        "rate limit: no time left to wait out the lockout (route %s)",
                        destination.name,
                    )
                    return outcome.no_time(entries)
                log.warning("rate limit: waiting out the lockout (route %s)", destination.name)
                slot = pacer.reserve()
                continue
            except SystemicSinkError as exc:
                if exc.status == 401 and self._token_changed():
                    log.warning(
                        "Airtable refused the token (401); a new one was read from the secret"
                    )
                    slot = pacer.reserve()
                    continue
                outcome.failure = SystemicFailure.of(destination.name, exc)
                outcome.settle(entries, Fate.RELEASE, str(exc))
                return outcome
            except TransientSinkError as exc:
                delay = self.backoff.delay(attempt)
                if attempt < self.max_attempts and self.deadline.allows(delay + 1.0):
                    outcome.retries += 1
                    log.info(
                        "retrying a request after %s (attempt %d) in %.1f s", exc, attempt, delay
                    )
                    self.sleep(delay)
                    slot = pacer.reserve()
                    continue
                log.warning("request failed after %d attempt(s): %s", attempt, exc)
                self._give_up(outcome, entries, exc)
                return outcome
            pacer.capacity.settle_probe()
            if destination.mirror is not None:
                written = [""] * len(entries) if deleting else result.record_ids
                destination.mirror.wrote(entries, written)
            outcome.written += len(entries)
            if not deleting:
                outcome.created += result.created
                outcome.updated += result.updated
            outcome.settle(entries, Fate.DELETE)
            return outcome

    def _give_up(self, outcome: Outcome, entries: list[Entry], exc: SinkError) -> None:
        for entry in entries:
            for message in entry.messages:
                if self.suspect(message, exc):
                    reason = f"failed on {message.receive_count} receives; last error: {exc}"
                    outcome.verdicts.append(
                        Verdict.dead_letter(message, reason, exc.error_type or "REPEATED_FAILURE")
                    )
                else:
                    outcome.verdicts.append(Verdict.release(message, str(exc), blameless=False))
                    outcome.released_groups |= entry.groups

    def _call(self, outcome: Outcome, pacer: Pacer, slot: float, call: Callable[[], T]) -> T:
        """One request from `slot` (`Pacer.call`), counted with its latency once it is sent."""

        def timed() -> T:
            outcome.requests += 1
            started = self.clock()
            try:
                return call()
            finally:
                outcome.latency_ms.append((self.clock() - started) * 1000)

        return pacer.call(slot, self.deadline, timed)

    def _bisect(
        self, destination: Destination, entries: list[Entry], exc: RecordsRejectedError
    ) -> Outcome:
        """Find the records that made Airtable reject the request, and write the others."""
        outcome = Outcome()
        if len(entries) == 1:
            outcome.settle(entries, Fate.DEAD_LETTER, str(exc), exc.error_type or "REJECTED")
            outcome.rejected_alike = exc if exc.field else None
            return outcome
        middle = len(entries) // 2
        first = self._send(destination, entries[:middle], destination.pacer.reserve())
        outcome.add(first)
        later = entries[middle:]
        if first.failure is not None or first.out_of_time:  # the rest cannot be written now
            outcome.settle(
                later, Fate.RELEASE, NO_TIME if first.out_of_time else str(first.failure)
            )
            return outcome
        kept = [e for e in later if e.groups & outcome.released_groups]
        outcome.settle(kept, Fate.RELEASE, KEPT_BACK)
        later = [e for e in later if e not in kept]
        second = self._send(destination, later, destination.pacer.reserve()) if later else Outcome()
        outcome.add(second)
        a, b = first.rejected_alike, second.rejected_alike
        if a and b and not kept and (b.error_type, b.field) == (a.error_type, a.field):
            outcome.rejected_alike = a  # both halves rejected alike: so was the whole
        return outcome

    def _token_changed(self) -> bool:
        """Re-read the token once per run: True if it changed (then retry)."""
        with self._token_lock:
            if self._token_refreshed:
                return False
            self._token_refreshed = True
            try:
                return self.refresh_token()
            except Exception as exc:  # the secret itself is the problem now
                log.warning("re-reading the token after a 401 failed: %s", exc)
                return False
