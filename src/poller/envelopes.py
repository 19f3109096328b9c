"""A message's values: its body read strictly, its payload taken out of an SNS or EventBridge
envelope, and the value at a mapping source.

What reaches SQS (per the SNS and EventBridge documentation of their SQS deliveries):

- raw: the producer's JSON object, as sent.
- SNS without raw message delivery: the SNS notification JSON is the SQS body,
  `{"Type": "Notification", "MessageId", "TopicArn", "Subject", "Message": "<payload as a
  JSON string>", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL",
  "UnsubscribeURL", "MessageAttributes": {"name": {"Type": "String", "Value": "..."}}}`.
- EventBridge to an SQS target without InputPath: `{"version": "0", "id", "detail-type",
  "source", "account", "time", "region", "resources": [], "detail": {...payload...}}`.

ENVELOPE (and a route's "envelope") is one of `MODES`:
    auto         unwrap SNS, else EventBridge, else take the body as the payload (default)
    raw          the body is the payload, whatever its keys
    sns          the body must be an SNS notification (poison otherwise)
    eventbridge  the body must be an EventBridge event (poison otherwise)

SNS is recognised only when `Type` is "Notification" and `MessageId`, `TopicArn` and a
string `Message` are all present; EventBridge only when `version`, `id`, `detail-type`,
`source` and an object `detail` are present. A body is unwrapped at most once. An SNS
`Message` that is not a JSON object is poison. Why not Powertools' models: docs/routes.md.

A source (FIELD_MAP syntax) is a dotted path into the payload (`donor.name`, `lines.0.sku`),
a value of the SQS message (`$MessageId`, `$SentTimestamp`, `$ApproximateReceiveCount`,
`$MessageGroupId`, `$SequenceNumber`, `$MessageAttributes.<name>`; a Number attribute reads
as a number), or `$Envelope.<key>`: the envelope's own keys (`TopicArn`, `Subject`,
`MessageId`, `Timestamp`, `detail-type`, `source`, `time`, `id`, ...), and SNS message
attributes as `MessageAttributes.<name>` (their `Value`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .doubles import json_float, shorten
from .errors import MappingError
from .model import Message

MODES = ("auto", "raw", "sns", "eventbridge")
#: Each envelope: its name in reasons, what a body of it is, and the keys that make a body
#: one; the last holds the payload, which must have the type given (and an SNS notification's
#: "Type" must be "Notification").
_ENVELOPES: dict[str, tuple[str, str, tuple[str, ...], type]] = {
    "sns": ("SNS", "an SNS notification", ("Type", "MessageId", "TopicArn", "Message"), str),
    "eventbridge": (
        "EventBridge",
        "an EventBridge event",
        ("version", "id", "detail-type", "source", "detail"),
        dict,
    ),
}
_MAX_KEYS_LISTED = 20
_EMPTY: Mapping[str, Any] = MappingProxyType({})
ENVELOPE_PREFIX = "$"
ATTRIBUTES = "MessageAttributes."
#: `$Envelope.<key>`: a value of the SNS / EventBridge envelope.
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


class EnvelopeMismatchError(MappingError):
    """The body is not the envelope an explicit mode (sns, eventbridge) requires. Poison for a
    single route; for routes, that route is skipped."""

    def __init__(self, reason: str, what: str) -> None:
        super().__init__(reason)
        self.what = what


class DuplicateKeyError(ValueError):
    """A JSON object has the same key twice."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(
                    f"has the key {key_list([key])[1:-1]} twice; it is ambiguous which value "
                    "is meant"
                )
            seen.add(key)
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def strict_loads(text: str) -> Any:
    """JSON as RFC 8259 means it: no NaN/Infinity, no duplicate keys at any depth.

    Float literals go through `doubles.json_float`, which marks an integral literal that a
    double cannot hold exactly. Raises ValueError (DuplicateKeyError, json.JSONDecodeError)
    or RecursionError."""
    return json.loads(
        text,
        object_pairs_hook=_unique_object,
        parse_constant=_reject_constant,
        parse_float=json_float,
    )


