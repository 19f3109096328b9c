"""The meta endpoints of one base: read the schema, create tables and fields, list bases."""

from __future__ import annotations

import copy
from typing import Any

from .access import Grant, bases_page
from .base import Base
from .bodies import query_value
from .links import add_inverse_field
from .meta import field_model, table_model
from .schema import find_table
from .state import State
from .table import Table


def schema_payload(state: State, base: Base, query: dict[str, list[str]]) -> dict[str, Any]:
    """``GET /v0/meta/bases/{baseId}/tables`` (``include=visibleFieldIds`` honoured)."""
    with state.lock:
        payload = copy.deepcopy(base.schema)
    if "visibleFieldIds" in query.get("include", []) + query.get("include[]", []):
        for table in payload["tables"]:
            for view in table.get("views") or []:
                view.setdefault("visibleFieldIds", [f["id"] for f in table["fields"]])
    return payload


def _lookup(base: Base) -> Any:
    def tables(table_id: str) -> dict[str, Any] | None:
        found = find_table(base.schema, table_id)
        return found if found is not None and found["id"] == table_id else None

    return tables


def create_table(state: State, base: Base, body: Any) -> dict[str, Any]:
    """``POST /v0/meta/bases/{baseId}/tables``; link fields get their inverse fields."""
    with state.lock:
        taken = [table["name"] for table in base.schema["tables"]]
        model = table_model(body, taken, state.new_schema_id, _lookup(base))
        base.schema["tables"].append(model)
        table = base.add_table(model)
        for field in model["fields"]:
            add_inverse_field(base, table, field, state.new_schema_id)
        return copy.deepcopy(model)


def create_field(state: State, base: Base, table: Table, body: Any) -> dict[str, Any]:
    """``POST /v0/meta/bases/{baseId}/tables/{tableIdOrName}/fields``."""
    with state.lock:
        taken = [field["name"] for field in table.schema["fields"]]
        model = field_model(body, table.name, taken, state.new_schema_id, _lookup(base))
        table.schema["fields"].append(model)
        add_inverse_field(base, table, model, state.new_schema_id)
        return copy.deepcopy(model)


def list_bases(state: State, grant: Grant, query: dict[str, list[str]]) -> dict[str, Any]:
    """``GET /v0/meta/bases``: the bases the token can reach, a page at a time."""
    with state.lock:
        bases = [(base_id, base.name) for base_id, base in state.bases.items()]
    return bases_page(bases, grant, query_value(query, "offset"), state.config.bases_page_size)
