"""The Airtable adapter: one pyairtable request per call, every failure classified.

pyairtable's own retry is off (`retry_strategy=None`; guarantees G8), and pyairtable and
requests are imported by the first `make_api`, so a run that finds the queue empty never
loads them (docs/performance.md).

Airtable's error envelopes (its API reference, and its 429s as clients have met them):
`{"error": {"type", "message"}}`, `{"error": "NOT_FOUND"}`, and for 429s
`{"errors": [{"error", "message"}]}`; a proxy's outage page is HTML, read by its title.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html import unescape
from typing import TYPE_CHECKING, Any

from .errors import (
    RecordsRejectedError,
    SinkError,
    SystemicSinkError,
    ThrottledError,
    TransientSinkError,
)
from .model import Action, Record, WriteResult
from .pacing import on_wire
from .systemic import Cause

if TYPE_CHECKING:
    import requests
    from pyairtable import Api, Table

#: Airtable: at most 10 records per create, update, upsert or delete request.
MAX_RECORDS_PER_REQUEST = 10
#: Airtable: at most 100 records per page of a list request.
PAGE_SIZE = 100
CONNECT_TIMEOUT_SECONDS = 3.05
#: The 429 of a workspace that has used its monthly API calls (not a 30 s lockout).
BILLING_LIMIT = "PUBLIC_API_BILLING_LIMIT_EXCEEDED"
#: The 422 of a base at its plan's record limit (its error type is not documented).
RECORD_LIMIT = "over its record limits"
#: The field a 422 names: `Field "X" cannot accept the provided value` and
#: `Unknown field name: "X"`.
_FIELD_IN_MESSAGE = re.compile(r'(?:^Field|field name:) "(?P<field>[^"]+)"')
_TITLE = re.compile(r"<title[^>]*>(?P<title>.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def make_api(*, token: str, api_url: str, timeout: float) -> Api:
    """A pyairtable Api with explicit timeouts and no hidden retries, whose connections
    tell the pacer when each request is on its socket (`pacing.on_wire`). One per
    container: setting `api.api_key` installs a rotated token for every table at once."""
    from pyairtable import Api

    api = Api(
        token,
        timeout=(min(CONNECT_TIMEOUT_SECONDS, timeout), timeout),
        retry_strategy=None,
        endpoint_url=api_url,
    )
    adapter = _wired_adapter()(pool_maxsize=16)
    api.session.mount("http://", adapter)
    api.session.mount("https://", adapter)
    return api


class _Wired:
    """A connection that tells the pacer when a request is on its socket (`on_wire`)."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)  # type: ignore[misc]
        on_wire()


@functools.cache
def _wired_adapter() -> type[requests.adapters.HTTPAdapter]:
    """An HTTPAdapter whose urllib3 connections are `_Wired` (built at the first call, so
    that importing this module loads neither requests nor urllib3)."""
    import requests
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = type("WiredHTTPConnection", (_Wired, HTTPConnection), {})

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = type("WiredHTTPSConnection", (_Wired, HTTPSConnection), {})

    class WiredAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}

    return WiredAdapter


