"""Read a message body strictly, and take its payload out of an SNS or EventBridge envelope.

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

The contract: SNS is recognised only when `Type` is "Notification" and
`MessageId`, `TopicArn` and a string `Message` are all present; EventBridge only when
`version`, `id`, `detail-type`, `source` and an object `detail` are present. A raw payload
whose keys merely look like an envelope's (an `id` and a `detail`, a `Message`) is left
alone. A body is unwrapped at most once. An SNS `Message` that is not a JSON object is poison.

The envelope's own keys stay readable (the mapping's `$Envelope.<key>`): `TopicArn`,
`Subject`, `MessageId`, `Timestamp`, `detail-type`, `source`, `time`, `id`, ..., and SNS
message attributes as `MessageAttributes.<name>` (their `Value`).

Why not Powertools' parser here: `SnsNotificationModel` also requires `UnsubscribeURL` (an
URL) and a `Timestamp`, and `EventBridgeModel` requires `account`, `time`, `region` and
`resources`; both are stricter than the contract above, which is what decides unwrapping.
Its envelopes (`SnsSqsEnvelope`, JMESPath `powertools_json(...)`) expect a Lambda event
(`Records[].body`), not one SQS body, and decode JSON leniently (NaN, duplicate keys), where
the poller must refuse both. The models would also cost cold-start time: importing
`aws_lambda_powertools.utilities.parser.models` takes 200-300 ms on its own (pydantic), about
16 ms once pyairtable has loaded pydantic (`python -X importtime`, this repo's venv).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .doubles import json_float, shorten
from .errors import MappingError

MODES = ("auto", "raw", "sns", "eventbridge")
#: Keys whose presence (with these shapes) makes a body an SNS notification.
SNS_REQUIRED = ("Type", "MessageId", "TopicArn", "Message")
#: Keys whose presence (with these shapes) makes a body an EventBridge event.
EVENTBRIDGE_REQUIRED = ("version", "id", "detail-type", "source", "detail")
_MAX_KEYS_LISTED = 20
_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
    if len(data) == len(pairs):
        return data
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKeyError(
                f"has the key {key_list([key])[1:-1]} twice; it is ambiguous which value "
                "the producer meant"
            )
        seen.add(key)
    raise AssertionError("unreachable")  # pragma: no cover


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


def parse_json_object(text: str, what: str = "body") -> dict[str, Any]:
    """`text` as a JSON object, or a MappingError whose reason starts with `what`."""
    if not text or not text.strip():
        raise MappingError(f"{what} is empty")
    try:
        data = strict_loads(text)
    except DuplicateKeyError as exc:
        raise MappingError(f"{what} {exc}") from None
    except RecursionError:
        raise MappingError(f"{what} is nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integer literals
        raise MappingError(f"{what} is not valid JSON: {exc}") from None
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
        return "" if self.kind == "raw" else f" of the {_KIND_NAMES[self.kind]} payload"


_KIND_NAMES = {"sns": "SNS", "eventbridge": "EventBridge"}


def is_sns(data: Mapping[str, Any]) -> bool:
    return (
        data.get("Type") == "Notification"
        and "MessageId" in data
        and "TopicArn" in data
        and isinstance(data.get("Message"), str)
    )


def is_eventbridge(data: Mapping[str, Any]) -> bool:
    return all(k in data for k in EVENTBRIDGE_REQUIRED) and isinstance(data["detail"], dict)


def unwrap(data: dict[str, Any], mode: str = "auto") -> Unwrapped:
    """The payload of a parsed body under ENVELOPE `mode`; raise MappingError for poison:
    an SNS `Message` that is not a JSON object, or a body that is not the envelope an
    explicit mode requires."""
    if mode == "raw":
        return Unwrapped(data)
    if mode in ("auto", "sns") and is_sns(data):
        return _unwrap_sns(data)
    if mode in ("auto", "eventbridge") and is_eventbridge(data):
        envelope = {k: v for k, v in data.items() if k != "detail"}
        return Unwrapped(data["detail"], "eventbridge", MappingProxyType(envelope))
    if mode == "auto":
        return Unwrapped(data)
    if mode in ("sns", "eventbridge"):
        raise _mismatch(data, mode)
    raise ValueError(f"unknown envelope mode {mode!r}; expected one of {MODES}")


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


def _mismatch(data: Mapping[str, Any], mode: str) -> EnvelopeMismatchError:
    sns = mode == "sns"
    what = "an SNS notification" if sns else "an EventBridge event"
    missing = [k for k in (SNS_REQUIRED if sns else EVENTBRIDGE_REQUIRED) if k not in data]
    if missing:
        why = f"missing {key_list(missing)}"
    elif sns and data.get("Type") != "Notification":
        why = 'its "Type" is not "Notification"'
    elif sns:
        why = 'its "Message" is not a string'
    else:
        why = 'its "detail" is not an object'
    reason = f"body is not {what} (ENVELOPE={mode}): {why}; top-level keys: {key_list(data)}"
    return EnvelopeMismatchError(reason, what)
