"""Least privilege, checked exactly: one action or resource more than listed fails a test.

The function may: receive, delete and change visibility on its queue, read that queue's
attributes, and send to it (a message not at fault, on its last receive, is requeued as a
fresh copy); send to its DLQ and read the DLQ's attributes (a run checks that it exists);
read its one secret; read and write the SSM parameters that keep each base's pace, under
PACE_PARAMETER_PREFIX; read and delete offloaded bodies in LargePayloadBucket, when set; and
write its own log streams. The Batch API calls (DeleteMessageBatch,
ChangeMessageVisibilityBatch) are authorised by their single-message actions, so they are not
IAM actions of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders"
DLQ_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders-dlq"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:airtable/pat-AbC123"
LOG_STREAMS = "arn:aws:logs:us-east-1:123456789012:log-group:ref:PollerLogGroup:log-stream:*"
#: One parameter per base, named by its id (not known when the stack is made).
PACES = "arn:aws:ssm:us-east-1:123456789012:parameter/poller-test/pace/*"
BUCKET = "producer-payloads"
#: Offloaded bodies, keyed by the producer (not known when the stack is made).
OBJECTS = f"arn:aws:s3:::{BUCKET}/*"
#: The only resources with a wildcard, each for names only known at run time.
WILDCARDS = {LOG_STREAMS, PACES, OBJECTS}
QUEUE_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
)


def expected_grants(
    queue: str, dlq: str | None, secret: str, bucket: bool = False
) -> set[tuple[str, str]]:
    grants = {(action, queue) for action in QUEUE_ACTIONS}
    if dlq:
        grants |= {("sqs:SendMessage", dlq), ("sqs:GetQueueAttributes", dlq)}
    grants.add(("secretsmanager:GetSecretValue", secret))
    grants |= {("ssm:GetParameter", PACES), ("ssm:PutParameter", PACES)}
    if bucket:
        grants |= {("s3:GetObject", OBJECTS), ("s3:DeleteObject", OBJECTS)}
    grants |= {("logs:CreateLogStream", LOG_STREAMS), ("logs:PutLogEvents", LOG_STREAMS)}
    return grants


VARIANTS = {
    "created queues, created secret": (
        {},
        expected_grants("PollerQueue.Arn", "PollerDeadLetterQueue.Arn", "ref:AirtableTokenSecret"),
    ),
    "created queues, existing secret": (
        {"AirtableTokenSecretArn": SECRET_ARN},
        expected_grants("PollerQueue.Arn", "PollerDeadLetterQueue.Arn", SECRET_ARN),
    ),
    "own queue and DLQ, existing secret": (
        {
            "ExistingQueueArn": QUEUE_ARN,
            "ExistingDeadLetterQueueArn": DLQ_ARN,
            "AirtableTokenSecretArn": SECRET_ARN,
        },
        expected_grants(QUEUE_ARN, DLQ_ARN, SECRET_ARN),
    ),
    "own queue without DLQ, created secret": (
        {"ExistingQueueArn": QUEUE_ARN},
        expected_grants(QUEUE_ARN, None, "ref:AirtableTokenSecret"),
    ),
    "created queues, offloaded bodies": (
        {"LargePayloadBucket": BUCKET},
        expected_grants(
            "PollerQueue.Arn", "PollerDeadLetterQueue.Arn", "ref:AirtableTokenSecret", bucket=True
        ),
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_function_role_grants_exactly_what_the_poller_does(
    deploy: Callable[..., Any], variant: str
) -> None:
    # GIVEN the stack deployed with this queue/secret variant
    overrides, expected = VARIANTS[variant]
    stack = deploy(**overrides)
    # WHEN we list every (action, resource) its execution role allows
    grants = stack.grants("PollerRole")
    # THEN it is exactly the listed set: nothing more, nothing less
    assert grants == expected, (
        f"more: {sorted(grants - expected)}; missing: {sorted(expected - grants)}"
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_grant_uses_a_wildcard_action_or_resource(
    deploy: Callable[..., Any], variant: str
) -> None:
    # GIVEN every role of the stack
    stack = deploy(**VARIANTS[variant][0])
    for role_id in stack.of_type("AWS::IAM::Role"):
        # WHEN we read its grants THEN no action has a wildcard and no resource is "*"
        for action, resource in stack.grants(role_id):
            assert "*" not in action, (role_id, action)
            assert resource != "*", (role_id, action)
            # the wildcards allowed: log stream names, which Lambda picks at run time, the
            # pace parameters, named by base id, and the producer's object keys
            assert "*" not in resource or resource in WILDCARDS, (role_id, resource)


def test_the_pace_grant_covers_exactly_the_parameters_the_function_names(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN the deployed function's PACE_PARAMETER_PREFIX (it keeps {prefix}/{base id})
    stack = deploy()
    prefix = stack.environment["PACE_PARAMETER_PREFIX"]
    # THEN the role may read and write the parameters under it, and no others
    pace_grants = {r for a, r in stack.grants("PollerRole") if a.startswith("ssm:")}
    assert pace_grants == {f"arn:aws:ssm:us-east-1:123456789012:parameter{prefix}/*"}


def test_the_role_is_the_functions_and_only_lambda_can_assume_it(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN the default stack
    stack = deploy()
    # WHEN we read the function's role and its trust policy
    role = stack.properties("PollerRole")
    # THEN the function runs as this role, and only the Lambda service can assume it
    assert stack.properties("PollerFunction")["Role"] == "PollerRole.Arn"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_the_scheduler_may_only_invoke_this_function(deploy: Callable[..., Any]) -> None:
    # GIVEN the default stack WHEN we read the schedule's role
    stack = deploy()
    schedule = stack.properties("PollerFunctionSchedule")
    role_id = schedule["Target"]["RoleArn"].removesuffix(".Arn")
    # THEN it may invoke this one function and nothing else, and only the scheduler assumes it
    assert stack.grants(role_id) == {("lambda:InvokeFunction", "PollerFunction.Arn")}
    trust = stack.properties(role_id)["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": ["scheduler.amazonaws.com"]}]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_stack_creates_no_other_permissions(deploy: Callable[..., Any], variant: str) -> None:
    # GIVEN the stack in this variant
    stack = deploy(**VARIANTS[variant][0])
    # THEN its only IAM resources are the two roles, and nothing grants through resource
    # policies except the queue policy (which only denies)
    assert set(stack.of_type("AWS::IAM::Role")) == {"PollerRole", "PollerFunctionScheduleRole"}
    types = {r["Type"] for r in stack.resources.values()}
    assert not types & {
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::User",
        "AWS::Lambda::Permission",
        "AWS::SecretsManager::ResourcePolicy",
    }
    for policy in stack.of_type("AWS::SQS::QueuePolicy").values():
        effects = {s["Effect"] for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        assert effects == {"Deny"}


def test_a_grant_more_would_fail_the_check(deploy: Callable[..., Any]) -> None:
    # GIVEN the default stack with one action added to the role (the check can fail)
    stack = deploy()
    statement = stack.properties("PollerRole")["Policies"][0]["PolicyDocument"]["Statement"][0]
    statement["Action"] = [*statement["Action"], "sqs:PurgeQueue"]
    # WHEN compared with the listed set THEN the extra grant shows
    extra = stack.grants("PollerRole") - VARIANTS["created queues, created secret"][1]
    assert extra == {("sqs:PurgeQueue", "PollerQueue.Arn")}
