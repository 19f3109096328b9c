"""The drain loop: receive -> map -> batch -> write -> settle, until the queue is empty or
the deadline is near. Written against `QueuePort`, `SinkPort` and the pacers only.

One thread runs the loop and owns every decision; writer threads only run `Writer.write`
and hand back an `Outcome` (a verdict per message). The loop (1) `_receive`s only what the
bases can write before the deadline: each base's pace and lockout bound its share, a base
that is locked out or stopped bounds the whole receive (a receive cannot choose its route),
and until a write succeeds one batch at a time is received (what the preflight cannot
prove, a write does); (2) maps each message, poison getting its verdict at once; (3)
`_dispatch`es a request of one route when it is full or has lingered and its base's next
slot is near, reserving that slot; (4) `_collect`s finished requests and gives their
verdicts to the `Settler`. When it stops, the writes in flight finish and every message
still held is released.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .batching import Batcher, Entry, KeyLocks
from .errors import MappingError
from .model import COUNTS, Message, Outcome, Record, Verdict
from .pacing import Clock, Deadline, Pacer, Sleep
from .ports import QueuePort
from .settler import SQS_BATCH, Settler
from .summary import RunSummary, StopReason
from .systemic import SystemicFailure
from .writer import Destination, Request, Writer

log = logging.getLogger(__name__)

NOT_THIS_RUN = "not written in this run"
#: What a receive takes beyond its long poll, at most (the call and the mapping); the
#: budget counts only slots at least this far inside the run.
RECEIVE_SECONDS = 0.5


@dataclass(frozen=True)
class Limits:
    """The loop's constants; tests pass smaller ones."""

    wait_time_seconds: int = 1
    #: requests in flight at once per base
    in_flight: int = 4
    #: a partial request waits this long for more records
    linger_seconds: float = 1.0
    #: messages kept waiting for bases that are not locked out
    buffer_messages: int = 100
    #: never more than this many messages, nor bytes of bodies, held at once
    max_held_messages: int = 2000
    max_held_bytes: int = 64 * 1024 * 1024
    #: the loop looks again at least this often (s)
    poll_seconds: float = 0.05
    fifo: bool = False


