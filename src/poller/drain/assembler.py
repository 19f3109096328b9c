"""The assembler: entries waiting to be written, and the requests made of them (the Kafka
producer's accumulator).

It keeps the received entries in arrival order, collapses duplicates of a merge key within a
route, and hands out a request of one route's entries when that request is worth sending and
its pacer's next slot is due. What it guards:

* a merge key is in at most one request at a time (two concurrent upserts of a new key
  could both create it);
* on FIFO queues, a group has at most one request in flight, and nothing of a group is
  taken past an earlier entry of it that waits, or past a message of it set aside for
  release (group bookkeeping spans all routes);
* each pacer has at most `max_in_flight` requests in flight and at most one request waiting
  for its slot, so that each request is filled as late as possible.

Every method takes the run's lock (`RunState.cond`, re-entrant).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ..model import Message, Record
from ..policies import Clock, Deadline
from ..ports import Destination
from .batch import Entry, Request
from .state import SQS_BATCH, RunState, Settings

log = logging.getLogger(__name__)

#: how long (s) to wait at most before looking at the buffer again
POLL_SECONDS = 0.05
#: A pacer whose next slot is further away than this (s) is waiting out a lockout (30 s),
#: not pacing (a slot is never more than about a second away then).
PARKED_AFTER_SECONDS = 2.0


@dataclass
class Pick:
    """What the run loop should do next: send `request` now, or wait up to `wait` seconds."""

    request: Request | None = None
    wait: float = POLL_SECONDS


class Assembler:
    def __init__(
        self,
        destinations: Mapping[str, Destination],
        state: RunState,
        settings: Settings,
        deadline: Deadline,
        clock: Clock,
    ) -> None:
        self.destinations = destinations
        self.state = state
        self.settings = settings
        self.deadline = deadline
        self.clock = clock
        self._cond = state.cond
        self._buffer: list[Entry] = []
        self._by_key: dict[tuple[str, tuple[str, ...]], Entry] = {}
        self._keys_in_flight: set[tuple[str, tuple[str, ...]]] = set()
        self._groups_in_flight: set[str] = set()
        #: per pacer (by identity): requests in flight, and the one waiting for its slot
        self._in_flight: dict[int, int] = {}
        self._waiting: dict[int, Request] = {}

    # ------------------------------------------------------------------ filling
    def add(self, record: Record, message: Message, now: float) -> None:
        """Buffer a record, collapsing it into a waiting entry of its route with the same key."""
        with self._cond:
            entry = Entry(record, [message], now)
            waiting = self._by_key.get(entry.key) if entry.key is not None else None
            if waiting is None:
                self._buffer.append(entry)
                if entry.key is not None:
                    self._by_key[entry.key] = entry
            else:
                waiting.messages.append(message)
                self.state.summary.superseded += 1
                if waiting.latest is message:
                    waiting.record = record
            self._cond.notify_all()

    def takeable(self, route: str | None = None) -> list[Entry]:
        """Entries that may go into a request (of `route`, or of any route) now, in arrival
        order. An entry is skipped, and the later entries of its groups with it, when its
        merge key is in flight, its route is closed, or (FIFO) one of its groups is in flight
        or blocked, or, for a request of `route`, has an earlier entry of another route."""
        with self._cond:
            out: list[Entry] = []
            state = self.state
            skipped: set[str] = set()
            for entry in self._buffer:
                groups = entry.groups
                if (
                    groups & (self._groups_in_flight | state.blocked_groups | skipped)
                    or (entry.key is not None and entry.key in self._keys_in_flight)
                    or state.closed(entry.route)
                ):
                    skipped |= groups
                    continue
                if route is not None and entry.route != route:
                    skipped |= groups  # a later entry of its group must not overtake it
                    continue
                out.append(entry)
            return out

    def uncounted(self) -> int:
        """Buffered messages that do not count against `max_buffered`, so one base's backlog
        never starves the others of receives (issue 10: independent bases):

        * every message of a route whose pacer waits out a lockout (its next slot is more than
          PARKED_AFTER_SECONDS away): it waits for its own base, not for room;
        * a route's messages beyond its share, `max_buffered` / the number of routes (all of
          it with one route): after a lockout, the backlog it left drains at its base's pace
          while the other bases keep receiving.

        The receiver's hard bounds (`receiver.MAX_HELD_FACTOR`, `MAX_HELD_BYTES`) still hold."""
        with self._cond:
            now = self.clock()
            share = max(self.settings.max_buffered // max(len(self.destinations), 1), SQS_BATCH)
            per_route: dict[str, int] = {}
            for entry in self._buffer:
                per_route[entry.route] = per_route.get(entry.route, 0) + len(entry.messages)
            uncounted = 0
            for route, count in per_route.items():
                destination = self.destinations.get(route)
                parked = (
                    destination is not None
                    and destination.limiter.next_free() - now > PARKED_AFTER_SECONDS
                )
                uncounted += count if parked else max(0, count - share)
            return uncounted

    # ------------------------------------------------------------------ handing out requests
    def pick(self) -> Pick:
        """The request to send now, if one is worth sending and its pacer's slot is due
        (the route whose first entry waited longest goes first).

        A pacer whose next slot falls after the deadline can send nothing more in this run:
        its routes are closed (`RunState.out_of_time`) and their entries set aside."""
        with self._cond:
            now = self.clock()
            wait = POLL_SECONDS
            best: tuple[float, list[Entry]] | None = None
            for route in dict.fromkeys(e.route for e in self.takeable()):
                takeable = self.takeable(route)
                if not takeable:
                    continue
                destination = self._destination(route)
                pacer = id(destination.limiter)
                waited = now - takeable[0].since
                full = len(takeable) >= destination.sink.max_records
                lingered = waited >= self.settings.batch_linger_seconds
                if not (full or lingered or self.state.receiver_done):
                    wait = min(wait, self.settings.batch_linger_seconds - waited)
                    continue
                if (
                    self._in_flight.get(pacer, 0) >= self.settings.max_in_flight
                    or pacer in self._waiting
                ):
                    continue
                due = destination.limiter.next_free() - now
                if due > self.deadline.usable():
                    self.close_pacer(destination, "no slot of its pacer before the deadline")
                    return Pick(wait=0)
                if due > 0:
                    wait = min(wait, due)
                elif best is None or takeable[0].since < best[0]:
                    best = (takeable[0].since, takeable)
            if best is None:
                return Pick(wait=max(wait, 0.001))
            return Pick(self._take(best[1]))

    def _take(self, takeable: list[Entry]) -> Request:
        destination = self._destination(takeable[0].route)
        entries = takeable[: destination.sink.max_records]
        for entry in entries:
            self._buffer.remove(entry)
            if entry.key is not None:
                del self._by_key[entry.key]
                self._keys_in_flight.add(entry.key)
            self._groups_in_flight |= entry.groups
        request = Request(destination, entries)
        pacer = id(destination.limiter)
        self._in_flight[pacer] = self._in_flight.get(pacer, 0) + 1
        self._waiting[pacer] = request
        return request

    def slot_taken(self, request: Request) -> None:
        """The request got its pacer's slot (or gave up): the next one may be assembled."""
        with self._cond:
            pacer = id(request.destination.limiter)
            if self._waiting.get(pacer) is request:
                del self._waiting[pacer]
                self._cond.notify_all()

    def complete(self, request: Request) -> None:
        """The request is settled: its keys and groups may be taken again."""
        with self._cond:
            self.slot_taken(request)
            self._in_flight[id(request.destination.limiter)] -= 1
            for entry in request.entries:
                if entry.key is not None:
                    self._keys_in_flight.discard(entry.key)
                self._groups_in_flight -= entry.groups
            self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return sum(self._in_flight.values())

    # ------------------------------------------------------------------ closing routes
    def close_pacer(self, destination: Destination, why: str) -> None:
        """Out of time for `destination`'s pacer: close every route that uses it."""
        with self._cond:
            routes = [
                d.name for d in self.destinations.values() if d.limiter is destination.limiter
            ]
            self.state.out_of_time.update(routes)
            log.warning("route(s) %s: %s; their messages are released", ", ".join(routes), why)
            for route in routes:
                self.set_aside(route)

    def set_aside(self, route: str) -> None:
        """Take every buffered entry of `route` out, to be released at the end of the run."""
        with self._cond:
            entries = [e for e in self._buffer if e.route == route]
            for entry in entries:
                self._buffer.remove(entry)
                if entry.key is not None:
                    del self._by_key[entry.key]
            self.state.set_aside(m for e in entries for m in e.messages)

    def take_all(self) -> list[Message]:
        """Empty the buffer (the run is over): every message still waiting."""
        with self._cond:
            messages = [m for e in self._buffer for m in e.messages]
            self._buffer, self._by_key = [], {}
            return messages

    def _destination(self, route: str) -> Destination:
        return self.destinations[route]
