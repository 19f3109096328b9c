"""A producer app using AWS's SQS Extended Client, in a process of its own.

The library decorates every boto3 SQS client of the process it runs in once its session has
made one (`ReceiveMessage` then rewrites receipt handles), so it must not share the test's
process with the poller. Reads one JSON object on stdin: `endpoint`, `queue_url`, `bucket`,
`legacy`, `always` (offload every body, not only those over SQS's 256 KiB) and `bodies`
(strings), and sends each body with `send_message`.
"""

from __future__ import annotations

import json
import sys

import boto3
from sqs_extended_client import SQSExtendedClientSession

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def main() -> None:
    job = json.load(sys.stdin)
    session = SQSExtendedClientSession(region_name=job["region"], **CREDENTIALS)
    sqs = session.client("sqs", endpoint_url=job["endpoint"])
    sqs.s3_client = boto3.client(
        "s3", endpoint_url=job["endpoint"], region_name=job["region"], **CREDENTIALS
    )
    sqs.large_payload_support = job["bucket"]
    sqs.always_through_s3 = job["always"]
    sqs.use_legacy_attribute = job["legacy"]
    for body in job["bodies"]:
        sqs.send_message(QueueUrl=job["queue_url"], MessageBody=body)


if __name__ == "__main__":
    main()
