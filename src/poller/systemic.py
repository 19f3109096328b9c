"""Systemic failures: the ones every message of a route would meet, so no message is to blame.

A 401, a 403 or 404 (base or table gone, renamed, or out of the token's reach), a mapped field
that the table no longer has, a field whose type no longer fits the mapping, or a schema or
secret that cannot be read. Each receive raises a message's `ApproximateReceiveCount`, and
SQS's redrive policy moves a message to the DLQ (without a reason) once it passes
`maxReceiveCount`. So while a systemic failure lasts, the poller must not receive at all.

* `Breaker` remembers, for the container's life, which routes are broken and why.
* `RunGuard` is what the core calls while writing (the `SystemicGuard` port): it re-reads the
  token once after a 401, re-checks the schema when a whole request is rejected on one field,
  and trips the breaker when the cause is real.
* `recheck_open` runs before the next receive of every run: it re-checks each open cause
  (forced secret read, schema check, or a cheap probe) and clears what is fixed. If anything is
  still broken, the handler stops the run without receiving. A cold start has no breaker
  state, but it runs the schema check of every route before its first receive, so runs that
  land in other containers hold the same line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import RecordsRejectedError, SinkConfigurationError

log = logging.getLogger(__name__)

#: How many requests one run may retry after a 401 made it read a changed token (every
#: writer in flight may have been refused with the old one).
MAX_RETRIES_AFTER_TOKEN_CHANGE = 16


class Cause(StrEnum):
    """Why a route is broken; the `Cause` dimension of the `SystemicFailure` metric."""

    AUTH = "auth"  #: Airtable refused the token (401), even after re-reading the secret
    TABLE = "table"  #: 403/404: the base or table is gone, renamed, or out of the token's reach
    FIELD = "field"  #: a mapped field is not in the table (422 UNKNOWN_FIELD_NAME)
    TYPE = "type"  #: a field's type no longer fits the mapping (found by a re-check)
    SCHEMA = "schema"  #: the table's schema could not be read to check it
    SECRET = "secret"  #: the token's secret could not be read


#: What the operator should do, per cause (the log line and `poller status` show it).
FIXES = {
    Cause.AUTH: "put a valid token in the secret (AIRTABLE_TOKEN_SECRET_ARN) or AIRTABLE_TOKEN",
    Cause.TABLE: "check the base id and table name, and the token's scopes and base access",
    Cause.FIELD: "restore the field in Airtable or fix the mapping (FIELD_MAP / the route's fields)",
    Cause.TYPE: "change the field's type back in Airtable, or change the mapping entry's type",
    Cause.SCHEMA: "grant the token schema.bases:read, or check Airtable's status",
    Cause.SECRET: "check the secret exists and the function may read it",
}


@dataclass(frozen=True)
class SystemicFailure:
    """One broken route: the cause, what Airtable or the check said, and the fix."""

    route: str
    cause: Cause
    detail: str
    fix: str = ""
    #: clock time it was first seen (kept across re-checks that still fail)
    since: float = 0.0

    def __post_init__(self) -> None:
        if not self.fix:
            object.__setattr__(self, "fix", FIXES[self.cause])

    def describe(self) -> str:
        return f'route "{self.route}": {self.detail}; fix: {self.fix}'


def cause_of_misfit(kinds: Collection[str]) -> Cause:
    """The cause a table that does not fit its mapping stands for, from the kinds of its
    problems (`schema.SchemaProblem.kind`): the table missing, else a field missing, else a
    type that does not fit."""
    if "table" in kinds:
        return Cause.TABLE
    return Cause.FIELD if "field" in kinds else Cause.TYPE


def failure_of(route: str, error: SinkConfigurationError, now: float = 0.0) -> SystemicFailure:
    """The systemic failure an Airtable refusal stands for."""
    if error.status == 401:
        cause = Cause.AUTH
    elif error.error_type == "UNKNOWN_FIELD_NAME":
        cause = Cause.FIELD
    else:
        cause = Cause.TABLE
    return SystemicFailure(route, cause, str(error), since=now)


class Breaker:
    """The routes found broken, kept for the container's life. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._open: dict[str, SystemicFailure] = {}
        self._lock = threading.Lock()

    def trip(self, failure: SystemicFailure) -> SystemicFailure:
        """Open (or keep open) the route's breaker; keeps the first `since`."""
        with self._lock:
            earlier = self._open.get(failure.route)
            since = earlier.since if earlier else (failure.since or self.clock())
            failure = replace(failure, since=since)
            self._open[failure.route] = failure
            return failure

    def clear(self, route: str) -> SystemicFailure | None:
        with self._lock:
            return self._open.pop(route, None)

    def open_failures(self) -> list[SystemicFailure]:
        with self._lock:
            return list(self._open.values())

    def is_open(self, route: str) -> bool:
        with self._lock:
            return route in self._open


