"""Lambda entry point. It only wires: config -> the container's runtime (built once, checked
before every run) -> the drain core -> metrics and the summary."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from . import logs, telemetry
from .config import Config
from .credentials import SecretUnavailableError, TokenNotConfiguredError, TokenSource
from .drain import Drain, RunSummary, Settings
from .errors import ConfigError, ConfigErrors, RunFailedError
from .policies import Deadline
from .schema import SchemaMismatchError, SchemaProblem, SchemaUnavailableError
from .systemic import Cause, SystemicFailure, cause_of_misfit

SERVICE = "sqs-airtable-poller"
NAMESPACE = telemetry.NAMESPACE

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics()
log = logging.getLogger(__name__)


@functools.cache
def _route_core_logs() -> None:
    """Send the core's stdlib loggers (`poller.*`, children of `poller`) through the
    Powertools JSON formatter, so that every line carries the request id; and install the
    logging policy (`poller.logs`) before anything is logged, config errors included."""
    logging.getLogger("poller")
    copy_config_to_registered_loggers(source_logger=logger, include={"poller"})
    logs.install(logger)


def _log_metrics(handler: Callable[..., dict[str, object]]) -> Callable[..., dict[str, object]]:
    """Powertools' `log_metrics` (EMF flushed after each run, cold-start metric on the first),
    unless POWERTOOLS_METRICS_DISABLED is true: then nothing at all is printed.

    Powertools 3.x checks that variable only in `flush_metrics`: its cold-start metric goes
    through `single_metric`, which prints regardless, and a flush with no metrics (a run that
    stopped before publishing any) warns "No application metrics to publish". So the decorator
    is applied per call, only while metrics are enabled."""

    @functools.wraps(handler)
    def wrapped(event: Mapping[str, Any], context: Any) -> dict[str, object]:
        if is_metrics_disabled():
            return handler(event, context)
        return metrics.log_metrics(handler, capture_cold_start_metric=True)(event, context)

    return wrapped


@dataclass(frozen=True)
class _Container:
    """What a warm container keeps between runs (see `runtime.Runtime`)."""

    sqs: Any
    runtime: Any  # runtime.Runtime (imported lazily: it imports pyairtable)


@functools.lru_cache(maxsize=4)
def _container(config: Config) -> _Container:
    """Built once per container and reused while warm. Not cached when it raises, so a cold
    start that met a systemic failure is simply tried again, from the secret on, next run.

    Reads the token (never logged), then runs the schema check of every route before any
    receive: a table that does not fit its mapping stops the run with one error listing
    every problem of every route (SCHEMA_CHECK, docs "The schema check")."""
    import boto3
    from botocore.config import Config as BotoConfig

    from .runtime import Runtime

    sqs = boto3.client(
        "sqs",
        config=BotoConfig(
            connect_timeout=3,
            read_timeout=config.tuning.wait_time_seconds + 10,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )
    tokens = TokenSource(token=config.token, secret_arn=config.token_secret_arn)
    runtime = Runtime(config, tokens)
    runtime.check_all_at_start()
    for warning in config.warnings():
        log.warning(warning)
    return _Container(sqs, runtime)


class _Run:
    """What one invocation reports: the systemic failures it met, each logged once with its
    cause and fix (the line `poller status` shows), and counted as a metric."""

    def __init__(self) -> None:
        self.failures: list[SystemicFailure] = []

    def report(self, failure: SystemicFailure) -> None:
        self.failures.append(failure)
        logger.error(
            f"systemic failure: {failure.describe()}",
            extra={
                "systemic_cause": str(failure.cause),
                "route": failure.route,
                "detail": failure.detail,
                "fix": failure.fix,
            },
        )


def run(config: Config, remaining_ms: Callable[[], int], report: _Run | None = None) -> RunSummary:
    """One drain of the queue with the container's runtime."""
    from .sqs import SqsQueue

    report = report or _Run()
    container = _container(config)
    runtime = container.runtime
    broken = runtime.precheck()
    if broken:
        for failure in broken:
            report.report(failure)
        return RunSummary(
            stopped_because="systemic",
            error="; ".join(f.describe() for f in broken),
            stopped_routes={f.route: f.describe() for f in broken},
        )
    tuning = config.tuning
    drain = Drain(
        queue=SqsQueue(container.sqs, config.queue_url, config.dead_letter_queue_url),
        destinations=runtime.destinations(),
        mapper=runtime.router(),
        deadline=Deadline(remaining_ms, tuning.stop_margin),
        settings=Settings(
            wait_time_seconds=tuning.wait_time_seconds,
            max_in_flight=1 if config.is_fifo else tuning.max_in_flight,
            max_attempts=tuning.max_attempts,
            dead_letter_after_receives=tuning.dead_letter_after_receives,
            batch_linger_seconds=tuning.batch_linger_seconds,
            max_buffered=tuning.max_buffered_messages,
            lockout_seconds=tuning.lockout_seconds,
            fifo=config.is_fifo,
        ),
        guard=runtime.guard(report.report),
    )
    summary = drain.run()
    # A route the guard diagnosed is described by its diagnosis, not by Airtable's bare 422.
    for failure in runtime.breaker.open_failures():
        if failure.route in summary.stopped_routes:
            summary.stopped_routes[failure.route] = failure.describe()
    if summary.stopped_because == "systemic":
        summary.error = "; ".join(summary.stopped_routes.values())
    return summary


