"""How moto's SQS server slows down with messages held in flight.

`python -m bench.moto_inflight` sends N messages to a fresh queue, receives them all (so they
are in flight, hidden for 10 minutes), sends 50 more, and times receive + delete of those 50,
for N = 0, 500, 1,000 and 1,500. moto scans every message of the queue, in flight or not, on
each call; real SQS does not. It is why the two-base bench's "other base during a lockout"
figure is moto's ceiling rather than the poller's: a 30 s lockout of one base parks up to
~1,440 of its messages in flight while the other base is written.
"""

from __future__ import annotations

import time
from typing import Any

from devstack.stack import moto_client, moto_sqs

VISIBLE = 50
HELD = (0, 500, 1_000, 1_500)


def _rate(sqs: Any, held: int) -> float:
    queue = sqs.create_queue(QueueName=f"inflight-{held}")["QueueUrl"]
    for _ in range(0, held, 10):
        sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(j), "MessageBody": "held"} for j in range(10)]
        )
    received = 0
    while received < held:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=600)
        received += len(answer.get("Messages", []))
    for _ in range(0, VISIBLE, 10):
        sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(j), "MessageBody": "visible"} for j in range(10)]
        )
    started, done = time.monotonic(), 0
    while done < VISIBLE:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=600)
        messages = answer.get("Messages", [])
        if messages:
            entries = [
                {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(messages)
            ]
            sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
        done += len(messages)
    return VISIBLE / (time.monotonic() - started)


def main() -> None:
    with moto_sqs() as endpoint:
        sqs = moto_client("sqs", endpoint)
        for held in HELD:
            print(
                f"{held:5d} in flight: {_rate(sqs, held):6.1f} msgs/s "
                f"(receive + delete of {VISIBLE} visible)"
            )


if __name__ == "__main__":
    main()
