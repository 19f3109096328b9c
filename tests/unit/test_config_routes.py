"""ROUTES, ENVELOPE and the single-table style: one validated Config either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poller.config import Config
from poller.errors import ConfigErrors
from poller.model import DEFAULT_ROUTE

QUEUE = {"QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/events"}
TOKEN = {"AIRTABLE_TOKEN": "patSecretValue.123"}
#: The routes contract's example (the file test_routing.py checks verbatim), with real-looking
#: base ids instead of its placeholders.
CONTRACT_TEXT = (Path(__file__).parent / "data" / "routes-contract.json").read_text(
    encoding="utf-8"
)
ROUTES = json.loads(
    CONTRACT_TEXT.replace("appXXXXXXXXXXXXXX", "appDonations00001").replace(
        "appYYYYYYYYYYYYYY", "appFundraisers001"
    )
)


def build(**env: str) -> Config:
    return Config.from_env({**QUEUE, **TOKEN, **env})


def problems(**env: str) -> str:
    with pytest.raises(ConfigErrors) as raised:
        build(**env)
    return str(raised.value)


def test_routes_make_one_destination_each() -> None:
    config = build(ROUTES=json.dumps(ROUTES), ENVELOPE="auto")
    assert [(r.name, r.base_id, r.table, r.merge_on) for r in config.routes] == [
        ("donations", "appDonations00001", "Donations", ("Id",)),
        ("fundraisers", "appFundraisers001", "Fundraisers", ("Fundraiser Id",)),
    ]
    assert config.bases == ("appDonations00001", "appFundraisers001")
    assert config.warnings == ()


def test_routes_take_the_path_of_a_file(tmp_path: Path) -> None:
    # GIVEN the routes in a file, named by ROUTES WHEN built THEN they are read, no warning
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(ROUTES))
    config = build(ROUTES=str(path))
    assert [r.name for r in config.routes] == ["donations", "fundraisers"]
    assert config.warnings == ()


def test_routes_file_is_read_as_routes_with_one_warning(tmp_path: Path) -> None:
    # GIVEN the deprecated ROUTES_FILE WHEN built THEN the routes are read, with one warning
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(ROUTES))
    config = build(ROUTES_FILE=str(path))
    assert [r.name for r in config.routes] == ["donations", "fundraisers"]
    assert config.warnings == ("ROUTES_FILE is deprecated: set ROUTES (it takes the same value)",)
    # AND a missing file names the variable the user wrote
    text = problems(ROUTES_FILE=str(tmp_path / "missing.json"))
    assert "ROUTES_FILE is neither JSON nor a file that exists" in text


def test_the_single_table_style_is_one_catch_all_route() -> None:
    config = build(
        AIRTABLE_BASE_ID="appDonations00001",
        AIRTABLE_TABLE="Donations",
        FIELD_MAP='{"Id": "Id"}',
        MERGE_ON="Id",
    )
    (route,) = config.routes
    assert (route.name, route.when, route.envelope) == (DEFAULT_ROUTE, (), None)
    assert (route.base_id, route.table, route.merge_on) == (
        "appDonations00001",
        "Donations",
        ("Id",),
    )


def test_both_styles_at_once_is_an_error_naming_both() -> None:
    text = problems(ROUTES=json.dumps(ROUTES), AIRTABLE_TABLE="Donations", FIELD_MAP='{"Id": "Id"}')
    assert "ROUTES is set together with the single-table variables" in text
    assert "AIRTABLE_TABLE" in text and "FIELD_MAP" in text


def test_routes_and_routes_file_at_once_is_an_error() -> None:
    text = problems(ROUTES=json.dumps(ROUTES), ROUTES_FILE="x.json")
    assert "ROUTES is set twice (ROUTES and ROUTES_FILE); keep ROUTES" in text


def test_neither_style_names_what_is_missing() -> None:
    text = problems()
    assert "AIRTABLE_BASE_ID is required but not set (or set ROUTES for several tables)" in text
    assert "AIRTABLE_TABLE is required but not set" in text
    assert "FIELD_MAP is required but not set" in text
    assert "MERGE_ON is required" in text


def test_envelope_must_be_a_known_mode() -> None:
    assert "ENVELOPE must be one of auto, raw, sns, eventbridge" in problems(
        ROUTES=json.dumps(ROUTES), ENVELOPE="kinesis"
    )


def test_a_route_to_a_placeholder_base_is_refused_naming_the_route() -> None:
    # GIVEN the contract as written, with its sample base ids WHEN built
    text = problems(ROUTES=CONTRACT_TEXT)
    # THEN both routes are named, each with its placeholder
    assert "ROUTES route \"donations\": 'appXXXXXXXXXXXXXX' is a placeholder" in text
    assert "ROUTES route \"fundraisers\": 'appYYYYYYYYYYYYYY' is a placeholder" in text


def test_a_broken_route_is_a_problem_of_the_variable_that_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text('{"routes": [{"name": "a"}]}')
    with pytest.raises(ConfigErrors) as raised:
        build(ROUTES_FILE=str(path))
    (error,) = raised.value.errors
    assert error.variable == "ROUTES_FILE" and 'route "a" needs a "table"' in error.problem


def test_the_token_limit_is_validated_against_the_base_limit() -> None:
    assert build(ROUTES=json.dumps(ROUTES), AIRTABLE_TOKEN_MAX_RPS="10").token_max_rps == 10
    assert "AIRTABLE_TOKEN_MAX_RPS (4) must be at least AIRTABLE_MAX_RPS (5)" in problems(
        ROUTES=json.dumps(ROUTES), AIRTABLE_TOKEN_MAX_RPS="4"
    )


@pytest.mark.parametrize(
    ("token_max_rps", "expected"),
    [("50", 5.0), ("8", 4.0), ("5", 2.5)],
)
def test_the_token_limit_is_shared_evenly_by_the_bases(token_max_rps: str, expected: float) -> None:
    # GIVEN two routes on two bases and a token limit WHEN built
    config = build(ROUTES=json.dumps(ROUTES), AIRTABLE_TOKEN_MAX_RPS=token_max_rps)
    # THEN each base gets AIRTABLE_MAX_RPS, within half the token's limit
    assert config.base_rps == expected


def test_the_deprecated_token_limit_still_applies_with_one_warning() -> None:
    # GIVEN two bases and the deprecated AIRTABLE_TOKEN_MAX_RPS WHEN built
    config = build(ROUTES=json.dumps(ROUTES), AIRTABLE_TOKEN_MAX_RPS="8")
    # THEN it still caps the token, and one warning says what to set instead
    assert config.base_rps == 4.0
    (warning,) = config.warnings
    assert (
        warning.startswith("AIRTABLE_TOKEN_MAX_RPS is deprecated") and "AIRTABLE_MAX_RPS" in warning
    )


def test_without_a_token_limit_more_than_ten_bases_share_airtables_50() -> None:
    # GIVEN twelve routes on twelve bases and no token limit set WHEN built
    routes = {
        "routes": [
            {**ROUTES["routes"][0], "name": f"r{i}", "base": f"appBase{i:010d}"} for i in range(12)
        ]
    }
    config = build(ROUTES=json.dumps(routes))
    # THEN each base gets an even share of the token's 50 requests/s, and nothing warns
    assert config.base_rps == pytest.approx(50 / 12) and config.warnings == ()


def test_two_routes_on_one_base_share_one_base_limit() -> None:
    routes = json.loads(json.dumps(ROUTES))
    routes["routes"][1]["base"] = "appDonations00001"
    config = build(ROUTES=json.dumps(routes), AIRTABLE_TOKEN_MAX_RPS="8")
    assert config.bases == ("appDonations00001",) and config.base_rps == 5.0


def test_merge_on_may_name_a_field_id() -> None:
    config = build(
        AIRTABLE_BASE_ID="appDonations00001",
        AIRTABLE_TABLE="Donations",
        FIELD_MAP='{"Id": "Id"}',
        MERGE_ON="fldDonationId0001",
    )
    assert config.routes[0].merge_on == ("fldDonationId0001",)


def test_a_tool_that_reads_no_queue_may_leave_queue_url_unset() -> None:
    env = {**TOKEN, "ROUTES": json.dumps(ROUTES)}
    assert Config.from_env(env, require_queue=False).queue_url == ""
    with pytest.raises(ConfigErrors, match="QUEUE_URL is required"):
        Config.from_env(env)
    with pytest.raises(ConfigErrors, match="QUEUE_URL must be"):
        Config.from_env({**env, "QUEUE_URL": "not a url"}, require_queue=False)


def test_routes_written_as_a_bare_list_say_what_the_value_must_be() -> None:
    # GIVEN the routes as a JSON list, without the {"routes": ...} object around them
    text = problems(ROUTES=json.dumps(ROUTES["routes"]))
    # THEN the problem says the shape ROUTES must have
    assert 'ROUTES must be {"routes": [...]} with at least one route' in text
