"""Run the real handler once in this process, as the Lambda runtime would, and report.

    python -m devstack.invoke [--timeout SECONDS] [--event FILE]

The poller's configuration comes from the environment (as in Lambda). The last line of
standard output is one JSON object: the handler's summary (or its error), the peak RSS of
this process, the SQS API calls made, and how long importing the handler took. The fault
campaign runs this in a subprocess so it can kill it mid-run; the benchmark runs it to
measure memory and calls.

    python -m devstack.invoke --sqs-log FILE --label NAME

also appends one JSON line per ReceiveMessage, DeleteMessageBatch,
ChangeMessageVisibilityBatch and SendMessage (dead-lettering) to FILE (see `log_sqs_calls`),
so that a test can tell, even for a run it killed, what the run held and when it deleted it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .context import LambdaContext


def count_sqs_calls() -> Counter[str]:
    """Count every SQS API call boto3 makes in this process (a botocore event hook)."""
    import boto3

    calls: Counter[str] = Counter()

    def on_call(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    boto3.DEFAULT_SESSION or boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.sqs.*", on_call)
    return calls


#: The SQS operations `log_sqs_calls` records.
LOGGED_OPERATIONS = (
    "ReceiveMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibilityBatch",
    "SendMessage",
)


def log_sqs_calls(path: Path, label: str) -> None:
    """Append one JSON line to `path` per logged SQS call that got an answer:

    {"run": label, "op": "ReceiveMessage", "t0": <before the request>, "t1": <after the answer>,
     "params": {... VisibilityTimeout, Entries, QueueUrl ...}, "result": {...}}

    For a receive, `result.messages` lists [MessageId, ReceiptHandle, ApproximateReceiveCount];
    for a batch call, `result.ok` and `result.failed` list the entry Ids. Times are
    `time.monotonic()`: on Linux that is CLOCK_MONOTONIC, one clock for every process on the
    machine, so they compare with the Airtable emulator's write log. Each line is one
    write(2) on an O_APPEND descriptor, so a SIGKILL loses nothing already logged. Message
    bodies are not logged (they can be 1 MiB).
    """
    import boto3

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["devstack_t0"] = time.monotonic()
        context["devstack_params"] = {k: v for k, v in params.items() if k != "MessageBody"}

    def after(model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if model.name not in LOGGED_OPERATIONS or "devstack_t0" not in context:
            return
        result: dict[str, Any]
        if model.name == "ReceiveMessage":
            result = {
                "messages": [
                    [
                        m["MessageId"],
                        m["ReceiptHandle"],
                        int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                    ]
                    for m in parsed.get("Messages", [])
                ]
            }
        elif model.name == "SendMessage":
            result = {"message_id": parsed.get("MessageId")}
        else:
            result = {
                "ok": [e["Id"] for e in parsed.get("Successful", [])],
                "failed": [e["Id"] for e in parsed.get("Failed", [])],
            }
        line = {
            "run": label,
            "op": model.name,
            "t0": context["devstack_t0"],
            "t1": time.monotonic(),
            "params": context["devstack_params"],
            "result": result,
        }
        os.write(fd, (json.dumps(line) + "\n").encode())

    boto3.DEFAULT_SESSION or boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    for operation in LOGGED_OPERATIONS:
        boto3.DEFAULT_SESSION.events.register(f"before-parameter-build.sqs.{operation}", before)
        boto3.DEFAULT_SESSION.events.register(f"after-call.sqs.{operation}", after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.invoke")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="Lambda timeout to emulate, seconds"
    )
    parser.add_argument("--event", type=Path, help="event JSON file (default: a scheduled event)")
    parser.add_argument(
        "--sqs-log", type=Path, help="append a JSON line per SQS call (see log_sqs_calls)"
    )
    parser.add_argument("--label", default="run", help="the run's name in the SQS log")
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text()) if args.event else {"detail-type": "Scheduled Event"}

    started = time.perf_counter()
    from poller.handler import lambda_handler

    import_ms = (time.perf_counter() - started) * 1000
    calls = count_sqs_calls()
    if args.sqs_log:
        log_sqs_calls(args.sqs_log, args.label)
    context = LambdaContext(timeout_ms=int(args.timeout * 1000))
    report: dict[str, Any] = {"import_ms": round(import_ms, 1)}
    status = 0
    invoked = time.perf_counter()
    try:
        report["summary"] = lambda_handler(event, context)
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["summary"] = getattr(exc, "summary", None)
        status = 1
    report["invoke_ms"] = round((time.perf_counter() - invoked) * 1000, 1)
    report["sqs_calls"] = dict(calls)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
