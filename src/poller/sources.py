"""Where a mapping entry's value comes from: a path into the payload, a value of the SQS
message (`$MessageId`, `$SentTimestamp`, `$ApproximateReceiveCount`, `$MessageGroupId`,
`$SequenceNumber`, `$MessageAttributes.<name>`), or a value of the SNS or EventBridge
envelope the payload came in (`$Envelope.<key>`). A Number attribute reads as a number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .envelopes import Unwrapped
from .model import Message

ENVELOPE_PREFIX = "$"
#: Envelope sources and how each is read from a received message.
ENVELOPE = (
    "MessageId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "MessageGroupId",
    "SequenceNumber",
)
ATTRIBUTES = "MessageAttributes."
#: `$Envelope.<key>`: a value of the SNS / EventBridge envelope (see `envelopes`).
ENVELOPE_KEYS = "Envelope."
MISSING: Any = object()


def check_source(source: str) -> None:
    """Raise ValueError if `source` is blank, or a `$` name that the mapping does not know."""
    if not source.strip():
        raise ValueError("has an empty source key")
    if not source.startswith(ENVELOPE_PREFIX):
        return
    name = source[len(ENVELOPE_PREFIX) :]
    if name in ENVELOPE:
        return
    for prefix in (ATTRIBUTES, ENVELOPE_KEYS):
        if name.startswith(prefix) and len(name) > len(prefix):
            return
    allowed = [f"${n}" for n in ENVELOPE] + [f"${ATTRIBUTES}<name>", f"${ENVELOPE_KEYS}<key>"]
    raise ValueError(f'source "{source}" is not an SQS or envelope value; use one of {allowed}')


def read_source(source: str, unwrapped: Unwrapped, message: Message) -> Any:
    """The value at a source (FIELD_MAP syntax) of a message, or `MISSING`: a body path reads
    the payload, `$Envelope.<key>` the envelope's own values (`Unwrapped.envelope`)."""
    if not source.startswith(ENVELOPE_PREFIX):
        return _lookup(unwrapped.payload, source)
    name = source[len(ENVELOPE_PREFIX) :]
    if name.startswith(ENVELOPE_KEYS):
        return _lookup(unwrapped.envelope, name[len(ENVELOPE_KEYS) :])
    return _envelope(name, message)


def _envelope(name: str, message: Message) -> Any:
    if name.startswith(ATTRIBUTES):
        attribute = message.attributes.get(name[len(ATTRIBUTES) :])
        return MISSING if attribute is None else attribute.typed
    return {
        "MessageId": message.id,
        "SentTimestamp": message.sent_at_ms or MISSING,
        "ApproximateReceiveCount": message.receive_count,
        "MessageGroupId": message.group_id if message.group_id is not None else MISSING,
        "SequenceNumber": str(message.sequence) if message.sequence else MISSING,
    }[name]


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; a literal top-level key with dots takes precedence."""
    if path in data:
        return data[path]
    if "." not in path:
        return MISSING
    node: Any = data
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node
