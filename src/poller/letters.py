"""What the poller sends back to SQS: a dead letter with its reason, and a requeued copy,
each fitted within SQS's limits (10 message attributes; 1 MiB for the body and every
attribute's name, type and value: the SQS developer guide's message quotas).
"""

from __future__ import annotations

import logging
from typing import Any

from .model import Attribute, Message, Verdict

log = logging.getLogger(__name__)

#: What the poller adds to a dead letter (G5), and to a requeued copy.
REASON = "poller.reason"
ERROR_TYPE = "poller.error_type"
SOURCE_ID = "poller.source_message_id"
RECEIVE_COUNT = "poller.receive_count"
SENT_TIMESTAMP = "poller.sent_timestamp"
REASON_ATTRIBUTES = (REASON, ERROR_TYPE, SOURCE_ID, RECEIVE_COUNT, SENT_TIMESTAMP)
MAX_REASON_CHARS = 1000
#: An error type is cut to this many characters (Airtable's longest is about 40).
MAX_ERROR_TYPE_CHARS = 64
#: The most a `poller.error_type` attribute counts towards the 1 MiB: name, type, value.
LARGEST_ERROR_TYPE_BYTES = len(ERROR_TYPE) + len("String") + MAX_ERROR_TYPE_CHARS
#: SQS's limit for one message: the body and every attribute's name, type and value.
MAX_MESSAGE_BYTES = 1_048_576
MAX_ATTRIBUTES = 10


def _wire(attribute: Attribute) -> dict[str, Any]:
    if isinstance(attribute.value, bytes):
        return {"DataType": attribute.data_type, "BinaryValue": attribute.value}
    return {"DataType": attribute.data_type, "StringValue": attribute.value or "-"}


def _size(name: str, value: dict[str, Any]) -> int:
    """What one attribute counts towards the message size: its name, type and value."""
    payload = value.get("BinaryValue", value.get("StringValue", ""))
    raw = payload if isinstance(payload, bytes) else str(payload).encode("utf-8")
    return len(name.encode()) + len(value["DataType"].encode()) + len(raw)


def _fit(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (never inside a character)."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[: max(limit, 0)].decode("utf-8", errors="ignore")


def dead_letter_request(letter: Verdict, url: str, body: str) -> dict[str, Any]:
    """The DLQ copy: the body unchanged, the reason, and the message's own attributes as far
    as SQS's 10 and its 1 MiB (which counts attributes too) allow.

    Room is given first to the error type, then to the reason (shortened if it must), so
    that `poller.error_type` without `poller.reason` means "no room for a reason" and a
    reason never stands without its type; when not even the type fits, neither goes."""
    message = letter.message
    body = body or " "
    room = MAX_MESSAGE_BYTES - len(body.encode("utf-8"))
    attributes: dict[str, Any] = {}
    error_type = {
        "DataType": "String",
        "StringValue": letter.error_type[:MAX_ERROR_TYPE_CHARS] or "-",
    }
    left = room - _size(ERROR_TYPE, error_type)
    if left >= 0:
        attributes[ERROR_TYPE] = error_type
        fitted = _fit(letter.reason[:MAX_REASON_CHARS] or "-", left - len(REASON) - len("String"))
        if fitted:
            attributes[REASON] = {"DataType": "String", "StringValue": fitted}
    others = {
        SOURCE_ID: {"DataType": "String", "StringValue": message.id},
        RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(message.receive_count)},
        **{name: _wire(a) for name, a in message.attributes.items()},
    }
    _add_within(attributes, others, room)
    if REASON not in attributes:
        log.warning(
            "no room for a reason next to the %d-byte body of message %s; its reason: %s",
            len(body.encode("utf-8")),
            message.id,
            letter.reason,
        )
    request: dict[str, Any] = {
        "QueueUrl": url,
        "MessageBody": body,
        "MessageAttributes": attributes,
    }
    if url.endswith(".fifo"):
        request["MessageGroupId"] = message.group_id or "dead-letters"
        request["MessageDeduplicationId"] = message.id
    return request


def copy_request(message: Message, url: str, body: str) -> dict[str, Any]:
    """A fresh copy of `message` for `url`: its body and attributes, and its first id and
    sent time (read back into `Message.id` and `sent_at_ms`, so that `$MessageId` and
    `$SentTimestamp` keep their values)."""
    attributes: dict[str, Any] = {
        SOURCE_ID: {"DataType": "String", "StringValue": message.id},
        SENT_TIMESTAMP: {"DataType": "Number", "StringValue": str(message.sent_at_ms)},
    }
    _add_within(
        attributes,
        {name: _wire(a) for name, a in message.attributes.items()},
        MAX_MESSAGE_BYTES - len(body.encode()),
    )
    return {"QueueUrl": url, "MessageBody": body or " ", "MessageAttributes": attributes}


def _add_within(attributes: dict[str, Any], others: dict[str, Any], room: int) -> None:
    """Adds `others` in order to `attributes` while SQS's 10 and the `room` bytes left by
    `attributes` allow; a name already there is kept."""
    room -= sum(_size(n, v) for n, v in attributes.items())
    for name, value in others.items():
        if len(attributes) >= MAX_ATTRIBUTES or name in attributes:
            continue
        size = _size(name, value)
        if size <= room:
            attributes[name] = value
            room -= size
