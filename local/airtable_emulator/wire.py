"""What the HTTP layer and the emulator exchange, and the interface the server serves.

This module imports nothing from the package, so ``server`` and ``control`` depend on it
and never on ``emulator``: the emulator builds the server, not the other way round, and
the package's import graph has no cycle (a test checks that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

#: Paths under this prefix are control endpoints (no token, not rate-limited, not counted).
CONTROL_PREFIX = "/__emulator/"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
HTML_CONTENT_TYPE = "text/html"


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request, as the server hands it over."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: bytes
    #: The emulator's clock (``time.monotonic()`` unless configured otherwise) when the
    #: request was fully read: what the limiter counts (plus the configured arrival jitter).
    arrived: float
    #: Length of the request target as sent (path and query string, percent-encoded).
    url_length: int = 0


@dataclass(frozen=True)
class Reply:
    """The answer; ``drop`` means close the connection without sending anything.

    A JSON ``content_type`` sends ``body`` as JSON; any other sends it as text (``str``)."""

    status: int
    body: Any
    drop: bool = False
    content_type: str = JSON_CONTENT_TYPE


class Service(Protocol):
    """What :class:`~airtable_emulator.server.EmulatorHTTPServer` serves."""

    @property
    def max_body_bytes(self) -> int:
        """Bodies larger than this are refused with 413 before they are read."""
        ...

    def clock(self) -> float:
        """The time an arriving request is stamped with (``ApiRequest.arrived``)."""
        ...

    def handle(self, request: ApiRequest) -> Reply:
        """Answer one API request (``/v0/...``)."""
        ...

    def reject_too_large(self) -> Reply:
        """Count and answer a request whose body is over ``max_body_bytes``."""
        ...

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer one control request (``/__emulator/...``): ``(status, JSON payload)``."""
        ...
