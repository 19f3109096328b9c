"""The CloudWatch dashboard and the alarms name only metrics the function emits.

The dashboard body is a JSON string inside `Fn::Sub`; the translated template is evaluated
(tests/template/conftest.py) and the body parsed, so these tests read what CloudWatch would.
Metric names of the function's own namespace are checked against `poller.telemetry`, the one
module the handler publishes from: renaming a metric there without updating the template
fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from poller import telemetry

QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders"
DLQ_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders-dlq"
#: A SEARCH expression's schema and metric name: SEARCH('{Namespace,Dim,...} MetricName="X"', ...)
_SEARCH_NAMESPACE = re.compile(r"\{([^,}]+)")
_SEARCH_METRIC = re.compile(r'MetricName=\\?"([^"\\]+)')


def dashboard_body(stack: Any) -> dict[str, Any]:
    (dashboard,) = stack.of_type("AWS::CloudWatch::Dashboard").values()
    return json.loads(dashboard["Properties"]["DashboardBody"])


def metric_rows(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """(widget properties, metric row) for every row of every metric widget, with CloudWatch's
    "." shorthand (same as the row above) expanded."""
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        previous: list[Any] = []
        for row in widget["properties"]["metrics"]:
            expanded = [previous[i] if v == "." else v for i, v in enumerate(row)]
            previous = expanded
            yield widget["properties"], expanded


def dashboard_metrics(body: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric name) of every metric the dashboard plots, SEARCH expressions
    included."""
    found = set()
    for _, row in metric_rows(body):
        if isinstance(row[0], dict):
            expression = row[0]["expression"]
            if "SEARCH(" in expression:
                namespace = _SEARCH_NAMESPACE.search(expression)
                names = _SEARCH_METRIC.findall(expression)
                assert namespace and names, f"cannot read the SEARCH expression {expression!r}"
                found |= {(namespace.group(1), name) for name in names}
            continue
        found.add((row[0], row[1]))
    return found


def alarm_metrics(stack: Any) -> set[tuple[str, str]]:
    return {
        (alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"])
        for alarm in stack.of_type("AWS::CloudWatch::Alarm").values()
    }


def unknown_function_metrics(names: set[tuple[str, str]], namespace: str) -> set[str]:
    """Names in the function's namespace that the function does not emit."""
    return {name for ns, name in names if ns == namespace} - telemetry.METRIC_NAMES


@pytest.mark.parametrize(
    "overrides",
    [{}, {"ExistingQueueArn": QUEUE_ARN}, {"ExistingQueueArn": QUEUE_ARN, "AlarmEmail": "a@b.co"}],
    ids=["created queues", "brought queue without DLQ", "with alarm e-mail"],
)
def test_every_metric_of_the_functions_namespace_is_one_it_emits(
    deploy: Callable[..., Any], overrides: dict[str, str]
) -> None:
    # GIVEN the stack, its dashboard and its alarms
    stack = deploy(**overrides)
    namespace = stack.environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == telemetry.NAMESPACE
    named = dashboard_metrics(dashboard_body(stack)) | alarm_metrics(stack)
    # THEN every metric they name in the function's namespace is in telemetry.METRIC_NAMES
    assert {ns for ns, _ in named} >= {namespace, "AWS/SQS", "AWS/Lambda"}
    assert unknown_function_metrics(named, namespace) == set()


def test_a_renamed_metric_would_be_caught(deploy: Callable[..., Any]) -> None:
    # GIVEN the dashboard with one metric renamed, as a rename in telemetry.py would leave it
    stack = deploy()
    body = json.loads(json.dumps(dashboard_body(stack)).replace('"PacingRate"', '"PaceRate"'))
    # WHEN checked THEN the stale name is reported (the check above can fail)
    assert unknown_function_metrics(dashboard_metrics(body), telemetry.NAMESPACE) == {"PaceRate"}
    # AND a name inside a SEARCH expression is read too
    search = (
        "SEARCH('{SqsAirtablePoller,Cause,service} MetricName=\"SystemicFailures\"', 'Sum', 300)"
    )
    body = {"widgets": [{"type": "metric", "properties": {"metrics": [[{"expression": search}]]}}]}
    assert unknown_function_metrics(dashboard_metrics(body), telemetry.NAMESPACE) == {
        "SystemicFailures"
    }


def test_the_dashboard_shows_what_an_operator_needs(deploy: Callable[..., Any]) -> None:
    # GIVEN the default stack's dashboard
    named = dashboard_metrics(dashboard_body(deploy()))
    ns = telemetry.NAMESPACE
    # THEN it plots records written, created vs updated, dead letters, 429s, systemic
    # failures, the pacing rate and the run's duration ...
    assert {
        (ns, "Written"),
        (ns, "Created"),
        (ns, "Updated"),
        (ns, "DeadLettered"),
        (ns, "Throttled"),
        (ns, telemetry.SYSTEMIC_FAILURE),
        (ns, telemetry.PACING_RATE),
        (ns, telemetry.RUN_DURATION),
    } <= named
    # ... and from AWS: the DLQ's depth, the age of the oldest message, the function's errors
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Duration"),
    } <= named


