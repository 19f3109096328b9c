"""Where a mapping entry's value comes from: a path into the payload, a value of the SQS
message (`$MessageId`, `$SentTimestamp`, `$ApproximateReceiveCount`, `$MessageGroupId`,
`$SequenceNumber`, `$MessageAttributes.<name>`), or a value of the SNS or EventBridge
envelope the payload came in (`$Envelope.<key>`). A Number attribute reads as a number."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .envelopes import Unwrapped
from .model import Message

ENVELOPE_PREFIX = "$"
ATTRIBUTES = "MessageAttributes."
#: `$Envelope.<key>`: a value of the SNS / EventBridge envelope (see `envelopes`).
ENVELOPE_KEYS = "Envelope."
MISSING: Any = object()
#: The SQS message's own `$<name>` sources, and how each is read from a received message.
_SQS_VALUES: dict[str, Callable[[Message], Any]] = {
    "MessageId": lambda m: m.id,
    "SentTimestamp": lambda m: m.sent_at_ms or MISSING,
    "ApproximateReceiveCount": lambda m: m.receive_count,
    "MessageGroupId": lambda m: m.group_id if m.group_id is not None else MISSING,
    "SequenceNumber": lambda m: str(m.sequence) if m.sequence else MISSING,
}


def check_source(source: str) -> None:
    """Raise ValueError if `source` is blank, or a `$` name that the mapping does not know."""
    if not source.strip():
        raise ValueError("has an empty source key")
    if not source.startswith(ENVELOPE_PREFIX):
        return
    name = source[len(ENVELOPE_PREFIX) :]
    if name in _SQS_VALUES:
        return
    for prefix in (ATTRIBUTES, ENVELOPE_KEYS):
        if name.startswith(prefix) and len(name) > len(prefix):
            return
    allowed = [f"${n}" for n in _SQS_VALUES] + [f"${ATTRIBUTES}<name>", f"${ENVELOPE_KEYS}<key>"]
    raise ValueError(f'source "{source}" is not an SQS or envelope value; use one of {allowed}')


def read_source(source: str, unwrapped: Unwrapped, message: Message) -> Any:
    """The value at a source (FIELD_MAP syntax) of a message, or `MISSING`: a body path reads
    the payload, `$Envelope.<key>` the envelope's own values (`Unwrapped.envelope`)."""
    if not source.startswith(ENVELOPE_PREFIX):
        return _lookup(unwrapped.payload, source)
    name = source[len(ENVELOPE_PREFIX) :]
    if name.startswith(ENVELOPE_KEYS):
        return _lookup(unwrapped.envelope, name[len(ENVELOPE_KEYS) :])
    if name.startswith(ATTRIBUTES):
        attribute = message.attributes.get(name[len(ATTRIBUTES) :])
        return MISSING if attribute is None else attribute.typed
    return _SQS_VALUES[name](message)


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
