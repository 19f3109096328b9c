"""What a run leaves behind for the operator: structured JSON logs and CloudWatch EMF metrics.

A full run (valid donations, poison, an Airtable rejection) at DEBUG level is captured once
per test; the tests read its log lines and its EMF document."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from devstack import LambdaContext, donation
from devstack.feeder import as_bodies
from devstack.stack import BASE_ID, TOKEN, LocalStack, default_emulator_config
from harness import LOCKOUT_SECONDS, pacers_with_lockout

from poller import runtime
from poller_ops.samples import SCHEDULED_EVENT

#: The metrics every run publishes (EMF, namespace SqsAirtablePoller), in one document.
REQUIRED_METRICS = {
    "Received",
    "Written",
    "Created",
    "Updated",
    "Deleted",
    "DeadLettered",
    "Released",
    "Requeued",
    "Failed",
    "DeleteFailures",
    "Throttled",
    "RetryCount",
    "WriteRequests",
    "RunDuration",
    "PacingRate",
    "SystemicFailure",
}
POISON = [
    "not json at all",
    json.dumps(donation(900_001, DonationAmount="twenty", DonorDisplayName="Poison Person")),
]
VALID = [donation(n) for n in range(12)]


@dataclass
class Run:
    request_id: str
    stack: LocalStack
    summary: dict[str, Any]
    logs: list[dict[str, Any]]
    raw_logs: str
    emf: list[dict[str, Any]]
    records: list[logging.LogRecord]


class _Records(logging.Handler):
    """Every log record of every logger (the libraries' too), for the token check."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def full_run(sqs_endpoint: str) -> Iterator[Run]:
    """One cold run at DEBUG with metrics on, shared by this module's tests (it takes a few
    seconds). Logs are read from the handler's own stream, metrics from stdout."""
    from poller import handler

    config = default_emulator_config(lockout_seconds=LOCKOUT_SECONDS)
    with LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config) as stack:
        with pytest.MonkeyPatch.context() as monkeypatch:
            for name, value in stack.poller_env(POWERTOOLS_METRICS_DISABLED="false").items():
                monkeypatch.setenv(name, value)
            monkeypatch.setattr(runtime, "Pacer", pacers_with_lockout(LOCKOUT_SECONDS))
            stack.send_messages(as_bodies(VALID[:6]) + POISON + as_bodies(VALID[6:]))
            buffer, stdout, records = io.StringIO(), io.StringIO(), _Records()
            stream_handler = handler.logger.registered_handler
            root, core = logging.getLogger(), logging.getLogger("poller")
            saved = (stream_handler.stream, handler.logger.log_level, core.level, root.level)
            stream_handler.stream = buffer  # assigned: setStream would flush the old stream
            handler.logger.setLevel("DEBUG")
            core.setLevel(logging.DEBUG)
            root.setLevel(logging.DEBUG)
            root.addHandler(records)
            context = LambdaContext(timeout_ms=60_000)
            # Runs with POWERTOOLS_METRICS_DISABLED (other tests) leave their metrics in the
            # module-level Metrics; a Lambda container never switches, so start clean.
            handler.metrics.clear_metrics()
            try:
                with contextlib.redirect_stdout(stdout):
                    summary = handler.lambda_handler(SCHEDULED_EVENT, context)
            finally:
                root.removeHandler(records)
                stream_handler.stream = saved[0]
                handler.logger.setLevel(saved[1])
                core.setLevel(saved[2])
                root.setLevel(saved[3])
        raw = buffer.getvalue()
        yield Run(
            request_id=context.aws_request_id,
            stack=stack,
            summary=summary,
            logs=[json.loads(line) for line in raw.splitlines() if line.strip()],
            raw_logs=raw,
            emf=[json.loads(x) for x in stdout.getvalue().splitlines() if x.startswith('{"_aws"')],
            records=records.records,
        )


def value(document: dict[str, Any], name: str) -> float:
    """One EMF value (Powertools writes each metric as a list of values)."""
    values = document[name]
    return values[0] if isinstance(values, list) and len(values) == 1 else values


def test_every_log_line_is_structured_json_with_the_request_id(full_run):
    # GIVEN the lines the run logged at DEBUG
    assert full_run.logs, "the run logged nothing"
    # THEN each is a JSON object with the standard keys and the invocation's request id
    for line in full_run.logs:
        assert {"level", "location", "message", "timestamp", "service"} <= line.keys()
        assert line["service"] == "sqs-airtable-poller"
        assert line["function_request_id"] == full_run.request_id


