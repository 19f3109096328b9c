"""Map ``METHOD /v0/...`` onto the Airtable operations the emulator implements.

Path segments are split before percent-decoding, because pyairtable quotes table names
with ``safe=""``: a table called "A/B" arrives as ``A%2FB`` and must stay one segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from .config import SCOPE_READ, SCOPE_SCHEMA, SCOPE_SCHEMA_WRITE, SCOPE_WRITE


class Kind(Enum):
    """The Airtable operations the emulator answers."""

    META = "meta"
    WHOAMI = "whoami"
    BASES = "bases"
    CREATE_TABLE = "create_table"
    CREATE_FIELD = "create_field"
    LIST = "list"
    LIST_POST = "list_post"
    GET_RECORD = "get_record"
    CREATE = "create"
    UPDATE = "update"
    UPDATE_RECORD = "update_record"
    DELETE = "delete"
    DELETE_RECORD = "delete_record"


_SCOPES = {
    Kind.META: SCOPE_SCHEMA,
    Kind.BASES: SCOPE_SCHEMA,
    Kind.CREATE_TABLE: SCOPE_SCHEMA_WRITE,
    Kind.CREATE_FIELD: SCOPE_SCHEMA_WRITE,
    Kind.LIST: SCOPE_READ,
    Kind.LIST_POST: SCOPE_READ,
    Kind.GET_RECORD: SCOPE_READ,
}
#: Writes in the sense of faults and write stats: POST/PATCH/PUT of records.
_WRITES = {Kind.CREATE, Kind.UPDATE, Kind.UPDATE_RECORD}
#: Record reads, writes and deletes: what a billing block refuses.
DATA_KINDS = frozenset(
    {
        Kind.LIST,
        Kind.LIST_POST,
        Kind.GET_RECORD,
        Kind.CREATE,
        Kind.UPDATE,
        Kind.UPDATE_RECORD,
        Kind.DELETE,
        Kind.DELETE_RECORD,
    }
)
#: Operations that only read (allowed at the "read" and "comment" permission levels).
READ_KINDS = frozenset({Kind.LIST, Kind.LIST_POST, Kind.GET_RECORD, Kind.META})
#: Schema writes (allowed only at the "create" permission level).
SCHEMA_WRITE_KINDS = frozenset({Kind.CREATE_TABLE, Kind.CREATE_FIELD})


@dataclass(frozen=True)
class Route:
    """A matched API path."""

    kind: Kind
    base_id: str
    table: str | None = None
    record_id: str | None = None

    @property
    def scope(self) -> str:
        """The token scope this operation needs."""
        return _SCOPES.get(self.kind, SCOPE_WRITE)

    @property
    def is_write(self) -> bool:
        return self.kind in _WRITES

    @property
    def is_data(self) -> bool:
        """A record read, write or delete (not a meta request)."""
        return self.kind in DATA_KINDS


_COLLECTION = {"GET": Kind.LIST, "POST": Kind.CREATE, "PATCH": Kind.UPDATE, "PUT": Kind.UPDATE}
_COLLECTION["DELETE"] = Kind.DELETE
_RECORD = {
    "GET": Kind.GET_RECORD,
    "PATCH": Kind.UPDATE_RECORD,
    "PUT": Kind.UPDATE_RECORD,
    "DELETE": Kind.DELETE_RECORD,
}


def match_route(method: str, path: str) -> Route | None:
    """The operation for ``method`` and ``path`` (no query string), or None for a 404."""
    if not path.startswith("/v0/"):
        return None
    parts = [unquote(part) for part in path[len("/v0/") :].rstrip("/").split("/")]
    if any(part == "" for part in parts):
        return None
    if parts[0] == "meta":
        return _match_meta(method, parts[1:])
    if len(parts) == 2 and method in _COLLECTION:
        return Route(_COLLECTION[method], parts[0], parts[1])
    if len(parts) == 3 and parts[2] == "listRecords" and method == "POST":
        return Route(Kind.LIST_POST, parts[0], parts[1])
    if len(parts) == 3 and method in _RECORD:
        return Route(_RECORD[method], parts[0], parts[1], parts[2])
    return None


def _match_meta(method: str, parts: list[str]) -> Route | None:
    """``/v0/meta/...``: whoami, the bases list, the base schema, and creating tables and
    fields."""
    if parts == ["whoami"] and method == "GET":
        return Route(Kind.WHOAMI, "")
    if parts == ["bases"] and method == "GET":
        return Route(Kind.BASES, "")
    if len(parts) < 3 or parts[0] != "bases" or parts[2] != "tables":
        return None
    if len(parts) == 3 and method == "GET":
        return Route(Kind.META, parts[1])
    if len(parts) == 3 and method == "POST":
        return Route(Kind.CREATE_TABLE, parts[1])
    if len(parts) == 5 and parts[4] == "fields" and method == "POST":
        return Route(Kind.CREATE_FIELD, parts[1], parts[3])
    return None