def dimensions(row: list[Any]) -> dict[str, str]:
    plain = [v for v in row[2:] if not isinstance(v, dict)]
    return dict(zip(plain[::2], plain[1::2], strict=True))


@pytest.mark.parametrize(
    ("overrides", "queue", "dlq"),
    [
        ({}, "PollerQueue.QueueName", "PollerDeadLetterQueue.QueueName"),
        (
            {"ExistingQueueArn": QUEUE_ARN, "ExistingDeadLetterQueueArn": DLQ_ARN},
            "orders",
            "orders-dlq",
        ),
    ],
    ids=["created queues", "brought queues"],
)
def test_every_plotted_metric_is_this_stacks(
    deploy: Callable[..., Any], overrides: dict[str, str], queue: str, dlq: str
) -> None:
    # GIVEN the stack's dashboard
    stack = deploy(**overrides)
    service = stack.environment["POWERTOOLS_SERVICE_NAME"]
    region = "us-east-1"  # conftest's pseudo parameters
    for properties, row in metric_rows(dashboard_body(stack)):
        # THEN every widget is in the stack's region
        assert properties["region"] == region
        if isinstance(row[0], dict):
            assert f'service="{service}"' in row[0]["expression"], row
            continue
        dims = dimensions(row)
        # AND the function's metrics carry its service (the stack's name), as Powertools
        # publishes them; the AWS metrics name this stack's queue, DLQ or function
        if row[0] == telemetry.NAMESPACE:
            assert dims == {"service": service}, row
        elif row[0] == "AWS/Lambda":
            assert dims == {"FunctionName": "ref:PollerFunction"}, row
        else:
            assert row[0] == "AWS/SQS"
            label = row[-1].get("label", "") if isinstance(row[-1], dict) else ""
            expected = dlq if "DLQ" in label else queue
            assert dims == {"QueueName": expected}, row


def annotations(body: dict[str, Any], title_part: str) -> list[float]:
    (widget,) = [
        w
        for w in body["widgets"]
        if w["type"] == "metric" and title_part in w["properties"]["title"]
    ]
    return [a["value"] for a in widget["properties"]["annotations"]["horizontal"]]


def test_the_annotations_match_the_limits_the_template_sets(deploy: Callable[..., Any]) -> None:
    # GIVEN the stack (with a non-default age threshold) and its dashboard
    stack = deploy(OldestMessageAgeAlarmSeconds="2400")
    body = dashboard_body(stack)
    env = stack.environment
    function = stack.properties("PollerFunction")
    # THEN the written-per-minute ceiling is AIRTABLE_MAX_RPS x 10 records x 60 s (3,000)
    assert annotations(body, "Records written per minute") == [
        float(env["AIRTABLE_MAX_RPS"]) * 10 * 60
    ]
    # AND the pacing line is AIRTABLE_MAX_RPS, the run line the function's timeout in ms
    assert annotations(body, "Pacing rate") == [float(env["AIRTABLE_MAX_RPS"])]
    assert annotations(body, "Run duration") == [function["Timeout"] * 1000]
    # AND the age line is the age alarm's threshold
    assert annotations(body, "age of the oldest message") == [2400]


def test_the_dashboard_url_is_an_output(deploy: Callable[..., Any]) -> None:
    outputs = deploy().outputs
    assert outputs["DashboardUrl"] == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#dashboards:name=ref:PollerDashboard"
    )


def test_the_dashboard_name_comes_from_the_stack(deploy: Callable[..., Any]) -> None:
    (dashboard,) = deploy().of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "poller-test-poller"
