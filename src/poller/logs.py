"""The logging policy, installed by `install` on every invocation (docs/operations.md,
"Logging policy"): the library loggers held at WARNING (at DEBUG, botocore logs the Secrets
Manager `SecretString` and SQS message bodies) unless `WIRE_DEBUG`, and secrets masked in every
part of every record. Sources: the token's shape is gitleaks' rule
`airtable-personnal-access-token`; Powertools' `Logger` and `copy_config_to_registered_loggers`
behaviour is from aws-lambda-powertools 3.x (`logging/logger.py`, `logging/utils.py`)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

#: Loggers that log wire data (headers, bodies) at DEBUG; children are covered by prefix.
LIBRARY_LOGGERS: tuple[str, ...] = ("botocore", "boto3", "urllib3", "requests", "s3transfer")
#: The least severe level the library loggers may emit without `WIRE_DEBUG`.
LIBRARY_LEVEL = logging.WARNING
#: Their level with `WIRE_DEBUG=true`.
WIRE_DEBUG_LEVEL = logging.DEBUG
#: What a masked secret becomes.
MASK = "***"
#: An Airtable personal access token: `pat` + 14-character id + `.` + 64 hex digits.
PAT_PATTERN = r"pat[A-Za-z0-9]{14}\.[0-9a-f]{64}"
#: A looser form, for a truncated token (a 40-character preview in a reason) or a future
#: format: `pat` + an id + `.` + 8 or more characters of the secret.
LOOSE_PAT_PATTERN = r"pat[A-Za-z0-9]{8,}\.[A-Za-z0-9]{8,}"
#: An HTTP bearer credential as it appears in a header or its repr.
BEARER_PATTERN = r"(?<=(?i:bearer) )[^\s'\",;}]+"
#: A registered secret shorter than this is ignored: masking it would shred ordinary text.
MIN_SECRET_LENGTH = 8
#: How deep `Redactor` descends into nested extras before masking their text as a whole.
MAX_DEPTH = 12

_SHAPES = re.compile(f"{PAT_PATTERN}|{LOOSE_PAT_PATTERN}|{BEARER_PATTERN}")
#: Attributes every LogRecord has; anything else on a record is an extra.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_TEXT_FORMATTER = logging.Formatter()


class Redactor(logging.Filter):
    """Masks secrets in every part of a log record, in place; never drops a record.

    Text shaped like an Airtable token or a bearer credential is masked, and so is each
    registered secret, wherever it appears (inside JSON, a repr, a URL or a traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def register(self, secret: str | None) -> None:
        """Mask `secret` from now on (kept for the container's life: a rotated-out token stays
        masked). Empty or shorter than `MIN_SECRET_LENGTH`: ignored."""
        if not secret or len(secret.strip()) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if secret not in self._secrets:
                # longest first, so that a secret containing another is masked whole
                self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """`text` with every secret masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return _SHAPES.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        self._redact_message(record)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRIBUTES:
                setattr(record, name, self._scrub(value, 0))
        self._redact_exception(record)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _redact_message(self, record: logging.LogRecord) -> None:
        if record.args:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: let logging report it, masked
                record.msg = self._scrub(record.msg, 0)
                record.args = self._scrub(record.args, 0)
                return
            record.msg, record.args = self.redact(message), ()
        else:
            record.msg = self._scrub(record.msg, 0)

    def _redact_exception(self, record: logging.LogRecord) -> None:
        """Powertools formats `exc_info` itself (and serializes the exception's value), so a
        traceback that holds a secret is replaced by its masked text: `exc_text` for stdlib
        formatters, `exception`/`exception_name` extras for the Powertools formatter."""
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        info = record.exc_info
        if not (isinstance(info, tuple) and info[0] is not None):
            return
        text = _TEXT_FORMATTER.formatException(info)
        masked = self.redact(text)
        if masked == text:
            return
        record.exc_info = None
        record.exc_text = masked
        record.exception = masked
        record.exception_name = info[0].__name__

    def _scrub(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth < MAX_DEPTH:
            if isinstance(value, dict):
                return {
                    self._scrub(k, depth + 1): self._scrub(v, depth + 1) for k, v in value.items()
                }
            if isinstance(value, list | tuple | set | frozenset):
                scrubbed = [self._scrub(v, depth + 1) for v in value]
                return scrubbed if isinstance(value, list) else tuple(scrubbed)
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("utf-8", "replace")
        else:
            try:
                text = str(value)
            except Exception:
                return f"<unprintable {type(value).__name__}>"
        masked = self.redact(text)
        return value if masked == text else masked


class LibraryGate(logging.Filter):
    """Drops records of `LIBRARY_LOGGERS` (and their children) below `level`."""

    def __init__(self) -> None:
        super().__init__()
        self.level = LIBRARY_LEVEL

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or record.name.split(".")[0] not in LIBRARY_LOGGERS


_REDACTOR = Redactor()
_GATE = LibraryGate()
_INSTALL_LOCK = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Mask `secret` in every log record from now on. Call it with each token read."""
    _REDACTOR.register(secret)


def redact(text: str) -> str:
    """`text` with token-shaped text and every registered secret masked (for error messages)."""
    return _REDACTOR.redact(text)


def install(
    powertools_logger: Any, *, wire_debug: bool = False, secrets: Iterable[str | None] = ()
) -> None:
    """Apply the policy (idempotent). `powertools_logger`: the handler module's Powertools
    `Logger`; `wire_debug`: `WIRE_DEBUG` (library loggers at DEBUG, sent to the Powertools
    handler); `secrets`: registered as with `register_secret`."""
    for secret in secrets:
        register_secret(secret)
    level = WIRE_DEBUG_LEVEL if wire_debug else LIBRARY_LEVEL
    with _INSTALL_LOCK:
        _GATE.level = level
        powertools_handlers = list(powertools_logger.handlers)
        for name in LIBRARY_LOGGERS:
            library = logging.getLogger(name)
            library.setLevel(level)
            for child in _children(name):
                if child.level and child.level < level:
                    child.setLevel(logging.NOTSET)  # inherit the pin
            # with wire debugging a library logger writes through the Powertools handler only
            # (as copy_config_to_registered_loggers would); without it, it propagates
            for handler in powertools_handlers:
                if wire_debug and handler not in library.handlers:
                    library.addHandler(handler)
                elif not wire_debug and handler in library.handlers:
                    library.removeHandler(handler)
            library.propagate = not wire_debug
        if wire_debug:  # name each line's logger, as copy_config_to_registered_loggers does
            powertools_logger.append_keys(name="%(name)s")
        # every handler the poller's output can reach (one may appear twice)
        reachable = [*powertools_handlers, *logging.getLogger().handlers, logging.lastResort]
        for name in LIBRARY_LOGGERS:
            for library in (logging.getLogger(name), *_children(name)):
                reachable += library.handlers
        for handler in reachable:
            for policy_filter in (_GATE, _REDACTOR):
                if handler is not None and policy_filter not in handler.filters:
                    handler.addFilter(policy_filter)


def _children(namespace: str) -> Iterator[logging.Logger]:
    prefix = namespace + "."
    for name, candidate in list(logging.root.manager.loggerDict.items()):
        if name.startswith(prefix) and isinstance(candidate, logging.Logger):
            yield candidate
