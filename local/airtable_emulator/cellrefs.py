"""Cells that hold references: links to records and attachments.

This module checks a written value's shape; what the references point at (does the linked
record exist, which record does a typecast name stand for, which attachment does an id
name) is the base's business, asked through a :class:`CellContext`.

* A link cell (``multipleRecordLinks``) takes a list of record ids. With typecast, a lone
  string stands for a one-item list and a string that is not shaped like a record id is
  the primary-field text of a linked record.
* An attachment cell (``multipleAttachments``) takes a list of objects: new ones
  ``{"url", "filename"?}`` or existing ones ``{"id", ...}`` (as read back). The list
  replaces the cell.
"""

from __future__ import annotations

import re
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

RECORD_ID_RE = re.compile(r"^rec[A-Za-z0-9]{14}$")
_NEW_ATTACHMENT_KEYS = frozenset({"url", "filename"})
#: The keys of an attachment as Airtable reads it back, which a client may send back as is.
_READ_ATTACHMENT_KEYS = frozenset(
    {"id", "url", "filename", "size", "type", "width", "height", "thumbnails"}
)


class InvalidRef(Exception):
    """The value does not have the shape the field takes."""


class CellContext(Protocol):
    """What a base answers about references while a request's cells are normalised."""

    def linked_ids(self, field: dict[str, Any], items: list[str], typecast: bool) -> list[str]:
        """Record ids for ``items`` (ids, or with typecast primary-field texts) in the
        field's linked table; raises the field's CellError when an id does not exist."""
        ...

    def attachment(self, field: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        """The stored form ``{"id", "url", "filename"}`` of a new or existing attachment."""
        ...


def link_cell(
    field: dict[str, Any], value: Any, typecast: bool, context: CellContext | None
) -> list[str]:
    """A link cell's record ids, in the order given, each once."""
    if typecast and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRef
    if not typecast and not all(RECORD_ID_RE.match(item) for item in value):
        raise InvalidRef
    items = list(dict.fromkeys(value))
    if context is None:
        return items
    return list(dict.fromkeys(context.linked_ids(field, items, typecast)))


def attachment_cell(
    field: dict[str, Any], value: Any, context: CellContext | None
) -> list[dict[str, Any]]:
    """An attachment cell: every object checked, then stored through ``context``."""
    if not isinstance(value, list):
        raise InvalidRef
    checked = [_attachment(item) for item in value]
    if context is None:
        return checked
    return [context.attachment(field, item) for item in checked]


def _attachment(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRef
    if "id" in item:
        if not set(item) <= _READ_ATTACHMENT_KEYS or not isinstance(item["id"], str):
            raise InvalidRef
        return {"id": item["id"]}
    if not set(item) <= _NEW_ATTACHMENT_KEYS or "url" not in item:
        raise InvalidRef
    url, filename = item["url"], item.get("filename")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise InvalidRef
    if filename is not None and not (isinstance(filename, str) and filename):
        raise InvalidRef
    return {"url": url, "filename": filename or default_filename(url)}


def default_filename(url: str) -> str:
    """The URL's last path segment, decoded (the host when the path has none)."""
    split = urlsplit(url)
    return unquote(split.path.rstrip("/").rpartition("/")[2]) or split.hostname or url