def json_problem(exc: ValueError | RecursionError) -> str:
    """Why `strict_loads` refused a text, as the rest of a sentence that names the text:
    "has the key ... twice; ...", "is nested too deeply to read" or "is not valid JSON: ..."."""
    if isinstance(exc, RecursionError):
        return "is nested too deeply to read"
    if isinstance(exc, DuplicateKeyError):
        return str(exc)
    return f"is not valid JSON: {exc}"  # JSONDecodeError, NaN/Infinity, over-long integers


def parse_json_object(text: str, what: str = "body") -> dict[str, Any]:
    """`text` as a JSON object, or a MappingError whose reason starts with `what`."""
    if not text or not text.strip():
        raise MappingError(f"{what} is empty")
    try:
        data = strict_loads(text)
    except (ValueError, RecursionError) as exc:
        raise MappingError(f"{what} {json_problem(exc)}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{what} is JSON {type(data).__name__}, expected an object")
    return data


def key_list(keys: Any) -> str:
    """A message's keys for a reason, never its values: JSON, ASCII, abbreviated."""
    names = [shorten(str(k)) for k in keys]
    text = json.dumps(names[:_MAX_KEYS_LISTED])
    if len(names) > _MAX_KEYS_LISTED:
        text = text[:-1] + f", ... {len(names) - _MAX_KEYS_LISTED} more]"
    return text


@dataclass(frozen=True)
class Unwrapped:
    """A body's payload, the kind of envelope it came in, and that envelope's own values.

    `envelope` is what `$Envelope.<key>` reads: the envelope's keys without the payload
    (`Message`, `detail`), with SNS `MessageAttributes` flattened to `{name: Value}`.
    Empty for a raw body."""

    payload: Mapping[str, Any]
    kind: str = "raw"
    envelope: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def where(self) -> str:
        """For reasons: "" for a raw body, " of the SNS payload" for an unwrapped one."""
        return "" if self.kind == "raw" else f" of the {_ENVELOPES[self.kind][0]} payload"


def unwrap(data: dict[str, Any], mode: str = "auto") -> Unwrapped:
    """The payload of a parsed body under ENVELOPE `mode`; raise MappingError for poison:
    an SNS `Message` that is not a JSON object, or a body that is not the envelope an
    explicit mode requires."""
    if mode not in MODES:
        raise ValueError(f"unknown envelope mode {mode!r}; expected one of {MODES}")
    for kind in _ENVELOPES:
        if mode not in ("auto", kind):
            continue
        why = _why_not(data, kind)
        if why is None and kind == "sns":
            return _unwrap_sns(data)
        if why is None:
            envelope = {k: v for k, v in data.items() if k != "detail"}
            return Unwrapped(data["detail"], kind, MappingProxyType(envelope))
        if mode == kind:
            what = _ENVELOPES[kind][1]
            reason = (
                f"body is not {what} (ENVELOPE={mode}): {why}; top-level keys: {key_list(data)}"
            )
            raise EnvelopeMismatchError(reason, what)
    return Unwrapped(data)


def _why_not(data: Mapping[str, Any], kind: str) -> str | None:
    """Why `data` is not an envelope of `kind`, or None when it is one."""
    _, _, required, payload_type = _ENVELOPES[kind]
    missing = [k for k in required if k not in data]
    if missing:
        return f"missing {key_list(missing)}"
    if kind == "sns" and data["Type"] != "Notification":
        return 'its "Type" is not "Notification"'
    if not isinstance(data[required[-1]], payload_type):
        return f'its "{required[-1]}" is not {"a string" if payload_type is str else "an object"}'
    return None


def _unwrap_sns(data: dict[str, Any]) -> Unwrapped:
    payload = parse_json_object(data["Message"], "SNS Message")
    envelope: dict[str, Any] = {k: v for k, v in data.items() if k != "Message"}
    attributes = data.get("MessageAttributes")
    if isinstance(attributes, dict):
        envelope["MessageAttributes"] = {
            name: attr["Value"]
            for name, attr in attributes.items()
            if isinstance(attr, dict) and "Value" in attr
        }
    else:
        envelope.pop("MessageAttributes", None)
    return Unwrapped(payload, "sns", MappingProxyType(envelope))


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
    """The value at a source of a message, or `MISSING`: a body path reads the payload,
    `$Envelope.<key>` the envelope's own values (`Unwrapped.envelope`)."""
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
