"""`poller peek-dlq` and `poller redrive`: the dead letters, why they are there, and moving
them back to the source queue."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from typing import Any

from poller_ops import admin

from .common import CommandFailed, aws_error_text, client, dlq_url, emit, is_aws_error, queue_url
from .status import reason_text

#: Answers that mean "this endpoint has no StartMessageMoveTask" (moto: HTTP 500 with an
#: HTML page; an SQS-compatible server without it: 400 with one of these codes).
_NOT_OFFERED_CODES = {"InvalidAction", "UnknownOperationException", "NotImplemented", "501"}


def add_parsers(command: Any) -> None:
    peek = command(
        "peek-dlq",
        "list dead-lettered messages with their reasons (not consumed)",
        "Read dead-lettered messages and show why each is there. Each message is hidden\n"
        "while it is read and made visible again at once: nothing is consumed (its receive\n"
        "count in the DLQ goes up by one).",
    )
    peek.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    peek.add_argument("--body", action="store_true", help="also show the message bodies")
    peek.set_defaults(handler=cmd_peek_dlq)

    redrive = command(
        "redrive",
        "move dead letters back to the source queue",
        "Move the DLQ's messages back to the source queue with StartMessageMoveTask when\n"
        "SQS offers it (asynchronous; watch with `poller status`), else by a copy loop that\n"
        "deletes each message from the DLQ only after its send was confirmed.",
    )
    redrive.add_argument(
        "--method",
        choices=("auto", "move-task", "copy"),
        default="auto",
        help="auto: move task, falling back to copy",
    )
    redrive.add_argument("--limit", type=int, help="move at most this many (uses the copy loop)")
    redrive.add_argument("--rate", type=int, help="move task: messages per second (max 500)")
    redrive.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would move (how many, how, and why they are there); move nothing",
    )
    redrive.set_defaults(handler=cmd_redrive)


def cmd_peek_dlq(args: argparse.Namespace) -> int:
    sqs = client("sqs", os.environ.get("QUEUE_URL") or os.environ.get("DEAD_LETTER_QUEUE_URL"))
    url = dlq_url(sqs)
    letters = admin.peek(sqs, url, limit=args.limit)
    records = []
    for letter in letters:
        record = asdict(letter)
        if not args.body:
            del record["body"]
        records.append(record)

    def human() -> str:
        lines = [f"{len(letters)} dead-lettered message(s) in {url} (nothing consumed)"]
        for letter in letters:
            source = (
                f", source message {letter.source_message_id}" if letter.source_message_id else ""
            )
            lines.append(
                f"- {letter.message_id}  {letter.error_type}  sent {letter.sent_at or '?'}"
                f"{source}, dead-lettered after {letter.receive_count} receive(s)"
            )
            lines.append(f"    reason: {letter.reason}")
            if args.body:
                lines.append(f"    body:   {letter.body}")
        return "\n".join(lines)

    emit(args, {"url": url, "count": len(letters), "messages": records}, human)
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    url = queue_url()
    sqs = client("sqs", url)
    source_dlq = dlq_url(sqs)
    if args.dry_run:
        return dry_run(args, sqs, source_dlq, url)
    try:
        result = admin.redrive(
            sqs, source_dlq, url, method=args.method, limit=args.limit, rate=args.rate
        )
    except Exception as exc:
        if args.method != "move-task" or not is_aws_error(exc):
            raise
        raise CommandFailed(move_task_failure(exc, sqs)) from None

    def human() -> str:
        if result.method == "move-task":
            return (
                f"started StartMessageMoveTask {result.task_handle}\n"
                f"  from {source_dlq}\n  to   {url}\n"
                "messages move asynchronously; watch with `poller status`"
            )
        lines = [f"moved {result.moved} message(s) from {source_dlq} to {url} (copy)"]
        if result.fallback_because:
            lines.append(f"  why copy: {result.fallback_because}")
        if result.send_failures or result.delete_failures:
            lines.append(
                f"  {result.send_failures} send failure(s) (left in the DLQ), "
                f"{result.delete_failures} delete failure(s) (now in both queues)"
            )
        return "\n".join(lines)

    emit(args, {"from": source_dlq, "to": url, **result.to_dict()}, human)
    return 1 if result.send_failures or result.delete_failures else 0


#: How each --method moves the messages (a --limit always takes the copy loop).
_HOW = {
    "auto": "StartMessageMoveTask (the copy loop where SQS has none)",
    "move-task": "StartMessageMoveTask",
    "copy": "the copy loop",
}
#: How many dead letters a dry run reads for their reasons.
DRY_RUN_READ = 100


def dry_run(args: argparse.Namespace, sqs: Any, source_dlq: str, url: str) -> int:
    """What `redrive` would move, read without consuming anything: the DLQ's depth, the
    method, and the reasons of the messages (as `peek-dlq` reads them)."""
    depth = admin.status(sqs, source_dlq)
    would_move = depth.visible if args.limit is None else min(args.limit, depth.visible)
    method = "copy" if args.limit is not None else args.method
    letters = admin.peek(sqs, source_dlq, limit=min(would_move, DRY_RUN_READ)) if would_move else []
    grouped = admin.reasons(letters)
    data = {
        "dry_run": True,
        "from": source_dlq,
        "to": url,
        "method": method,
        "would_move": would_move,
        "dead_letter_queue": {"messages": depth.visible, "in_flight": depth.in_flight},
        "reasons_read": len(letters),
        "reasons": [{"count": n, "error_type": t, "reason": r} for n, t, r in grouped],
        "messages": [
            {"message_id": x.message_id, "error_type": x.error_type, "reason": x.reason}
            for x in letters
        ],
    }

    def human() -> str:
        of = f" (at most {args.limit} of {depth.visible})" if args.limit is not None else ""
        lines = [
            f"dry run: would move {would_move} message(s){of} from {source_dlq} to {url}"
            f" by {_HOW[method]}; nothing was moved"
        ]
        if depth.in_flight:
            lines.append(f"  ({depth.in_flight} more in flight in the DLQ, not counted)")
        if grouped:
            lines.append(f"  why they are there ({len(letters)} read, nothing consumed):")
            lines += [f"    {n:>4} x {reason_text(t, r)}" for n, t, r in grouped]
        return "\n".join(lines)

    emit(args, data, human)
    return 0


def move_task_failure(exc: BaseException, sqs: Any) -> str:
    """Why --method move-task did nothing, in one line (never the endpoint's HTML page)."""
    response = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(response.get("Error", {}).get("Code", ""))
    endpoint = getattr(getattr(sqs, "meta", None), "endpoint_url", "this endpoint")
    if status in (500, 501) or code in _NOT_OFFERED_CODES:
        return (
            f"StartMessageMoveTask is not available on {endpoint} (HTTP {status}); "
            "nothing was moved. Use --method copy (or auto, which falls back to it)."
        )
    return f"{aws_error_text(exc)}; nothing was moved"
