"""The writer: sends one request to its destination and says what became of each entry.

Every attempt takes its pacer's slot immediately before it is sent. A transient failure is
retried with backoff; a 429 pauses the pacer for the lockout and is waited out when the run
has time for it; a rejected request is bisected to find the records Airtable refuses. With a
`SystemicGuard`, a refused request (401/403/404, unknown field) may be sent once more after
the guard fixed its cause, and a request whose records are all rejected alike may be judged
systemic; without one, a refused request stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import (
    RecordsRejectedError,
    SinkConfigurationError,
    SinkError,
    ThrottledError,
    TransientSinkError,
)
from ..policies import Backoff, Clock, Deadline, Sleep
from ..ports import Destination, SystemicGuard
from .batch import Entry, Outcome, Request
from .state import Settings, Stop

log = logging.getLogger(__name__)

NO_TIME = "no time left for another request"
KEPT_BACK = "an earlier message of its FIFO group failed; kept back for order"


class Writer:
    def __init__(
        self,
        settings: Settings,
        deadline: Deadline,
        backoff: Backoff,
        clock: Clock,
        sleep: Sleep,
        *,
        guard: SystemicGuard | None = None,
        is_broken: Callable[[str], bool] = lambda route: False,
    ) -> None:
        self.settings = settings
        self.deadline = deadline
        self.backoff = backoff
        self.clock = clock
        self.sleep = sleep
        self.guard = guard
        self.is_broken = is_broken

    def write(self, request: Request, on_slot: Callable[[], None] = lambda: None) -> Outcome:
        """Write the request; `on_slot` is called once its first attempt got a slot (or not).

        A route found broken (by this request or a concurrent one) has no poison: records it
        rejected were refused because of the table, so they are held back, not dead-lettered."""
        outcome = self._send(request.destination, request.entries, on_slot)
        if self.guard is None or not outcome.rejected:
            return outcome
        error = _uniform_rejection(outcome, request.entries)
        if (
            error is not None
            and not self.is_broken(request.route)
            and self.guard.on_uniform_rejection(request.route, error)
        ):
            log.warning("route %s: every record rejected alike (%s)", request.route, error)
            outcome.broken = outcome.broken or error
        if self.is_broken(request.route) or outcome.broken is not None:
            outcome.held_back += [entry for entry, _ in outcome.rejected]
            outcome.rejected = []
        return outcome

    def _send(
        self,
        destination: Destination,
        entries: list[Entry],
        on_slot: Callable[[], None] = lambda: None,
    ) -> Outcome:
        """Write entries in one request, retrying what may pass and bisecting rejections."""
        pacer, route = destination.limiter, destination.name
        attempt = retries = throttled = 0
        asked_guard = False

        def done(outcome: Outcome) -> Outcome:
            outcome.requests += attempt
            outcome.retries += retries
            outcome.throttled += throttled
            return outcome

        while True:
            if self.is_broken(route):
                return done(Outcome(held_back=list(entries)))
            acquired = pacer.acquire(not_after=self.clock() + max(self.deadline.usable(), 0))
            on_slot()
            on_slot = _nothing
            if not acquired:
                # Out of time, not out of messages: the run must say "deadline" even if the
                # queue happens to run dry meanwhile.
                return done(Outcome.failing(entries, SinkError(NO_TIME), out_of_time=True))
            attempt += 1
            try:
                result = destination.sink.write([e.record for e in entries])
            except RecordsRejectedError as exc:
                attempt -= 1  # the bisection counts this request
                return done(self._bisect(destination, entries, exc))
            except SinkConfigurationError as exc:
                if self.guard is None:
                    return done(
                        Outcome.failing(entries, SinkError(str(exc)), stop=Stop("error", exc))
                    )
                if self.is_broken(route):
                    return done(Outcome(held_back=list(entries)))
                if not asked_guard and self.guard.on_refused(route, exc):
                    asked_guard = True
                    log.warning(
                        "route %s: refused (%s); the guard fixed it, sending again", route, exc
                    )
                    continue
                log.error("route %s refused: %s; its messages are released", route, exc)
                return done(Outcome(held_back=list(entries), broken=exc))
            except ThrottledError as exc:
                throttled += 1
                if not self._wait_out_lockout(destination):
                    return done(Outcome.failing(entries, exc, out_of_time=True))
                continue
            except TransientSinkError as exc:
                delay = self.backoff.delay(attempt)
                out_of_time = not self.deadline.allows(delay + 1)
                if attempt >= self.settings.max_attempts or out_of_time:
                    log.warning("write failed after %d attempt(s): %s", attempt, exc)
                    return done(Outcome.failing(entries, exc, out_of_time=out_of_time))
                retries += 1
                log.info("retrying a write after %s (attempt %d) in %.1f s", exc, attempt, delay)
                self.sleep(delay)
                continue
            return done(
                Outcome(written=list(entries), created=result.created, updated=result.updated)
            )

    def _bisect(
        self, destination: Destination, entries: list[Entry], exc: RecordsRejectedError
    ) -> Outcome:
        """Find the records that made Airtable reject the request, and write the others."""
        if len(entries) == 1:
            return Outcome(rejected=[(entries[0], exc)], requests=1)
        middle = len(entries) // 2
        outcome = Outcome(requests=1)
        outcome.merge(self._send(destination, entries[:middle]))
        later = entries[middle:]
        if outcome.must_halt:  # no time, or the route or the run stopped: do not go on
            if outcome.broken is not None:
                outcome.held_back += later
            else:
                why = SinkError(NO_TIME if outcome.out_of_time else "not sent: the run stopped")
                outcome.failed += [(e, why) for e in later]
            return outcome
        # FIFO: once a message of a group has failed, a later one of that group must not be
        # written (it would overtake it); it fails with it and is released in order.
        failed_groups = {group for entry, _ in outcome.failed for group in entry.groups}
        kept_back = [e for e in later if e.groups & failed_groups]
        if kept_back:
            outcome.failed += [(e, SinkError(KEPT_BACK)) for e in kept_back]
            later = [e for e in later if not e.groups & failed_groups]
        if later:
            outcome.merge(self._send(destination, later))
        return outcome

    def _wait_out_lockout(self, destination: Destination) -> bool:
        """After a 429 every request to the base fails for the lockout. Hold back every
        request through this pacer, and wait it out if the run has time for it; otherwise
        give up without hammering. Other pacers (other bases) are not held back."""
        lockout = self.settings.lockout_seconds
        destination.limiter.pause_until(self.clock() + lockout)
        destination.limiter.on_throttled()
        if not self.deadline.allows(lockout + 1):
            log.warning(
                "Airtable rate limit hit and no time left to wait out the %.0f s lockout (route %s)",
                lockout,
                destination.name,
            )
            return False
        log.warning(
            "Airtable rate limit hit: waiting out the %.1f s lockout (route %s)",
            lockout,
            destination.name,
        )
        return True


def _nothing() -> None:
    return None


def _uniform_rejection(outcome: Outcome, entries: list[Entry]) -> RecordsRejectedError | None:
    """The error, when every entry was rejected with the same error type on the same field."""
    if len(outcome.rejected) != len(entries) or not entries:
        return None
    errors = [exc for _, exc in outcome.rejected]
    first = errors[0]
    if not isinstance(first, RecordsRejectedError) or not first.field:
        return None
    if all(e.error_type == first.error_type and e.field == first.field for e in errors):
        return first
    return None