def cold_start_failure(exc: Exception) -> SystemicFailure | None:
    """The systemic failure a cold start's error stands for (None: not systemic)."""
    if isinstance(exc, SecretUnavailableError):
        return SystemicFailure("*", Cause.SECRET, str(exc))
    if isinstance(exc, SchemaUnavailableError):
        return SystemicFailure("*", Cause.SCHEMA, str(exc))
    if isinstance(exc, SchemaMismatchError):
        cause = cause_of_misfit({p.kind for p in exc.errors if isinstance(p, SchemaProblem)})
        return SystemicFailure("*", cause, "; ".join(e.problem for e in exc.errors))
    if isinstance(exc, ConfigErrors) and exc.errors:
        refused = _REFUSED_AT_START.get(exc.errors[0].variable)
        if refused is not None:
            return SystemicFailure("*", refused, str(exc.errors[0]))
    return None


#: What the schema check's refusals at cold start (`schema._REFUSED`: 401, 403, 404) stand for,
#: by the variable they name.
_REFUSED_AT_START = {
    "AIRTABLE_TOKEN": Cause.AUTH,
    "AIRTABLE_BASE_ID": Cause.TABLE,
    "SCHEMA_CHECK": Cause.SCHEMA,
}


def _publish(summary: RunSummary, failures: list[SystemicFailure]) -> None:
    if is_metrics_disabled():  # Powertools keeps them, and prints once a metric has 100 values
        return
    for name, attribute in telemetry.RUN_COUNTS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(summary, attribute))
    for latency in summary.batch_latency_ms[:100]:  # EMF takes at most 100 values per metric
        metrics.add_metric(
            name=telemetry.BATCH_LATENCY, unit=MetricUnit.Milliseconds, value=round(latency, 1)
        )
    metrics.add_metric(
        name=telemetry.RUN_DURATION, unit=MetricUnit.Milliseconds, value=summary.elapsed_ms
    )
    if summary.pacing_rps:
        metrics.add_metric(
            name=telemetry.PACING_RATE, unit=MetricUnit.CountPerSecond, value=summary.pacing_rps
        )
    _publish_systemic(failures)


def _publish_systemic(failures: list[SystemicFailure]) -> None:
    """`SystemicFailure` 1 per run that met one (the alarm's metric), and per cause."""
    if is_metrics_disabled():
        return
    metrics.add_metric(
        name=telemetry.SYSTEMIC_FAILURE, unit=MetricUnit.Count, value=1 if failures else 0
    )
    if not failures:
        return
    for cause in sorted({str(f.cause) for f in failures}):
        with single_metric(
            name=telemetry.SYSTEMIC_FAILURE,
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace or NAMESPACE,
        ) as metric:
            metric.add_dimension(name="service", value=logger.service)
            metric.add_dimension(name="Cause", value=cause)


def load_config(env: Mapping[str, str] | None = None) -> Config:
    try:
        return Config.from_env(os.environ if env is None else env)
    except ConfigErrors as exc:
        logger.error(
            "configuration is invalid; no message was touched",
            extra={"problems": [str(e) for e in exc.errors]},
        )
        raise


def _not_configured(message: str) -> dict[str, object]:
    """The secret holds no token yet (a fresh deploy): say so once, succeed, touch nothing."""
    logger.warning(message)
    return {**RunSummary(stopped_because="not_configured").to_dict(), "error": message}


@logger.inject_lambda_context(clear_state=True)
@_log_metrics
def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, object]:
    """Drain the queue until it is empty or the Lambda is close to its time limit."""
    _route_core_logs()
    metrics.namespace = metrics.namespace or NAMESPACE
    config = load_config()
    logs.install(logger, wire_debug=config.wire_debug, secrets=(config.token,))
    this_run = _Run()
    try:
        summary = run(config, context.get_remaining_time_in_millis, this_run)
    except TokenNotConfiguredError as exc:
        _publish_systemic(
            []
        )  # a data point for the dashboard, and nothing for Powertools to warn about
        return _not_configured(str(exc))
    except (ConfigError, ConfigErrors, SchemaUnavailableError, SecretUnavailableError) as exc:
        failure = cold_start_failure(exc)
        if failure is not None:
            this_run.report(failure)
            _publish_systemic(this_run.failures)
        raise
    _publish(summary, this_run.failures)
    result = summary.to_dict()
    if summary.stopped_because in ("error", "systemic"):
        logger.error("run stopped on an error", extra={"summary": result})
        raise RunFailedError(f"run stopped: {summary.error}", result)
    logger.info("run finished", extra={"summary": result})
    return result
