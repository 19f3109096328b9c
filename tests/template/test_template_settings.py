"""The function's environment in template.yaml against the one table of settings
(`poller.settings.SETTINGS`): only declared names, every setting declared, values and
parameter constraints the settings accept, and a configuration the poller builds."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from poller.config import Config
from poller.errors import ConfigError, ConfigErrors
from poller.settings import BY_NAME, SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[2]
#: Names the function may be given that are not settings: the runtime's and the libraries'.
RUNTIME = re.compile(r"^(POWERTOOLS|AWS)_")
#: Each alias, and the setting it is read as.
ALIAS_OF = {alias: s for s in SETTINGS for alias in s.aliases}
#: Stand-ins for what only CloudFormation knows: a created queue's URL, the created secret.
QUEUE_STAND_IN = "https://sqs.us-east-1.amazonaws.com/123456789012/poller-test-stand-in"
SECRET_STAND_IN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:poller-test/token-AbCdEf"


def variables(sam: dict[str, Any]) -> dict[str, Any]:
    return sam["Resources"]["PollerFunction"]["Properties"]["Environment"]["Variables"]


def setting_of(name: str) -> Setting | None:
    """The setting a variable is read as: its own, or the one it is an alias of."""
    return BY_NAME.get(name) or ALIAS_OF.get(name)


def literals(node: Any) -> Iterator[str]:
    """The literal strings a variable's value can take (both branches of an Fn::If)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict) and set(node) == {"Fn::If"}:
        _, when_true, when_false = node["Fn::If"]
        yield from literals(when_true)
        yield from literals(when_false)


def parameters_of(node: Any, parameters: dict[str, Any]) -> Iterator[str]:
    """The template parameters a variable's value is taken from."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in parameters:
                yield value
            else:
                yield from parameters_of(value, parameters)
    elif isinstance(node, list):
        for item in node:
            yield from parameters_of(item, parameters)


def disagreements(sam: dict[str, Any]) -> list[str]:
    """Where the template lets through a value its setting refuses: a literal value, or a
    parameter's allowed values, default, minimum or maximum."""
    problems = []
    parameters = sam["Parameters"]
    for name, node in variables(sam).items():
        setting = setting_of(name)
        if setting is None:
            continue
        for value in literals(node):
            if value.strip():
                problems += _refused(setting, value, f"{name}: the value {value!r}")
        for parameter in parameters_of(node, parameters):
            spec = parameters[parameter]
            for allowed in spec.get("AllowedValues", []):
                if str(allowed).strip():
                    problems += _refused(setting, str(allowed), f"{parameter} allows {allowed!r}")
            default = str(spec.get("Default", "")).strip()
            if default:
                problems += _refused(setting, default, f"{parameter}'s default {default!r}")
            if setting.kind in ("int", "float"):
                assert setting.low is not None and setting.high is not None
                low, high = spec.get("MinValue"), spec.get("MaxValue")
                if low is not None and float(low) < setting.low:
                    problems.append(f"{parameter} allows {low}, below {name}'s {setting.low:g}")
                if high is not None and float(high) > setting.high:
                    problems.append(f"{parameter} allows {high}, above {name}'s {setting.high:g}")
    return problems


def _refused(setting: Setting, value: str, what: str) -> list[str]:
    try:
        setting.parse(value.strip())
    except ConfigError as exc:
        return [f"{what}, which {setting.name} refuses: {exc.problem}"]
    return []


def function_env(environment: dict[str, str]) -> dict[str, str]:
    """The deployed environment with CloudFormation's own values stood in for: what the
    function would read."""
    env = {}
    for name, value in environment.items():
        symbolic = value.startswith("ref:") or re.fullmatch(r"[A-Za-z0-9]+\.[A-Za-z]+", value)
        if symbolic and name.endswith("_URL"):
            value = QUEUE_STAND_IN
        elif symbolic and name.endswith("_ARN"):
            value = SECRET_STAND_IN
        env[name] = value
    return env


# -- names ------------------------------------------------------------------------------------


