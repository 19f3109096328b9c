"""Config is validated in one place; every problem names its variable and says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from devstack.factories import DONATION_FIELD_MAP_JSON

import poller
from poller.config import Config, find_file
from poller.errors import ConfigError, ConfigErrors
from poller.settings import SETTINGS

DONATIONS_FILE = Path(poller.__file__).parent / "field_maps" / "donations.json"
VALID = {
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/donations",
    "AIRTABLE_BASE_ID": "appDonations00001",
    "AIRTABLE_TABLE": "Donations",
    "AIRTABLE_TOKEN": "patSecretValue.123",
    "FIELD_MAP": DONATION_FIELD_MAP_JSON,
    "MERGE_ON": "Id",
}


def build(**env: str) -> Config:
    return Config.from_env({**VALID, **env})


def problems(**env: str) -> str:
    with pytest.raises(ConfigErrors) as raised:
        build(**env)
    return str(raised.value)


def variables(**env: str | None) -> list[str]:
    with pytest.raises(ConfigErrors) as raised:
        Config.from_env({k: v for k, v in {**VALID, **env}.items() if v is not None})
    return [e.variable for e in raised.value.errors]


def test_minimal_config_has_safe_defaults():
    # GIVEN only the required variables WHEN built
    config = Config.from_env(VALID)
    # THEN the defaults are Airtable's real limits and a short long-poll
    assert config.api_url == "https://api.airtable.com"
    assert config.max_rps == 5.0 and config.token_max_rps == 50.0
    assert config.wait_time_seconds == 1 and config.envelope == "auto"
    assert config.dead_letter_queue_url is None and not config.is_fifo
    assert config.pace_parameter_prefix is None and config.warnings == ()
    # AND the single-table variables are one route that upserts on Id
    (route,) = config.routes
    assert (route.base_id, route.table, route.merge_on) == (
        "appDonations00001",
        "Donations",
        ("Id",),
    )


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
    assert "AIRTABLE_MAX_RPS must be a number between 1 and 50, got 'x'" in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AIRTABLE_TOKEN": ""}, "exactly one must be set (neither is set)"),
        (
            {"AIRTABLE_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:t"},
            "(both are set)",
        ),
        (
            {"AIRTABLE_TOKEN": "", "AIRTABLE_TOKEN_SECRET_ARN": "my-secret"},
            "AIRTABLE_TOKEN_SECRET_ARN must be a Secrets Manager ARN",
        ),
        ({"FIELD_MAP": "{not json"}, "FIELD_MAP is not valid JSON"),
        ({"FIELD_MAP": "{}"}, "FIELD_MAP must be a non-empty JSON object"),
        ({"FIELD_MAP": '{"a": 1}'}, 'FIELD_MAP maps "a" to 1; expected a field name'),
        ({"FIELD_MAP": '{"a": "X", "b": "X"}'}, "maps several keys to the same field(s): ['X']"),
        ({"MERGE_ON": "Nope"}, "MERGE_ON names ['Nope'], which no entry of FIELD_MAP fills"),
        ({"MERGE_ON": "Id,Id"}, "MERGE_ON must name 1 to 3 distinct fields"),
        ({"MERGE_ON": "Id,"}, "got ['Id', '']"),
        (
            {"MERGE_ON": "Id,Donor Id,Fundraiser Id,Creation Date"},
            "MERGE_ON must name 1 to 3 distinct fields (Airtable's limit)",
        ),
        (
            {"DEAD_LETTER_QUEUE_URL": "donations-dlq"},
            "DEAD_LETTER_QUEUE_URL must be an http(s) URL",
        ),
        ({"MAX_IN_FLIGHT_WRITES": "2.5"}, "MAX_IN_FLIGHT_WRITES must be a whole number"),
        ({"AIRTABLE_TYPECAST": "maybe"}, "AIRTABLE_TYPECAST must be true or false"),
        ({"ENVELOPE": "kinesis"}, "ENVELOPE must be one of auto, raw, sns, eventbridge"),
        ({"PACE_PARAMETER_PREFIX": "pace"}, "PACE_PARAMETER_PREFIX must be an SSM path"),
    ],
)
def test_bad_values_are_named(env, expected):
    assert expected in problems(**env)


def test_merge_on_is_required_and_names_itself_when_unset():
    # GIVEN the single-table variables without MERGE_ON WHEN built
    # THEN the one problem names MERGE_ON and says how to choose
    assert variables(MERGE_ON=None) == ["MERGE_ON"]
    text = problems(MERGE_ON="")
    assert "MERGE_ON is required" in text and "MERGE_ON=none" in text


@pytest.mark.parametrize("none", ["none", "NONE", " None "])
def test_merge_on_none_is_create_mode(none):
    # GIVEN MERGE_ON=none WHEN built THEN the route creates rows (no merge fields)
    assert build(MERGE_ON=none).routes[0].merge_on == ()


@pytest.mark.parametrize(
    "base_id", ["appREPLACEME00000", "appXXXXXXXXXXXXXX", "appYYYYYYYYYYYYYY", "appreplaceme12345"]
)
def test_a_placeholder_base_id_is_refused(base_id):
    # GIVEN a base id copied from a sample WHEN built THEN it is named as a placeholder
    text = problems(AIRTABLE_BASE_ID=base_id)
    assert f"AIRTABLE_BASE_ID {base_id!r} is a placeholder" in text


def test_a_real_base_id_with_repeated_letters_is_not_a_placeholder():
    assert build(AIRTABLE_BASE_ID="appAbXXXXXXXXXXXX").routes[0].base_id == "appAbXXXXXXXXXXXX"


def test_the_token_never_appears_in_the_config_repr_or_errors():
    # GIVEN a token WHEN the config is printed, or fails validation
    config = Config.from_env(VALID)
    text = repr(config) + str(config) + problems(AIRTABLE_TOKEN_SECRET_ARN="arn:aws:x")
    # THEN the token is nowhere
    assert "patSecretValue" not in text and "<set>" in repr(config)


def test_merge_on_and_tuning_are_parsed():
    config = build(
        MERGE_ON="Id, Donor Id", AIRTABLE_MAX_RPS="4.5", QUEUE_URL=VALID["QUEUE_URL"] + ".fifo"
    )
    assert config.routes[0].merge_on == ("Id", "Donor Id")
    assert config.max_rps == 4.5 and config.is_fifo
    # AND a FIFO queue writes one request at a time per base, whatever MAX_IN_FLIGHT_WRITES says
    assert config.max_in_flight == 4 and config.in_flight == 1


#: A value other than the default, for each setting that is a number, a flag or a choice,
#: and the Config attribute it must reach.
TUNED = {
    "WAIT_TIME_SECONDS": ("7", "wait_time_seconds", 7),
    "AIRTABLE_MAX_RPS": ("2.5", "max_rps", 2.5),
    "AIRTABLE_TOKEN_MAX_RPS": ("20", "token_max_rps", 20.0),
    "MAX_IN_FLIGHT_WRITES": ("2", "max_in_flight", 2),
    "AIRTABLE_TIMEOUT_SECONDS": ("30", "timeout_seconds", 30.0),
    "WRITE_MAX_ATTEMPTS": ("6", "max_attempts", 6),
    "DEAD_LETTER_AFTER_RECEIVES": ("0", "dead_letter_after_receives", 0),
    "AIRTABLE_TYPECAST": ("yes", "typecast", True),
    "WIRE_DEBUG": ("on", "wire_debug", True),
    "ENVELOPE": ("SNS", "envelope", "sns"),
}


@pytest.mark.parametrize("name", sorted(TUNED))
def test_each_tuning_value_reaches_the_config(name):
    # GIVEN one setting changed from its default WHEN built THEN the config carries it
    raw, attribute, expected = TUNED[name]
    assert getattr(Config.from_env(VALID), attribute) != expected
    assert getattr(build(**{name: raw}), attribute) == expected


def test_every_number_flag_and_choice_setting_is_covered_above():
    # GIVEN the one table of settings THEN each non-text setting has a case in TUNED
    assert {s.name for s in SETTINGS if s.kind not in ("text", "url")} == set(TUNED)


def test_the_stop_margin_follows_the_long_poll_and_the_request_timeout():
    config = build(WAIT_TIME_SECONDS="5", AIRTABLE_TIMEOUT_SECONDS="20")
    assert config.stop_margin == 5 + 20 + 2


def test_the_pace_prefix_is_an_ssm_path():
    assert build(PACE_PARAMETER_PREFIX="/sqs-airtable-poller/pace").pace_parameter_prefix == (
        "/sqs-airtable-poller/pace"
    )


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
    assert build(AIRTABLE_API_URL=url).api_url == url.rstrip("/")


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
    assert build(WIRE_DEBUG="true").wire_debug is True
    assert "WIRE_DEBUG must be true or false" in problems(WIRE_DEBUG="loud")


# -- retired and deprecated names ---------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "SCHEMA_CHECK",
        "SYSTEMIC_RETRY_SECONDS",
        "AIRTABLE_LOCKOUT_SECONDS",
        "STOP_MARGIN_SECONDS",
        "BATCH_LINGER_SECONDS",
        "MAX_BUFFERED_MESSAGES",
    ],
)
def test_a_retired_variable_is_a_warning_not_an_error(name):
    # GIVEN a variable that is no longer read, even with a value it once refused
    config = build(**{name: "-1"})
    # THEN the config builds, with one warning that names it
    (warning,) = config.warnings
    assert warning.startswith(f"{name} is no longer read: ")


def test_field_map_takes_the_path_of_a_shipped_file():
    # GIVEN FIELD_MAP naming the packaged Donations mapping WHEN built
    config = build(FIELD_MAP="field_maps/donations.json")
    # THEN its typed entries are used, with no warning
    spec = config.routes[0].field_map.spec("Donation Amount")
    assert spec is not None and spec.type == "currency" and config.warnings == ()


def test_field_map_file_is_read_as_field_map_with_one_warning(tmp_path):
    # GIVEN the deprecated FIELD_MAP_FILE instead of FIELD_MAP WHEN built
    config = build(FIELD_MAP="", FIELD_MAP_FILE="field_maps/donations.json")
    # THEN the mapping is the file's, and one warning says what to set instead
    spec = config.routes[0].field_map.spec("Donation Amount")
    assert spec is not None and spec.type == "currency"
    assert config.warnings == (
        "FIELD_MAP_FILE is deprecated: set FIELD_MAP (it takes the same value)",
    )
    # AND a problem in the file names the variable the user wrote
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": {"field": "A", "type": "money"}}')
    assert "FIELD_MAP_FILE entry \"a\" has type 'money'" in problems(
        FIELD_MAP="", FIELD_MAP_FILE=str(bad)
    )


def test_field_map_and_field_map_file_together_is_an_error():
    text = problems(FIELD_MAP_FILE="field_maps/donations.json")
    assert "FIELD_MAP is set twice (FIELD_MAP and FIELD_MAP_FILE); keep FIELD_MAP" in text


def test_an_unset_field_map_names_both_forms():
    assert "FIELD_MAP is required but not set: a JSON object, or the path of a mapping file" in (
        problems(FIELD_MAP="")
    )


def test_a_path_that_names_no_file_says_where_it_looked(tmp_path):
    text = problems(FIELD_MAP=str(tmp_path / "nope.json"))
    assert "FIELD_MAP is neither JSON nor a file that exists" in text
    assert str(tmp_path / "nope.json") in text


def test_a_mapping_file_is_found_relative_to_the_package_the_task_root_or_the_cwd(
    tmp_path, monkeypatch
):
    # GIVEN relative paths WHEN looked up THEN the package comes first, then the task root
    assert find_file("field_maps/donations.json", None, "FIELD_MAP") == DONATIONS_FILE
    assert find_file("poller/field_maps/donations.json", None, "FIELD_MAP") == DONATIONS_FILE
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "m.json").write_text('{"Id": "Id"}')
    assert find_file("maps/m.json", str(tmp_path), "FIELD_MAP") == tmp_path / "maps" / "m.json"
    # AND then the working directory, and an absolute path as it is
    monkeypatch.chdir(tmp_path)
    found = find_file("maps/m.json", None, "FIELD_MAP")
    assert found.resolve() == (tmp_path / "maps" / "m.json").resolve()
    assert find_file(str(DONATIONS_FILE), str(tmp_path), "FIELD_MAP") == DONATIONS_FILE
    # WHEN it names no file THEN the error names the variable and every place it looked
    with pytest.raises(ConfigError) as raised:
        find_file("nope.json", str(tmp_path), "ROUTES")
    assert raised.value.variable == "ROUTES"
    assert str(tmp_path / "nope.json") in raised.value.problem


def test_the_task_root_is_read_from_the_environment(tmp_path):
    # GIVEN a mapping file under LAMBDA_TASK_ROOT only
    (tmp_path / "m.json").write_text('{"Id": "Id", "Amount": "Amount"}')
    # WHEN FIELD_MAP names it relatively THEN it is found there
    config = build(FIELD_MAP="m.json", LAMBDA_TASK_ROOT=str(tmp_path))
    assert config.routes[0].field_map.fields == ("Id", "Amount")


def test_a_json_value_that_is_not_an_object_is_named_as_such():
    # GIVEN FIELD_MAP holding JSON that is not an object (a list)
    text = problems(FIELD_MAP='[{"Id": "Id"}]')
    # THEN the problem says what the value must be, not that it is not JSON
    assert "FIELD_MAP must be a non-empty JSON object" in text
