"""One error hierarchy. Every error says what went wrong and what to do about it."""

from __future__ import annotations

from .systemic import Cause


class PollerError(Exception):
    """Base class of every error the poller raises on purpose."""


class ConfigError(PollerError):
    """A configuration value is missing or invalid. Fix the named variable and redeploy."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable} {problem}")


class ConfigErrors(PollerError):
    """Several configuration problems, reported together so one deploy fixes them all."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid configuration ({len(errors)} problem(s)):\n{lines}")


class ConversionError(ValueError):
    """A value does not fit its type; the message names the value's type and the target."""


class MappingError(PollerError):
    """A message cannot be turned into an Airtable record. It is poison: dead-letter it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SinkError(PollerError):
    """A request to Airtable failed. Subclasses say whether retrying can help.

    `status` is the HTTP status (0: no answer), `error_type` Airtable's error type, `field`
    the field (name or id) a field-level 422 names."""

    def __init__(
        self, message: str, *, error_type: str = "", status: int = 0, field: str | None = None
    ) -> None:
        self.error_type = error_type
        self.status = status
        self.field = field
        super().__init__(message)


class TransientSinkError(SinkError):
    """5xx, connection error or timeout: the write may or may not have been applied.

    Retried with backoff (idempotent with a merge key); if it keeps failing, the messages
    are released for the next run."""


class ThrottledError(SinkError):
    """429 RATE_LIMIT_REACHED: the base is locked out for 30 s. Wait it out, never hammer."""


class OutOfTimeError(SinkError):
    """The run has no time left for the request: nobody's fault, the next run sends it."""


class RecordsRejectedError(SinkError):
    """Airtable rejected the request because of its content (422, 413). One bad record fails
    the whole request; the core splits the request to find it."""


class SystemicSinkError(SinkError):
    """A refusal that every record of the route would meet (`cause`): the token, the base,
    the table, a field, the monthly quota, a full base. Not the records' fault."""

    def __init__(self, message: str, cause: Cause, **kwargs: object) -> None:
        self.cause = cause
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class DeadLetterQueueMissing(PollerError):
    """DEAD_LETTER_QUEUE_URL names a queue that does not exist: poison stays in the source
    queue, and the invocation fails so that the errors alarm fires."""


def aws_error_code(exc: BaseException, default: str = "") -> str:
    """The AWS error code of a botocore `ClientError` (`response["Error"]["Code"]`), else
    `default`."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code", default)


class RunFailedError(PollerError):
    """The run stopped on an error; the summary says what was confirmed before it."""

    def __init__(self, message: str, summary: dict[str, object]) -> None:
        self.summary = summary
        super().__init__(message)