def test_the_function_is_given_only_declared_settings(sam: dict[str, Any]) -> None:
    # GIVEN the names the template sets for the function
    names = set(variables(sam))
    # THEN each is a declared setting, or a runtime or library name
    undeclared = sorted(n for n in names if n not in BY_NAME and not RUNTIME.match(n))
    assert undeclared == []


def test_every_setting_is_declared_so_that_a_local_run_can_set_it(sam: dict[str, Any]) -> None:
    # GIVEN the one table of settings WHEN compared with the template's environment
    # THEN every current setting is declared (sam local invoke --env-vars drops undeclared
    # variables), and no deprecated one is, so that a deployed function logs no warning
    current = [s.name for s in SETTINGS if s.importance != "deprecated"]
    assert [n for n in current if n not in variables(sam)] == []
    deprecated = [s.name for s in SETTINGS if s.importance == "deprecated"]
    assert deprecated and not set(deprecated) & set(variables(sam))


# -- values and parameter constraints -----------------------------------------------------------


def test_every_value_and_parameter_constraint_is_one_the_setting_accepts(
    sam: dict[str, Any],
) -> None:
    # GIVEN the template's values for the settings, and the parameters they are taken from
    fed = {
        name: sorted(set(parameters_of(node, sam["Parameters"])))
        for name, node in variables(sam).items()
        if setting_of(name) is not None
    }
    assert any(fed.values()), "no setting is taken from a parameter: the check checks nothing"
    # THEN no literal, allowed value, default, minimum or maximum is one the setting refuses
    assert disagreements(sam) == []


@pytest.mark.parametrize(
    ("parameter", "variable", "problem"),
    [
        (
            {"Type": "Number", "Default": 1, "MinValue": 0, "MaxValue": 30},
            "WAIT_TIME_SECONDS",
            "WaitTime allows 30, above WAIT_TIME_SECONDS's 20",
        ),
        (
            {"Type": "Number", "Default": 5, "MinValue": 0.1, "MaxValue": 50},
            "AIRTABLE_MAX_RPS",
            "WaitTime allows 0.1, below AIRTABLE_MAX_RPS's 1",
        ),
        (
            {"Type": "String", "Default": "auto", "AllowedValues": ["auto", "kafka"]},
            "ENVELOPE",
            "WaitTime allows 'kafka', which ENVELOPE refuses",
        ),
        (
            {"Type": "String", "Default": "maybe", "AllowedValues": ["true", "false"]},
            "WIRE_DEBUG",
            "WaitTime's default 'maybe', which WIRE_DEBUG refuses",
        ),
        (
            {"Type": "String", "Default": ""},
            "FIELD_MAP_FILE",
            None,
        ),
    ],
)
def test_a_parameter_that_lets_through_what_its_setting_refuses_would_be_caught(
    sam: dict[str, Any], parameter: dict[str, Any], variable: str, problem: str | None
) -> None:
    # GIVEN the template with a parameter feeding one setting, through an Fn::If as well
    edited = copy.deepcopy(sam)
    edited["Parameters"]["WaitTime"] = parameter
    variables(edited)[variable] = {"Fn::If": ["HasRoutesFile", "", {"Ref": "WaitTime"}]}
    # WHEN checked THEN the disagreement is named (and an agreeing one is not)
    found = disagreements(edited)
    if problem is None:
        assert found == []
    else:
        assert any(p.startswith(problem) for p in found), found


def test_a_literal_value_the_setting_refuses_would_be_caught(sam: dict[str, Any]) -> None:
    edited = copy.deepcopy(sam)
    variables(edited)["WAIT_TIME_SECONDS"] = "25"
    variables(edited)["ENVELOPE"] = {"Fn::If": ["HasRoutesFile", "kinesis", "auto"]}
    found = disagreements(edited)
    assert any(p.startswith("WAIT_TIME_SECONDS: the value '25'") for p in found), found
    assert any(p.startswith("ENVELOPE: the value 'kinesis'") for p in found), found


# -- the configuration a deployed stack gives ---------------------------------------------------


