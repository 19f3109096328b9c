"""`python -m devstack run|serve`: the poller on the local stack, no AWS account, no Docker.

run    start moto's SQS server and the Airtable emulator, create the queue and its DLQ,
       send the sample messages, invoke the real handler once with a scheduled event and a
       Lambda-like context, then print the summary, the rows in the table and the DLQ.
serve  start the same stack and keep it up (for `sam local invoke` with Docker, or for
       pointing the `poller` CLI at it) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MESSAGES = ROOT / "events" / "messages" / "donations.jsonl"
DEFAULT_EVENT = ROOT / "events" / "scheduled-event.json"


def read_messages(path: Path) -> list[str]:
    """One message body per line, verbatim (so that bad bodies can be sent too)."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "serve"):
        p = sub.add_parser(name)
        p.add_argument(
            "--sqs-port", type=int, default=int(os.environ.get("DEVSTACK_SQS_PORT", 9324))
        )
        p.add_argument(
            "--airtable-port", type=int, default=int(os.environ.get("DEVSTACK_AIRTABLE_PORT", 8787))
        )
        p.add_argument("--queue-name", default="donations")
        p.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to bind; 0.0.0.0 lets a container (sam local invoke) reach the stack",
        )
    run = sub.choices["run"]
    run.add_argument(
        "--messages", type=Path, default=DEFAULT_MESSAGES, help="JSONL file: one body per line"
    )
    run.add_argument(
        "--event", type=Path, default=DEFAULT_EVENT, help="the scheduled event to invoke with"
    )
    run.add_argument(
        "--timeout", type=int, default=60, help="the Lambda timeout to emulate, seconds"
    )
    args = parser.parse_args(argv)

    from .stack import LocalStack

    try:
        stack_cm = LocalStack.start(
            host=args.host,
            sqs_port=args.sqs_port,
            airtable_port=args.airtable_port,
            queue_name=args.queue_name,
        )
        stack = stack_cm.__enter__()
    except OSError as exc:
        print(
            f"could not start the local stack on ports {args.sqs_port}/{args.airtable_port}: {exc}\n"
            "set DEVSTACK_SQS_PORT / DEVSTACK_AIRTABLE_PORT to free ports",
            file=sys.stderr,
        )
        return 2
    try:
        if args.command == "serve":
            return serve(stack)
        return run_once(stack, args.messages, args.event, args.timeout)
    finally:
        stack_cm.__exit__(None, None, None)


def serve(stack: Any) -> int:
    print(f"SQS (moto)        {stack.sqs_endpoint}")
    print(f"Airtable emulator {stack.airtable_url}")
    print(f"QUEUE_URL             {stack.queue_url}")
    print(f"DEAD_LETTER_QUEUE_URL {stack.dlq_url}")
    print("environment for the poller:")
    print(json.dumps(stack.poller_env(), indent=2))
    print("serving; Ctrl-C to stop", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    return 0


def run_once(stack: Any, messages_path: Path, event_path: Path, timeout_s: int) -> int:
    from .context import LambdaContext
    from .stack import BASE_ID, TABLE

    bodies = read_messages(messages_path)
    stack.send_messages(bodies)
    print(
        f"sent {len(bodies)} messages from {messages_path.relative_to(ROOT)} to {stack.queue_url}"
    )

    os.environ.update(stack.poller_env(POWERTOOLS_METRICS_DISABLED="true"))
    event = (
        json.loads(event_path.read_text())
        if event_path.exists()
        else {"detail-type": "Scheduled Event"}
    )

    from poller.handler import lambda_handler

    print(
        f"invoking poller.handler.lambda_handler with {event_path.name} (timeout {timeout_s} s)\n",
        flush=True,
    )
    try:
        summary: dict[str, Any] = lambda_handler(event, LambdaContext(timeout_ms=timeout_s * 1000))
        status = 0
    except Exception as exc:
        summary = getattr(exc, "summary", {"error": str(exc)})
        print(f"\nthe run failed: {exc}", file=sys.stderr)
        status = 1

    print("\n== run summary")
    print(json.dumps(summary, indent=2))
    rows = stack.rows()  # the emulator's own view: reading through the API would spend rate limit
    print(f"\n== {len(rows)} rows in the Airtable table {TABLE!r} of base {BASE_ID}")
    columns = ["Id", "Creation Date", "Donor Display Name", "Donation Amount"]
    print("  ".join(f"{c:<36}" if c == "Id" else f"{c:<24}" for c in columns))
    for row in sorted(rows, key=lambda r: r["fields"].get("Creation Date", "")):
        fields = row["fields"]
        print(
            "  ".join(
                f"{fields.get(c)!s:<36}" if c == "Id" else f"{fields.get(c)!s:<24}" for c in columns
            )
        )
    letters = stack.dead_letters()
    print(f"\n== {len(letters)} messages in the dead-letter queue")
    for body, attributes in letters:
        print(f"- {attributes.get('poller.reason')}\n    body: {body[:100]}")
    counts = stack.counts()
    print(f"\n== source queue: {counts['visible']} visible, {counts['in_flight']} in flight")
    return status


if __name__ == "__main__":
    sys.exit(main())
