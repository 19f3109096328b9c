"""Systemic failures: the ones that are not a record's fault, so no message pays for them.

The rule: a valid message reaches the dead-letter queue only when Airtable rejected that
record itself. Anything else holds the queue (or, within a run, that route) and is reported
with its cause and its fix: the `Cause` dimension of the `SystemicFailure` metric, the
`systemic_cause` of the log line that `poller status` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Cause(StrEnum):
    """Why a route cannot be written now."""

    SECRET = "secret"  #: the token's secret could not be read
    TOKEN = "token"  #: Airtable refuses the token (401), or it lacks a scope the run needs
    BASE_ACCESS = "base_access"  #: the base is not among those the token can reach
    PERMISSION = "permission"  #: the token may read the base but not write it
    TABLE = "table"  #: the table is not in the base
    FIELD = "field"  #: a mapped field is not in the table
    TYPE = "type"  #: a field's type no longer fits the mapping
    BILLING = "billing"  #: the workspace has used its monthly API calls
    BASE_FULL = "base_full"  #: the base is at its plan's record limit
    OUTAGE = "outage"  #: Airtable does not answer, or answers 5xx, to every request
    CAPACITY = "capacity"  #: the base is locked out or slowed, with no time left to write


#: What the operator should do, per cause.
FIXES: dict[Cause, str] = {
    Cause.SECRET: "check that the secret exists and that the function may read it",
    Cause.TOKEN: "put a valid token with the scopes data.records:read, data.records:write and "
    "schema.bases:read in the secret (AIRTABLE_TOKEN_SECRET_ARN) or AIRTABLE_TOKEN",
    Cause.BASE_ACCESS: "check the base id; if it is right, give the token access to the base "
    "again (airtable.com/create/tokens)",
    Cause.PERMISSION: "give the token's owner editor access to the base (the token may only "
    "read it now)",
    Cause.TABLE: "check the table name or id, or restore the table",
    Cause.FIELD: "restore the field in Airtable, or fix the mapping (FIELD_MAP / the route's fields)",
    Cause.TYPE: "change the field's type back in Airtable, or change the mapping entry's type",
    Cause.BILLING: "the workspace has used its monthly API calls: upgrade the plan or wait for "
    "the month to turn; writing resumes by itself",
    Cause.BASE_FULL: "the base is at its plan's record limit: delete records or upgrade the "
    "plan; writing resumes by itself",
    Cause.OUTAGE: "Airtable is not answering (status.airtable.com); writing resumes by itself",
    Cause.CAPACITY: "nothing: the backlog waits for the base's capacity; writing resumes by "
    "itself (the age alarm says when it waits too long)",
}


@dataclass(frozen=True)
class SystemicFailure:
    """One route that cannot be written: the cause, what was seen, and the fix."""

    route: str
    cause: Cause
    detail: str

    @property
    def fix(self) -> str:
        return FIXES[self.cause]

    def describe(self) -> str:
        return f'route "{self.route}": {self.detail}; fix: {self.fix}'

    @classmethod
    def of(cls, route: str, exc: Exception) -> SystemicFailure:
        """A request that failed for every record: what Airtable refused (its cause), else
        an outage."""
        return cls(route, getattr(exc, "cause", None) or Cause.OUTAGE, str(exc))
