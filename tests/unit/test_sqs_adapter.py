"""The SQS adapter's memory of offloaded bodies: a pointer is kept only while its message is
held, so a warm container that releases offloaded messages run after run does not grow."""

from __future__ import annotations

import io
import json
from typing import Any

from poller.sqs import POINTER_CLASSES, SqsQueue


class FakeSqs:
    """Just enough of boto3's SQS and S3 clients: one offloaded message per receive."""

    def __init__(self) -> None:
        self.receives = 0

    def receive_message(self, **request: Any) -> dict[str, Any]:
        self.receives += 1
        pointer = [POINTER_CLASSES[0], {"s3BucketName": "payloads", "s3Key": "k1"}]
        return {
            "Messages": [
                {
                    "MessageId": "m1",
                    "ReceiptHandle": f"receipt-{self.receives}",
                    "Body": json.dumps(pointer),
                    "Attributes": {"ApproximateReceiveCount": str(self.receives)},
                }
            ]
        }

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]):
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(b'{"Id": "d1"}')}


def test_a_released_offloaded_message_leaves_no_pointer_behind() -> None:
    # GIVEN a queue whose message is offloaded to S3
    fake = FakeSqs()
    queue = SqsQueue(fake, "https://sqs.example/q", s3=lambda: fake)
    for _ in range(3):
        # WHEN it is received (its body read from S3) and released, run after run
        [message] = queue.receive(max_messages=10, wait_seconds=0, visibility_seconds=30)
        assert message.body == '{"Id": "d1"}'
        assert queue.release([message]) == [message]
    # THEN the adapter keeps no pointer of a receipt that can no longer be used
    assert queue._pointers == {}
