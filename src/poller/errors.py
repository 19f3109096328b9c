"""One error hierarchy. Every error says what went wrong and what to do about it."""

from __future__ import annotations


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


class MappingError(PollerError):
    """A message cannot be turned into an Airtable record. It is poison: dead-letter it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SinkError(PollerError):
    """A write to the sink failed. Subclasses say whether retrying can help."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str = "",
        status: int | None = None,
        field: str | None = None,
    ) -> None:
        self.error_type = error_type
        self.status = status
        #: The field (name or id) Airtable's message names, for field-level 422s.
        self.field = field
        super().__init__(message)


class TransientSinkError(SinkError):
    """5xx, connection error or timeout: the write may or may not have been applied.

    Retry with backoff; with MERGE_ON set the retry is idempotent. If it keeps failing,
    the messages stay in the queue for the next run."""


class ThrottledError(SinkError):
    """Airtable answered 429: the base is locked out (30 s). Wait it out, never hammer."""


class RecordsRejectedError(SinkError):
    """Airtable rejected the request because of its content (422, 413).

    One bad record fails the whole request; the core splits the batch to find it."""


class SinkConfigurationError(SinkError):
    """The sink refuses every request (401, 403, 404, unknown field): not the messages' fault.

    Stop the run, keep the messages, and fix the token, base, table or FIELD_MAP."""


class UnknownRouteError(PollerError):
    """The mapper named a route that has no destination: a bug in the wiring, not in the
    message. The run stops on it and releases every message it holds."""

    def __init__(self, routes: list[str]) -> None:
        self.routes = routes
        names = ", ".join(repr(r) for r in routes)
        super().__init__(f"no destination for route(s) {names}; fix the wiring of the routes")


class RunFailedError(PollerError):
    """The run stopped on an error; the summary says what was confirmed before it."""

    def __init__(self, message: str, summary: dict[str, object]) -> None:
        self.summary = summary
        super().__init__(message)
