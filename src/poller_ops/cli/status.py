"""`poller status`: what is waiting, in flight and dead-lettered, why, and the last systemic
failure the function logged."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from poller_ops import admin

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
#: (`handler._Run.report`): {"message": "systemic failure: <route, detail, fix>",
#: "systemic_cause": "auth|table|field|type|schema|secret", "route", "detail", "fix"}.
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
        "queue depth, in flight, delayed, oldest age, DLQ depth and reasons",
        "What is stuck and why: the source queue's counts and the age of its oldest message\n"
        "(CloudWatch ApproximateAgeOfOldestMessage), the dead-letter queue's depth with\n"
        "its reasons grouped (read without consuming), and the last systemic failure the\n"
        "function logged in the last 24 h (CloudWatch Logs; needs logs:FilterLogEvents).",
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
    status.set_defaults(handler=cmd_status)


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
        lines = rows(items, "")
        why: list[str] = []
        if grouped:
            why.append(f"  why ({len(letters)} read, nothing consumed):")
            why += [f"    {n:>4} x {reason_text(t, r)}" for n, t, r in grouped]
        elif dlq is not None and dlq.visible and args.no_reasons:
            why.append("  why: not read (--no-reasons); see `poller peek-dlq`")
        at = len(lines) - 1 if systemic.get("looked_up", True) else len(lines)
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
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
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
