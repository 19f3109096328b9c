"""The metrics the function emits, named once, and their publishing: CloudWatch Embedded
Metric Format lines (Powertools `Metrics`, namespace `NAMESPACE`, dimension `service`). The
template's alarms and dashboard name the same metrics; `tests/template` reads this module."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from .summary import RunSummary
from .systemic import Cause, SystemicFailure

NAMESPACE = "SqsAirtablePoller"

#: Counts per run (unit Count), from `RunSummary`.
RUN_COUNTS = {
    "Received": "received",
    "Written": "written",
    "Created": "created",
    "Updated": "updated",
    "Stale": "stale",
    "Deleted": "deleted",
    "DeadLettered": "dead_lettered",
    "Released": "released",
    "Requeued": "requeued",
    "Failed": "failed",
    "DeleteFailures": "delete_failures",
    "Throttled": "throttled",
    "RetryCount": "retries",
    "WriteRequests": "requests",
}
BATCH_LATENCY = "BatchLatency"
RUN_DURATION = "RunDuration"
#: 1 per run held or stopped by a systemic failure, else 0; also with a `Cause` dimension.
SYSTEMIC_FAILURE = "SystemicFailure"
#: Requests/s the slowest base was paced at (the learned capacity, less the guard).
PACING_RATE = "PacingRate"
#: Airtable requests of the run, per base (dimension `Base`), the checks included.
AIRTABLE_REQUESTS = "AirtableRequests"
#: This function's Airtable requests this month (UTC), all bases together, as kept in SSM.
REQUESTS_THIS_MONTH = "AirtableRequestsThisMonth"
COLD_START = "ColdStart"

METRIC_NAMES = frozenset(
    {
        *RUN_COUNTS,
        BATCH_LATENCY,
        RUN_DURATION,
        SYSTEMIC_FAILURE,
        PACING_RATE,
        AIRTABLE_REQUESTS,
        REQUESTS_THIS_MONTH,
        COLD_START,
    }
)


def log_metrics(metrics: Metrics) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Powertools' `log_metrics` (EMF flushed after each run, the cold-start metric on the
    first), unless POWERTOOLS_METRICS_DISABLED is true: then nothing is printed (Powertools
    would still print its cold-start metric and warn of an empty flush)."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapped(event: Any, context: Any) -> Any:
            if is_metrics_disabled():
                return handler(event, context)
            return metrics.log_metrics(handler, capture_cold_start_metric=True)(event, context)

        return wrapped

    return decorate


def report(logger: Logger, failures: list[SystemicFailure]) -> None:
    """The line an operator (and `poller status`) reads for each failure: the cause, what
    was seen, the fix. A base's capacity needs no one (the backlog waits): a warning."""
    for failure in failures:
        log = logger.warning if failure.cause is Cause.CAPACITY else logger.error
        log(
            f"systemic failure: {failure.describe()}",
            extra={
                "systemic_cause": str(failure.cause),
                "route": failure.route,
                "detail": failure.detail,
                "fix": failure.fix,
            },
        )


def publish(
    metrics: Metrics,
    service: str,
    summary: RunSummary | None,
    failures: list[SystemicFailure],
    requests_by_base: Mapping[str, int] = {},
    this_month: int | None = None,
) -> None:
    """One run's metrics; `summary` None for a run that stopped before it had one."""
    if is_metrics_disabled():
        return
    namespace = metrics.namespace or NAMESPACE
    if summary is not None:
        for name, attribute in RUN_COUNTS.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(summary, attribute))
        for latency in summary.batch_latency_ms[:100]:  # EMF takes at most 100 values per metric
            metrics.add_metric(
                name=BATCH_LATENCY, unit=MetricUnit.Milliseconds, value=round(latency, 1)
            )
        metrics.add_metric(
            name=RUN_DURATION, unit=MetricUnit.Milliseconds, value=summary.elapsed_ms
        )
        if summary.pacing_rps:
            metrics.add_metric(
                name=PACING_RATE, unit=MetricUnit.CountPerSecond, value=round(summary.pacing_rps, 2)
            )
    if this_month is not None:
        metrics.add_metric(name=REQUESTS_THIS_MONTH, unit=MetricUnit.Count, value=this_month)
    failures = [f for f in failures if f.cause is not Cause.CAPACITY]  # the age alarm's, not this
    metrics.add_metric(name=SYSTEMIC_FAILURE, unit=MetricUnit.Count, value=1 if failures else 0)
    dimensioned = [
        ("Cause", str(c), SYSTEMIC_FAILURE, 1) for c in sorted({f.cause for f in failures})
    ]
    dimensioned += [("Base", base, AIRTABLE_REQUESTS, n) for base, n in requests_by_base.items()]
    for dimension, value, name, count in dimensioned:
        with single_metric(
            name=name, unit=MetricUnit.Count, value=count, namespace=namespace
        ) as metric:
            metric.add_dimension(name="service", value=service)
            metric.add_dimension(name=dimension, value=value)
