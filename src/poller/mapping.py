"""Turn a message body into Airtable fields, or say precisely why it cannot be done.

FIELD_MAP is a JSON object from message key to Airtable field name:
    {"Id": "Id", "DonationAmount": "Donation Amount"}
Keys of the message that are not in the map are ignored (never sent as unknown fields);
mapped keys that are absent are left out of the record. The MERGE_ON fields are required.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, MappingError
from .model import Message, Record


@dataclass(frozen=True)
class FieldSpec:
    """One entry of the map: where the value comes from and which field it goes to."""

    source: str
    field: str


@dataclass(frozen=True)
class FieldMap:
    specs: tuple[FieldSpec, ...]

    @classmethod
    def parse(cls, raw: str, variable: str = "FIELD_MAP") -> FieldMap:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                variable, f"is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
        if not isinstance(data, dict) or not data:
            raise ConfigError(
                variable,
                "must be a non-empty JSON object from message key to Airtable field name, "
                'e.g. {"Id": "Id", "DonationAmount": "Donation Amount"}',
            )
        specs = []
        for source, target in data.items():
            if not isinstance(target, str) or not target.strip():
                raise ConfigError(variable, f'maps "{source}" to {target!r}; expected a field name')
            specs.append(FieldSpec(source=source, field=target))
        targets = [s.field for s in specs]
        duplicates = sorted({t for t in targets if targets.count(t) > 1})
        if duplicates:
            raise ConfigError(variable, f"maps several keys to the same field(s): {duplicates}")
        return cls(tuple(specs))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(s.field for s in self.specs)


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


def _check_value(source: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise MappingError(f'"{source}" is not a finite number')


@dataclass(frozen=True)
class Mapper:
    """Maps a message to a `Record`; raises `MappingError` for poison."""

    field_map: FieldMap
    merge_on: Sequence[str] = ()

    def __call__(self, message: Message) -> Record:
        data = parse_body(message.body)
        fields: dict[str, Any] = {}
        for spec in self.field_map.specs:
            if spec.source in data:
                value = data[spec.source]
                _check_value(spec.source, value)
                fields[spec.field] = value
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
