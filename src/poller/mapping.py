"""Turn a message into Airtable fields, or say precisely why it cannot be done.

FIELD_MAP (or the file named by FIELD_MAP_FILE) is a JSON object from a *source* to a
*target*. A target is a field name, or an entry object:

    {
      "Id": "Id",
      "DonationAmount": {"field": "Donation Amount", "type": "currency", "required": true},
      "donor.name": {"field": "Donor", "type": "text", "default": "Anonymous"},
      "$SentTimestamp": {"field": "Queued At", "type": "dateTime"}
    }

Sources: a top-level key (`Id`), a dotted path into nested objects and lists
(`donor.name`, `lines.0.sku`; a top-level key that contains dots wins), or a value of the
SQS envelope (`$MessageId`, `$SentTimestamp`, `$ApproximateReceiveCount`,
`$MessageGroupId`, `$SequenceNumber`, `$MessageAttributes.<name>`).

Entry keys: `field` (required), `type` (see `convert`), `required`, `default`, `coerce`,
`timezone`, `epoch`, `choices`. A list of entries maps one source to several fields. The
object may be wrapped as {"description": "...", "fields": {...}} (handy in a file).

Rules: keys of the message that are not in the map are ignored, never sent. A plain entry
passes the value through as-is (backward compatible). A typed entry converts it; a missing
or null value takes the default, or is left out, or, when required, makes the message
poison. Every problem of one message is reported in one reason. The operator's guide, with
examples, is README.md, "Field mapping".
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .convert import EPOCH_UNITS, TYPES, ConversionError, Options, canonical_type, convert, zone
from .errors import ConfigError, MappingError
from .model import Message, Record

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
ENTRY_KEYS = frozenset(
    {"field", "type", "required", "default", "coerce", "timezone", "epoch", "choices"}
)
EXAMPLE = '{"Id": "Id", "DonationAmount": {"field": "Donation Amount", "type": "currency"}}'
_MISSING: Any = object()


@dataclass(frozen=True)
class FieldSpec:
    """One entry of the map: where the value comes from, which field it goes to, and how.

    `default_json` holds the (already converted) default as JSON text, so that the spec
    stays hashable: the handler caches its clients per `Config`."""

    source: str
    field: str
    type: str | None = None
    required: bool = False
    default_json: str | None = None
    options: Options = dataclasses.field(default_factory=Options)

    @property
    def default(self) -> Any:
        return _MISSING if self.default_json is None else json.loads(self.default_json)

    def read(self, data: Mapping[str, Any], message: Message) -> Any:
        """The raw value at this spec's source, or `_MISSING`."""
        if self.source.startswith(ENVELOPE_PREFIX):
            return _envelope(self.source[len(ENVELOPE_PREFIX) :], message)
        return _lookup(data, self.source)

    def describe(self) -> str:
        """One line for the operator: `DonationAmount -> "Donation Amount" (currency, required)`."""
        notes = [self.type or "as-is"]
        if self.required:
            notes.append("required")
        if self.default_json is not None:
            notes.append(f"default {self.default_json}")
        return f'{self.source} -> "{self.field}" ({", ".join(notes)})'


@dataclass(frozen=True)
class FieldMap:
    specs: tuple[FieldSpec, ...]
    description: str = ""

    @classmethod
    def parse(cls, raw: str, variable: str = "FIELD_MAP") -> FieldMap:
        """Parse and validate; raise one `ConfigError` naming `variable` and every problem."""
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                variable, f"is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
        description = ""
        if _is_wrapped(data):
            description = str(data.get("description", ""))
            data = data["fields"]
        if not isinstance(data, dict) or not data:
            raise ConfigError(
                variable,
                "must be a non-empty JSON object from message key to Airtable field name "
                f"or entry, e.g. {EXAMPLE}",
            )
        specs: list[FieldSpec] = []
        problems: list[str] = []
        for source, target in data.items():
            entries = target if isinstance(target, list) and target else [target]
            for entry in entries:
                try:
                    specs.append(_spec(source, entry))
                except ValueError as exc:
                    problems.append(str(exc))
        targets = [s.field for s in specs]
        duplicates = sorted({t for t in targets if targets.count(t) > 1})
        if duplicates:
            problems.append(f"maps several keys to the same field(s): {duplicates}")
        if problems:
            raise ConfigError(variable, "; ".join(problems))
        return cls(tuple(specs), description)

    @classmethod
    def load(cls, path: Path, variable: str = "FIELD_MAP_FILE") -> FieldMap:
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(variable, f"cannot be read ({path}: {exc.strerror})") from None
        return cls.parse(raw, variable)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(s.field for s in self.specs)

    def spec(self, field: str) -> FieldSpec | None:
        return next((s for s in self.specs if s.field == field), None)


