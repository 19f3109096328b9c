"""Airtable adapter: one pyairtable request per call, every failure classified.

pyairtable's own retry is switched off (`retry_strategy=None`): its default re-sends
POST/PATCH after a read timeout and gives up after ~3 s of a 30 s lockout. The core owns
the retry policy instead, because only it knows the deadline and the merge key.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import requests
from pyairtable import Api, Table
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import (
    RecordsRejectedError,
    SinkConfigurationError,
    SinkError,
    ThrottledError,
    TransientSinkError,
)
from .model import Record, WriteResult

MAX_RECORDS_PER_REQUEST = 10
CONNECT_TIMEOUT_SECONDS = 3.05
#: 422 types that are the configuration's fault, not the record's: every record would fail.
CONFIGURATION_422 = frozenset({"UNKNOWN_FIELD_NAME"})
#: The field a 422 names: `Field "X" cannot accept the provided value` (INVALID_VALUE_FOR_COLUMN)
#: and `Unknown field name: "X"` (UNKNOWN_FIELD_NAME), per Airtable's error messages.
_FIELD_IN_MESSAGE = re.compile(r'(?:^Field|field name:) "(?P<field>[^"]+)"')


# --- knowing when a request really left --------------------------------------------------
# The rate limiter lets a request through, but a new connection (TCP + TLS) or a busy
# thread can delay the moment it leaves. These hooks tell the limiter when the request was
# handed to the socket, so that a late request is counted when it left.
_sending = threading.local()


class _SentHookMixin:
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)  # type: ignore[misc]
        on_sent = getattr(_sending, "on_sent", None)
        if on_sent is not None:
            on_sent()


class _HTTPConnection(_SentHookMixin, HTTPConnection):
    pass


class _HTTPSConnection(_SentHookMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _SentHookAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def make_api(*, token: str, api_url: str, timeout: float) -> Api:
    """A pyairtable Api with explicit timeouts and no hidden retries.

    One per token per container: every route's table hangs off it, so installing a rotated
    token (`api.api_key = new`, which pyairtable puts in the session's Authorization header)
    reaches every table at once."""
    api = Api(
        token,
        timeout=(min(CONNECT_TIMEOUT_SECONDS, timeout), timeout),
        retry_strategy=None,
        endpoint_url=api_url,
    )
    adapter = _SentHookAdapter(pool_maxsize=16)
    api.session.mount("http://", adapter)
    api.session.mount("https://", adapter)
    return api


def make_table(*, token: str, base_id: str, table: str, api_url: str, timeout: float) -> Table:
    """A pyairtable Table with explicit timeouts and no hidden retries."""
    return make_api(token=token, api_url=api_url, timeout=timeout).table(base_id, table)


class AirtableSink:
    """Writes up to 10 records per call: upsert on `merge_on` when set, create otherwise."""

    max_records = MAX_RECORDS_PER_REQUEST

    def __init__(
        self,
        table: Table,
        merge_on: Sequence[str] = (),
        *,
        typecast: bool = False,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        self.table = table
        self.merge_on = list(merge_on)
        self.typecast = typecast
        self.on_sent = on_sent

    def write(self, records: Sequence[Record]) -> WriteResult:
        if not 0 < len(records) <= self.max_records:
            raise ValueError(
                f"one request takes 1 to {self.max_records} records, got {len(records)}"
            )
        fields = [dict(r.fields) for r in records]
        _sending.on_sent = self.on_sent
        try:
            if self.merge_on:
                upserted = self.table.batch_upsert(
                    [{"fields": f} for f in fields],
                    key_fields=self.merge_on,
                    typecast=self.typecast,
                )
                created = len(upserted["createdRecords"])
                ids = tuple(r["id"] for r in upserted["records"])
                return WriteResult(record_ids=ids, created=created, updated=len(ids) - created)
            made = self.table.batch_create(fields, typecast=self.typecast)
            return WriteResult(
                record_ids=tuple(r["id"] for r in made), created=len(made), updated=0
            )
        except requests.HTTPError as exc:
            raise classify_http_error(exc) from exc
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise TransientSinkError(
                f"no answer from Airtable ({type(exc).__name__}); the write may or may not have been applied",
                error_type=type(exc).__name__,
            ) from exc
        finally:
            _sending.on_sent = None


def error_of(response: requests.Response | None) -> tuple[str, str]:
    """(type, message) from any of Airtable's three error envelopes."""
    if response is None:
        return "", ""
    try:
        body: Any = response.json()
    except ValueError:
        return "", response.text[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("type", "")), str(error.get("message", ""))
        if isinstance(error, str):
            return error, ""
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("error", "")), str(errors[0].get("message", ""))
    return "", str(body)[:200]


def classify_http_error(exc: requests.HTTPError) -> SinkError:
    response = exc.response
    status = response.status_code if response is not None else 0
    error_type, message = error_of(response)
    text = f"Airtable answered {status} {error_type}: {message}".rstrip(": ")
    named = _FIELD_IN_MESSAGE.search(message)
    field = named.group("field") if named else None
    if status == 429:
        return ThrottledError(text, error_type=error_type or "RATE_LIMIT_REACHED", status=status)
    if status in (401, 403, 404) or error_type in CONFIGURATION_422:
        hint = {
            401: "check the token",
            403: "check the base id, the table name and the token's scopes and base access",
            404: "check AIRTABLE_API_URL, the base id and the table name",
        }.get(status, "check FIELD_MAP against the table's field names")
        return SinkConfigurationError(
            f"{text} ({hint})", error_type=error_type, status=status, field=field
        )
    if status >= 500 or status in (408, 409):
        return TransientSinkError(text, error_type=error_type or f"HTTP_{status}", status=status)
    return RecordsRejectedError(
        text, error_type=error_type or f"HTTP_{status}", status=status, field=field
    )