Report = Callable[[SystemicFailure], None]


class RunGuard:
    """The `SystemicGuard` port for one run.

    `refresh_token()` re-reads the secret past its cache and says whether the token changed
    (and was installed). `recheck_field(route, error)` re-reads the route's schema after a
    request was rejected field by field, and returns the failure when the field's type no
    longer fits (None when the schema still fits: the records are poison then)."""

    def __init__(
        self,
        breaker: Breaker,
        *,
        refresh_token: Callable[[], bool],
        recheck_field: Callable[[str, RecordsRejectedError], SystemicFailure | None],
        report: Report,
    ) -> None:
        self.breaker = breaker
        self._refresh_token = refresh_token
        self._recheck_field = recheck_field
        self._report = report
        self._lock = threading.Lock()
        self._refreshed = False
        self._token_changed = False
        self._retries_left = MAX_RETRIES_AFTER_TOKEN_CHANGE
        self._fields_checked: dict[tuple[str, str], SystemicFailure | None] = {}

    def on_refused(self, route: str, error: SinkConfigurationError) -> bool:
        """True: the token was re-read and changed, retry the request. False: broken."""
        if error.status == 401 and self._token_was_renewed():
            return True
        self._trip(failure_of(route, error, self.breaker.clock()))
        return False

    def on_uniform_rejection(self, route: str, error: RecordsRejectedError) -> bool:
        """True: the rejection is the table's fault (a retyped field): release, don't
        dead-letter. Checked once per route and field per run."""
        key = (route, error.field or "")
        with self._lock:
            known = key in self._fields_checked
            failure = self._fields_checked.get(key)
        if not known:
            failure = self._recheck_field(route, error)
            with self._lock:
                self._fields_checked[key] = failure
        if failure is None:
            return False
        self._trip(failure)
        return True

    def _token_was_renewed(self) -> bool:
        with self._lock:
            if not self._refreshed:
                self._refreshed = True
                try:
                    self._token_changed = self._refresh_token()
                except Exception as exc:  # the secret itself is the problem now
                    log.warning("re-reading the token after a 401 failed: %s", exc)
                    self._token_changed = False
                if self._token_changed:
                    log.warning("Airtable refused the token (401); read a new one from the secret")
            if self._token_changed and self._retries_left > 0:
                self._retries_left -= 1
                return True
            return False

    def _trip(self, failure: SystemicFailure) -> None:
        first = not self.breaker.is_open(failure.route)
        failure = self.breaker.trip(failure)
        if first:
            self._report(failure)


Recheck = Callable[[SystemicFailure], SystemicFailure | None]


def recheck_open(breaker: Breaker, recheck: Recheck) -> list[SystemicFailure]:
    """Before a run receives: re-check every open cause; clear what is fixed and return what
    is still broken (the run must not receive while this is non-empty)."""
    still: list[SystemicFailure] = []
    for failure in breaker.open_failures():
        try:
            result = recheck(failure)
        except Exception as exc:  # a re-check that cannot run proves nothing: stay open
            log.warning("re-checking %s failed: %s", failure.describe(), exc)
            result = failure
        if result is None:
            breaker.clear(failure.route)
            log.warning(
                "systemic failure cleared; the route is written again",
                extra={"route": failure.route, "cleared_cause": str(failure.cause)},
            )
        else:
            still.append(breaker.trip(result))
    return still
