"""Template checks that need no AWS account.

The SAM template is translated to CloudFormation in-process (samtranslator, as the
`AWS::Serverless-2016-10-31` transform would in CloudFormation), then a small evaluator
applies parameter values: it drops resources whose Condition is false, picks `Fn::If`
branches, and resolves `Ref`, `Fn::Sub`, `Fn::Select` and `Fn::Split`. What CloudFormation
only knows at deploy time stays symbolic: `Ref` to a resource becomes "ref:Name" and
`Fn::GetAtt` becomes "Name.Attribute", so tests compare exact strings.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

#: The pseudo parameters of the stack the tests "deploy".
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "poller-test",
    "AWS::URLSuffix": "amazonaws.com",
}
FUNCTION_NAME = "poller-test-poller"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@functools.cache
def sam_template() -> dict[str, Any]:
    """template.yaml as SAM reads it (short-form intrinsics expanded)."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())


@functools.cache
def _translated_json() -> str:
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(sam_template())
    # `sam deploy` uploads the code and puts its S3 URI here; the translator needs one.
    template["Resources"]["PollerFunction"]["Properties"]["CodeUri"] = "s3://bucket/poller.zip"
    try:
        session = boto3.session.Session(region_name=PSEUDO["AWS::Region"])
        translated = Translator({}, Parser(), boto_session=session).translate(
            template, parameter_values={}, passthrough_metadata=True
        )
    except InvalidDocumentException as exc:
        raise AssertionError(f"SAM cannot translate template.yaml: {exc.causes}") from exc
    return json.dumps(translated)


def translated() -> dict[str, Any]:
    """The CloudFormation template the transform produces (a fresh copy)."""
    return json.loads(_translated_json())


