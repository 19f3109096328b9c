"""events/ for `sam local invoke` (Docker users): the env-vars file and the scheduled event."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poller.config import Config
from poller.settings import BY_NAME

ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = ROOT / "events" / "env-vars.json"


def test_the_env_vars_file_names_the_function_and_only_declared_variables(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN events/env-vars.json and the variables the template declares
    overrides = json.loads(ENV_VARS.read_text())
    declared = set(deploy().environment)
    # THEN it is keyed by the function's logical id ...
    assert list(overrides) == ["PollerFunction"]
    # ... and every variable in it is declared (sam local invoke silently drops the others)
    assert set(overrides["PollerFunction"]) <= declared
    assert all(isinstance(v, str) for v in overrides["PollerFunction"].values())


def test_the_env_vars_file_points_at_the_local_stack_from_inside_a_container() -> None:
    env = json.loads(ENV_VARS.read_text())["PollerFunction"]
    assert env["AWS_ENDPOINT_URL_SQS"] == "http://host.docker.internal:9324"
    assert env["QUEUE_URL"] == "http://host.docker.internal:9324/123456789012/donations"
    assert (
        env["DEAD_LETTER_QUEUE_URL"]
        == "http://host.docker.internal:9324/123456789012/donations-dlq"
    )
    assert env["AIRTABLE_API_URL"] == "http://host.docker.internal:8787"
    assert (env["AIRTABLE_BASE_ID"], env["AIRTABLE_TABLE"]) == ("appDonations00001", "Donations")
    # no AWS credentials: SAM passes the shell's into the container
    assert not [k for k in env if k.startswith("AWS_") and "ENDPOINT" not in k]


def test_the_local_environment_is_a_valid_poller_configuration(sam: dict[str, Any]) -> None:
    # GIVEN what the function sees under sam local invoke: the template's literal values
    # overlaid with the env-vars file, which must override every value that comes from an
    # intrinsic (a queue URL, the secret's ARN, a parameter)
    declared = sam["Resources"]["PollerFunction"]["Properties"]["Environment"]["Variables"]
    literals = {k: v for k, v in declared.items() if isinstance(v, str)}
    overrides = json.loads(ENV_VARS.read_text())["PollerFunction"]
    # (SAM gives an intrinsic it cannot resolve the value "", samcli/local/lambdafn/env_vars.py:
    # right for ROUTES, whose parameter is empty by default in a single-table setup.)
    may_stay_empty = {"ROUTES"}
    assert set(declared) - set(literals) - may_stay_empty <= set(overrides)
    env = {**dict.fromkeys(may_stay_empty, ""), **literals, **overrides}
    # WHEN the poller builds its configuration from it
    config = Config.from_env(env)
    # THEN it uses the local token (not a secret), the Donations mapping and upserts on Id
    assert config.token == "patLocalDevToken"
    assert config.token_secret_arn is None
    assert config.routes[0].merge_on == ("Id",)
    assert config.queue_url.endswith("/donations")
    assert config.dead_letter_queue_url and config.dead_letter_queue_url.endswith("/donations-dlq")


def test_the_env_vars_file_sets_only_current_names() -> None:
    # GIVEN the file's variables THEN each is a setting or a runtime name: nothing retired or
    # renamed, which a local run would read with a warning or not at all
    env = json.loads(ENV_VARS.read_text())["PollerFunction"]
    stale = sorted(n for n in env if n not in BY_NAME and not n.startswith(("AWS_", "POWERTOOLS_")))
    assert stale == []
