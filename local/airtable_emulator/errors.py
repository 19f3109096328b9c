"""Airtable's error envelopes, in one place so every code path answers alike.

Airtable uses three shapes (see the package README, "The Airtable facts it is built on"):

* ``{"error": {"type": "...", "message": "..."}}`` for almost everything;
* ``{"error": "NOT_FOUND"}`` (a bare string) for 404;
* ``{"errors": [{"error": "RATE_LIMIT_REACHED", "message": "..."}]}`` for 429.

Clients that parse errors must cope with all three, so the emulator reproduces them exactly.
"""

from __future__ import annotations

from typing import Any

PARAMETER_VALIDATION_FAILED = (
    "Invalid request: parameter validation failed. Check your request data."
)
INVALID_PERMISSIONS_MESSAGE = (
    "Invalid permissions, or the requested model was not found. Check that both your user"
    " and your token have the required permissions, and that the model names and/or ids"
    " are correct."
)
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

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body

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
