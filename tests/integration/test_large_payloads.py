"""Bodies offloaded to S3 by AWS's SQS Extended Client, sent by that library itself to moto's
SQS and S3 servers, drained by the real handler in one warm container."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from devstack import donation
from devstack.stack import REGION, LocalStack, moto_client
from harness import EMPTY, rows_by_id

PRODUCER = Path(__file__).with_name("extended_producer.py")
#: SQS's largest body: a producer offloads anything bigger
SQS_MAX_BODY = 262_144


def key(n: int) -> str:
    return str(donation(n)["Id"])


def s3_client(stack: LocalStack) -> Any:
    return moto_client("s3", stack.sqs_endpoint)


class Producer:
    """The app's side: AWS's Extended Client on the stack's queue, offloading to `bucket`
    (run in a process of its own: `extended_producer`)."""

    def __init__(self, stack: LocalStack, *, legacy: bool = False, always: bool = True) -> None:
        self.stack = stack
        self.s3 = s3_client(stack)
        self.bucket = f"payloads-{uuid.uuid4().hex[:8]}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.legacy, self.always = legacy, always

    def send(self, *bodies: dict[str, Any]) -> None:
        job = {
            "region": REGION,
            "endpoint": self.stack.sqs_endpoint,
            "queue_url": self.stack.queue_url,
            "bucket": self.bucket,
            "legacy": self.legacy,
            "always": self.always,
            "bodies": [json.dumps(b) for b in bodies],
        }
        subprocess.run(
            [sys.executable, str(PRODUCER)], input=json.dumps(job), text=True, check=True
        )

    def keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket)
        return [o["Key"] for o in listed.get("Contents", [])]


def test_offloaded_donations_are_written_and_their_objects_deleted_after_the_message(
    stack: LocalStack, invoke
) -> None:
    # GIVEN two donations offloaded to S3 by the Extended Client, one of them larger than
    # SQS allows in a body (an unmapped key carries 300 kB)
    producer = Producer(stack)
    producer.send(donation(1), donation(2, Notes="x" * 300_000))
    assert len(producer.keys()) == 2
    # WHEN the handler runs
    summary = invoke()
    # THEN both rows hold the payloads' values, the queue is empty, and so is the bucket
    rows = rows_by_id(stack)
    assert rows[key(1)]["Donation Amount"] == donation(1)["DonationAmount"]
    assert rows[key(2)]["Donation Amount"] == donation(2)["DonationAmount"]
    assert summary["written"] == 2 and summary["deleted"] == 2
    assert stack.counts() == EMPTY and stack.dead_letters() == []
    assert producer.keys() == []


def test_the_legacy_pointer_class_and_size_attribute_are_read_too(stack: LocalStack, invoke):
    # GIVEN a donation offloaded with the Java library's legacy names
    # (com.amazon.sqs.javamessaging.MessageS3Pointer, SQSLargePayloadSize)
    producer = Producer(stack, legacy=True)
    producer.send(donation(7))
    raw = stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0)
    assert "MessageS3Pointer" in raw["Messages"][0]["Body"]
    # WHEN the handler runs
    invoke()
    # THEN the row is written and the object deleted
    assert rows_by_id(stack)[key(7)]["Donation Amount"] == donation(7)["DonationAmount"]
    assert producer.keys() == []


def test_a_pointer_to_a_missing_object_is_dead_lettered_naming_the_object(
    stack: LocalStack, invoke
) -> None:
    # GIVEN an offloaded donation whose object was deleted before the run, and a good one
    producer = Producer(stack)
    producer.send(donation(11))
    (gone,) = producer.keys()
    producer.s3.delete_object(Bucket=producer.bucket, Key=gone)
    producer.send(donation(12))
    # WHEN the handler runs
    invoke()
    # THEN the good one is written; the other is in the DLQ, its reason naming the object
    assert set(rows_by_id(stack)) == {key(12)}
    ((body, attributes),) = stack.dead_letters()
    assert f"s3://{producer.bucket}/{gone}" in attributes["poller.reason"]
    assert "PayloadS3Pointer" in body  # the pointer, as the producer sent it
    assert stack.counts() == EMPTY


def test_an_offloaded_poison_payload_keeps_its_object_and_its_dead_letter_points_at_it(
    stack: LocalStack, invoke
) -> None:
    # GIVEN an offloaded donation Airtable rejects (its amount is not a number)
    producer = Producer(stack)
    producer.send(donation(21, DonationAmount="twenty"))
    (key,) = producer.keys()
    # WHEN the handler runs
    invoke()
    # THEN the dead letter is the pointer, with the reason, and the object is still there
    ((body, attributes),) = stack.dead_letters()
    assert json.loads(body)[1] == {"s3BucketName": producer.bucket, "s3Key": key}
    assert "INVALID_VALUE_FOR_COLUMN" in attributes["poller.reason"]
    assert producer.keys() == [key]
    assert rows_by_id(stack) == {}


def test_a_warm_container_reads_pointers_and_plain_bodies_run_after_run(
    stack: LocalStack, invoke
) -> None:
    # GIVEN a producer that offloads only what is too large for SQS
    producer = Producer(stack, always=False)
    for run in range(3):
        # WHEN each run finds one small and one large donation
        producer.send(donation(100 + run), donation(200 + run, Notes="y" * (SQS_MAX_BODY + 1)))
        summary = invoke()
        # THEN both are written, and only the large one had an object, now deleted
        assert summary["written"] == 2
        assert producer.keys() == []
    assert set(rows_by_id(stack)) == {key(n) for n in (100, 101, 102, 200, 201, 202)}
