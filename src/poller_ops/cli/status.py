"""`poller status`: what is waiting, in flight and dead-lettered, why, the last systemic
failure the function logged, and this month's Airtable API calls with a forecast."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from poller.errors import aws_error_code
from poller_ops import admin, usage

from .common import (
    age_text,
    aws_error_text,
    client,
    emit,
    on_local_stack,
    queue_url,
    rows,
    side_endpoint,
)

#: The function's structured log line for a failure every message would meet
#: (`poller.telemetry.report`): {"message": "systemic failure: <route, detail, fix>",
#: "systemic_cause": one of `poller.systemic.Cause`, "route", "detail", "fix"}.
SYSTEMIC_MESSAGE = "systemic failure"
SYSTEMIC_FILTER = "{ $.systemic_cause = * }"
SYSTEMIC_WINDOW = timedelta(hours=24)
#: CloudFormation names a queue it creates STACK-LogicalId-RANDOM; the template names the
#: function's log group /aws/lambda/STACK-poller (template.yaml, PollerLogGroup).
_STACK_QUEUE = re.compile(r"^(?P<stack>.+)-Poller(?:DeadLetter)?Queue-[A-Za-z0-9]+(?:\.fifo)?$")
_MAX_PAGES = 20
#: On the local stack the function logs to the terminal of `poller run`: no log group to read.
LOCAL_NOTE = "not looked up: on the local stack, `poller run` prints the function's log"


def add_parser(command: Any) -> None:
    status = command(
        "status",
        "queue depth, oldest age, DLQ depth and reasons, Airtable calls this month",
        "What is stuck and why: the source queue's counts and the age of its oldest message\n"
        "(CloudWatch ApproximateAgeOfOldestMessage), the dead-letter queue's depth with\n"
        "its reasons grouped (read without consuming), the last systemic failure the\n"
        "function logged in the last 24 h (CloudWatch Logs; needs logs:FilterLogEvents), and\n"
        "this month's Airtable API calls with a forecast for the month at the current rate\n"
        "(from the SSM parameters under PACE_PARAMETER_PREFIX when it is set, else CloudWatch's\n"
        "AirtableRequests metric).",
    )
    status.add_argument(
        "--cloudwatch-endpoint-url",
        help="CloudWatch and CloudWatch Logs endpoint (default: $AWS_ENDPOINT_URL_CLOUDWATCH / "
        "$AWS_ENDPOINT_URL_LOGS, else the SQS endpoint when one is set, else AWS)",
    )
    status.add_argument(
        "--log-group",
        help="the function's log group (default: $POLLER_LOG_GROUP, else "
        "/aws/lambda/STACK-poller when the queue's name shows the stack)",
    )
    status.add_argument(
        "--reasons-limit", type=int, default=100, help="dead letters to read for reasons"
    )
    status.add_argument("--no-reasons", action="store_true", help="do not read the DLQ")
    status.add_argument(
        "--budget",
        type=budget_value,
        metavar="N",
        help="the month's API call budget (the template's MonthlyCallBudget): compare the "
        "forecast with it",
    )
    status.set_defaults(handler=cmd_status)


def budget_value(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of calls, at least 1: {text!r}")
    return value


def cmd_status(args: argparse.Namespace) -> int:
    url = queue_url()
    sqs = client("sqs", url)
    source = admin.status(sqs, url)
    age, age_note = oldest_age(args, url)
    dlq_url = os.environ.get("DEAD_LETTER_QUEUE_URL") or source.dead_letter_queue_url
    dlq = admin.status(sqs, dlq_url) if dlq_url else None
    letters: list[admin.Letter] = []
    if dlq is not None and dlq.visible and not args.no_reasons:
        letters = admin.peek(sqs, dlq.url, limit=args.reasons_limit)
    grouped = admin.reasons(letters)
    systemic = last_systemic_failure(args, url)
    month = month_usage(args, url).judge(args.budget)
    data = {
        "queue": {**asdict(source), "oldest_age_seconds": age, "oldest_age_note": age_note},
        "dead_letter_queue": None
        if dlq is None
        else {
            "url": dlq.url,
            "messages": dlq.visible,
            "in_flight": dlq.in_flight,
            "reasons_read": len(letters),
            "reasons": [{"count": n, "error_type": t, "reason": r} for n, t, r in grouped],
        },
        "last_systemic_failure": systemic,
        "airtable_calls": month.to_dict(),
    }

    def human() -> str:
        items: list[tuple[str, Any]] = [
            ("queue", url),
            ("  waiting (visible)", source.visible),
            ("  in flight", source.in_flight),
            ("  delayed", source.delayed),
            ("  oldest message", f"{age_text(age)} ({age_note})"),
            ("  maxReceiveCount", source.max_receive_count or "-"),
        ]
        if dlq is None:
            items.append(("dead-letter queue", "none configured"))
        else:
            items += [
                ("dead-letter queue", dlq.url),
                ("  messages", dlq.visible),
                ("  in flight", dlq.in_flight),
            ]
        if systemic.get("looked_up", True):
            items.append(("systemic failure", systemic_text(systemic)))
        items += month_items(month)
        lines = rows(items, "")
        why: list[str] = []
        if grouped:
            why.append(f"  why ({len(letters)} read, nothing consumed):")
            why += [f"    {n:>4} x {reason_text(t, r)}" for n, t, r in grouped]
        elif dlq is not None and dlq.visible and args.no_reasons:
            why.append("  why: not read (--no-reasons); see `poller peek-dlq`")
        at = len(lines) - len(month_items(month))
        at -= 1 if systemic.get("looked_up", True) else 0
        lines[at:at] = why  # under the dead-letter queue, before the systemic failure
        return "\n".join(lines)

    emit(args, data, human)
    return 0


def oldest_age(args: argparse.Namespace, url: str) -> tuple[float | None, str]:
    endpoint = side_endpoint(args.cloudwatch_endpoint_url, "AWS_ENDPOINT_URL_CLOUDWATCH")
    try:
        age = admin.oldest_age_seconds(client("cloudwatch", url, endpoint), url)
    except Exception as exc:  # the age is a nicety: never fail `status` for it
        return None, f"CloudWatch unavailable: {type(exc).__name__}"
    if age is None:
        return None, "no CloudWatch data in the last 15 minutes"
    return age, "CloudWatch ApproximateAgeOfOldestMessage"


# -- the last systemic failure ------------------------------------------------------------


def log_group(args: argparse.Namespace, url: str) -> str | None:
    """--log-group, $POLLER_LOG_GROUP, or the stack's, derived from the queue's name."""
    if args.log_group or os.environ.get("POLLER_LOG_GROUP"):
        return args.log_group or os.environ["POLLER_LOG_GROUP"]
    match = _STACK_QUEUE.match(admin.queue_name(url))
    return f"/aws/lambda/{match.group('stack')}-poller" if match else None


def last_systemic_failure(
    args: argparse.Namespace, url: str, now: datetime | None = None
) -> dict[str, Any]:
    """{"found": True, "cause", "fix", "at", "log_group"}, or {"found": False, "note"}:
    never an error (like the age, this is a nicety of `status`)."""
    group = log_group(args, url)
    if not group and on_local_stack():
        return {"found": False, "note": LOCAL_NOTE, "looked_up": False}
    if not group:
        return {"found": False, "note": "unknown (no log group: pass --log-group)"}
    endpoint = side_endpoint(args.cloudwatch_endpoint_url, "AWS_ENDPOINT_URL_LOGS")
    end = now or datetime.now(UTC)
    try:
        logs = client("logs", url, endpoint)
        events = _events(logs, group, end - SYSTEMIC_WINDOW, end)
        found = newest_systemic(events)
    except Exception as exc:
        if aws_error_code(exc) == "ResourceNotFoundException":
            note = f"unknown (no log group {group})"
        else:
            note = f"unknown (no log group access: {aws_error_text(exc)})"
        return {"found": False, "note": note, "log_group": group}
    if found is None:
        return {"found": False, "note": "none in the last 24 h", "log_group": group}
    return {"found": True, **found, "log_group": group}


def _events(logs: Any, group: str, start: datetime, end: datetime) -> Iterable[Mapping[str, Any]]:
    request: dict[str, Any] = {
        "logGroupName": group,
        "startTime": int(start.timestamp() * 1000),
        "endTime": int(end.timestamp() * 1000),
        "filterPattern": SYSTEMIC_FILTER,
    }
    for _ in range(_MAX_PAGES):
        page = logs.filter_log_events(**request)
        yield from page.get("events", [])
        if not page.get("nextToken"):
            return
        request["nextToken"] = page["nextToken"]


def newest_systemic(events: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest "systemic failure" line among CloudWatch Logs events, as
    {"cause", "fix", "at"}; lines that are not that JSON are skipped (the filter pattern is
    applied again here: moto's server ignores JSON patterns)."""
    newest: tuple[int, dict[str, Any]] | None = None
    for event in events:
        line = _json_line(str(event.get("message", "")))
        message = str(line.get("message", "")) if line else ""
        if not line or not message.startswith(SYSTEMIC_MESSAGE) or not line.get("systemic_cause"):
            continue
        stamp = int(event.get("timestamp") or 0)
        if newest is None or stamp >= newest[0]:
            at = datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="seconds")
            found = {
                "cause": str(line["systemic_cause"]),
                "route": str(line.get("route", "")),
                "detail": str(line.get("detail", "")),
                "fix": str(line.get("fix", "")),
                "at": at,
            }
            newest = (stamp, found)
    return newest[1] if newest else None


