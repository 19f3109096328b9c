"""The token source: cached reads, forced re-reads after a rotation, and the empty secret."""

from __future__ import annotations

import pytest

from poller.credentials import (
    SecretUnavailableError,
    TokenNotConfiguredError,
    TokenSource,
    token_from_secret,
)
from poller.errors import ConfigError

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:poller/airtable-token-AbCdEf"


class FakeSecrets:
    """Secrets Manager behind Powertools' cache: a read without force may be stale."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.cached: object = None
        self.forced = 0

    def __call__(self, arn: str, force: bool) -> object:
        assert arn == ARN
        if isinstance(self.value, Exception):
            raise self.value
        if force or self.cached is None:
            self.cached = self.value
            self.forced += force
        return self.cached


def test_a_rotated_secret_is_seen_only_by_a_refresh() -> None:
    # GIVEN a token read once and then rotated in the secret
    secrets = FakeSecrets("patOLD")
    source = TokenSource(secret_arn=ARN, fetch=secrets)
    assert source.current() == "patOLD"
    secrets.value = "patNEW"
    # WHEN the source is asked again, then refreshed
    kept = source.current()
    token, changed = source.refresh()
    # THEN the source keeps its token until the forced read brings the new one
    assert kept == "patOLD"
    assert (token, changed) == ("patNEW", True)
    assert source.current() == "patNEW"
    assert source.refresh() == ("patNEW", False)


def test_the_first_read_goes_past_the_powertools_cache() -> None:
    # GIVEN a cache still holding the empty value a failed cold start read
    secrets = FakeSecrets("")
    with pytest.raises(TokenNotConfiguredError):
        TokenSource(secret_arn=ARN, fetch=secrets).current()
    secrets.value = "patPUT"
    # WHEN the next cold start reads it
    token = TokenSource(secret_arn=ARN, fetch=secrets).current()
    # THEN it sees the token put in since
    assert token == "patPUT"


def test_a_local_token_never_changes_on_refresh() -> None:
    source = TokenSource(token="patLOCAL")
    assert source.refresh() == ("patLOCAL", False)
    assert not source.rotatable


@pytest.mark.parametrize("value", ["", "   ", "{}", '{"token": ""}', {"token": " "}])
def test_an_empty_secret_means_not_configured_yet(value: object) -> None:
    source = TokenSource(secret_arn=ARN, fetch=FakeSecrets(value))
    with pytest.raises(TokenNotConfiguredError, match="put-secret-value"):
        source.current()


def test_a_secret_without_any_value_means_not_configured_yet() -> None:
    # GIVEN the secret CloudFormation creates without SecretString: GetSecretValue answers
    # ResourceNotFoundException "can't find the specified secret value for staging label"
    error = RuntimeError(
        "An error occurred (ResourceNotFoundException) when calling the GetSecretValue "
        "operation: Secrets Manager can't find the specified secret value for staging "
        "label: AWSCURRENT"
    )
    source = TokenSource(secret_arn=ARN, fetch=FakeSecrets(error))
    with pytest.raises(TokenNotConfiguredError):
        source.current()


def test_an_unreadable_secret_says_what_to_check_without_the_value() -> None:
    source = TokenSource(secret_arn=ARN, fetch=FakeSecrets(PermissionError("AccessDenied")))
    with pytest.raises(SecretUnavailableError, match="GetSecretValue") as raised:
        source.current()
    assert "AccessDenied" not in str(raised.value)


def test_secret_shapes() -> None:
    assert token_from_secret(" patABC \n") == "patABC"
    assert token_from_secret(b"patABC") == "patABC"
    assert token_from_secret('{"token": "patABC"}') == "patABC"
    assert token_from_secret({"token": "patABC"}) == "patABC"
    with pytest.raises(ConfigError, match="AIRTABLE_TOKEN_SECRET_ARN"):
        token_from_secret('{"password": "x"}')
    with pytest.raises(ConfigError):
        token_from_secret({"token": 42})
