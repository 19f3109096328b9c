"""The run loop: receive -> map -> write -> delete what Airtable confirmed -> go on or stop.

It wires four parts that share one `RunState`:

* a `Receiver` thread long-polls the queue while writes are in flight and feeds
* the `Assembler`, which holds the entries per route and hands out a request of one route
  when it is worth sending and its pacer's slot is due; this loop gives each request to
* a pool of `Writer`s (one request each: retry, bisection, lockout), whose outcome goes to
* the `Settler`, which deletes, dead-letters, or sets aside for release.

When the run stops (queue empty, deadline, an error, or every route broken) nothing is left
half-done: writes in flight finish, and every message still held is released.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import SinkError
from ..model import DEFAULT_ROUTE, Message, Record
from ..policies import Backoff, Clock, Deadline, Sleep
from ..ports import Destination, Pacer, QueuePort, SinkPort, SystemicGuard
from .assembler import Assembler
from .batch import Outcome, Request
from .receiver import Receiver
from .settler import Settler
from .state import RunState, RunSummary, Settings, Stop
from .writer import Writer

log = logging.getLogger(__name__)

DEFAULT_SETTINGS = Settings()


class Drain:
    """One run of the drain loop. Create, call `run()` once, read the summary.

    `destinations` maps each route name (`Record.route`) to its table and pacer; several
    routes may share a pacer (tables of one base). `settings.max_in_flight` applies per
    pacer. Without a `guard`, a refused request stops the run (`stopped_because="error"`)."""

    def __init__(
        self,
        queue: QueuePort,
        mapper: Callable[[Message], Record],
        deadline: Deadline,
        destinations: Mapping[str, Destination],
        settings: Settings = DEFAULT_SETTINGS,
        *,
        guard: SystemicGuard | None = None,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not destinations:
            raise ValueError("a drain needs at least one destination")
        misnamed = [k for k, d in destinations.items() if k != d.name]
        if misnamed:
            raise ValueError(f"destinations keyed by another name than their own: {misnamed}")
        self.destinations = dict(destinations)
        self.settings = settings
        self.deadline = deadline
        self.clock = clock
        self.state = RunState(settings.fifo)
        self.summary = self.state.summary
        self.assembler = Assembler(self.destinations, self.state, settings, deadline, clock)
        self.settler = Settler(queue, settings, self.state)
        self.writer = Writer(
            settings,
            deadline,
            backoff or Backoff(),
            clock,
            sleep,
            guard=guard,
            is_broken=self._is_broken,
        )
        self.receiver = Receiver(
            queue,
            mapper,
            self.destinations,
            self.state,
            self.assembler,
            self.settler,
            settings,
            deadline,
            clock,
        )

    @classmethod
    def single(
        cls,
        queue: QueuePort,
        sink: SinkPort,
        mapper: Callable[[Message], Record],
        deadline: Deadline,
        limiter: Pacer,
        settings: Settings = DEFAULT_SETTINGS,
        **options: object,
    ) -> Drain:
        """A drain with one destination, `model.DEFAULT_ROUTE` (the single-table config)."""
        destination = Destination(DEFAULT_ROUTE, sink, limiter)
        return cls(queue, mapper, deadline, {DEFAULT_ROUTE: destination}, settings, **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunSummary:
        state = self.state
        started = self.clock()
        receiver = threading.Thread(target=self.receiver.run, name="poller-receiver", daemon=True)
        receiver.start()
        pacers = len({id(d.limiter) for d in self.destinations.values()})
        writes: list[Future[None]] = []
        # Leaving the pool waits for the writes in flight: nothing is half-done when it returns.
        with ThreadPoolExecutor(
            self.settings.max_in_flight * pacers, thread_name_prefix="poller-writer"
        ) as pool:
            try:
                while (request := self._next_request()) is not None:
                    writes.append(pool.submit(self._write, request))
            finally:
                state.halted.set()
                with state.cond:
                    state.cond.notify_all()
        for write in writes:  # a bug in settling must not vanish inside a future
            if (exc := write.exception()) is not None:
                log.error("a writer failed", exc_info=exc)
                state.stop_with("error", exc)
        receiver.join()
        with state.cond:
            held = state.to_release + self.assembler.take_all()
            state.to_release = []
        self.settler.release(held)
        return self._summarise(started)

    def _next_request(self) -> Request | None:
        """Block until a request is worth sending and its pacer's slot is due; None = stop."""
        state = self.state
        with state.cond:
            while True:
                if state.stop is not None:
                    return None
                if self.deadline.expired():
                    state.stop_with("deadline")
                    return None
                if all(state.closed(route) for route in self.destinations):
                    self._stop_all_closed()
                    return None
                pick = self.assembler.pick()
                if pick.request is not None:
                    return pick.request
                if (
                    state.receiver_done
                    and self.assembler.in_flight == 0
                    and not self.assembler.takeable()
                ):
                    state.stop_with("deadline" if state.out_of_time else "empty")
                    return None
                state.cond.wait(timeout=pick.wait)

    def _stop_all_closed(self) -> None:
        state = self.state
        if all(route in state.broken for route in self.destinations):
            first = next(iter(state.broken.values()))
            state.stop_with("systemic", SinkError(f"every route is broken; first: {first}"))
        else:
            state.stop_with("deadline")

    # ------------------------------------------------------------------ one request
    def _write(self, request: Request) -> None:
        started = self.clock()
        outcome = Outcome()
        try:
            outcome = self.writer.write(request, lambda: self.assembler.slot_taken(request))
        except Exception as exc:
            log.exception("unexpected error while writing a batch; its messages are released")
            outcome = Outcome.failing(request.entries, SinkError(repr(exc)))
            outcome.stop = Stop("error", exc)
        finally:
            self.assembler.slot_taken(request)
            try:
                self._conclude(request, outcome)
                self.settler.settle(outcome)
            finally:
                with self.state.cond:
                    self.summary.batch_latency_ms.append((self.clock() - started) * 1000)
                self.assembler.complete(request)

    def _conclude(self, request: Request, outcome: Outcome) -> None:
        """What the request's outcome means for the run: stop it, or close the route's pacer
        (no time left) or the route itself (broken)."""
        if outcome.stop is not None:
            self.state.stop_with(outcome.stop.reason, outcome.stop.error)
        if outcome.out_of_time:
            self.assembler.close_pacer(request.destination, "no time left")
        if outcome.broken is not None:
            self._break(request.route, outcome.broken)

    def _break(self, route: str, error: SinkError) -> None:
        """A systemic failure: `route` takes no more requests in this run; its messages are
        released (the ones in flight when their request ends), the other routes go on."""
        state = self.state
        with state.cond:
            if route in state.broken:
                return
            state.broken[route] = str(error)
            self.assembler.set_aside(route)
            state.cond.notify_all()
        log.error(
            "route %s stopped for this run by a systemic failure; its messages are released",
            route,
            extra={"route": route, "error": str(error), "error_type": error.error_type},
        )

    def _is_broken(self, route: str) -> bool:
        with self.state.cond:
            return route in self.state.broken

    def _summarise(self, started: float) -> RunSummary:
        state, summary = self.state, self.summary
        summary.elapsed_ms = int((self.clock() - started) * 1000)
        summary.stopped_routes = dict(state.broken)
        summary.pacing_rps = min(
            (d.limiter.effective_rps for d in self.destinations.values()), default=0.0
        )
        if state.stop is not None:
            summary.stopped_because = state.stop.reason
            if state.stop.error is not None:
                summary.error = str(state.stop.error)
        return summary