class Drain:
    """One run. Create, call `run()` once, read the summary."""

    def __init__(
        self,
        queue: QueuePort,
        mapper: Callable[[Message], Record],
        destinations: Mapping[str, Destination],
        deadline: Deadline,
        writer: Writer,
        *,
        limits: Limits = Limits(),
        max_receive_count: int | None = None,
        summary: RunSummary | None = None,
        locks: KeyLocks | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not destinations:
            raise ValueError("a drain needs at least one destination")
        self.queue, self.mapper, self.writer = queue, mapper, writer
        self.destinations = dict(destinations)
        self.deadline, self.limits, self.clock, self.sleep = deadline, limits, clock, sleep
        self.summary = summary or RunSummary()
        self.batcher = Batcher(locks, lambda route: self.destinations[route].scope or route)
        self.settler = Settler(
            queue,
            self.summary,
            max_receive_count=max_receive_count,
            fifo=limits.fifo,
            block=self.batcher.block,
        )
        self.pacers: dict[int, Pacer] = {id(d.pacer): d.pacer for d in self.destinations.values()}
        self.pending: dict[Future[Outcome], Request] = {}
        self.closed: dict[str, SystemicFailure] = {}
        self.wrote: set[str] = set()  # routes that had records written in this run
        self.proven = False  # a write succeeded in this run
        self.out_of_time: set[int] = set()
        self.receiving, self.queue_empty = True, False
        self.stop: StopReason | None = None
        self.error: str | None = None
        self._held_bytes, self._next_receive = 0, -math.inf
        self._baseline = {k: p.requests for k, p in self.pacers.items()}

    def run(self) -> RunSummary:
        started = self.clock()
        workers = self.limits.in_flight * len(self.pacers)
        with ThreadPoolExecutor(workers, thread_name_prefix="poller-writer") as pool:
            try:
                while not self._finished():
                    self._collect()
                    if self.stop is None:
                        if self._may_receive():
                            self._receive()
                        self._dispatch(pool)
                    self._wait()
            except Exception as exc:
                log.exception("the run stopped on an unexpected error; what it holds is released")
                self._halt("error", repr(exc))
            finally:
                wait(self.pending)
                self._collect()
        self._release(self.batcher.take_all(), NOT_THIS_RUN)
        self.settler.finish()
        return self._summarise(started)

    # -- 1. receive ---------------------------------------------------------------------
    def _may_receive(self) -> bool:
        if not self.receiving or self.clock() < self._next_receive:
            return False
        if self.closed or not self.deadline.allows(self.limits.wait_time_seconds + 1.0):
            self.receiving = False  # a stopped route's messages must not be received
            return False
        held = self._held_messages()
        if not self.proven and held:
            return False
        if (
            held + SQS_BATCH > self.limits.max_held_messages
            or self._held_bytes > self.limits.max_held_bytes
        ):
            return False
        free = sum(
            self.batcher.messages(r)
            for r, d in self.destinations.items()
            if not self._locked(d.pacer)
        )
        if free + SQS_BATCH > self.limits.buffer_messages:
            return False
        for pacer_id, pacer in self.pacers.items():
            writable = self._writable(pacer)
            if writable < SQS_BATCH:
                self.receiving = False  # it only shrinks from here
                return False
            if self._held_messages(pacer_id) + SQS_BATCH > writable:
                return False
        return True

    def _receive(self) -> None:
        idle = not self.pending and not self.batcher.waiting()
        wait_seconds = self.limits.wait_time_seconds if idle else 0
        held_before = self._held_messages()
        messages = self.queue.receive(
            max_messages=SQS_BATCH,
            wait_seconds=wait_seconds,
            visibility_seconds=self.deadline.visibility_seconds(),
        )
        if not messages:
            # An empty receive made while idle (a long poll unless WAIT_TIME_SECONDS is 0)
            # proves the queue empty, unless (FIFO) SQS hid a group this
            # run holds: then look again once something held settled, or stop when nothing
            # held can settle any more (only blocked groups are left).
            stuck = not self.pending and not self._takeable()
            if idle and (not (self.limits.fifo and held_before) or stuck):
                self.queue_empty, self.receiving = True, False
            else:
                self._next_receive = self.clock() + 4 * self.limits.poll_seconds
            return
        self.summary.received += len(messages)
        now = self.clock()
        poison: list[Verdict] = []
        for message in messages:
            self._held_bytes += len(message.body)
            record = self._map(message)
            if isinstance(record, Verdict):
                poison.append(record)
                continue
            self.batcher.add(record, message, now)
        self._settle(poison)

    # -- 2. map ---------------------------------------------------------------------------
    def _map(self, message: Message) -> Record | Verdict:
        """The message's record, or its dead-letter verdict with the reason."""
        if message.unreadable:
            return Verdict.dead_letter(message, message.unreadable, "UNREADABLE_PAYLOAD")
        try:
            return self.mapper(message)
        except MappingError as exc:
            return Verdict.dead_letter(message, exc.reason, "MAPPING_ERROR")
        except Exception as exc:  # one message must never stop the run
            log.exception("mapping crashed on message %s; dead-lettering it", message.id)
            why = f"mapping failed: {type(exc).__name__}: {exc}"
            return Verdict.dead_letter(message, why, "MAPPING_ERROR")

    # -- 3. dispatch ----------------------------------------------------------------------
    def _dispatch(self, pool: ThreadPoolExecutor) -> None:
        if self.deadline.expired():
            self._halt("deadline")
            return
        now = self.clock()
        for pacer_id, pacer in self.pacers.items():
            if pacer_id in self.out_of_time:
                continue
            flying = [r for r in self.pending.values() if id(r.destination.pacer) == pacer_id]
            while len(flying) < self.limits.in_flight:
                mine = [r for r, d in self.destinations.items() if d.pacer is pacer]
                route = self.batcher.oldest(set(mine) - set(self.closed))
                if route is None or pacer.next_slot() - now > pacer.interval:
                    break
                takeable = self.batcher.take(route, SQS_BATCH, self.closed, peek=True)
                flush = not self.receiving or not self.proven  # nothing more will come for now
                full = len(takeable) == SQS_BATCH
                if not takeable or not (
                    full or flush or now - takeable[0].since >= self.limits.linger_seconds
                ):
                    break
                if full and self.batcher.messages(route) > 2 * SQS_BATCH:
                    pacer.capacity.probe()  # a backlog waits for this base
                if pacer.next_slot() > now + self.deadline.usable():
                    self.out_of_time.add(pacer_id)
                    break
                entries = self.batcher.take(route, SQS_BATCH, self.closed)
                destination = self.destinations[route]
                # keys a lookup may read too (it reads at most LOOKUP_KEYS)
                prefetch = self.batcher.waiting(route) if destination.mirror else []
                request = Request(destination, entries, pacer.reserve(), prefetch)
                self.pending[pool.submit(self.writer.write, request)] = request
                flying.append(request)

    # -- 4. collect and settle ------------------------------------------------------------
    def _collect(self) -> None:
        for future in [f for f in self.pending if f.done()]:
            request = self.pending.pop(future)
            self.batcher.done(request.entries)
            try:
                outcome = future.result()
            except Exception as exc:
                log.error("a writer failed; its messages are released", exc_info=exc)
                self._release(request.entries, "the write failed unexpectedly")
                self._halt("error", repr(exc))
                continue
            self._account(request, outcome)
            self._settle(outcome.verdicts)

    def _account(self, request: Request, outcome: Outcome) -> None:
        self.summary.batches += 1
        self.summary.batch_latency_ms += outcome.latency_ms
        for name in COUNTS:
            setattr(self.summary, name, getattr(self.summary, name) + getattr(outcome, name))
        if outcome.written:
            self.wrote.add(request.route)
            self.proven = True
        if outcome.failure is not None and request.route not in self.closed:
            self.closed[request.route] = outcome.failure
            log.error(
                "route %s stopped for this run: %s", request.route, outcome.failure.describe()
            )
        if outcome.out_of_time:
            self.out_of_time.add(id(request.destination.pacer))

    def _settle(self, verdicts: list[Verdict]) -> None:
        for verdict in verdicts:
            self._held_bytes -= len(verdict.message.body)
        self.settler.settle(verdicts)

    def _release(self, entries: list[Entry], reason: str) -> None:
        self._settle([Verdict.release(m, reason) for e in entries for m in e.messages])

    # -- bookkeeping ----------------------------------------------------------------------
    def _finished(self) -> bool:
        if self.pending:
            return False
        if self.stop is not None:
            return True
        if len(self.closed) == len(self.destinations):
            self._halt("systemic")
            return True
        if self.receiving or self._takeable():
            return False
        self._halt("systemic" if self.closed else ("empty" if self.queue_empty else "deadline"))
        return True

    def _takeable(self) -> bool:
        """Some waiting entry can still be written in this run."""
        return any(
            id(self.destinations[r].pacer) not in self.out_of_time
            and self.batcher.take(r, 1, self.closed, peek=True)
            for r in {e.route for e in self.batcher.waiting()}
        )

    def _halt(self, reason: StopReason, error: str | None = None) -> None:
        if self.stop is None:
            self.stop, self.error = reason, error
        self.receiving = False

    def _wait(self) -> None:
        if self.pending:
            wait(self.pending, timeout=self.limits.poll_seconds, return_when=FIRST_COMPLETED)
        elif self.stop is None and (self.batcher.waiting() or self.clock() < self._next_receive):
            self.sleep(self.limits.poll_seconds)

    def _held_messages(self, pacer_id: int | None = None) -> int:
        """Messages waiting or in flight: all of them, or those of one base."""
        mine = lambda pacer: pacer_id is None or id(pacer) == pacer_id  # noqa: E731
        waiting = [e for e in self.batcher.waiting() if mine(self.destinations[e.route].pacer)]
        flying = [e for r in self.pending.values() if mine(r.destination.pacer) for e in r.entries]
        return sum(len(e.messages) for e in waiting + flying)

    def _writable(self, pacer: Pacer) -> int:
        """Records the base can still take in this run, at its pace, after any lockout, once
        a receive (a long poll and the mapping) is done."""
        now = self.clock()
        start = max(now + self.limits.wait_time_seconds, pacer.next_slot()) + RECEIVE_SECONDS
        return pacer.slots_between(start, now + self.deadline.usable()) * SQS_BATCH

    def _locked(self, pacer: Pacer) -> bool:
        return pacer.paused_until > self.clock()

    def _summarise(self, started: float) -> RunSummary:
        summary = self.summary
        summary.elapsed_ms = int((self.clock() - started) * 1000)
        summary.stopped_because = self.stop or "empty"
        summary.stopped_routes = {r: f.describe() for r, f in self.closed.items()}
        summary.error = self.error or "; ".join(summary.stopped_routes.values()) or None
        summary.pacing_rps = min(p.capacity.rate for p in self.pacers.values())
        summary.airtable_requests += sum(
            p.requests - self._baseline[k] for k, p in self.pacers.items()
        )
        return summary
