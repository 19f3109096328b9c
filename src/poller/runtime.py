"""What one warm Lambda container keeps between runs (`Runtime`: the pyairtable `Api`, made
by the first run that finds messages waiting; one `Pacer` per base, its capacity loaded from
SSM on a cold start; what the preflight knows of each route; the queue adapter), and one run,
the same on a cold start and a warm one (docs/index.md, "One invocation")."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import mirror
from .airtable import AirtableTable, make_api
from .batching import KeyLocks
from .config import Config
from .credentials import TokenSource
from .directory import Directory, Table, scope
from .drain import Drain, Limits
from .errors import ConfigError, RecordsRejectedError, SinkError, TransientSinkError
from .model import Action, Message
from .paces import PaceStore
from .pacing import Deadline, Pacer
from .preflight import Checked, Preflight
from .routing import Route, Router
from .sqs import SqsQueue
from .summary import RunSummary
from .systemic import Cause, SystemicFailure
from .writer import Destination, Writer

if TYPE_CHECKING:
    from pyairtable import Api

log = logging.getLogger(__name__)

#: A run needs at least this long beyond its stop margin to check and write one request.
MIN_RUN_SECONDS = 5.0


@dataclass
class RunResult:
    summary: RunSummary
    failures: list[SystemicFailure] = field(default_factory=list)
    #: the DLQ that DEAD_LETTER_QUEUE_URL names does not exist
    dead_letter_queue_missing: bool = False
    #: Airtable requests of the run per base (the checks included; not whoami and bases)
    requests_by_base: dict[str, int] = field(default_factory=dict)
    #: this function's Airtable requests this month, all bases (None: the pace is not kept)
    this_month: int | None = None


class Runtime:
    @classmethod
    def on_aws(cls, config: Config) -> Runtime:
        """The container's runtime with boto3's clients (a read timeout above the long
        poll's, standard retries); logs the configuration's warnings once."""
        import boto3
        from botocore.config import Config as BotoConfig

        boto = BotoConfig(
            connect_timeout=3,
            read_timeout=config.wait_time_seconds + 10,
            retries={"mode": "standard"},
        )
        for warning in config.warnings:
            log.warning(warning)
        return cls(
            config,
            sqs=boto3.client("sqs", config=boto),
            ssm=boto3.client("ssm", config=boto) if config.pace_parameter_prefix else None,
            s3=lambda: boto3.client("s3", config=boto),
        )

    def __init__(
        self,
        config: Config,
        *,
        sqs: Any,
        ssm: Any = None,
        s3: Callable[[], Any] | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens or TokenSource(token=config.token, secret_arn=config.token_secret_arn)
        self.tokens.current()  # an empty secret is said at once, even while the queue is empty
        self.paces = PaceStore(ssm, config.pace_parameter_prefix)
        self.pacers = {base: Pacer(self.paces.load(base, config.base_rps)) for base in config.bases}
        self.queue = SqsQueue(sqs, config.queue_url, config.dead_letter_queue_url, s3=s3)
        #: the rows this container knows: record ids and stored versions, per table and key
        self.directory = Directory()
        #: the summary the current run is filling (for a progress display; read-only)
        self.live_summary: RunSummary | None = None

    @functools.cached_property
    def api(self) -> Api:
        """The pyairtable `Api`, made when a run first finds messages waiting."""
        config = self.config
        return make_api(
            token=self.tokens.current(), api_url=config.api_url, timeout=config.timeout_seconds
        )

    @functools.cached_property
    def preflight(self) -> Preflight:
        """The checks, with what they know of each route for the container's life."""
        return Preflight(self.api, self.tokens, self.pacers, typecast=self.config.typecast)

    def run(self, remaining_ms: Callable[[], int]) -> RunResult:
        before = {base: pacer.requests for base, pacer in self.pacers.items()}
        result = self._run(remaining_ms)
        result.requests_by_base = {
            base: pacer.requests - before[base]
            for base, pacer in self.pacers.items()
            if pacer.requests > before[base]
        }
        if self.config.pace_parameter_prefix:
            result.this_month = sum(pacer.capacity.requests for pacer in self.pacers.values())
        return result

    def _run(self, remaining_ms: Callable[[], int]) -> RunResult:
        config = self.config
        if remaining_ms() / 1000 < config.stop_margin + MIN_RUN_SECONDS:
            raise ConfigError(
                "Timeout",
                f"(the function's, {remaining_ms() / 1000:.0f} s left at the start) is too short: a run "
                f"keeps {config.stop_margin:.0f} s free at its end (WAIT_TIME_SECONDS + "
                f"AIRTABLE_TIMEOUT_SECONDS + 2) and needs {MIN_RUN_SECONDS:.0f} s more to write; raise "
                "the template's Timeout",
            )
        deadline = Deadline(remaining_ms, config.stop_margin)
        facts = self.queue.facts()
        missing_dlq = not self.queue.dead_letter_queue_exists()
        if facts.idle:
            return RunResult(RunSummary(), dead_letter_queue_missing=missing_dlq)
        checked = self.preflight.check(config.routes, deadline)
        summary = self.live_summary = RunSummary(airtable_requests=checked.requests)
        if checked.failures:
            # a base locked out past the run's time waits, like a backlog: not a failure
            waiting = all(f.cause is Cause.CAPACITY for f in checked.failures)
            summary.stopped_because = "deadline" if waiting else "systemic"
            summary.stopped_routes = {f.route: f.describe() for f in checked.failures}
            summary.error = "; ".join(summary.stopped_routes.values())
            self._keep()
            return RunResult(summary, checked.failures, missing_dlq)
        self.directory.start_run()
        locks = KeyLocks()
        drain = Drain(
            self.queue,
            Router(tuple(r.route for r in checked.ready.values()), config.envelope),
            self._destinations(checked, deadline, locks),
            deadline,
            self._writer(deadline, checked, facts.max_receive_count),
            limits=Limits(
                wait_time_seconds=config.wait_time_seconds,
                in_flight=config.in_flight,
                fifo=config.is_fifo,
            ),
            max_receive_count=facts.max_receive_count,
            summary=summary,
            locks=locks,
        )
        summary = drain.run()
        for route in drain.wrote:
            self.preflight.wrote(route, checked)
        self._keep()
        missing_dlq = missing_dlq or drain.settler.dead_letter_queue_missing
        return RunResult(summary, list(drain.closed.values()), missing_dlq)

    def _destinations(
        self, checked: Checked, deadline: Deadline, locks: KeyLocks
    ) -> dict[str, Destination]:
        """Each route's table and pacer, and for a route that reads before it writes
        (versions, deletes, links) its `Mirror`, over every table of its base."""
        tables: dict[str, Table] = {}
        for ready in checked.ready.values():
            route, fit = ready.route, ready.fit
            version = route.field_map.spec(route.version[1]) if route.version else None
            tables[scope(fit.table_id, route.merge_on)] = _table(
                ready.table, fit.fields, version.field_id if version else None, route.table
            )
            for field_id, table_id, key in fit.links:
                entry = route.field_map.spec(field_id)
                key_id = str(key["id"])
                stub = AirtableTable(self.api.table(route.base_id, table_id), [key_id])
                name = entry.options.table if entry else ""
                tables.setdefault(scope(table_id, [key_id]), _table(stub, [key], name=name))
        out = {}
        for name, ready in checked.ready.items():
            route, fit, pacer = ready.route, ready.fit, self.pacers[ready.route.base_id]
            own = scope(fit.table_id, route.merge_on)
            links = tuple(
                (link_id, scope(table_id, [str(key["id"])]), _if_missing(route, link_id))
                for link_id, table_id, key in fit.links
            )
            needed = route.version is not None or route.action is Action.DELETE or links
            route_mirror = None
            if needed:
                resolver = mirror.Resolver(self.directory, locks, tables, pacer, deadline)
                route_mirror = mirror.Mirror(resolver, own, route.version is not None, links)
            out[name] = Destination(name, ready.table, pacer, route_mirror, own)
        return out

    def _writer(
        self, deadline: Deadline, checked: Checked, max_receive_count: int | None
    ) -> Writer:
        config = self.config
        threshold = config.dead_letter_after_receives
        if threshold and max_receive_count:
            threshold = min(threshold, max_receive_count)
        rechecked: dict[tuple[str, str], SystemicFailure | None] = {}

        def suspect(message: Message, error: SinkError) -> bool:
            """Failed on enough receives to be dead-lettered with its last error, before the
            queue's redrive policy would move it without one."""
            return bool(
                threshold
                and isinstance(error, TransientSinkError)
                and message.receive_count >= threshold
                and self.queue.has_dead_letter_queue
            )

        def recheck(route: str, error: RecordsRejectedError) -> SystemicFailure | None:
            key = (route, error.field or "")
            if key not in rechecked:  # once per route and field per run
                rechecked[key] = self.preflight.recheck(checked.ready[route].route, error, deadline)
            return rechecked[key]

        return Writer(
            deadline,
            max_attempts=config.max_attempts,
            suspect=suspect,
            refresh_token=self.preflight.refresh_token,
            recheck=recheck,
        )

    def _keep(self) -> None:
        for base, pacer in self.pacers.items():
            self.paces.save(base, pacer.capacity)


def _table(
    sink: AirtableTable,
    fields: Sequence[Mapping[str, Any]],
    version_id: str | None = None,
    name: str = "",
) -> Table:
    """The table a `Mirror` reads: `sink` with its merge key, and the `fields` it knows."""
    names = {str(f["id"]): str(f.get("name")) for f in fields}
    types = {str(f["id"]): str(f.get("type")) for f in fields}
    return Table(sink, tuple(sink.merge_on), names, types, version_id, name)


def _if_missing(route: Route, link_id: str) -> str:
    spec = route.field_map.spec(link_id)
    return spec.options.if_missing if spec else "create"
