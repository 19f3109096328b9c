"""The control API's world changes: bases, tables, fields, tokens and permission levels.

These are not Airtable API calls: they change the world the API serves (a base defined
at runtime, a field renamed by someone in the Airtable UI, a token rotated, a base shared
read-only). :class:`WorldControls` is a part of :class:`~airtable_emulator.Emulator`.
"""

from __future__ import annotations

import copy
from typing import Any

from poller.fieldtypes import LINK_TYPE, PRIMARY_TYPES

from .access import Grant, check_level
from .base import Base
from .config import ALL_SCOPES, check_scopes
from .meta import complete_schema, retype_options
from .schema import find_table, validate_schema
from .state import State


def _free_name(name: Any, others: list[str], what: str) -> str:
    """``name`` if it is a non-empty string no other table/field has (ignoring case)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a {what} name must be a non-empty string")
    if name.casefold() in {other.casefold() for other in others}:
        raise ValueError(f'another {what} is already named "{name}" (ignoring case)')
    return name


class WorldControls:
    """World changes; each is also a control endpoint (see ``control``)."""

    _state: State

    def define_base(self, base_id: str, schema: dict[str, Any]) -> dict[str, Any]:
        """Serve ``base_id`` with ``schema`` (the meta endpoint's shape, plus an optional
        ``name`` that ``GET /v0/meta/bases`` lists; default: the base id), replacing any
        base of that id and its records. Missing ids (``tbl…``, ``fld…``, ``viw…``,
        ``sel…``), ``primaryFieldId`` (the first field) and views (a "Grid view") are
        generated from the seed. Every token may use the new base at level ``create``
        unless a permission level was set for it. Returns the schema as served (without the
        name). Raises ValueError for a malformed schema."""
        if not base_id.startswith("app") or len(base_id) < 4:
            raise ValueError(f"base ids look like appXXXXXXXXXXXXXX, got {base_id!r}")
        state = self._state
        with state.lock:
            completed = complete_schema(schema, state.new_schema_id)
            validate_schema(base_id, completed)
            state.bases[base_id] = Base(base_id, completed)
            return copy.deepcopy(state.bases[base_id].schema)

    def rename_table(self, base_id: str, table: str, new_name: str) -> dict[str, Any]:
        """Rename a table (by id or name); its id, fields and records stay. Returns its
        schema. KeyError if unknown, ValueError if the name is empty or taken."""
        state = self._state
        with state.lock:
            base = state.base_or_key_error(base_id)
            found = state.table_or_key_error(base_id, table)
            others = [t["name"] for t in base.schema["tables"] if t["id"] != found.id]
            found.schema["name"] = _free_name(new_name, others, "table")
            return copy.deepcopy(found.schema)

    def rename_field(self, base_id: str, table: str, field: str, new_name: str) -> dict[str, Any]:
        """Rename a field (by id or name). Its id and cells stay, so writes by id keep
        working, while writes by the old name get 422 UNKNOWN_FIELD_NAME. Returns the field."""
        state = self._state
        with state.lock:
            found, spec = state.field_or_key_error(base_id, table, field)
            others = [f["name"] for f in found.schema["fields"] if f["id"] != spec["id"]]
            spec["name"] = _free_name(new_name, others, "field")
            return copy.deepcopy(spec)

    def retype_field(
        self,
        base_id: str,
        table: str,
        field: str,
        new_type: str,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change a field's type (e.g. currency -> checkbox), keeping its id and name.

        Existing cells of the field are cleared (see README: the emulator does not guess
        Airtable's conversions). ``options`` are checked like the meta API's; left out, a
        type that needs options gets defaults (a link needs ``linkedTableId``, a table of
        the same base). Returns the field. KeyError if unknown, ValueError for a bad type or
        options, or a type the primary field cannot have."""
        state = self._state
        with state.lock:
            found, spec = state.field_or_key_error(base_id, table, field)
            checked = retype_options(new_type, options, state.new_schema_id)
            if spec["id"] == found.schema.get("primaryFieldId") and new_type not in PRIMARY_TYPES:
                raise ValueError(f"the primary field cannot be of type {new_type}")
            if new_type == LINK_TYPE:
                linked = (checked or {}).get("linkedTableId", "")
                target = find_table(state.bases[base_id].schema, linked)
                if target is None or target["id"] != linked:
                    raise ValueError("options.linkedTableId must be the id of a table of this base")
            spec["type"] = new_type
            spec.pop("options", None)
            if checked is not None:
                spec["options"] = checked
            found.drop_field(spec["id"])
            return copy.deepcopy(spec)

    def delete_field(self, base_id: str, table: str, field: str) -> None:
        """Delete a field and its cells. KeyError if unknown; ValueError for the primary
        field (Airtable cannot delete it either)."""
        state = self._state
        with state.lock:
            found, spec = state.field_or_key_error(base_id, table, field)
            if spec["id"] == found.schema.get("primaryFieldId"):
                raise ValueError("the primary field cannot be deleted")
            found.schema["fields"].remove(spec)
            found.drop_field(spec["id"])

    def add_token(self, token: str, scopes: tuple[str, ...] = ALL_SCOPES) -> None:
        """Accept ``token`` with ``scopes`` from now on (ValueError if it exists already)."""
        checked = check_scopes(scopes)
        if not isinstance(token, str) or not token:
            raise ValueError("a token must be a non-empty string")
        state = self._state
        with state.lock:
            if token in state.grants:
                raise ValueError("that token exists already")
            state.grants[token] = Grant(frozenset(checked))

    def rotate_token(self, old: str, new: str) -> None:
        """From now on ``old`` gets 401 AUTHENTICATION_REQUIRED and ``new`` has its scopes
        and permission levels. KeyError if ``old`` is unknown; ValueError if ``new`` exists
        already."""
        if not isinstance(new, str) or not new:
            raise ValueError("a token must be a non-empty string")
        state = self._state
        with state.lock:
            grant = state.grant_or_key_error(old)
            if new in state.grants:
                raise ValueError("the new token exists already")
            state.grants[new] = grant
            del state.grants[old]

    def set_permission(self, token: str, base_id: str, level: str) -> None:
        """Give ``token`` the permission level ``level`` (``none``, ``read``, ``comment``,
        ``edit`` or ``create``, the default) on ``base_id``. KeyError for an unknown token
        or base, ValueError for an unknown level."""
        checked = check_level(level)
        state = self._state
        with state.lock:
            grant = state.grant_or_key_error(token)
            state.base_or_key_error(base_id)
            grant.levels[base_id] = checked

    def permission(self, token: str, base_id: str) -> str:
        """The permission level of ``token`` on ``base_id``."""
        state = self._state
        with state.lock:
            return state.grant_or_key_error(token).level(base_id)
