"""samconfig.toml and the documented `--parameter-overrides` commands, read with SAM's own
parsers, so that `sam deploy --config-env prod` gets valid values for every parameter."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devstack.factories import DONATION_FIELD_MAP
from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.deploy.deploy_context import DeployContext
from samcli.lib.config.samconfig import SamConfig

from poller.fieldmap import FieldMap
from poller.routing import map_value

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("default", "dev", "prod")
DONATIONS_MAP = DONATION_FIELD_MAP


def deploy_settings(environment: str) -> dict[str, Any]:
    return SamConfig(str(ROOT), "samconfig.toml").get_all(["deploy"], "parameters", environment)


def overrides_of(value: Any) -> dict[str, str]:
    """What SAM makes of a parameter_overrides value (config file or command line)."""
    return CfnParameterOverridesType().convert(value, None, None)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_deploys_its_own_stack_with_iam(environment: str) -> None:
    settings = deploy_settings(environment)
    assert settings["capabilities"] == "CAPABILITY_IAM"
    assert settings["resolve_s3"] is True
    stacks = {deploy_settings(e)["stack_name"] for e in ENVIRONMENTS}
    assert len(stacks) == len(ENVIRONMENTS), "two environments would deploy the same stack"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_gives_valid_values_for_every_required_parameter(
    environment: str, sam: dict[str, Any], check_parameter: Callable[[str, str], list[str]]
) -> None:
    # GIVEN the environment's parameter_overrides, as SAM parses them
    values = overrides_of(deploy_settings(environment)["parameter_overrides"])
    # THEN every value is one CloudFormation accepts for that parameter ...
    problems = [p for name, value in values.items() for p in check_parameter(name, value)]
    assert problems == []
    # ... every parameter without a default has a value ...
    required = {n for n, spec in sam["Parameters"].items() if "Default" not in spec}
    assert required <= set(values), sorted(required - set(values))
    # ... and the values with spaces arrive whole (not cut at the first space)
    assert values["ScheduleExpression"] == "rate(5 minutes)"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_uses_the_typed_donations_mapping(environment: str) -> None:
    # GIVEN the environment's parameter_overrides
    values = overrides_of(deploy_settings(environment)["parameter_overrides"])
    # THEN it names the shipped, typed mapping file (not an untyped inline FieldMap) ...
    assert "FieldMap" not in values
    path = ROOT / "src" / "poller" / values["FieldMapFile"]
    assert path.is_file(), f"{path} is not in the function's package: sam build would not ship it"
    mapping = FieldMap.parse(path.read_text(encoding="utf-8"))
    # ... which maps every Donations key to its field, each with a type
    assert {s.source: s.field for s in mapping.specs} == DONATIONS_MAP
    assert all(s.type for s in mapping.specs)
    assert values["MergeOn"] == "Id"


def test_the_typed_mapping_converts_a_dotnet_creation_date() -> None:
    # GIVEN the shipped mapping and a CreationDate as Newtonsoft.Json writes DateTime.UtcNow
    # (seven fractional digits)
    mapping = FieldMap.parse(
        (ROOT / "src" / "poller" / "field_maps" / "donations.json").read_text(encoding="utf-8")
    )
    spec = mapping.spec("Creation Date")
    assert spec is not None
    # WHEN mapped THEN Airtable gets ISO 8601 UTC with milliseconds
    assert map_value(spec, "2026-11-30T12:00:00.1234567Z") == "2026-11-30T12:00:00.123Z"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_satisfies_the_template_rules(
    environment: str, deploy: Callable[..., Any], sam: dict[str, Any]
) -> None:
    values = overrides_of(deploy_settings(environment)["parameter_overrides"])
    # every parameter the environment does not name takes the template's default (the
    # fixture's own filler values would add an inline FieldMap beside FieldMapFile)
    defaults = {k: str(v["Default"]) for k, v in sam["Parameters"].items() if "Default" in v}
    stack = deploy(**{**defaults, **values})
    assert stack.rule_failures == []
    assert stack.properties("PollerFunctionSchedule")["ScheduleExpression"] == "rate(5 minutes)"


def test_prod_confirms_change_sets() -> None:
    assert deploy_settings("prod")["confirm_changeset"] is True


def test_an_unquoted_value_with_a_space_would_be_cut() -> None:
    # GIVEN the mistake the docs warn about (the check can fail)
    # WHEN SAM parses it THEN the value stops at the space
    assert overrides_of("ScheduleExpression=rate(1 minute)")["ScheduleExpression"] == "rate(1"


def documented_overrides() -> list[str]:
    """The --parameter-overrides argument of each sam command in README.md and docs/, after
    the shell has removed its quotes."""
    commands = []
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(d.read_text() for d in documents if d.exists())
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("sam ") and "--parameter-overrides" in line:
            words = shlex.split(line.split(" #", 1)[0])
            commands.append(words[words.index("--parameter-overrides") + 1])
    return commands


def test_the_docs_show_how_to_change_and_pause_the_schedule() -> None:
    names = {name for arg in documented_overrides() for name in overrides_of(arg)}
    assert {"ScheduleExpression", "SchedulePaused", "Architecture"} <= names


@pytest.mark.parametrize("argument", documented_overrides())
def test_each_documented_override_reaches_cloudformation_whole(
    argument: str, sam: dict[str, Any], check_parameter: Callable[[str, str], list[str]]
) -> None:
    # GIVEN a documented command's --parameter-overrides, as the shell passes it
    values = overrides_of(argument)
    # THEN each value is valid for its parameter (a cut "rate(1" would not be) ...
    assert values
    assert [p for n, v in values.items() for p in check_parameter(n, v)] == []
    # ... and on an existing stack every other parameter keeps its deployed value
    change = DeployContext.merge_parameters(sam, values)
    kept = {p["ParameterKey"] for p in change if p.get("UsePreviousValue")}
    assert kept == set(sam["Parameters"]) - set(values)


def test_the_documented_schedule_change_is_one_minute() -> None:
    schedules = [
        overrides_of(a)["ScheduleExpression"]
        for a in documented_overrides()
        if "ScheduleExpression" in a
    ]
    assert "rate(1 minute)" in schedules
    assert all(re.fullmatch(r"(rate|cron)\(.+\)", s) for s in schedules)
