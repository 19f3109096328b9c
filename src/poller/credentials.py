"""The Airtable token: locally `AIRTABLE_TOKEN`; deployed, the Secrets Manager secret named
by `AIRTABLE_TOKEN_SECRET_ARN`, read through Powertools' `parameters.get_secret` past its
cache (`force_fetch=True`) by the check before every run and after a 401 (docs/operations.md,
"Rotate the token"). Errors name the variable, never the value, and every token read is
registered with `logs.register_secret`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from . import logs
from .errors import ConfigError, PollerError

#: Secrets Manager's message when a secret exists but has no value yet (a CloudFormation
#: secret created without SecretString): GetSecretValue answers ResourceNotFoundException with it.
_NO_VALUE_YET = "can't find the specified secret value"


class TokenNotConfiguredError(PollerError):
    """The secret exists but holds no token yet (the first deploy creates it empty).

    Not a failure: the run does nothing, logs one line, and succeeds until the token is put in
    with `aws secretsmanager put-secret-value`."""


class SecretUnavailableError(PollerError):
    """The secret could not be read (missing, no permission, Secrets Manager unreachable)."""


def _powertools_fetch(arn: str) -> Any:
    """The secret's value now: Powertools' `get_secret`, past its cache."""
    from aws_lambda_powertools.utilities import parameters

    return parameters.get_secret(arn, force_fetch=True)


class TokenSource:
    """Hands out the current token and re-reads the secret on demand. Thread-safe.

    `fetch(arn)` returns the secret's value now (str, bytes or dict) and raises on failure;
    it defaults to Powertools' `get_secret` with `force_fetch=True`."""

    def __init__(
        self,
        *,
        token: str | None = None,
        secret_arn: str | None = None,
        fetch: Callable[[str], Any] | None = None,
    ) -> None:
        if bool(token) == bool(secret_arn):
            raise ValueError("exactly one of token and secret_arn")
        self.secret_arn = secret_arn
        self._token = token
        logs.register_secret(token)
        self._fetch = fetch or _powertools_fetch
        self._lock = threading.Lock()

    def current(self) -> str:
        """The token: read from the secret the first time (past every cache), then kept."""
        with self._lock:
            if self._token is None:
                self._token = self._read()
            return self._token

    def refresh(self) -> tuple[str, bool]:
        """Read the secret again past every cache: `(token, changed)`."""
        with self._lock:
            if self.secret_arn is None:
                assert self._token is not None
                return self._token, False
            token = self._read()
            changed = token != self._token
            self._token = token
            return token, changed

    def _read(self) -> str:
        assert self.secret_arn is not None
        try:
            secret = self._fetch(self.secret_arn)
        except Exception as exc:
            text = str(exc)
            if _NO_VALUE_YET in text:
                raise TokenNotConfiguredError(_not_configured(self.secret_arn)) from None
            raise SecretUnavailableError(
                f"the secret AIRTABLE_TOKEN_SECRET_ARN names could not be read "
                f"({type(exc).__name__}); check that it exists and that the function may "
                "call secretsmanager:GetSecretValue on it"
            ) from None
        token = token_from_secret(secret, self.secret_arn)
        logs.register_secret(token)  # masked in every log line from now on, at any level
        return token


def _not_configured(arn: str) -> str:
    return (
        f"the Airtable token secret {arn} holds no token yet: nothing was received; put the "
        "token in it with `aws secretsmanager put-secret-value --secret-id <arn> "
        "--secret-string <token>`"
    )


def token_from_secret(secret: str | bytes | dict[str, Any], arn: str = "") -> str:
    """The secret holds the bare token, or JSON `{"token": "..."}`.

    An empty value (or `{}` / `{"token": ""}`) raises `TokenNotConfiguredError`; anything
    else that holds no token raises a `ConfigError` naming AIRTABLE_TOKEN_SECRET_ARN."""
    if isinstance(secret, bytes):
        secret = secret.decode()
    if isinstance(secret, str) and secret.strip().startswith("{"):
        try:
            secret = json.loads(secret)
        except json.JSONDecodeError:
            secret = None
    if isinstance(secret, dict):
        secret = secret.get("token") if secret else ""
    if isinstance(secret, str):
        if not secret.strip():
            raise TokenNotConfiguredError(_not_configured(arn or "AIRTABLE_TOKEN_SECRET_ARN"))
        return secret.strip()
    raise ConfigError(
        "AIRTABLE_TOKEN_SECRET_ARN",
        'names a secret that holds neither a token nor JSON {"token": "..."}; put the token in it',
    )
