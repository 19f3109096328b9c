"""The run's metrics as telemetry.publish builds them (Powertools' own serialization, no I/O)."""

from __future__ import annotations

import pytest
from aws_lambda_powertools import Metrics

from poller import telemetry
from poller.summary import RunSummary
from poller.systemic import Cause, SystemicFailure


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Metrics:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    published = Metrics(namespace="Test", service="svc")
    published.clear_metrics()
    return published


def systemic_value(metrics: Metrics) -> float:
    """The run's one SystemicFailure value (Powertools writes a metric's values as a list)."""
    value = metrics.serialize_metric_set()[telemetry.SYSTEMIC_FAILURE]
    [single] = value if isinstance(value, list) else [value]
    return single


@pytest.mark.parametrize(
    ("causes", "expected"),
    [
        ([], 0),
        ([Cause.CAPACITY], 0),
        ([Cause.BILLING], 1),
        ([Cause.CAPACITY, Cause.TOKEN], 1),
    ],
)
def test_systemic_failure_counts_what_needs_a_person_not_a_base_s_capacity(
    metrics, causes, expected
):
    # GIVEN a run held by failures of these causes
    failures = [SystemicFailure("default", cause, "seen") for cause in causes]
    # WHEN its metrics are published
    telemetry.publish(metrics, "svc", RunSummary(), failures)
    # THEN SystemicFailure (what the alarm reads) is 1 only for a cause someone must fix
    assert systemic_value(metrics) == expected


def test_each_write_request_s_latency_is_one_value(metrics):
    # GIVEN a run whose three write requests took 12, 30 and 7.5 ms
    summary = RunSummary(requests=3, batch_latency_ms=[12.0, 30.0, 7.5])
    # WHEN its metrics are published
    telemetry.publish(metrics, "svc", summary, [])
    # THEN BatchLatency holds the three values, in milliseconds
    document = metrics.serialize_metric_set()
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units[telemetry.BATCH_LATENCY] == "Milliseconds"
    assert document[telemetry.BATCH_LATENCY] == [12.0, 30.0, 7.5]
