"""ROUTES, ROUTES_FILE, ENVELOPE and the single-table style: one validated Config either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poller.config import Config
from poller.errors import ConfigErrors
from poller.model import DEFAULT_ROUTE

QUEUE = {"QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/events"}
TOKEN = {"AIRTABLE_TOKEN": "patSecretValue.123"}
#: Issue 10's example (the file test_routing.py checks verbatim), with real-looking base ids.
ROUTES = json.loads(
    (Path(__file__).parent / "data" / "routes-contract.json")
    .read_text(encoding="utf-8")
    .replace("appXXXXXXXXXXXXXX", "appDonations00001")
    .replace("appYYYYYYYYYYYYYY", "appFundraisers001")
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
    assert config.routes_from == "ROUTES"
    assert config.warnings() == []


def test_routes_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(ROUTES))
    config = build(ROUTES_FILE=str(path))
    assert [r.name for r in config.routes] == ["donations", "fundraisers"]
    assert "ROUTES_FILE names no file" in problems(ROUTES_FILE=str(tmp_path / "missing.json"))


def test_the_single_table_style_is_one_catch_all_route() -> None:
    config = build(
        AIRTABLE_BASE_ID="appDonations00001",
        AIRTABLE_TABLE="Donations",
        FIELD_MAP='{"Id": "Id"}',
        MERGE_ON="Id",
    )
    (route,) = config.routes
    assert (route.name, route.when, route.merge_on) == (DEFAULT_ROUTE, (), ("Id",))
    assert (config.base_id, config.table, config.merge_on) == (
        "appDonations00001",
        "Donations",
        ("Id",),
    )


def test_both_styles_at_once_is_an_error_naming_both() -> None:
    text = problems(ROUTES=json.dumps(ROUTES), AIRTABLE_TABLE="Donations", FIELD_MAP='{"Id": "Id"}')
    assert "ROUTES is set together with the single-table variables" in text
    assert "AIRTABLE_TABLE" in text and "FIELD_MAP" in text


def test_routes_and_routes_file_at_once_is_an_error() -> None:
    assert "ROUTES and ROUTES_FILE are both set" in problems(ROUTES="{}", ROUTES_FILE="x.json")


def test_envelope_must_be_a_known_mode() -> None:
    assert "ENVELOPE must be one of auto, raw, sns, eventbridge" in problems(
        ROUTES=json.dumps(ROUTES), ENVELOPE="kinesis"
    )


def test_create_mode_is_warned_about_per_route() -> None:
    routes = json.loads(json.dumps(ROUTES))
    del routes["routes"][1]["merge_on"]
    (warning,) = build(ROUTES=json.dumps(routes)).warnings()
    assert warning.startswith('route "fundraisers" has no merge_on')
    assert "$MessageId" in warning and "duplicate" in warning


def test_the_token_limit_is_validated_against_the_base_limit() -> None:
    assert build(ROUTES=json.dumps(ROUTES), AIRTABLE_TOKEN_MAX_RPS="10").tuning.token_max_rps == 10
    assert "AIRTABLE_TOKEN_MAX_RPS (4.0) must be at least AIRTABLE_MAX_RPS (5.0)" in problems(
        ROUTES=json.dumps(ROUTES), AIRTABLE_TOKEN_MAX_RPS="4"
    )
    assert "SYSTEMIC_RETRY_SECONDS must be between" in problems(
        ROUTES=json.dumps(ROUTES), SYSTEMIC_RETRY_SECONDS="-1"
    )


def test_merge_on_may_name_a_field_id() -> None:
    config = build(
        AIRTABLE_BASE_ID="appDonations00001",
        AIRTABLE_TABLE="Donations",
        FIELD_MAP='{"Id": "Id"}',
        MERGE_ON="fldDonationId0001",
    )
    assert config.merge_on == ("fldDonationId0001",)


def test_a_tool_that_reads_no_queue_may_leave_queue_url_unset() -> None:
    env = {**TOKEN, "ROUTES": json.dumps(ROUTES)}
    assert Config.from_env(env, require_queue=False).queue_url == ""
    with pytest.raises(ConfigErrors, match="QUEUE_URL is required"):
        Config.from_env(env)
    with pytest.raises(ConfigErrors, match="QUEUE_URL must be"):
        Config.from_env({**env, "QUEUE_URL": "not a url"}, require_queue=False)