class AirtableTable:
    """`SinkPort` for one table: creates, or upserts on `merge_on` (field ids)."""

    max_records = MAX_RECORDS_PER_REQUEST

    def __init__(
        self, table: Table, merge_on: Sequence[str] = (), *, typecast: bool = False
    ) -> None:
        self.table = table
        self.merge_on = list(merge_on)
        self.typecast = typecast

    def write(self, records: Sequence[Record]) -> WriteResult:
        if not 0 < len(records) <= self.max_records:
            raise ValueError(
                f"one request takes 1 to {self.max_records} records, got {len(records)}"
            )
        fields = [dict(r.fields) for r in records]
        with answers():
            if records[0].action is Action.CREATE or not self.merge_on:
                made = self.table.batch_create(fields, typecast=self.typecast)
                return WriteResult(tuple(r["id"] for r in made), created=len(made), updated=0)
            upserted = self.table.batch_upsert(
                [{"fields": f} for f in fields], key_fields=self.merge_on, typecast=self.typecast
            )
            ids = tuple(r["id"] for r in upserted["records"])
            created = len(upserted["createdRecords"])
            return WriteResult(ids, created=created, updated=len(ids) - created)

    def find(
        self, keys: Sequence[tuple[Any, ...]], key_fields: Sequence[str], fields: Sequence[str]
    ) -> Iterator[list[dict[str, Any]]]:
        """The records whose `key_fields` (names: formulas name fields, never ids) hold one
        of `keys`, page by page (each `next` is one request), keyed by field id.

        Each page is a `POST .../listRecords` with its options in a JSON body (Airtable's
        list records; a GET URL over 16,000 characters is refused). The body is built here,
        before the caller takes the request's slot: between the slot and the request
        leaving there is no long URL to encode (about 5 ms of CPU for 100 keys as a GET)."""
        from pyairtable.formulas import AND, EQ, OR, Field, to_formula_str

        formula = OR(
            *[AND(*[EQ(Field(n), v) for n, v in zip(key_fields, key, strict=True)]) for key in keys]
        )
        body = {
            "filterByFormula": to_formula_str(formula),
            "fields": list(fields),
            "returnFieldsByFieldId": True,
            "pageSize": PAGE_SIZE,
        }
        return self._pages(str(self.table.urls.records_post), body)

    def _pages(self, url: str, body: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        while True:
            with answers():
                page = self.table.api.request("POST", url, json=body)
            yield page.get("records", [])
            if not page.get("offset"):
                return
            body = {**body, "offset": page["offset"]}

    def delete(self, record_ids: Sequence[str]) -> None:
        """Remove up to 10 records by id in one request."""
        if record_ids:
            with answers():
                self.table.api.delete(
                    self.table.urls.records, params={"records[]": list(record_ids)}
                )


@contextmanager
def answers() -> Iterator[None]:
    """Turn what requests raises inside the block into a classified `SinkError`."""
    import requests

    try:
        yield
    except requests.HTTPError as exc:
        raise classify(exc.response) from exc
    except (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
    ) as exc:
        raise TransientSinkError(
            f"no answer from Airtable ({type(exc).__name__}); the request may or may not have been applied",
            error_type=type(exc).__name__,
        ) from exc


def error_of(response: requests.Response | None) -> tuple[str, str]:
    """(type, message) from any of Airtable's error envelopes, or from an HTML page's title."""
    if response is None:
        return "", ""
    text = response.text or ""
    if "html" in response.headers.get("Content-Type", "") or text.lstrip().startswith("<"):
        found = _TITLE.search(text)
        title = found.group("title") if found else _TAGS.sub(" ", text)
        return "", " ".join(unescape(title).split())[:120]
    try:
        body: Any = response.json()
    except ValueError:
        return "", text[:200]
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


def classify(response: requests.Response | None) -> SinkError:
    """The `SinkError` an error answer stands for."""
    status = response.status_code if response is not None else 0
    error_type, message = error_of(response)
    text = f"Airtable answered {status} {error_type}: {message}".replace("  ", " ").rstrip(": ")
    named = _FIELD_IN_MESSAGE.search(message)
    field = named.group("field") if named else None
    if status == 429 and error_type == BILLING_LIMIT:
        return SystemicSinkError(text, Cause.BILLING, error_type=error_type, status=status)
    if status == 429:
        return ThrottledError(text, error_type=error_type or "RATE_LIMIT_REACHED", status=status)
    cause = {401: Cause.TOKEN, 403: Cause.PERMISSION, 404: Cause.TABLE}.get(status)
    if error_type == "UNKNOWN_FIELD_NAME":
        cause = Cause.FIELD
    elif status == 422 and RECORD_LIMIT in message:
        cause = Cause.BASE_FULL
    if cause is not None:
        return SystemicSinkError(text, cause, error_type=error_type, status=status, field=field)
    if status >= 500 or status in (408, 409):
        return TransientSinkError(text, error_type=error_type or f"HTTP_{status}", status=status)
    return RecordsRejectedError(
        text, error_type=error_type or f"HTTP_{status}", status=status, field=field
    )
