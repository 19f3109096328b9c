"""Airtable's error envelopes, in one place so every code path answers alike.

Airtable uses three shapes (see the package README, "The Airtable facts it is built on"):

* ``{"error": {"type": "...", "message": "..."}}`` for almost everything;
* ``{"error": "NOT_FOUND"}`` (a bare string) for 404;
* ``{"errors": [{"error": "RATE_LIMIT_REACHED", "message": "..."}]}`` for 429.

Clients that parse errors must cope with all three, so the emulator reproduces them exactly.
Proxies in front of Airtable answer outages (and over-long URLs) with HTML pages, not JSON:
:func:`proxy_page` builds those.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from .wire import HTML_CONTENT_TYPE, JSON_CONTENT_TYPE

PARAMETER_VALIDATION_FAILED = (
    "Invalid request: parameter validation failed. Check your request data."
)
INVALID_PERMISSIONS_MESSAGE = (
    "Invalid permissions, or the requested model was not found. Check that both your user"
    " and your token have the required permissions, and that the model names and/or ids"
    " are correct."
)
BILLING_LIMIT_TYPE = "PUBLIC_API_BILLING_LIMIT_EXCEEDED"
BILLING_LIMIT_MESSAGE = (
    "API billing plan limit exceeded. You've reached the maximum number of requests allowed"
    " for this month."
)
RECORD_CAP_MESSAGE = "This base is or will be over its record limits with new records added."
#: The two shapes a 429 body is seen in: Airtable's ``errors`` list, or the usual envelope.
ERRORS_SHAPE = "errors"
ERROR_SHAPE = "error"
#: Reason phrases nginx writes on its own error pages (others: the standard phrase).
_NGINX_PHRASES = {
    414: "Request-URI Too Large",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
RATE_LIMIT_BODY: dict[str, Any] = {
    "errors": [
        {
            "error": "RATE_LIMIT_REACHED",
            "message": "Rate limit exceeded. Please try again later",
        }
    ]
}


class ApiError(Exception):
    """An HTTP error answer: raised anywhere in request handling, rendered by the server."""

    def __init__(self, status: int, body: Any, content_type: str = JSON_CONTENT_TYPE) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.content_type = content_type

    @property
    def error_type(self) -> str | None:
        """The ``error.type`` of a standard envelope (None for 404/429 shapes)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("type") if isinstance(error, dict) else None


def api_error(status: int, error_type: str, message: str) -> ApiError:
    """The standard ``{"error": {"type", "message"}}`` envelope."""
    return ApiError(status, {"error": {"type": error_type, "message": message}})


def unprocessable(error_type: str, message: str) -> ApiError:
    """422: the request was understood but its content is invalid."""
    return api_error(422, error_type, message)


def invalid_request(message: str = PARAMETER_VALIDATION_FAILED) -> ApiError:
    """422 INVALID_REQUEST_UNKNOWN: a malformed body (wrong keys or shapes)."""
    return unprocessable("INVALID_REQUEST_UNKNOWN", message)


def not_found() -> ApiError:
    """404 with Airtable's bare-string body."""
    return ApiError(404, {"error": "NOT_FOUND"})


def authentication_required() -> ApiError:
    """401: no token, or a token the emulator does not know."""
    return api_error(401, "AUTHENTICATION_REQUIRED", "Authentication required")


def forbidden() -> ApiError:
    """403: missing scope, unknown base or unknown table (Airtable does not tell them apart)."""
    return api_error(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", INVALID_PERMISSIONS_MESSAGE)


def rate_limited() -> ApiError:
    """429 with the rate-limit envelope and no Retry-After header."""
    return ApiError(429, RATE_LIMIT_BODY)


def too_large(limit: int) -> ApiError:
    """413: the body is larger than the configured ``max_body_bytes``."""
    return api_error(
        413,
        "REQUEST_ENTITY_TOO_LARGE",
        f"Request body is too large (the emulator accepts at most {limit} bytes)",
    )


def service_unavailable() -> ApiError:
    """503: an injected server fault; the write was NOT applied."""
    return api_error(
        503,
        "SERVICE_UNAVAILABLE",
        "The service is temporarily unavailable (fault injected by the emulator)",
    )


def billing_limited(shape: str = ERRORS_SHAPE) -> ApiError:
    """429: the workspace has used its API calls for the month (``shape``: "errors" gives
    Airtable's 429 list, "error" the usual ``{"error": {"type", "message"}}``)."""
    if shape == ERROR_SHAPE:
        return api_error(429, BILLING_LIMIT_TYPE, BILLING_LIMIT_MESSAGE)
    return ApiError(
        429, {"errors": [{"error": BILLING_LIMIT_TYPE, "message": BILLING_LIMIT_MESSAGE}]}
    )


#: The error type the emulator gives a write that would take a base over its record cap
#: (Airtable's own type is unverified; the message is Airtable's).
RECORD_CAP_TYPE = "INVALID_RECORDS"


def record_cap_reached() -> ApiError:
    """422: the write would take the base over its record cap."""
    return unprocessable(RECORD_CAP_TYPE, RECORD_CAP_MESSAGE)


def proxy_page(status: int) -> ApiError:
    """An nginx-style HTML error page, as a proxy in front of Airtable answers."""
    phrase = _NGINX_PHRASES.get(status) or _standard_phrase(status)
    title = f"{status} {phrase}"
    page = (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>"
    )
    return ApiError(status, page, HTML_CONTENT_TYPE)


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
