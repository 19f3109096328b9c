"""The checks before every run, the same on a cold start and a warm one: prove that each
route can be written before anything is received (docs/field-mapping.md says what is checked,
docs/guarantees.md why). In order, each telling one cause from the next (Airtable's API
reference):

1. the token: read from its secret; `GET /v0/meta/whoami` answers 401 for a bad token and
   lists a personal access token's scopes, which must hold `REQUIRED_SCOPES`;
2. the bases: `GET /v0/meta/bases` lists each base the token reaches with its
   `permissionLevel`: a base missing from it is out of reach (or its id is wrong), a level
   not in `WRITE_LEVELS` cannot write;
3. each base's schema (`GET /v0/meta/bases/{id}/tables`, one request of the base's pace): a
   403 here, for a token that has the schema scope, is lost access;
4. one data request per base (the first record of a route's table, one field): it fails
   while the monthly quota is used up (429 `PUBLIC_API_BILLING_LIMIT_EXCEEDED`) or Airtable
   is down, when the meta endpoints may still answer.

Cost: 2 requests, plus 2 per base, per run that finds messages waiting.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .airtable import AirtableTable, answers
from .credentials import SecretUnavailableError, TokenSource
from .errors import (
    OutOfTimeError,
    RecordsRejectedError,
    SinkError,
    SystemicSinkError,
    ThrottledError,
    TransientSinkError,
)
from .pacing import Deadline, Pacer
from .routing import Route
from .schema import Fit, find, fit, resolve
from .systemic import Cause, SystemicFailure

if TYPE_CHECKING:
    from pyairtable import Api

log = logging.getLogger(__name__)

REQUIRED_SCOPES = ("data.records:read", "data.records:write", "schema.bases:read")
WRITE_LEVELS = ("edit", "create")


@dataclass
class Known:
    """What a container knows of one route between runs: the ids its table and targets
    resolved to (so a rename is no failure), the field types of the last run that wrote to
    it, and a field found retyped under it (held until the type is back)."""

    ids: dict[str, str] = field(default_factory=dict)
    good_types: dict[str, str] = field(default_factory=dict)
    drift: dict[str, str] = field(default_factory=dict)  # field id -> the type it must have


@dataclass(frozen=True)
class Ready:
    """A route that may be written: resolved to field ids, with its table and how it fits."""

    route: Route
    table: AirtableTable
    fit: Fit


@dataclass
class Checked:
    """The outcome of one preflight: the routes that may be written, by name, the failures,
    and the Airtable requests it made."""

    ready: dict[str, Ready] = field(default_factory=dict)
    failures: list[SystemicFailure] = field(default_factory=list)
    requests: int = 0

    def fail(self, routes: Sequence[Route], cause: Cause, detail: str) -> None:
        self.failures += [SystemicFailure(r.name, cause, detail) for r in routes]


class Preflight:
    def __init__(
        self, api: Api, tokens: TokenSource, pacers: Mapping[str, Pacer], *, typecast: bool = False
    ):
        self.api = api
        self.tokens = tokens
        self.pacers = pacers
        self.typecast = typecast
        self.known: defaultdict[str, Known] = defaultdict(Known)

    def check(self, routes: Sequence[Route], deadline: Deadline) -> Checked:
        result = Checked()
        problem = self._token(result)
        if problem is not None:
            result.fail(routes, *problem)
            return result
        levels: dict[str, str] = {}
        try:
            with answers():
                for page in self.api.iterate_requests("GET", self.api.urls.bases):
                    result.requests += 1
                    for base in page.get("bases", []):
                        levels[str(base.get("id"))] = str(base.get("permissionLevel", ""))
        except SinkError as exc:
            result.fail(routes, _cause(exc, Cause.TOKEN), str(exc))
            return result
        for base_id in dict.fromkeys(r.base_id for r in routes):
            mine = [r for r in routes if r.base_id == base_id]
            level = levels.get(base_id)
            if level is None:
                result.fail(
                    mine,
                    Cause.BASE_ACCESS,
                    f"base {base_id} is not among the bases the token can reach",
                )
            elif level not in WRITE_LEVELS:
                result.fail(
                    mine,
                    Cause.PERMISSION,
                    f"the token may only {level} base {base_id}, not write it",
                )
            else:
                self._base(base_id, mine, result, deadline)
        return result

    def refresh_token(self) -> bool:
        """Re-read the secret; install the token if it changed (a 401 in the middle of a run)."""
        token, changed = self.tokens.refresh()
        if changed:
            self.api.api_key = token
        return changed

    # -- 1. the token ---------------------------------------------------------------------
    def _token(self, result: Checked) -> tuple[Cause, str] | None:
        try:
            self.refresh_token()
        except SecretUnavailableError as exc:
            return Cause.SECRET, str(exc)
        result.requests += 1
        try:
            whoami = self._get(self.api.urls.whoami)
        except SinkError as exc:
            if exc.status != 401:
                return _cause(exc, Cause.TOKEN), str(exc)
            if self.refresh_token():
                return self._token(result)
            return Cause.TOKEN, "Airtable refuses the token (401)"
        scopes = whoami.get("scopes") if isinstance(whoami, dict) else None
        if isinstance(scopes, list):  # an OAuth token's answer has no scopes
            missing = [s for s in REQUIRED_SCOPES if s not in scopes]
            if missing:
                return Cause.TOKEN, f"the token lacks the scope(s) {', '.join(missing)}"
        return None

    # -- 3 and 4. each base ---------------------------------------------------------------
    def _base(self, base_id: str, routes: list[Route], result: Checked, deadline: Deadline) -> None:
        pacer = self.pacers[base_id]
        try:
            schema = self._paced_get(self.api.base(base_id).urls.tables, result, pacer, deadline)
        except SinkError as exc:
            cause = Cause.BASE_ACCESS if exc.status in (403, 404) else _cause(exc, Cause.OUTAGE)
            result.fail(routes, cause, str(exc))
            return
        fitted: list[Route] = []
        for route in routes:
            known = self.known[route.name]
            found = fit(schema, route, known.ids, self.typecast)
            failure = self._judge(route, found, known)
            if failure is not None:
                result.failures.append(failure)
                continue
            known.ids = {"": found.table_id, **found.field_ids, **found.link_ids}
            resolved = route.resolved(found.field_ids, found.fields)
            table = self.api.table(base_id, found.table_id)
            sink = AirtableTable(table, resolved.merge_on, typecast=self.typecast)
            result.ready[route.name] = Ready(resolved, sink, found)
            fitted.append(resolved)
        if fitted:
            self._read_one(fitted, result, pacer, deadline)

    def _judge(self, route: Route, found: Fit, known: Known) -> SystemicFailure | None:
        if found.problems:
            kinds = {p.kind for p in found.problems}  # a merge problem counts as a type one
            cause = (
                Cause.TABLE if "table" in kinds else Cause.FIELD if "field" in kinds else Cause.TYPE
            )
            return SystemicFailure(route.name, cause, "; ".join(p.problem for p in found.problems))
        for field_id, wanted in list(known.drift.items()):
            failure = _changed(route, field_id, find(found.fields, field_id), wanted)
            if failure is not None:
                return failure
            del known.drift[field_id]
        return None

    def _read_one(
        self, routes: list[Route], result: Checked, pacer: Pacer, deadline: Deadline
    ) -> None:
        """One data request of the base: the first record of a route's table, one field."""
        first = result.ready[routes[0].name]
        table = first.table.table
        field_id = next(iter(first.fit.field_ids.values()), None)
        params = {"maxRecords": 1, "pageSize": 1, "returnFieldsByFieldId": "true"}
        if field_id:
            params["fields[]"] = field_id
        try:
            self._paced_get(table.urls.records, result, pacer, deadline, params)
        except SinkError as exc:
            for route in routes:
                del result.ready[route.name]
            result.fail(routes, _cause(exc, Cause.OUTAGE), str(exc))

    def recheck(
        self, route: Route, error: RecordsRejectedError, deadline: Deadline
    ) -> SystemicFailure | None:
        """Every record of a request was rejected alike on one field: has the field changed
        under the route since records were last written? The answer is remembered (the
        preflight holds the route until the type is back)."""
        known = self.known[route.name]
        try:
            schema = self._paced_get(
                self.api.base(route.base_id).urls.tables,
                Checked(),
                self.pacers[route.base_id],
                deadline,
            )
        except SinkError:
            return None
        found = fit(schema, route, known.ids)
        named = error.field or ""
        now = resolve(found.fields, known.ids.get(named), named)
        if now is None:
            spec = route.field_map.spec(named)  # a record names its fields by id
            return _changed(route, spec.field if spec else named, None, "")
        was = known.good_types.get(str(now["id"]))
        failure = _changed(route, named, now, was) if was else None
        if failure is not None:
            known.drift[str(now["id"])] = was
        return failure

    def wrote(self, route_name: str, checked: Checked) -> None:
        """The run wrote records of this route: its field types are known good."""
        ready = checked.ready.get(route_name)
        if ready is not None:
            self.known[route_name].good_types = {
                str(f["id"]): str(f.get("type")) for f in ready.fit.fields
            }

    def _get(self, url: Any, params: dict[str, Any] | None = None) -> Any:
        with answers():
            return self.api.request("GET", str(url), params=params)

    def _paced_get(
        self,
        url: Any,
        result: Checked,
        pacer: Pacer,
        deadline: Deadline,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One GET of one base, through its pacer: a lockout (429 RATE_LIMIT_REACHED) is
        waited out while the run has time, else `OutOfTimeError`."""

        def get() -> Any:
            result.requests += 1
            return self._get(url, params)

        while True:
            try:
                return pacer.call(pacer.reserve(), deadline, get)
            except ThrottledError:
                continue  # the next send waits the lockout out


def _changed(
    route: Route, name: str, now: Mapping[str, Any] | None, was: str
) -> SystemicFailure | None:
    """The failure of a field changed under `route` since records were last written: gone
    (`now` None; `name` says which field), or of another type than `was` (`now` is its
    schema entry); None if it is still of type `was`."""
    if now is None:
        return SystemicFailure(route.name, Cause.FIELD, f'field "{name}" is no longer in the table')
    if now.get("type") == was:
        return None
    detail = (
        f'field "{now.get("name")}" is now {now.get("type")}; it was {was} when records were '
        "last written"
    )
    return SystemicFailure(route.name, Cause.TYPE, detail)


def _cause(exc: SinkError, default: Cause) -> Cause:
    if isinstance(exc, SystemicSinkError):
        return exc.cause
    if isinstance(exc, OutOfTimeError):
        return Cause.CAPACITY
    return Cause.OUTAGE if isinstance(exc, TransientSinkError) else default
