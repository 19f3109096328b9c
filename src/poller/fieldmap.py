"""The field map: which value of a message goes to which Airtable field, and how.

FIELD_MAP (inline, or a file's path) is a JSON object from a *source* to a *target*. A
target is a field name, an entry object, or a list of entries (one source, several fields):

    {
      "Id": "Id",
      "DonationAmount": {"field": "Donation Amount", "type": "currency", "required": true},
      "donor.name": {"field": "Donor", "type": "text", "default": "Anonymous"},
      "$SentTimestamp": {"field": "Queued At", "type": "dateTime"}
    }

Sources: see `envelopes`. Entry keys: `ENTRY_KEYS` (`field` is required; `type`: see
`convert`). The object may be wrapped as {"description": "...", "fields": {...}} (handy in a
file). A map needs at least one body source. A plain entry passes the value through as-is;
a typed entry converts it; a missing or null value takes the default, or is left out, or,
when required, makes the message poison. The rules, with examples: docs/field-mapping.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .convert import EPOCH_UNITS, TYPES, Options, canonical_type, convert, zone
from .envelopes import ENVELOPE_PREFIX, MISSING, check_source, json_problem, strict_loads
from .errors import ConfigError, ConversionError

ENTRY_KEYS = frozenset(
    {"field", "type", "required", "default"}
    | {"coerce", "timezone", "epoch", "choices", "dst", "scale"}  # conversion options
    | {"table", "key", "if_missing"}  # link entries
)
EXAMPLE = '{"Id": "Id", "DonationAmount": {"field": "Donation Amount", "type": "currency"}}'


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
    #: The Airtable field id (`fld...`) once resolved from the schema; records use it as key.
    field_id: str | None = None
    #: The Airtable field type once known from the schema (e.g. "currency").
    airtable_type: str | None = None

    @property
    def default(self) -> Any:
        return MISSING if self.default_json is None else json.loads(self.default_json)

    @property
    def key(self) -> str:
        """The key of this field in a record: its id once resolved, else its name."""
        return self.field_id or self.field

    @property
    def reads_body(self) -> bool:
        """True for a body (payload) path, False for a `$` source."""
        return not self.source.startswith(ENVELOPE_PREFIX)

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
        return cls.from_data(load_config_json(raw, variable), variable)

    @classmethod
    def from_data(cls, data: Any, variable: str = "FIELD_MAP") -> FieldMap:
        """Validate already-parsed JSON (e.g. a route's "fields"); raise one `ConfigError`."""
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
        if specs and not problems and not any(s.reads_body for s in specs):
            problems.append(
                "maps only $ values (envelope and SQS attributes); map at least one key of the "
                "message body, or every message would be refused as carrying nothing mapped"
            )
        if problems:
            raise ConfigError(variable, "; ".join(problems))
        return cls(tuple(specs), description)

    def resolved(
        self, field_ids: Mapping[str, str], fields: Sequence[Mapping[str, Any]]
    ) -> FieldMap:
        """This map bound to a table: each target's field id (`field_ids`: target name to
        id, as `schema.fit` resolved them), its Airtable type, and the options that change a
        value's meaning there (a dateTime field's `timeZone` unless the entry sets
        `timezone`; a rating's `max`). Records are then keyed by field id."""
        by_id = {str(f.get("id")): f for f in fields}
        specs = []
        for spec in self.specs:
            field = by_id.get(field_ids.get(spec.field, ""), {})
            options = field.get("options") or {}
            changes: dict[str, Any] = {}
            zone_name = options.get("timeZone")
            if (
                spec.options.timezone is None
                and isinstance(zone_name, str)
                and zone_name not in ("client", "utc")
            ):
                changes["timezone"] = zone_name
            if isinstance(options.get("max"), int):
                changes["max"] = options["max"]
            specs.append(
                replace(
                    spec,
                    field_id=field_ids.get(spec.field),
                    airtable_type=field.get("type"),
                    options=replace(spec.options, **changes),
                )
            )
        return replace(self, specs=tuple(specs))

    @property
    def fields(self) -> tuple[str, ...]:
        """The target field names, in map order."""
        return tuple(s.field for s in self.specs)

    def spec(self, field: str) -> FieldSpec | None:
        """The entry for a target field, by name or (once resolved) by id."""
        return next((s for s in self.specs if field in (s.field, s.field_id)), None)


def load_config_json(raw: str, variable: str) -> Any:
    """Configuration JSON, strictly (a duplicate key is a mistake, not a silent override);
    raise a ConfigError naming `variable` when it is not."""
    try:
        return strict_loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(variable, json_problem(exc)) from None


def _is_wrapped(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("fields"), dict)
        and "field" not in data["fields"]
        and set(data) <= {"description", "fields"}
    )


def _spec(source: str, entry: Any) -> FieldSpec:
    """One validated FieldSpec; raise ValueError with a problem that names the source."""
    check_source(source)
    if isinstance(entry, str):
        if not entry.strip():
            raise ValueError(f'maps "{source}" to {entry!r}; expected a field name')
        entry = {"field": entry}
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
    timezone = entry.get("timezone")
    if timezone is not None and not isinstance(timezone, str):
        raise ValueError(f'entry "{source}": "timezone" must be an IANA name such as "UTC"')
    try:
        zone(timezone)
    except ConversionError as exc:
        raise ValueError(f'entry "{source}": {exc}') from None
    kind = entry.get("type")
    dst = entry.get("dst")
    scale = entry.get("scale", 1)
    if_missing = entry.get("if_missing", "create")
    if dst not in (None, "earlier", "later"):
        raise ValueError(f'entry "{source}": "dst" must be "earlier" or "later", got {dst!r}')
    if scale not in (1, 100) or ("scale" in entry and kind != "percent"):
        raise ValueError(
            f'entry "{source}": "scale" is 100 (percentages) on a "percent" entry, got {scale!r}'
        )
    link = (entry.get("table"), entry.get("key"))
    if kind == "link" and not all(isinstance(v, str) and v.strip() for v in link):
        raise ValueError(f'entry "{source}": a link names the linked "table" and its "key" field')
    if kind != "link" and ("table" in entry or "key" in entry or "if_missing" in entry):
        raise ValueError(
            f'entry "{source}": "table", "key" and "if_missing" apply to "type": "link"'
        )
    if if_missing not in ("create", "dead_letter"):
        raise ValueError(
            f'entry "{source}": "if_missing" must be "create" or "dead_letter", got {if_missing!r}'
        )
    epoch = entry.get("epoch")
    if epoch is not None and epoch not in EPOCH_UNITS:
        raise ValueError(f'entry "{source}": "epoch" must be "s" or "ms", got {epoch!r}')
    if source == "$SentTimestamp" and epoch is None:  # SQS's SentTimestamp is epoch ms
        epoch = "ms"
    choices = entry.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices):
        raise ValueError(f'entry "{source}": "choices" must be a list of option names')
    if choices and kind not in ("singleSelect", "multipleSelects"):
        raise ValueError(f'entry "{source}": "choices" applies to the select types')
    return Options(
        coerce=bool(entry.get("coerce", False)),
        timezone=timezone,
        epoch=epoch,
        choices=tuple(choices),
        dst=dst,
        scale=float(scale),
        table=str(link[0] or ""),
        link_key=str(link[1] or ""),
        if_missing=if_missing,
    )
