"""Config is validated in one place; every problem names its variable and says why."""

from __future__ import annotations

import json

import pytest
from devstack.factories import DONATION_FIELD_MAP_JSON

from poller.config import Config
from poller.errors import ConfigErrors

VALID = {
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/donations",
    "AIRTABLE_BASE_ID": "appDonations00001",
    "AIRTABLE_TABLE": "Donations",
    "AIRTABLE_TOKEN": "patSecretValue.123",
    "FIELD_MAP": DONATION_FIELD_MAP_JSON,
}


def problems(**env: str) -> str:
    with pytest.raises(ConfigErrors) as raised:
        Config.from_env({**VALID, **env})
    return str(raised.value)


def test_minimal_config_has_safe_defaults():
    # GIVEN only the required variables WHEN built
    config = Config.from_env(VALID)
    # THEN the defaults are Airtable's real limits and a short long-poll
    assert config.api_url == "https://api.airtable.com"
    assert config.tuning.max_rps == 5.0 and config.tuning.wait_time_seconds == 1
    assert config.merge_on == () and config.dead_letter_queue_url is None and not config.is_fifo


def test_every_problem_is_reported_at_once_with_its_variable():
    # GIVEN several bad values WHEN built
    text = problems(
        QUEUE_URL="", AIRTABLE_BASE_ID="base1", WAIT_TIME_SECONDS="21", AIRTABLE_MAX_RPS="x"
    )
    # THEN each one is named with the reason
    assert "4 problem(s)" in text
    assert "QUEUE_URL is required but not set" in text
    assert "AIRTABLE_BASE_ID must look like app + 14 letters/digits" in text
    assert "WAIT_TIME_SECONDS must be between 0 and 20, got 21" in text
    assert "AIRTABLE_MAX_RPS must be a number between 0.1 and 50.0, got 'x'" in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AIRTABLE_TOKEN": ""}, "exactly one must be set (neither is set)"),
        (
            {"AIRTABLE_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:t"},
            "(both are set)",
        ),
        ({"FIELD_MAP": "{not json"}, "FIELD_MAP is not valid JSON"),
        ({"FIELD_MAP": "[]"}, "FIELD_MAP must be a non-empty JSON object"),
        ({"FIELD_MAP": '{"a": 1}'}, 'FIELD_MAP maps "a" to 1; expected a field name'),
        ({"FIELD_MAP": '{"a": "X", "b": "X"}'}, "maps several keys to the same field(s): ['X']"),
        ({"MERGE_ON": "Nope"}, "MERGE_ON names ['Nope'], which FIELD_MAP never fills"),
        ({"MERGE_ON": "Id,Id"}, "MERGE_ON must be 1 to 3 distinct"),
        ({"MERGE_ON": "Id,Donor Id,Fundraiser Id,Creation Date"}, "takes at most 3 fields"),
        (
            {"DEAD_LETTER_QUEUE_URL": "donations-dlq"},
            "DEAD_LETTER_QUEUE_URL must be an http(s) URL",
        ),
        ({"MAX_IN_FLIGHT_WRITES": "2.5"}, "MAX_IN_FLIGHT_WRITES must be a whole number"),
        ({"AIRTABLE_TYPECAST": "maybe"}, "AIRTABLE_TYPECAST must be true or false"),
    ],
)
def test_bad_values_are_named(env, expected):
    assert expected in problems(**env)


def test_the_token_never_appears_in_the_config_repr_or_errors():
    # GIVEN a token WHEN the config is printed, or fails validation
    config = Config.from_env(VALID)
    text = repr(config) + str(config) + problems(AIRTABLE_TOKEN_SECRET_ARN="arn:aws:x")
    # THEN the token is nowhere
    assert "patSecretValue" not in text and "<set>" in repr(config)


def test_merge_on_and_tuning_are_parsed():
    config = Config.from_env(
        {
            **VALID,
            "MERGE_ON": "Id, Donor Id",
            "AIRTABLE_MAX_RPS": "4.5",
            "QUEUE_URL": VALID["QUEUE_URL"] + ".fifo",
        }
    )
    assert config.merge_on == ("Id", "Donor Id")
    assert config.tuning.max_rps == 4.5 and config.is_fifo
    assert json.loads(DONATION_FIELD_MAP_JSON)["Id"] == "Id"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.airtable.com",
        "https://airtable.example.internal:8443/proxy",
        "http://127.0.0.1:8080",
        "http://127.0.0.5",
        "http://[::1]:9000",
        "http://localhost:4010",
        "http://LOCALHOST",
        "http://host.docker.internal:3000",
    ],
)
def test_api_url_is_https_or_plain_http_to_a_loopback_or_the_docker_host(url):
    # GIVEN an AIRTABLE_API_URL that keeps the token encrypted or on this machine
    # WHEN built THEN it is accepted as given
    assert Config.from_env({**VALID, "AIRTABLE_API_URL": url}).api_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://api.airtable.com", "api.airtable.com"),
        ("http://localhost@evil.example", "evil.example"),
        ("http://localhost:80@evil.example/v0", "evil.example"),
        ("http://127.0.0.1.evil.example", "127.0.0.1.evil.example"),
        ("http://10.0.0.8:8080", "10.0.0.8"),
        ("http://[::2]", "::2"),
        ("http://localhost.evil.example", "localhost.evil.example"),
    ],
)
def test_plain_http_to_any_other_host_is_refused_naming_the_variable(url, host):
    # GIVEN plain http to a host the token would cross the network to
    # WHEN built THEN the error names the variable, says why, and names the real host
    text = problems(AIRTABLE_API_URL=url)
    assert "AIRTABLE_API_URL must be https://" in text
    assert f"unencrypted to {host!r}" in text
    assert "loopback host (127.0.0.0/8, ::1, localhost) or host.docker.internal" in text


def test_wire_debug_is_off_unless_asked_for():
    assert Config.from_env(VALID).wire_debug is False
    assert Config.from_env({**VALID, "WIRE_DEBUG": "true"}).wire_debug is True
    assert "WIRE_DEBUG must be true or false" in problems(WIRE_DEBUG="loud")