def _json_line(text: str) -> dict[str, Any] | None:
    """The JSON object a log line holds (Lambda may prefix it with time and request id)."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(text[start:])
    except (json.JSONDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def reason_text(error_type: str, reason: str) -> str:
    """`TYPE: reason`, or the reason alone when it names its type already (a write Airtable
    refused reads "Airtable answered 422 INVALID_VALUE_FOR_COLUMN: ...")."""
    return reason if error_type and error_type in reason else f"{error_type}: {reason}"


def systemic_text(systemic: Mapping[str, Any]) -> str:
    if not systemic.get("found"):
        return str(systemic.get("note"))
    route = (
        f' (route "{systemic["route"]}")' if systemic.get("route") not in (None, "", "*") else ""
    )
    detail = f": {systemic['detail']}" if systemic.get("detail") else ""
    fix = f"; fix: {systemic['fix']}" if systemic.get("fix") else ""
    return f"{systemic['cause']}{route} at {systemic['at']}{detail}{fix}"


# -- this month's Airtable API calls --------------------------------------------------------


def month_usage(
    args: argparse.Namespace, url: str, now: datetime | None = None
) -> usage.MonthUsage:
    """The calls so far and the forecast: from SSM when PACE_PARAMETER_PREFIX is set (and
    readable), else from CloudWatch; never an error (a nicety of `status`, like the age)."""
    from poller.telemetry import AIRTABLE_REQUESTS, NAMESPACE

    now = now or usage.now_utc()
    prefix = os.environ.get("PACE_PARAMETER_PREFIX", "").strip()
    why_not_ssm = ""
    if prefix:
        try:
            ssm = client("ssm", url, side_endpoint(None, "AWS_ENDPOINT_URL_SSM"))
            return usage.from_ssm(ssm, prefix, now)
        except Exception as exc:
            why_not_ssm = f"SSM {prefix} unreadable ({aws_error_text(exc)}); "
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or stack_name(url)
    try:
        cloudwatch = client(
            "cloudwatch",
            url,
            side_endpoint(args.cloudwatch_endpoint_url, "AWS_ENDPOINT_URL_CLOUDWATCH"),
        )
        found = usage.from_cloudwatch(cloudwatch, namespace, service, now, AIRTABLE_REQUESTS)
    except Exception as exc:
        found = usage.MonthUsage(
            month=usage.month_start(now).strftime("%Y-%m"),
            where=namespace,
            elapsed_fraction=round(usage.elapsed_fraction(now), 4),
            note=f"CloudWatch unavailable ({aws_error_text(exc)})",
        )
    if not prefix:
        why_not_ssm = "no PACE_PARAMETER_PREFIX; "
    found.note = why_not_ssm + found.note
    return found


def stack_name(url: str) -> str | None:
    """The stack that created the queue, from its name (`STACK-PollerQueue-...`): the
    template's POWERTOOLS_SERVICE_NAME, the metrics' `service`."""
    match = _STACK_QUEUE.match(admin.queue_name(url))
    return match.group("stack") if match else None


def month_items(month: usage.MonthUsage) -> list[tuple[str, Any]]:
    """`Airtable calls  1,234 in 2026-11 so far (SSM /x/pace: 2 base(s)); forecast 4,100
    for the month at this rate`, and the budget line when one was given."""
    if month.so_far is None:
        return [("Airtable calls", f"unknown ({month.note})")]
    source = "SSM" if month.source == "ssm" else "CloudWatch"
    text = f"{month.so_far:,} in {month.month} so far ({source} {month.where}: {month.note})"
    if month.forecast is not None:
        text += f"; forecast {month.forecast:,} for the month at this rate"
    items: list[tuple[str, Any]] = [("Airtable calls", text)]
    if month.budget and month.forecast_of_budget is not None:
        share = month.forecast_of_budget
        verdict = "over the budget" if share > 1 else "within the budget"
        items.append(
            ("  budget", f"{month.budget:,}: the forecast is {share:.0%} of it ({verdict})")
        )
    elif month.budget:
        items.append(("  budget", f"{month.budget:,} (no forecast to compare)"))
    return items