def samconfig_parameters(environment: str) -> dict[str, str]:
    from samcli.cli.types import CfnParameterOverridesType
    from samcli.lib.config.samconfig import SamConfig

    settings = SamConfig(str(ROOT), "samconfig.toml").get_all(["deploy"], "parameters", environment)
    return CfnParameterOverridesType().convert(settings["parameter_overrides"], None, None)


def deployed_config(deploy: Callable[..., Any], **parameters: str) -> Config:
    """The configuration the function of a stack that the template's rules accept builds."""
    stack = deploy(**parameters)
    assert stack.rule_failures == []
    return Config.from_env(function_env(stack.environment))


def samconfig_stack(sam: dict[str, Any], environment: str, **overrides: str) -> dict[str, str]:
    """Every parameter of a samconfig environment's stack: its values, else the defaults (not
    the fixture's filler values, which would add an inline FieldMap beside FieldMapFile)."""
    defaults = {k: str(v["Default"]) for k, v in sam["Parameters"].items() if "Default" in v}
    return {**defaults, **samconfig_parameters(environment), **overrides}


@pytest.mark.parametrize("environment", ["default", "dev", "prod"])
def test_each_samconfig_environment_deploys_a_configuration_the_poller_builds(
    environment: str, deploy: Callable[..., Any], sam: dict[str, Any]
) -> None:
    # GIVEN the environment's parameters, with a base id for the placeholder it ships with
    parameters = samconfig_stack(sam, environment, AirtableBaseId="appTestBase000001")
    # WHEN its stack's function builds its configuration
    config = deployed_config(deploy, **parameters)
    # THEN it is valid: the typed Donations mapping, upserting on Id, through the secret
    (route,) = config.routes
    assert route.merge_on == ("Id",) and route.field_map.spec("Donation Amount") is not None
    assert config.token_secret_arn == SECRET_STAND_IN and config.token is None


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_each_samconfig_environment_deploys_a_configuration_without_warnings(
    environment: str, deploy: Callable[..., Any], sam: dict[str, Any]
) -> None:
    # GIVEN the environment's stack WHEN its function builds its configuration THEN no
    # retired or deprecated name is in it (each would be a warning at every cold start)
    parameters = samconfig_stack(sam, environment, AirtableBaseId="appTestBase000001")
    assert deployed_config(deploy, **parameters).warnings == ()


@pytest.mark.parametrize("environment", ["default", "dev", "prod"])
def test_a_samconfig_deployed_before_its_base_id_is_replaced_is_refused(
    environment: str, deploy: Callable[..., Any], sam: dict[str, Any]
) -> None:
    # GIVEN samconfig.toml as it ships, with its placeholder base id
    parameters = samconfig_stack(sam, environment)
    assert parameters["AirtableBaseId"].startswith("appREPLACEME")
    # WHEN the stack's function builds its configuration THEN the placeholder is named
    with pytest.raises(ConfigErrors) as raised:
        deployed_config(deploy, **parameters)
    (error,) = raised.value.errors
    assert error.variable == "AIRTABLE_BASE_ID" and "is a placeholder" in error.problem


def test_the_template_refuses_a_single_table_stack_without_merge_on(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN a single-table stack without MergeOn WHEN CloudFormation checks the template's
    # rules THEN it is refused, saying how to choose (the poller would refuse it at each run)
    failures = deploy(MergeOn="").rule_failures
    assert failures == [
        "Set MergeOn to the field(s) to upsert on (e.g. Id), or to none to create a row per "
        "message."
    ]
    # AND a stack that routes its messages needs none
    assert deploy(MergeOn="", RoutesFile="routes.json").rule_failures == []


@pytest.mark.parametrize(("merge_on", "expected"), [("Id", ("Id",)), ("none", ())])
def test_a_stack_the_rules_accept_deploys_a_configuration_the_poller_builds(
    deploy: Callable[..., Any], merge_on: str, expected: tuple[str, ...]
) -> None:
    # GIVEN only the required parameters (a base, a table, an inline mapping, MergeOn)
    # WHEN the function builds its configuration THEN it is valid, with no warning
    config = deployed_config(deploy, MergeOn=merge_on)
    assert config.routes[0].merge_on == expected and config.warnings == ()
    assert config.pace_parameter_prefix == "/poller-test/pace"
