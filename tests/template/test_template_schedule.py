"""The schedule: EventBridge Scheduler, its expression, the pause toggle, and no retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def schedule_of(stack: Any) -> dict[str, Any]:
    (schedule,) = stack.of_type("AWS::Scheduler::Schedule").values()
    return schedule["Properties"]


def test_one_scheduler_schedule_invokes_the_function(deploy: Callable[..., Any]) -> None:
    # GIVEN the default stack
    stack = deploy()
    # THEN one EventBridge Scheduler schedule targets the function, and no EventBridge rule
    # could start a second run
    schedule = schedule_of(stack)
    assert schedule["Target"]["Arn"] == "PollerFunction.Arn"
    assert not stack.of_type("AWS::Events::Rule")


@pytest.mark.parametrize(
    "expression", ["rate(5 minutes)", "rate(1 minute)", "cron(0/15 8-18 ? * MON-FRI *)"]
)
def test_the_schedule_expression_is_the_parameter(
    deploy: Callable[..., Any], expression: str
) -> None:
    # GIVEN a ScheduleExpression WHEN deployed THEN the schedule uses it verbatim
    assert schedule_of(deploy(ScheduleExpression=expression))["ScheduleExpression"] == expression


def test_the_default_schedule_is_every_five_minutes(sam: dict[str, Any]) -> None:
    assert sam["Parameters"]["ScheduleExpression"]["Default"] == "rate(5 minutes)"


@pytest.mark.parametrize(("paused", "state"), [("false", "ENABLED"), ("true", "DISABLED")])
def test_the_pause_toggle_sets_the_schedule_state(
    deploy: Callable[..., Any], paused: str, state: str
) -> None:
    # GIVEN SchedulePaused WHEN deployed THEN the schedule's State follows it
    assert schedule_of(deploy(SchedulePaused=paused))["State"] == state


def test_the_schedule_runs_by_default(deploy: Callable[..., Any]) -> None:
    assert schedule_of(deploy())["State"] == "ENABLED"


def test_a_tick_is_never_retried_or_delayed(deploy: Callable[..., Any]) -> None:
    # GIVEN the schedule
    schedule = schedule_of(deploy())
    # THEN the scheduler does not retry a tick (a retry could start a second run), fires on
    # time, and gets a name from CloudFormation (two stacks in one account do not collide)
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert "Name" not in schedule


def test_the_event_file_is_what_the_schedule_sends(deploy: Callable[..., Any]) -> None:
    # GIVEN the schedule's Input (with the scheduler's <aws.scheduler.*> placeholders) and
    # events/scheduled-event.json (for sam local invoke)
    sent = json.loads(schedule_of(deploy())["Target"]["Input"])
    sample = json.loads((ROOT / "events" / "scheduled-event.json").read_text())
    # THEN they have the same shape, and the sample fills in each placeholder
    assert sample.keys() == sent.keys()
    assert sample["detail"].keys() == sent["detail"].keys()
    for key, value in sent.items():
        if isinstance(value, str) and not value.startswith("<aws.scheduler."):
            assert sample[key] == value, key
    assert sample["resources"][0].startswith("arn:aws:scheduler:us-east-1:123456789012:schedule/")
    assert sent["detail-type"] == "Scheduled Event"