def resolve_map_file(value: str, task_root: str | None = None) -> Path:
    """Where FIELD_MAP_FILE points: absolute, or relative to the package, the Lambda task
    root (LAMBDA_TASK_ROOT) or the working directory, first that exists. Raise a
    `ConfigError` listing where it looked."""
    path = Path(value)
    if path.is_absolute():
        candidates = [path]
    else:
        package = Path(__file__).resolve().parent
        roots = [package, Path(task_root) if task_root else package.parent, Path.cwd()]
        candidates = [root / path for root in roots]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise ConfigError("FIELD_MAP_FILE", f"names no file (looked for {looked})")


def _is_wrapped(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("fields"), dict)
        and "field" not in data["fields"]
        and set(data) <= {"description", "fields"}
    )


def _spec(source: str, entry: Any) -> FieldSpec:
    """One validated FieldSpec; raise ValueError with a problem that names the source."""
    if not source.strip():
        raise ValueError("has an empty source key")
    _check_source(source)
    if isinstance(entry, str):
        if not entry.strip():
            raise ValueError(f'maps "{source}" to {entry!r}; expected a field name')
        return FieldSpec(source=source, field=entry, options=_envelope_options(source, Options()))
    if not isinstance(entry, dict):
        raise ValueError(
            f'maps "{source}" to {entry!r}; expected a field name or an entry '
            '{"field": ..., "type": ...}'
        )
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise ValueError(
            f'entry "{source}" has unknown key(s) {unknown}; allowed: {sorted(ENTRY_KEYS)}'
        )
    field = entry.get("field")
    if not isinstance(field, str) or not field.strip():
        raise ValueError(f'entry "{source}" needs "field": the Airtable field name')
    kind = entry.get("type")
    if kind is not None and (not isinstance(kind, str) or canonical_type(kind) is None):
        raise ValueError(f'entry "{source}" has type {kind!r}; expected one of {list(TYPES)}')
    required = entry.get("required", False)
    coerce = entry.get("coerce", False)
    if not isinstance(required, bool) or not isinstance(coerce, bool):
        raise ValueError(f'entry "{source}": "required" and "coerce" must be true or false')
    options = _options(source, entry)
    default_json = None
    if "default" in entry:
        default = entry["default"]
        if default is None:
            raise ValueError(f'entry "{source}": a null default means no default; leave it out')
        if kind is not None:
            try:
                default = convert(kind, default, options)
            except ConversionError as exc:
                raise ValueError(f'entry "{source}": default {exc}') from None
        default_json = json.dumps(default, sort_keys=True, allow_nan=False)
    return FieldSpec(
        source=source,
        field=field,
        type=canonical_type(kind) if kind else None,
        required=required,
        default_json=default_json,
        options=options,
    )


def _options(source: str, entry: Mapping[str, Any]) -> Options:
    timezone = entry.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise ValueError(f'entry "{source}": "timezone" must be an IANA name such as "UTC"')
    try:
        zone(timezone)
    except ConversionError as exc:
        raise ValueError(f'entry "{source}": {exc}') from None
    epoch = entry.get("epoch")
    if epoch is not None and epoch not in EPOCH_UNITS:
        raise ValueError(f'entry "{source}": "epoch" must be "s" or "ms", got {epoch!r}')
    choices = entry.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices):
        raise ValueError(f'entry "{source}": "choices" must be a list of option names')
    if choices and entry.get("type") != "singleSelect":
        raise ValueError(f'entry "{source}": "choices" only applies to "type": "singleSelect"')
    options = Options(
        coerce=bool(entry.get("coerce", False)),
        timezone=timezone,
        epoch=epoch,
        choices=tuple(choices),
    )
    return _envelope_options(source, options)


