"""The SQS adapter (`QueuePort` over boto3): batch calls whose `Failed` entries are always
read; dead letters and requeued copies fitted within SQS's limits (10 message attributes;
1 MiB for the body and every attribute's name, type and value: the SQS developer guide's
message quotas); bodies offloaded to S3 by the SQS Extended Client (docs/routes.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .errors import DeadLetterQueueMissing, aws_error_code
from .letters import SENT_TIMESTAMP, SOURCE_ID, copy_request, dead_letter_request
from .model import Attribute, Message, Verdict

log = logging.getLogger(__name__)

SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId", "SequenceNumber"]
#: An Extended Client body (AWS's libraries; documented format) is `[class, {"s3BucketName":
#: ..., "s3Key": ...}]`, with the attribute `ExtendedPayloadSize` (legacy: `SQSLargePayloadSize`).
POINTER_CLASSES = (
    "software.amazon.payloadoffloading.PayloadS3Pointer",
    "com.amazon.sqs.javamessaging.MessageS3Pointer",
)


@dataclass(frozen=True)
class QueueFacts:
    """What `GetQueueAttributes` says of the source queue before a run."""

    visible: int
    in_flight: int
    delayed: int
    max_receive_count: int | None
    #: the redrive policy's dead-letter queue, if any
    dead_letter_target_arn: str | None = None

    @property
    def idle(self) -> bool:
        return self.visible == 0 and self.delayed == 0


class SqsQueue:
    """`QueuePort` over a boto3 SQS client (real SQS, or moto's server in tests). `s3` makes
    an S3 client when the first Extended Client body arrives."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        dead_letter_queue_url: str | None = None,
        *,
        s3: Callable[[], Any] | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self._s3_factory = s3
        self._s3: Any = None
        self._pointers: dict[str, tuple[str, str]] = {}  # receipt -> (bucket, key)

    @property
    def has_dead_letter_queue(self) -> bool:
        return bool(self.dead_letter_queue_url)

    def facts(self) -> QueueFacts:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
                "RedrivePolicy",
            ],
        )["Attributes"]
        policy = json.loads(attributes.get("RedrivePolicy") or "{}")
        limit = policy.get("maxReceiveCount")
        return QueueFacts(
            visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
            max_receive_count=int(limit) if limit is not None else None,
            dead_letter_target_arn=policy.get("deadLetterTargetArn"),
        )

    def dead_letter_queue_exists(self) -> bool:
        if not self.dead_letter_queue_url:
            return True
        try:
            self.client.get_queue_attributes(
                QueueUrl=self.dead_letter_queue_url, AttributeNames=["QueueArn"]
            )
        except Exception as exc:
            if _missing_queue(exc):
                return False
            raise
        return True

    def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]:
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_seconds,
            MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
            MessageAttributeNames=["All"],
        )
        return [self._message(raw) for raw in response.get("Messages", [])]

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        deleted = self._batch(
            self.client.delete_message_batch, messages, lambda m: {"ReceiptHandle": m.receipt}
        )
        for message in deleted:
            self._delete_payload(message)
        return deleted

    def release(self, messages: Sequence[Message]) -> list[Message]:
        released = self._batch(
            self.client.change_message_visibility_batch,
            messages,
            lambda m: {"ReceiptHandle": m.receipt, "VisibilityTimeout": 0},
        )
        for message in released:  # its next receive has a new receipt
            self._pointers.pop(message.receipt, None)
        return released

    def dead_letter(self, letters: Sequence[Verdict]) -> list[Message]:
        """Send each letter on its own: a poison body can be close to 1 MiB, and a batch of
        them would be refused as a whole."""
        url = self.dead_letter_queue_url
        if not url:
            return []
        stored = []
        for letter in letters:
            try:
                self._send_copy(letter.message, partial(dead_letter_request, letter, url))
            except Exception as exc:
                if _missing_queue(exc):
                    raise DeadLetterQueueMissing(url) from exc
                log.error(
                    "could not dead-letter message %s: %s; it stays in the source queue",
                    letter.message.id,
                    exc,
                )
            else:
                stored.append(letter.message)
        return stored

    def requeue(self, messages: Sequence[Message]) -> list[Message]:
        copied = []
        for message in messages:
            try:
                self._send_copy(message, partial(copy_request, message, self.queue_url))
            except Exception as exc:
                log.error("could not requeue message %s: %s", message.id, exc)
            else:
                copied.append(message)
        return copied

    def _send_copy(self, message: Message, request: Callable[[str], dict[str, Any]]) -> None:
        """Send `request(body)`, `body` as SQS holds it (an Extended Client pointer stays a
        pointer, so the copy keeps the S3 object)."""
        pointer = self._pointers.get(message.receipt)
        body = message.body
        if pointer:
            body = json.dumps(
                [POINTER_CLASSES[0], {"s3BucketName": pointer[0], "s3Key": pointer[1]}]
            )
        self.client.send_message(**request(body))
        self._pointers.pop(message.receipt, None)

    def _message(self, raw: dict[str, Any]) -> Message:
        system = raw.get("Attributes", {})
        attributes = {
            name: _attribute(value) for name, value in raw.get("MessageAttributes", {}).items()
        }
        original_id = attributes.pop(SOURCE_ID, None)
        original_sent = attributes.pop(SENT_TIMESTAMP, None)
        body, unreadable = raw.get("Body", ""), None
        pointer = _pointer(body)
        if pointer is not None:
            self._pointers[raw["ReceiptHandle"]] = pointer
            body, unreadable = self._payload(*pointer)
        return Message(
            id=str(original_id.value) if original_id else raw["MessageId"],
            receipt=raw["ReceiptHandle"],
            body=body,
            receive_count=int(system.get("ApproximateReceiveCount", 1)),
            sent_at_ms=int(original_sent.value)
            if original_sent
            else int(system.get("SentTimestamp", 0)),
            group_id=system.get("MessageGroupId"),
            sequence=int(system.get("SequenceNumber", 0)),
            attributes=attributes,
            unreadable=unreadable,
        )

    def _payload(self, bucket: str, key: str) -> tuple[str, str | None]:
        """The offloaded body, or "" and why it could not be read."""
        try:
            if self._s3 is None:
                if self._s3_factory is None:
                    raise RuntimeError("no S3 client")
                self._s3 = self._s3_factory()
            data = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return bytes(data).decode("utf-8"), None
        except Exception as exc:
            code = aws_error_code(exc, type(exc).__name__)
            return "", (
                f"its body is in S3 (s3://{bucket}/{key}, SQS Extended Client) and could not be "
                f"read ({code}); check that the object exists and that the function may call "
                "s3:GetObject on the bucket (the template's LargePayloadBucket)"
            )

    def _delete_payload(self, message: Message) -> None:
        pointer = self._pointers.pop(message.receipt, None)
        if pointer is None or self._s3 is None:
            return
        try:
            self._s3.delete_object(Bucket=pointer[0], Key=pointer[1])
        except Exception as exc:
            log.warning(
                "the message was deleted, but not its S3 payload s3://%s/%s: %s", *pointer, exc
            )

    def _batch(
        self, call: Any, messages: Sequence[Message], entry: Callable[[Message], dict[str, Any]]
    ) -> list[Message]:
        if not messages:
            return []
        if len(messages) > 10:
            raise ValueError(f"a batch takes at most 10 entries, got {len(messages)}")
        by_id = {str(i): m for i, m in enumerate(messages)}
        response = call(
            QueueUrl=self.queue_url, Entries=[{"Id": i, **entry(m)} for i, m in by_id.items()]
        )
        for failure in response.get("Failed", []):
            log.warning(
                "%s failed for message %s: %s %s",
                call.__name__,
                by_id[failure["Id"]].id,
                failure.get("Code"),
                failure.get("Message", ""),
            )
        return [by_id[s["Id"]] for s in response.get("Successful", [])]


def _attribute(value: dict[str, Any]) -> Attribute:
    data_type = str(value.get("DataType", "String"))
    if "BinaryValue" in value:
        return Attribute(data_type, bytes(value["BinaryValue"]))
    return Attribute(data_type, str(value.get("StringValue", "")))


def _pointer(body: str) -> tuple[str, str] | None:
    head = body[:200]
    if not head.lstrip().startswith("[") or not any(c in head for c in POINTER_CLASSES):
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not a pointer: the router says what is wrong
        return None
    match data:
        case [str() as name, {"s3BucketName": str() as bucket, "s3Key": str() as key}] if (
            name in POINTER_CLASSES
        ):
            return bucket, key
    return None


def _missing_queue(exc: BaseException) -> bool:
    return aws_error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
