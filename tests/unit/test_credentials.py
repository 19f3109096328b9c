"""The token source: one read kept, forced re-reads after a rotation, and the empty secret."""

from __future__ import annotations

import pytest

from poller import logs
from poller.credentials import (
    SecretUnavailableError,
    TokenNotConfiguredError,
    TokenSource,
    token_from_secret,
)
from poller.errors import ConfigError

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:poller/airtable-token-AbCdEf"


class FakeSecrets:
    """Secrets Manager as a forced read sees it: the value stored now."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.reads = 0

    def __call__(self, arn: str) -> object:
        assert arn == ARN
        self.reads += 1
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


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
    assert secrets.reads == 3  # current() never reads again; each refresh() does


def test_every_read_of_the_secret_goes_past_the_powertools_cache(monkeypatch) -> None:
    # GIVEN Powertools' get_secret, recording how it is asked (its cache would serve the empty
    # value a failed cold start read, for up to its max_age)
    from aws_lambda_powertools.utilities import parameters

    asked: list[dict[str, object]] = []

    def get_secret(name: str, **options: object) -> str:
        asked.append({"name": name, **options})
        return "patFRESH"

    monkeypatch.setattr(parameters, "get_secret", get_secret)
    # WHEN the default source reads the token, then reads it again
    source = TokenSource(secret_arn=ARN)
    source.current()
    source.refresh()
    # THEN both reads were forced
    assert asked == [{"name": ARN, "force_fetch": True}] * 2


def test_a_local_token_never_changes_on_refresh() -> None:
    source = TokenSource(token="patLOCAL")
    assert source.refresh() == ("patLOCAL", False)


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


def test_every_token_read_is_masked_in_logs_a_rotated_one_too() -> None:
    # GIVEN a secret whose tokens have no recognisable shape (only registration masks them)
    secrets = FakeSecrets("first-token-without-a-shape")
    source = TokenSource(secret_arn=ARN, fetch=secrets)
    # WHEN the token is read, then rotated and read again
    source.current()
    secrets.value = "second-token-without-a-shape"
    source.refresh()
    # THEN both are masked in any text the logging policy redacts
    text = logs.redact("old first-token-without-a-shape, new second-token-without-a-shape")
    assert text == f"old {logs.MASK}, new {logs.MASK}"


def test_a_local_token_is_masked_from_the_start() -> None:
    TokenSource(token="local-token-without-a-shape")
    assert logs.redact("sent local-token-without-a-shape") == f"sent {logs.MASK}"


@pytest.mark.parametrize(
    "options",
    [{}, {"token": "patLOCAL", "secret_arn": ARN}],
    ids=["neither", "both"],
)
def test_a_source_takes_exactly_one_of_a_token_and_a_secret(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TokenSource(**options)