def _envelope_options(source: str, options: Options) -> Options:
    """SQS's SentTimestamp is epoch milliseconds: say so, unless the entry says otherwise."""
    if source == "$SentTimestamp" and options.epoch is None:
        return replace(options, epoch="ms")
    return options


def _check_source(source: str) -> None:
    if not source.startswith(ENVELOPE_PREFIX):
        return
    name = source[len(ENVELOPE_PREFIX) :]
    if name in ENVELOPE or (name.startswith(ATTRIBUTES) and len(name) > len(ATTRIBUTES)):
        return
    allowed = [f"${n}" for n in ENVELOPE] + [f"${ATTRIBUTES}<name>"]
    raise ValueError(f'source "{source}" is not an SQS envelope value; use one of {allowed}')


def _envelope(name: str, message: Message) -> Any:
    if name.startswith(ATTRIBUTES):
        return message.attributes.get(name[len(ATTRIBUTES) :], _MISSING)
    value: Any = {
        "MessageId": message.id,
        "SentTimestamp": message.sent_at_ms or _MISSING,
        "ApproximateReceiveCount": message.receive_count,
        "MessageGroupId": message.group_id if message.group_id is not None else _MISSING,
        "SequenceNumber": str(message.sequence) if message.sequence else _MISSING,
    }[name]
    return value


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; a literal top-level key with dots takes precedence."""
    if path in data:
        return data[path]
    if "." not in path:
        return _MISSING
    node: Any = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def parse_body(body: str) -> dict[str, Any]:
    """The message body as a JSON object, or a MappingError that says what is wrong."""
    if not body or not body.strip():
        raise MappingError("body is empty")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise MappingError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError(f"body is JSON {type(data).__name__}, expected an object")
    return data


def _absent(value: Any) -> bool:
    return value is _MISSING or value is None or value == ""


def map_value(spec: FieldSpec, value: Any) -> Any:
    """The value to send for `spec`, `_MISSING` to leave the field out; raise ValueError."""
    if spec.type is None:  # plain entry: as-is, as before typed entries existed
        if value is _MISSING:
            value = spec.default
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f'"{spec.source}" is not a finite number')
        if spec.required and _absent(value):
            raise ValueError(f'required, but "{spec.source}" is missing or empty')
        return value
    if _absent(value):
        if spec.default_json is not None:
            return spec.default
        if spec.required:
            raise ValueError(f'required, but "{spec.source}" is missing or empty')
        return _MISSING
    try:
        return convert(spec.type, value, spec.options)
    except ConversionError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Mapper:
    """Maps a message to a `Record`; raises `MappingError` for poison."""

    field_map: FieldMap
    merge_on: Sequence[str] = ()

    def __call__(self, message: Message) -> Record:
        data = parse_body(message.body)
        fields: dict[str, Any] = {}
        problems: list[str] = []
        for spec in self.field_map.specs:
            try:
                value = map_value(spec, spec.read(data, message))
            except ValueError as exc:
                problems.append(f'field "{spec.field}": {exc}')
                continue
            if value is not _MISSING:
                fields[spec.field] = value
        if problems:
            raise MappingError("; ".join(problems))
        return Record(fields=fields, key=self.key_of(fields))

    def key_of(self, fields: Mapping[str, Any]) -> tuple[str, ...] | None:
        if not self.merge_on:
            return None
        key = []
        for name in self.merge_on:
            value = fields.get(name)
            if value is None or value == "":
                raise MappingError(f'merge key field "{name}" (MERGE_ON) is missing or empty')
            key.append(json.dumps(value, sort_keys=True))
        return tuple(key)
