"""The function's settings, its environment and where the token lives (the environment's
names against the table of settings: test_template_settings.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from poller.settings import read

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:airtable/pat-AbC123"


def test_the_function_is_python313_on_arm64_with_one_run_at_a_time(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN the default stack WHEN we read the function
    function = deploy().properties("PollerFunction")
    # THEN it is the poller's handler on python3.13/arm64, never running twice at once
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "lambda_function.lambda_handler"
    assert function["ReservedConcurrentExecutions"] == 1
    assert function["FunctionName"] == "poller-test-poller"


def test_the_architecture_parameter_builds_for_x86_64(deploy: Callable[..., Any]) -> None:
    # GIVEN Architecture=x86_64 (the host build) WHEN deployed THEN the function is x86_64
    assert deploy(Architecture="x86_64").properties("PollerFunction")["Architectures"] == ["x86_64"]


def test_timeout_and_memory_leave_room_for_the_stop_margin(deploy: Callable[..., Any]) -> None:
    # GIVEN the function's limits
    function = deploy().properties("PollerFunction")
    timeout, memory = function["Timeout"], function["MemorySize"]
    # THEN a run has time to drain after the function's stop margin (wait 1 s + Airtable
    # timeout 10 s + 2 s) and ends before the next tick of the default 5-minute schedule
    assert 60 <= timeout < 300
    # AND there is memory to spare over the poller's peak RSS (< 128 MB) with CPU for the
    # cold start's imports
    assert 256 <= memory <= 1024


def test_async_invocations_are_never_retried_and_expire_quickly(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN the function's asynchronous invoke configuration
    stack = deploy()
    (config,) = stack.of_type("AWS::Lambda::EventInvokeConfig").values()
    properties = config["Properties"]
    # THEN a failed run is not retried, and a tick throttled behind a running run is dropped
    # after 60 s (the minimum) instead of queueing for up to 6 hours
    assert properties["FunctionName"] == "ref:PollerFunction"
    assert properties["MaximumRetryAttempts"] == 0
    assert properties["MaximumEventAgeInSeconds"] == 60


@pytest.mark.parametrize(
    ("field_map", "field_map_file", "accepted"),
    [
        ('{"Id":"Id"}', "", True),
        ("", "field_maps/donations.json", True),
        ("", "", False),
        ('{"Id":"Id"}', "field_maps/donations.json", False),
    ],
)
def test_exactly_one_of_field_map_and_field_map_file_is_accepted(
    deploy: Callable[..., Any], field_map: str, field_map_file: str, accepted: bool
) -> None:
    # GIVEN FieldMap and FieldMapFile WHEN CloudFormation checks the template's rules
    stack = deploy(FieldMap=field_map, FieldMapFile=field_map_file)
    # THEN it accepts exactly one of them, and the function reads the one given as FIELD_MAP
    assert (stack.rule_failures == []) is accepted, stack.rule_failures
    if accepted:
        found = read(stack.environment)
        assert [e for e in found.errors if e.variable.startswith("FIELD_MAP")] == []
        assert found["FIELD_MAP"] == (field_map or field_map_file)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"AirtableTokenSecretArn": SECRET_ARN}],
    ids=["created secret", "existing secret"],
)
def test_the_token_reaches_the_function_only_through_secrets_manager(
    deploy: Callable[..., Any], overrides: dict[str, str]
) -> None:
    # GIVEN the stack with either secret
    stack = deploy(**overrides)
    env = stack.environment
    # THEN the environment holds the secret's ARN and an empty AIRTABLE_TOKEN
    expected = overrides.get("AirtableTokenSecretArn", "ref:AirtableTokenSecret")
    assert env["AIRTABLE_TOKEN_SECRET_ARN"] == expected
    assert env["AIRTABLE_TOKEN"] == ""
    # AND the role can read exactly that secret
    assert ("secretsmanager:GetSecretValue", expected) in stack.grants("PollerRole")


def test_no_parameter_or_resource_carries_the_token(sam: dict[str, Any]) -> None:
    # GIVEN the template's parameters and the secret it creates
    parameters = sam["Parameters"]
    secret = sam["Resources"]["AirtableTokenSecret"]["Properties"]
    # THEN the only token-related parameter is the secret's ARN (a token parameter would
    # show in the stack's console and change sets) ...
    assert [p for p in parameters if "token" in p.lower()] == ["AirtableTokenSecretArn"]
    # ... and the created secret starts empty: the user puts the token in it
    assert "SecretString" not in secret and "GenerateSecretString" not in secret


def test_local_overrides_default_to_the_real_endpoints(deploy: Callable[..., Any]) -> None:
    # GIVEN the deployed environment
    env = deploy().environment
    # THEN the endpoint overrides are empty (botocore ignores an empty one) and Airtable is real
    assert env["AWS_ENDPOINT_URL_SQS"] == ""
    assert env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == ""
    assert env["AIRTABLE_API_URL"] == "https://api.airtable.com"
    assert 0 <= int(env["WAIT_TIME_SECONDS"]) <= 20
    assert float(env["AIRTABLE_MAX_RPS"]) == 5


def test_the_new_knobs_have_production_defaults(deploy: Callable[..., Any]) -> None:
    # GIVEN the deployed environment
    env = deploy().environment
    # THEN envelopes are detected, wire debugging is off, the token's limit is Airtable's
    # 50 requests/s (no deprecated setting is set, so nothing warns), and no routes are set
    found = read(env)
    assert found["ENVELOPE"] == "auto"
    assert found["WIRE_DEBUG"] is False
    assert found.warnings == [] and "AIRTABLE_TOKEN_MAX_RPS" not in found.given
    assert found["ROUTES"] is None and "ROUTES" not in found.given


def test_a_routes_file_blanks_the_single_table_variables(deploy: Callable[..., Any]) -> None:
    # GIVEN RoutesFile, with the single-table parameters still filled in (samconfig's)
    stack = deploy(
        RoutesFile="routes/donations.json",
        FieldMapFile="field_maps/donations.json",
        FieldMap="",
        MergeOn="Id",
    )
    env = stack.environment
    # THEN the function reads the routes file and none of the single-table settings, so it
    # never sees both styles
    found = read(env)
    assert found["ROUTES"] == "routes/donations.json"
    single = ("AIRTABLE_BASE_ID", "AIRTABLE_TABLE", "FIELD_MAP", "MERGE_ON")
    assert [name for name in single if name in found.given] == []
    # AND the template's rules accept it
    assert stack.rule_failures == []


def test_with_a_routes_file_the_single_table_parameters_may_be_empty(
    deploy: Callable[..., Any],
) -> None:
    # GIVEN RoutesFile and no base, table or mapping WHEN deployed THEN the rules accept it
    stack = deploy(RoutesFile="routes.json", AirtableBaseId="", AirtableTable="", FieldMap="")
    assert stack.rule_failures == []
    # AND without RoutesFile the same parameters are refused, naming what is missing
    failures = deploy(AirtableBaseId="", AirtableTable="", FieldMap="").rule_failures
    assert "Set AirtableBaseId and AirtableTable (or RoutesFile)." in failures
    assert "Set exactly one of FieldMap and FieldMapFile." in failures


def test_powertools_names_are_set_in_the_template(deploy: Callable[..., Any]) -> None:
    env = deploy().environment
    # the service (the metrics' dimension) is the stack's name: two stacks in one account
    # keep their metrics, dashboards and alarms apart
    assert env["POWERTOOLS_SERVICE_NAME"] == "poller-test"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "SqsAirtablePoller"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_the_airtable_parameters_reach_the_environment(deploy: Callable[..., Any]) -> None:
    # GIVEN Airtable settings as parameters
    field_map = '{"Id":"Id","CreationDate":"Creation Date"}'
    env = deploy(
        AirtableBaseId="appAbcdefghijklmn",
        AirtableTable="tblAbcdefghijklmn",
        FieldMap=field_map,
        MergeOn="Id",
    ).environment
    # THEN the function reads them unchanged
    assert env["AIRTABLE_BASE_ID"] == "appAbcdefghijklmn"
    assert env["AIRTABLE_TABLE"] == "tblAbcdefghijklmn"
    assert json.loads(env["FIELD_MAP"]) == json.loads(field_map)
    assert env["MERGE_ON"] == "Id"


def test_botocore_ignores_an_empty_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the deployed function's empty overrides in the environment
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "")
    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
    )
    # WHEN clients are created THEN they use the real endpoints
    assert session.client("sqs").meta.endpoint_url == "https://sqs.us-east-1.amazonaws.com"
    assert (
        session.client("secretsmanager").meta.endpoint_url
        == "https://secretsmanager.us-east-1.amazonaws.com"
    )
    # AND a non-empty override under the declared names does redirect (so the empty case is
    # a real test, and the names are the ones botocore reads)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9324")
    assert session.client("sqs").meta.endpoint_url == "http://127.0.0.1:9324"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9324")
    assert session.client("secretsmanager").meta.endpoint_url == "http://127.0.0.1:9324"


def test_the_declared_endpoint_overrides_are_names_botocore_reads(
    deploy: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every AWS_ENDPOINT_URL_* variable the template declares
    import boto3

    declared = [n for n in deploy().environment if n.startswith("AWS_ENDPOINT_URL_")]
    assert declared
    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
    )
    clients = {"SQS": "sqs", "SECRETS_MANAGER": "secretsmanager", "SSM": "ssm", "S3": "s3"}
    for name in declared:
        service = clients[name.removeprefix("AWS_ENDPOINT_URL_")]
        # WHEN it is set THEN botocore sends that service there (AWS_ENDPOINT_URL_SECRETSMANAGER,
        # without the underscore, would be silently ignored and reach real AWS)
        monkeypatch.setenv(name, "http://127.0.0.1:4566")
        assert session.client(service).meta.endpoint_url == "http://127.0.0.1:4566", name
        monkeypatch.delenv(name)
