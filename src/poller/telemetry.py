"""The names of every metric the function emits, in one place.

The handler publishes them as CloudWatch Embedded Metric Format lines (Powertools `Metrics`,
namespace `NAMESPACE`, dimension `service`). The template's alarms and dashboard name the same
metrics; `tests/template` reads this module, so renaming a metric without updating the template
fails a test.
"""

from __future__ import annotations

NAMESPACE = "SqsAirtablePoller"

#: Counts per run (unit Count), from `RunSummary`.
RUN_COUNTS = {
    "Received": "received",
    "Written": "written",
    "Created": "created",
    "Updated": "updated",
    "Deleted": "deleted",
    "DeadLettered": "dead_lettered",
    "Released": "released",
    "Failed": "failed",
    "DeleteFailures": "delete_failures",
    "Throttled": "throttled",
    "RetryCount": "retries",
    "WriteRequests": "requests",
}
#: Milliseconds per request (up to 100 values per run).
BATCH_LATENCY = "BatchLatency"
#: Milliseconds the run took.
RUN_DURATION = "RunDuration"
#: 1 per run that stopped on (or was held back by) a systemic failure; also emitted with a
#: `Cause` dimension (auth, table, field, schema, secret, type).
SYSTEMIC_FAILURE = "SystemicFailure"
#: Requests/s the slowest base was paced at in the run (it widens after an unpredicted 429).
PACING_RATE = "PacingRate"
#: Emitted by Powertools on a cold start (`capture_cold_start_metric`).
COLD_START = "ColdStart"

METRIC_NAMES = frozenset(
    {*RUN_COUNTS, BATCH_LATENCY, RUN_DURATION, SYSTEMIC_FAILURE, PACING_RATE, COLD_START}
)
