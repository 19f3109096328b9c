"""What a token may do: its scopes, and its permission level on each base.

A token's scopes say which kinds of endpoint it may call; its permission level on a base
(Airtable's ``none``, ``read``, ``comment``, ``edit``, ``create``) says what it may do
there. ``GET /v0/meta/bases`` lists the bases a token can reach, with their levels.

* ``none``: the base is out of reach; every request to it gets the 403 an unknown base gets.
* ``read`` and ``comment``: record reads and schema reads.
* ``edit``: also record writes and deletes.
* ``create`` (the default): also schema writes (create tables and fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import unprocessable
from .routes import READ_KINDS, SCHEMA_WRITE_KINDS, Kind

LEVELS = ("none", "read", "comment", "edit", "create")
DEFAULT_LEVEL = "create"


def check_level(level: Any) -> str:
    if level not in LEVELS:
        raise ValueError(f"a permission level must be one of {list(LEVELS)}, got {level!r}")
    return str(level)


@dataclass
class Grant:
    """One token: its scopes and its permission level per base (``create`` when unset)."""

    scopes: frozenset[str]
    levels: dict[str, str] = field(default_factory=dict)

    def level(self, base_id: str) -> str:
        return self.levels.get(base_id, DEFAULT_LEVEL)

    def reaches(self, base_id: str) -> bool:
        return self.level(base_id) != "none"

    def allows(self, base_id: str, kind: Kind) -> bool:
        """May this token do ``kind`` on the base (scopes aside)?"""
        level = self.level(base_id)
        if level == "none":
            return False
        if kind in READ_KINDS:
            return True
        if kind in SCHEMA_WRITE_KINDS:
            return level == "create"
        return level in ("edit", "create")


def bases_page(
    bases: list[tuple[str, str]], grant: Grant, offset: str | None, page_size: int
) -> dict[str, Any]:
    """One page of ``GET /v0/meta/bases``: the reachable bases of ``bases`` (id, name), from
    ``offset`` (the id of the first base of the page, as a previous page gave it)."""
    reachable = [(base_id, name) for base_id, name in bases if grant.reaches(base_id)]
    ids = [base_id for base_id, _ in reachable]
    start = 0
    if offset is not None:
        if offset not in ids:
            raise unprocessable("INVALID_OFFSET_VALUE", f"The offset {offset!r} is not valid")
        start = ids.index(offset)
    page = reachable[start : start + page_size]
    body: dict[str, Any] = {
        "bases": [
            {"id": base_id, "name": name, "permissionLevel": grant.level(base_id)}
            for base_id, name in page
        ]
    }
    if start + page_size < len(reachable):
        body["offset"] = reachable[start + page_size][0]
    return body