def parameter_problems(name: str, value: str) -> list[str]:
    """Why CloudFormation would refuse `value` for parameter `name` (empty if it accepts it)."""
    spec = sam_template()["Parameters"].get(name)
    if spec is None:
        return [f"{name} is not a parameter of template.yaml"]
    problems = []
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"{name}={value!r} is not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        problems.append(f"{name}={value!r} does not match {spec['AllowedPattern']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problems.append(f"{name}={value!r} is shorter than {spec['MinLength']}")
    if spec["Type"] == "Number":
        try:
            number = float(value)
        except ValueError:
            return [*problems, f"{name}={value!r} is not a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            problems.append(f"{name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            problems.append(f"{name}={value} is above {spec['MaxValue']}")
    return problems


@dataclass
class Stack:
    """The translated template with parameter values applied."""

    parameters: dict[str, str]
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    #: The AssertDescription of each template rule these parameters break.
    rule_failures: list[str]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        assert logical_id in self.resources, (
            f"{logical_id} is not in the stack: {sorted(self.resources)}"
        )
        return self.resources[logical_id].get("Properties", {})

    @property
    def environment(self) -> dict[str, str]:
        return self.properties("PollerFunction")["Environment"]["Variables"]

    def grants(self, role_id: str) -> set[tuple[str, str]]:
        """Every (action, resource) pair the role's policies allow; fails on anything that
        cannot be compared exactly (NotAction, NotResource, Deny, managed policies)."""
        role = self.properties(role_id)
        assert not role.get("ManagedPolicyArns"), f"{role_id} has managed policies"
        pairs: set[tuple[str, str]] = set()
        for policy in role.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
                assert statement["Effect"] == "Allow", statement
                actions = _as_list(statement["Action"])
                resources = _as_list(statement["Resource"])
                pairs |= {(a, r) for a in actions for r in resources}
        return pairs


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Evaluator:
    def __init__(self, template: dict[str, Any], parameters: Mapping[str, str]) -> None:
        self.template = template
        self.values = {**PSEUDO, **parameters}
        self.condition_specs = template.get("Conditions", {})
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self.test(self.condition_specs[name])
        return self._conditions[name]

    def test(self, spec: Any) -> bool:
        """Evaluate a condition (or a rule's assertion)."""
        (function, args), *rest = spec.items()
        assert not rest, spec
        if function == "Fn::Equals":
            left, right = (self.value(a) for a in args)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.test(args[0])
        if function == "Fn::And":
            return all(self.test(a) for a in args)
        if function == "Fn::Or":
            return any(self.test(a) for a in args)
        if function == "Condition":
            return self.condition(args)
        raise AssertionError(f"unsupported condition function {function}")

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.value(n) for n in node]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, args), *_ = node.items()
            if key == "Ref":
                return self._ref(args)
            if key == "Fn::GetAtt":
                target, attribute = args.split(".", 1) if isinstance(args, str) else args
                return f"{target}.{attribute}"
            if key == "Fn::If":
                name, when_true, when_false = args
                return self.value(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                return self._sub(args)
            if key == "Fn::Select":
                index, items = self.value(args[0]), self.value(args[1])
                return items[int(index)]
            if key == "Fn::Split":
                delimiter, text = args[0], self.value(args[1])
                return text.split(delimiter)
            if key == "Fn::Join":
                delimiter, items = args[0], self.value(args[1])
                return delimiter.join(str(i) for i in items)
            assert not key.startswith("Fn::"), f"unsupported intrinsic {key}"
        result = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in result.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        assert name in self.template["Resources"], f"Ref to unknown {name}"
        return f"ref:{name}"

    def _sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else args
        local = {k: self.value(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name:
                return name  # ${Resource.Attribute}, like Fn::GetAtt above
            return str(self._ref(name))

        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text)


def evaluate(template: dict[str, Any], **overrides: str) -> Stack:
    """Apply parameter values (defaults for the rest) and resolve what can be resolved."""
    specs = template["Parameters"]
    unknown = set(overrides) - set(specs)
    assert not unknown, f"not parameters of the template: {unknown}"
    parameters = {k: str(v["Default"]) for k, v in specs.items() if "Default" in v}
    parameters.update(REQUIRED)
    parameters.update(overrides)
    for name, value in parameters.items():
        assert not parameter_problems(name, value), parameter_problems(name, value)
    evaluator = _Evaluator(template, parameters)
    resources = {
        logical_id: evaluator.value(resource)
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or evaluator.condition(resource["Condition"])
    }
    outputs = {
        name: evaluator.value(output["Value"])
        for name, output in template.get("Outputs", {}).items()
        if "Condition" not in output or evaluator.condition(output["Condition"])
    }
    rule_failures = [
        assertion.get("AssertDescription", name)
        for name, rule in template.get("Rules", {}).items()
        if "RuleCondition" not in rule or evaluator.test(rule["RuleCondition"])
        for assertion in rule["Assertions"]
        if not evaluator.test(assertion["Assert"])
    ]
    return Stack(parameters, resources, outputs, rule_failures)


#: Values for the parameters that have no usable default (the template's rules require them).
REQUIRED = {
    "AirtableBaseId": "appTestBase000001",
    "AirtableTable": "Donations",
    "FieldMap": '{"Id":"Id","DonationAmount":"Donation Amount"}',
    "MergeOn": "Id",
}
EXISTING_QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders"
EXISTING_DLQ_ARN = "arn:aws:sqs:eu-west-1:111122223333:orders-dlq"
EXISTING_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:airtable/pat-AbC123"


@pytest.fixture
def deploy() -> Callable[..., Stack]:
    """`deploy(**parameter_overrides)`: the translated stack with those values applied."""
    return lambda **overrides: evaluate(translated(), **overrides)


@pytest.fixture
def sam() -> dict[str, Any]:
    """template.yaml as SAM reads it, before translation."""
    return copy.deepcopy(sam_template())


@pytest.fixture
def cfn() -> dict[str, Any]:
    """The CloudFormation template the SAM transform produces."""
    return translated()


@pytest.fixture(scope="session")
def translated_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The translated template in a file, for tools that read files."""
    path = tmp_path_factory.mktemp("translated") / "template.json"
    path.write_text(json.dumps(translated(), indent=1))
    return path


@pytest.fixture
def check_parameter() -> Callable[[str, str], list[str]]:
    """`check_parameter(name, value)`: why CloudFormation would refuse it (empty: accepted)."""
    return parameter_problems


@pytest.fixture(scope="session")
def sam_bin() -> Path:
    """The venv's own `sam` (next to the interpreter running the tests)."""
    import sys

    path = Path(sys.executable).parent / "sam"
    assert path.exists(), f"{path} is missing: run make venv"
    return path


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    """Environment for subprocesses: no telemetry, a region, no real credentials."""
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": PSEUDO["AWS::Region"]}
