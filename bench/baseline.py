"""The serial baseline: the straightforward loop the poller is measured against.

    python -m bench.baseline --sqs-endpoint URL --queue-url URL --api-url URL --count N

receive 10 (long poll 1 s) -> pyairtable `Table.batch_create` (default `Api`, so
pyairtable's default retry) -> DeleteMessageBatch, one step after the other, with no
pacing and no overlap. It stops after `count` messages or at the first empty receive,
and prints one JSON line: {"baseline": {...}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from devstack.factories import DONATION_FIELD_MAP
from devstack.stack import BASE_ID, TABLE, TOKEN, sqs_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--sqs-endpoint", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--base", default=BASE_ID)
    parser.add_argument("--table", default=TABLE)
    parser.add_argument("--token", default=TOKEN)
    args = parser.parse_args(argv)

    from pyairtable import Api

    sqs = sqs_client(args.sqs_endpoint)
    table = Api(args.token, endpoint_url=args.api_url).table(args.base, args.table)
    received = written = deleted = requests = receives = deletes = 0
    errors: list[str] = []
    started = time.perf_counter()
    while received < args.count:
        messages = sqs.receive_message(
            QueueUrl=args.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        receives += 1
        if not messages:
            break
        received += len(messages)
        records = [_fields(m["Body"]) for m in messages]
        try:
            created = table.batch_create(records)
        except Exception as exc:  # a plain loop just moves on; the messages come back later
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        finally:
            requests += 1
        written += len(created)
        response = sqs.delete_message_batch(
            QueueUrl=args.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        deletes += 1
        deleted += len(response.get("Successful", []))
    elapsed = time.perf_counter() - started
    report: dict[str, Any] = {
        "received": received,
        "written": written,
        "deleted": deleted,
        "write_requests": requests,
        "sqs_calls": {"ReceiveMessage": receives, "DeleteMessageBatch": deletes},
        "elapsed_s": round(elapsed, 3),
        "errors": errors[:20],
        "error_count": len(errors),
    }
    print(json.dumps({"baseline": report}), flush=True)
    return 0


def _fields(body: str) -> dict[str, Any]:
    data = json.loads(body)
    return {field: data[key] for key, field in DONATION_FIELD_MAP.items() if key in data}


if __name__ == "__main__":
    sys.exit(main())
