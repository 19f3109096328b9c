"""Queues (encryption, redrive, TLS, visibility), alarms, the log group and the outputs."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

import pytest

QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders"
DLQ_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders-dlq"
FOURTEEN_DAYS = 14 * 24 * 3600


# ------------------------------------------------------------------ queues


def test_both_created_queues_are_encrypted(deploy: Callable[..., Any]) -> None:
    stack = deploy()
    for queue_id in ("PollerQueue", "PollerDeadLetterQueue"):
        assert stack.properties(queue_id)["SqsManagedSseEnabled"] is True, queue_id


def test_the_queue_redrives_to_a_dlq_that_keeps_messages_14_days(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN the created queues
    stack = deploy()
    queue, dlq = stack.properties("PollerQueue"), stack.properties("PollerDeadLetterQueue")
    # THEN the queue redrives to the DLQ after the default 5 receives
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": "PollerDeadLetterQueue.Arn",
        "maxReceiveCount": "5",
    }
    # AND the DLQ keeps messages 14 days, longer than the source queue (a redriven message
    # keeps its original enqueue time)
    assert dlq["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert queue["MessageRetentionPeriod"] < dlq["MessageRetentionPeriod"]


def test_max_receive_count_is_a_parameter_of_at_least_5(
    deploy: Callable[..., Any], sam: dict[str, Any], check_parameter: Callable[..., list[str]]
) -> None:
    # GIVEN MaxReceiveCount=8 WHEN deployed THEN the redrive uses it
    redrive = deploy(MaxReceiveCount="8").properties("PollerQueue")["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == "8"
    # AND the parameter refuses less than 5 and defaults to at least 5
    assert int(sam["Parameters"]["MaxReceiveCount"]["Default"]) >= 5
    assert check_parameter("MaxReceiveCount", "4")
    assert not check_parameter("MaxReceiveCount", "5")


def test_visibility_timeout_exceeds_the_function_timeout_with_a_margin(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN the function's timeout and the queue's default visibility timeout
    stack = deploy()
    timeout = stack.properties("PollerFunction")["Timeout"]
    visibility = stack.properties("PollerQueue")["VisibilityTimeout"]
    # THEN a message received by a run cannot reappear while that run is alive, with a
    # margin of at least 30 s for its last deletes
    assert visibility >= timeout + 30


def test_the_queues_deny_non_tls_access(deploy: Callable[..., Any]) -> None:
    # GIVEN the queue policy
    stack = deploy()
    (policy,) = stack.of_type("AWS::SQS::QueuePolicy").values()
    properties = policy["Properties"]
    # THEN it covers both queues and denies every SQS action without TLS
    assert sorted(properties["Queues"]) == ["ref:PollerDeadLetterQueue", "ref:PollerQueue"]
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "sqs:*"
    assert sorted(statement["Resource"]) == ["PollerDeadLetterQueue.Arn", "PollerQueue.Arn"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("dlq", [DLQ_ARN, ""], ids=["with DLQ", "without DLQ"])
def test_a_brought_queue_is_used_as_is(deploy: Callable[..., Any], dlq: str) -> None:
    # GIVEN an existing queue (and maybe DLQ)
    stack = deploy(ExistingQueueArn=QUEUE_ARN, ExistingDeadLetterQueueArn=dlq)
    # THEN the stack creates no queue and no queue policy (it must not replace the owner's)
    assert not stack.of_type("AWS::SQS::Queue")
    assert not stack.of_type("AWS::SQS::QueuePolicy")
    # AND the function gets the queue's URL, built from its ARN
    env = stack.environment
    assert env["QUEUE_URL"] == "https://sqs.eu-west-1.amazonaws.com/111122223333/orders"
    expected_dlq = "https://sqs.eu-west-1.amazonaws.com/111122223333/orders-dlq" if dlq else ""
    assert env["DEAD_LETTER_QUEUE_URL"] == expected_dlq


def test_created_queue_urls_reach_the_function(deploy: Callable[..., Any]) -> None:
    env = deploy().environment
    assert env["QUEUE_URL"] == "ref:PollerQueue"  # Ref of a queue is its URL
    assert env["DEAD_LETTER_QUEUE_URL"] == "ref:PollerDeadLetterQueue"


def test_a_dlq_without_a_queue_is_ignored(deploy: Callable[..., Any]) -> None:
    # GIVEN only ExistingDeadLetterQueueArn WHEN deployed THEN the stack's own DLQ is used
    stack = deploy(ExistingDeadLetterQueueArn=DLQ_ARN)
    assert stack.environment["DEAD_LETTER_QUEUE_URL"] == "ref:PollerDeadLetterQueue"
    assert ("sqs:SendMessage", DLQ_ARN) not in stack.grants("PollerRole")


# ------------------------------------------------------------------ alarms


def alarms_by_metric(stack: Any) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["MetricName"]: alarm["Properties"]
        for alarm in stack.of_type("AWS::CloudWatch::Alarm").values()
    }


def test_four_alarms_watch_the_dlq_the_oldest_message_errors_and_systemic_failures(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN the default stack
    alarms = alarms_by_metric(deploy())
    assert set(alarms) == {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Errors",
        "SystemicFailure",
    }
    # THEN one fires on any message in the DLQ
    dlq = alarms["ApproximateNumberOfMessagesVisible"]
    assert dlq["Namespace"] == "AWS/SQS"
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": "PollerDeadLetterQueue.QueueName"}]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    # AND one when the oldest message is older than the threshold parameter (default 30 min)
    age = alarms["ApproximateAgeOfOldestMessage"]
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": "PollerQueue.QueueName"}]
    assert (age["ComparisonOperator"], age["Threshold"]) == ("GreaterThanThreshold", "1800")
    # AND one on any function error
    errors = alarms["Errors"]
    assert errors["Namespace"] == "AWS/Lambda"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": "ref:PollerFunction"}]
    assert (errors["ComparisonOperator"], errors["Threshold"], errors["Statistic"]) == (
        "GreaterThanThreshold",
        0,
        "Sum",
    )
    # AND one on any systemic failure in 5 minutes, in the function's own namespace and
    # service (the stack's name)
    systemic = alarms["SystemicFailure"]
    assert systemic["Namespace"] == "SqsAirtablePoller"
    assert systemic["Dimensions"] == [{"Name": "service", "Value": "poller-test"}]
    assert (
        systemic["Statistic"],
        systemic["Period"],
        systemic["ComparisonOperator"],
        systemic["Threshold"],
    ) == ("Sum", 300, "GreaterThanOrEqualToThreshold", 1)
    # AND none alarms on missing data (an idle queue publishes none)
    assert {a["TreatMissingData"] for a in alarms.values()} == {"notBreaching"}


def test_the_age_threshold_is_a_parameter(deploy: Callable[..., Any]) -> None:
    alarms = alarms_by_metric(deploy(OldestMessageAgeAlarmSeconds="3600"))
    assert alarms["ApproximateAgeOfOldestMessage"]["Threshold"] == "3600"


def test_alarms_watch_a_brought_queue_by_name(deploy: Callable[..., Any]) -> None:
    # GIVEN an existing queue and DLQ
    alarms = alarms_by_metric(
        deploy(ExistingQueueArn=QUEUE_ARN, ExistingDeadLetterQueueArn=DLQ_ARN)
    )
    # THEN the alarms use their names, taken from the ARNs
    assert alarms["ApproximateAgeOfOldestMessage"]["Dimensions"][0]["Value"] == "orders"
    assert alarms["ApproximateNumberOfMessagesVisible"]["Dimensions"][0]["Value"] == "orders-dlq"
    # AND without a DLQ there is no DLQ alarm
    alarms = alarms_by_metric(deploy(ExistingQueueArn=QUEUE_ARN))
    assert set(alarms) == {"ApproximateAgeOfOldestMessage", "Errors", "SystemicFailure"}


def test_an_alarm_email_adds_a_topic_that_every_alarm_notifies(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN an alarm e-mail
    stack = deploy(AlarmEmail="ops@example.org")
    # THEN an SNS topic e-mails it, and every alarm notifies the topic on ALARM and on OK
    (topic,) = stack.of_type("AWS::SNS::Topic").values()
    assert topic["Properties"]["Subscription"] == [
        {"Protocol": "email", "Endpoint": "ops@example.org"}
    ]
    for alarm in alarms_by_metric(stack).values():
        assert alarm["AlarmActions"] == ["ref:AlarmTopic"]
        assert alarm["OKActions"] == ["ref:AlarmTopic"]


def test_without_an_email_there_is_no_topic(deploy: Callable[..., Any]) -> None:
    stack = deploy()
    assert not stack.of_type("AWS::SNS::Topic")
    for alarm in alarms_by_metric(stack).values():
        assert "AlarmActions" not in alarm and "OKActions" not in alarm


# ------------------------------------------------------------------ logs and outputs


@pytest.mark.parametrize("days", ["30", "7", "365"])
def test_the_function_logs_to_its_own_log_group_with_retention(
    deploy: Callable[..., Any], days: str
) -> None:
    # GIVEN LogRetentionInDays
    stack = deploy(LogRetentionInDays=days)
    log_group = stack.properties("PollerLogGroup")
    # THEN the log group has that retention and is the one Lambda writes to
    assert log_group["RetentionInDays"] == days
    function_name = stack.properties("PollerFunction")["FunctionName"]
    assert log_group["LogGroupName"] == f"/aws/lambda/{function_name}"


def test_the_outputs_say_where_things_are_and_how_to_send_a_test_message(
    deploy: Callable[..., Any],
) -> None:
    outputs = deploy().outputs
    assert outputs["QueueUrl"] == "ref:PollerQueue"
    assert outputs["DeadLetterQueueUrl"] == "ref:PollerDeadLetterQueue"
    assert outputs["FunctionName"] == "ref:PollerFunction"
    command = outputs["SendTestMessageCommand"]
    assert command.startswith("aws sqs send-message --queue-url ref:PollerQueue --message-body '")
    body = json.loads(shlex.split(command)[-1])  # a Donations message, as the shell passes it
    assert body["Id"] and body["DonationAmount"] == 25.0
    outputs = deploy(ExistingQueueArn=QUEUE_ARN).outputs
    assert outputs["QueueUrl"] == "https://sqs.eu-west-1.amazonaws.com/111122223333/orders"
    assert outputs["DeadLetterQueueUrl"] == ""
