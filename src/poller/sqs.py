"""SQS adapter: batch calls whose `Failed` entries are always read."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .model import DeadLetter, Message

log = logging.getLogger(__name__)

SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId", "SequenceNumber"]
#: SQS allows 10 message attributes; the poller adds these to a dead-lettered message.
REASON_ATTRIBUTES = (
    "poller.reason",
    "poller.error_type",
    "poller.source_message_id",
    "poller.receive_count",
)
MAX_REASON_CHARS = 1000
#: An error type is cut to this many characters (Airtable's longest is about 40), so that
#: the room it needs has a known bound.
MAX_ERROR_TYPE_CHARS = 64
#: The most a `poller.error_type` attribute counts towards the 1 MiB: its name, type, value.
LARGEST_ERROR_TYPE_BYTES = len("poller.error_type") + len("String") + MAX_ERROR_TYPE_CHARS
#: SQS's limit for one message: the body and every attribute's name, type and value together.
MAX_MESSAGE_BYTES = 1_048_576


class SqsQueue:
    """`QueuePort` over a boto3 SQS client (real SQS, or moto's server in tests)."""

    def __init__(
        self, client: Any, queue_url: str, dead_letter_queue_url: str | None = None
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url

    @property
    def has_dead_letter_queue(self) -> bool:
        return bool(self.dead_letter_queue_url)

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
        return [_message(m) for m in response.get("Messages", [])]

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        return self._batch(
            self.client.delete_message_batch,
            "DeleteMessageBatch",
            messages,
            lambda m: {"ReceiptHandle": m.receipt},
        )

    def release(self, messages: Sequence[Message]) -> list[Message]:
        return self._batch(
            self.client.change_message_visibility_batch,
            "ChangeMessageVisibilityBatch",
            messages,
            lambda m: {"ReceiptHandle": m.receipt, "VisibilityTimeout": 0},
        )

    def dead_letter(self, letters: Sequence[DeadLetter]) -> list[Message]:
        """Send each letter on its own: a poison body can be close to 1 MiB, and a batch
        of them would be refused as a whole."""
        if not self.dead_letter_queue_url:
            return []
        stored = []
        for letter in letters:
            try:
                self.client.send_message(**self._dead_letter_request(letter))
            except Exception as exc:
                log.error(
                    "could not dead-letter message %s: %s; it stays in the source queue",
                    letter.message.id,
                    exc,
                )
                continue
            stored.append(letter.message)
        return stored

    def _dead_letter_request(self, letter: DeadLetter) -> dict[str, Any]:
        message = letter.message
        body = message.body if message.body else " "
        error_type = _text(letter.error_type[:MAX_ERROR_TYPE_CHARS])
        reason = letter.reason[:MAX_REASON_CHARS] or "-"
        others = {
            "poller.source_message_id": _text(message.id),
            "poller.receive_count": {
                "DataType": "Number",
                "StringValue": str(message.receive_count),
            },
        }
        for name, value in message.attributes.items():
            others.setdefault(name, _text(value))
        # Attributes count towards SQS's 1 MiB limit with the body: a poison body close to
        # 1 MiB plus a long reason would be refused, and the message would stay in the source
        # queue for the redrive policy to move without any reason. Fit them in the room
        # left: the error type first, then the reason in what remains (shortened if it
        # must), so that `poller.error_type` without `poller.reason` always means "no room
        # for a reason" (what `admin._letter` reads), and a reason never stands without its
        # type. When not even the type fits, neither goes, and the room left is smaller
        # than `LARGEST_ERROR_TYPE_BYTES`: that is how such a letter is known.
        room = MAX_MESSAGE_BYTES - len(body.encode("utf-8"))
        attributes: dict[str, Any] = {}
        type_bytes = _attribute_bytes("poller.error_type", error_type)
        if type_bytes <= room:
            attributes["poller.error_type"] = error_type
            room -= type_bytes
            overhead = len("poller.reason") + len("String")
            fitted = _fit(reason, room - overhead)
            if fitted:
                attributes["poller.reason"] = _text(fitted)
                room -= _attribute_bytes("poller.reason", attributes["poller.reason"])
        for name, value in others.items():
            if len(attributes) >= 10:
                break
            size = _attribute_bytes(name, value)
            if size <= room:
                attributes[name] = value
                room -= size
        if "poller.reason" not in attributes:
            log.warning(
                "no room for a reason next to the %d-byte body of message %s; its reason: %s",
                len(body.encode("utf-8")),
                message.id,
                letter.reason,
            )
        request: dict[str, Any] = {
            "QueueUrl": self.dead_letter_queue_url,
            "MessageBody": body,
            "MessageAttributes": attributes,
        }
        if str(self.dead_letter_queue_url).endswith(".fifo"):
            request["MessageGroupId"] = message.group_id or "dead-letters"
            request["MessageDeduplicationId"] = message.id
        return request

    def _batch(
        self, call: Any, name: str, messages: Sequence[Message], entry: Any
    ) -> list[Message]:
        if not messages:
            return []
        if len(messages) > 10:
            raise ValueError(f"{name} takes at most 10 entries, got {len(messages)}")
        by_id = {str(i): m for i, m in enumerate(messages)}
        response = call(
            QueueUrl=self.queue_url, Entries=[{"Id": i, **entry(m)} for i, m in by_id.items()]
        )
        for failure in response.get("Failed", []):
            log.warning(
                "%s failed for message %s: %s %s",
                name,
                by_id[failure["Id"]].id,
                failure.get("Code"),
                failure.get("Message", ""),
            )
        return [by_id[s["Id"]] for s in response.get("Successful", [])]


def _text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value or "-"}


def _attribute_bytes(name: str, value: dict[str, str]) -> int:
    """What one attribute counts towards the message size: its name, type and value."""
    return sum(
        len(part.encode("utf-8")) for part in (name, value["DataType"], value["StringValue"])
    )


def _fit(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (never inside a character)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: max(limit, 0)].decode("utf-8", errors="ignore")


def _message(raw: dict[str, Any]) -> Message:
    system = raw.get("Attributes", {})
    attributes = {
        name: value["StringValue"]
        for name, value in raw.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    return Message(
        id=raw["MessageId"],
        receipt=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        receive_count=int(system.get("ApproximateReceiveCount", 1)),
        sent_at_ms=int(system.get("SentTimestamp", 0)),
        group_id=system.get("MessageGroupId"),
        sequence=int(system.get("SequenceNumber", 0)),
        attributes=attributes,
    )