def test_one_summary_line_per_run(full_run):
    # GIVEN the run's lines WHEN it finished THEN one INFO line holds the summary it returned
    [summary] = [line for line in full_run.logs if line["message"] == "run finished"]
    assert summary["level"] == "INFO"
    assert summary["summary"] == full_run.summary
    assert summary["summary"]["received"] == len(VALID) + len(POISON)
    assert summary["summary"]["written"] == len(VALID)


def test_each_dead_lettered_message_is_logged_with_its_reason_but_not_its_body(full_run):
    # GIVEN two poison messages WHEN the run dead-letters them
    letters = [line for line in full_run.logs if line["message"] == "dead-lettering message"]
    # THEN each has one WARNING line with its id, reason and error type
    assert len(letters) == len(POISON)
    assert all(line["level"] == "WARNING" and line["message_id"] for line in letters)
    reasons = sorted(line["reason"] for line in letters)
    assert reasons[0].startswith("Airtable answered 422 INVALID_VALUE_FOR_COLUMN")
    assert "Donation Amount" in reasons[0] and reasons[0].count("INVALID_VALUE_FOR_COLUMN") == 1
    assert reasons[1].startswith("body is not valid JSON")
    # AND no message body, nor any value only a body holds, is in any log line
    for body in POISON + as_bodies(VALID):
        assert body not in full_run.raw_logs
    for text in ("Poison Person", VALID[3]["DonorDisplayName"], "not json at all"):
        assert text not in full_run.raw_logs


def test_every_airtable_request_of_the_run_is_counted_the_checks_included(full_run):
    # GIVEN the run, which checked the token, the base and the schema before it wrote
    stats = full_run.stack.emulator.stats
    base = stats.base(BASE_ID)
    # THEN the summary counts every request Airtable answered, and the write requests apart
    assert full_run.summary["airtable_requests"] == stats.requests
    assert full_run.summary["requests"] == stats.write_requests < stats.requests
    # AND the AirtableRequests metric of the base counts that base's requests (whoami and the
    # bases list belong to no base)
    [metric] = [d for d in full_run.emf if d.get("Base") == BASE_ID]
    assert value(metric, "AirtableRequests") == base.data_requests + base.meta_requests


def test_metrics_are_one_emf_document_with_every_required_metric(full_run):
    # GIVEN the run's EMF output on stdout (WHEN the run ended)
    [document] = [d for d in full_run.emf if "Received" in d]
    [directive] = document["_aws"]["CloudWatchMetrics"]
    # THEN it is in the poller's namespace, and declares every required metric with a unit
    assert directive["Namespace"] == "SqsAirtablePoller"
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units.keys() >= REQUIRED_METRICS
    assert units["RunDuration"] == "Milliseconds" and units["PacingRate"] == "Count/Second"
    assert units["DeadLettered"] == units["Throttled"] == "Count"
    # AND the values are the run's confirmed counts
    summary = full_run.summary
    assert value(document, "Received") == summary["received"] == len(VALID) + len(POISON)
    assert value(document, "Written") == summary["written"] == len(VALID)
    assert value(document, "DeadLettered") == len(POISON)
    assert value(document, "DeleteFailures") == value(document, "SystemicFailure") == 0
    assert value(document, "Throttled") == summary["throttled"]
    assert value(document, "WriteRequests") == summary["requests"]
    assert value(document, "RunDuration") > 0


def test_each_write_request_is_one_batch_latency_value(full_run):
    # GIVEN the run's EMF document
    [document] = [d for d in full_run.emf if "Received" in d]
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    # THEN BatchLatency holds one positive value in milliseconds per write request
    assert units.get("BatchLatency") == "Milliseconds"
    latencies = document["BatchLatency"]
    latencies = latencies if isinstance(latencies, list) else [latencies]
    assert len(latencies) == full_run.summary["requests"] and all(v > 0 for v in latencies)


def test_the_token_never_appears_in_any_log_line(full_run):
    # GIVEN a full run at DEBUG, with poison and an Airtable rejection, WHEN its output is read
    library_lines = [record.getMessage() for record in full_run.records]
    # THEN the token is in none of the handler's lines, the libraries' lines or the metrics
    assert full_run.logs and library_lines
    assert TOKEN not in full_run.raw_logs
    assert not [line for line in library_lines if TOKEN in line]
    assert TOKEN not in json.dumps(full_run.emf)
