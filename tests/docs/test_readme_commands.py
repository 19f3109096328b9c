"""The Deploy steps of README.md (and docs/deploy.md) work as written.

Every command is extracted from the documents themselves, so the docs and reality cannot
drift apart:

- the offline ones (`sam validate`, `sam build`) are run exactly as written, after the
  document's own `source .venv/bin/activate`, in a copy of the repository;
- every other `sam` command is parsed by the SAM CLI's own command-line parser, reading
  `samconfig.toml` and `template.yaml` as `sam` would (so `--parameter-overrides` quoting,
  `--config-env` names and option names are checked), and every parameter value is checked
  against the template's constraints;
- every `poller` command is parsed by the poller's own argument parser;
- AWS CLI commands cannot run offline: the stack, secret, function and output names they use
  are checked against samconfig.toml and the template;
- every shell variable a command uses is set by an earlier command of the section.

A command of a kind this module does not know fails the test: classify it here.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

#: Commands that need nothing from AWS or Airtable: run as written.
RUN = {("sam", "validate"), ("sam", "build")}
#: Commands that set up the shell the others run in (applied to the runs, not run alone).
SETUP = {"source", "make", "read", "export", "echo"}
#: Shell variables every shell has.
ENVIRONMENT = {"HOME", "PATH", "PWD", "USER"}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_OPERATORS = {"|", "&&", "||", ";"}


@dataclass(frozen=True)
class Command:
    """One logical line of a code block: its text and the simple commands in it."""

    document: str
    text: str

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    def simple_commands(self) -> Iterator[tuple[dict[str, str], list[str]]]:
        """(leading VAR=value assignments, the command's words) for each simple command of a
        pipeline or list (`a && b`, `a | b`)."""
        current: list[str] = []
        for word in [*self.words, ";"]:
            if word in _OPERATORS:
                if current:
                    yield _split_assignments(current)
                current = []
            else:
                current.append(word)

    def __str__(self) -> str:
        return f"{self.document}: {self.text}"


def _split_assignments(words: list[str]) -> tuple[dict[str, str], list[str]]:
    assignments: dict[str, str] = {}
    rest = list(words)
    if rest and rest[0] == "export":
        names = []
        for word in rest[1:]:
            match = _ASSIGNMENT.match(word)
            if match:
                assignments[match.group(1)] = match.group(2)
            names.append(match.group(1) if match else word)
        return assignments, ["export", *names]
    while rest and _ASSIGNMENT.match(rest[0]):
        match = _ASSIGNMENT.match(rest[0])
        assert match
        assignments[match.group(1)] = match.group(2)
        rest = rest[1:]
    return assignments, rest


def deploy_section(text: str) -> str:
    """README's "## Deploy" section, up to the next second-level heading."""
    match = re.search(r"^## Deploy\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Deploy' section"
    return match.group(1)


def commands_in(document: str, text: str) -> list[Command]:
    """Every command of the text's bash/sh code blocks, continuation lines joined."""
    found = []
    for block in re.findall(r"^[ \t]*```(?:bash|sh)\n(.*?)^[ \t]*```", text, re.S | re.M):
        joined = textwrap.dedent(block).replace("\\\n", " ")
        for line in joined.splitlines():
            if line.strip() and not line.strip().startswith("#"):
                found.append(Command(document, line.strip()))
    return found


@functools.cache
def documented() -> dict[str, list[Command]]:
    return {
        "README.md": commands_in("README.md", deploy_section(README.read_text())),
        "docs/deploy.md": commands_in("docs/deploy.md", DEPLOY_DOC.read_text()),
    }


def all_commands() -> list[Command]:
    return [c for commands in documented().values() for c in commands]


def kind(words: list[str]) -> str:
    """run | sam | poller | aws | setup; anything else is a command this test cannot vouch for."""
    if tuple(words[:2]) in RUN:
        return "run"
    if words[0] == "sam":
        return "sam"
    if words[0] in ("poller", "aws"):
        return words[0]
    if words[0] in SETUP:
        return "setup"
    return "unknown"


def simple(kind_wanted: str) -> list[Any]:
    return [
        pytest.param(command, words, id=f"{command.document}: {' '.join(words)[:60]}")
        for command in all_commands()
        for _, words in command.simple_commands()
        if words and kind(words) == kind_wanted
    ]


# ------------------------------------------------------------------ the section as a whole


def test_every_command_is_of_a_known_kind() -> None:
    unknown = [
        str(c) for c in all_commands() for _, w in c.simple_commands() if w and kind(w) == "unknown"
    ]
    assert unknown == [], "classify these in tests/docs/test_readme_commands.py"


#: What a poller command reads from the environment when no --env-file or --queue-url says.
POLLER_NEEDS = {
    "send": {"QUEUE_URL"},
    "status": {"QUEUE_URL"},
    "peek-dlq": {"QUEUE_URL"},
    "redrive": {"QUEUE_URL"},
    "init-tables": {"AIRTABLE_TOKEN", "AIRTABLE_BASE_ID", "AIRTABLE_TABLE"},
}


@pytest.mark.parametrize("document", ["README.md", "docs/deploy.md"])
def test_every_variable_is_set_before_it_is_used(document: str) -> None:
    # GIVEN the document's commands, in order, and what the shell holds after each
    defined = set(ENVIRONMENT)  # shell variables
    exported = set(ENVIRONMENT)  # what child processes see
    for command in documented()[document]:
        # WHEN a command expands $NAME (outside single quotes) ...
        expanded = re.sub(r"'[^']*'", "", command.text.split(" #", 1)[0])
        missing = set(_VARIABLE.findall(expanded)) - defined
        for prefix, words in command.simple_commands():
            # (a VAR=value prefix is this command's own)
            missing -= set(prefix)
            # ... or is a poller command that reads a variable from its environment
            if words[:1] == ["poller"] and not {"--env-file", "--queue-url"} & set(words):
                needs = POLLER_NEEDS.get(words[1], set())
                missing |= needs - exported - set(prefix)
            if not words:  # a bare NAME=value sets a shell variable
                defined |= set(prefix)
            if words[:1] == ["read"]:
                defined |= {w for w in words[1:] if not w.startswith("-")}
            if words[:1] == ["export"]:
                defined |= set(prefix)
                exported |= set(words[1:])
        # THEN an earlier step set (and, for a child process, exported) it
        assert not missing, f"{command}: needs {sorted(missing)} before any step sets it"


# ------------------------------------------------------------------ run as written


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the Deploy commands read (template, samconfig, code, LICENSE, README),
    with the repository's venv, so that `sam build` writes its .aws-sam there."""
    copy = tmp_path_factory.mktemp("checkout")
    for name in ("template.yaml", "samconfig.toml", "LICENSE", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    venv = Path(sys.executable).parent.parent
    (copy / ".venv").symlink_to(venv, target_is_directory=True)
    return copy


def shell_setup(document: str) -> str:
    """The document's `source …` lines: the shell every command of it runs in."""
    return "\n".join(c.text for c in documented()[document] if c.words[:1] == ["source"])


def offline_commands() -> list[Any]:
    """Each distinct offline simple command (with the document it comes from), as the shell
    would run it: a whole line like `sam build`, or the `sam build` of `sam build && sam
    deploy` (the rest of such a line needs AWS and is parsed below instead)."""
    found: dict[str, tuple[str, str]] = {}
    for command in all_commands():
        for prefix, words in command.simple_commands():
            if words and kind(words) == "run":
                text = shlex.join([f"{k}={v}" for k, v in prefix.items()] + words)
                found.setdefault(text, (command.document, text))
    ordered = sorted(found.values(), key=lambda d: ("build" in d[1], d[1]))  # validate first
    return [pytest.param(document, text, id=text) for document, text in ordered]


def test_the_readme_has_offline_commands_to_run() -> None:
    texts = {p.values[1] for p in offline_commands()}
    assert {"sam validate --lint", "sam build"} <= texts


@pytest.mark.slow
@pytest.mark.parametrize(("document", "text"), offline_commands())
def test_the_offline_commands_run_as_written(document: str, text: str, checkout: Path) -> None:
    # GIVEN the document's own shell setup (the venv activated), in a copy of the repository,
    # with no AWS credentials
    setup = shell_setup(document)
    assert "source .venv/bin/activate" in setup
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV"))}
    env.update(SAM_CLI_TELEMETRY="0")
    # WHEN the command runs as written
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{setup}\n{text}"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    # THEN it succeeds, and did what it says
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    if text.startswith("sam validate"):
        assert "is a valid SAM Template" in output
    else:
        built = checkout / ".aws-sam" / "build"
        assert (built / "template.yaml").is_file()
        assert (built / "PollerFunction" / "lambda_function.py").is_file()
        assert (built / "PollerFunction" / "field_maps" / "donations.json").is_file()


# ------------------------------------------------------------------ parsed as sam would


def sam_context(words: list[str]) -> Any:
    """`sam <sub> [<sub>] …` parsed by the SAM CLI's own click command, as `sam` would parse
    it (reading samconfig.toml and template.yaml from the working directory), not run."""
    import importlib

    import click

    module = importlib.import_module(f"samcli.commands.{words[1].replace('-', '_')}.command")
    command, name, args = module.cli, words[1], words[2:]
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        command = command.get_command(click.Context(command), name)
    # the info name is the command's own: samconfig.toml's sections are looked up by it
    return command.make_context(name, args)


@functools.cache
def template_parameters() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse((ROOT / "template.yaml").read_text())["Parameters"]


def parameter_problems(values: dict[str, str]) -> list[str]:
    problems = []
    for name, value in values.items():
        spec = template_parameters().get(name)
        if spec is None:
            problems.append(f"{name} is not a parameter of template.yaml")
            continue
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            problems.append(f"{name}={value!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            problems.append(f"{name}={value!r} does not match {spec['AllowedPattern']}")
    return problems


@pytest.mark.parametrize(("command", "words"), simple("sam"))
def test_every_other_sam_command_parses_as_sam_reads_it(
    command: Command, words: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a sam command that needs AWS, as the shell passes its words
    monkeypatch.chdir(ROOT)  # sam reads samconfig.toml and template.yaml from here
    # WHEN the SAM CLI parses it (options, samconfig.toml, the template), without running it
    context = sam_context(words)
    # THEN every parameter value it would deploy is one CloudFormation accepts
    overrides = context.params.get("parameter_overrides") or {}
    assert parameter_problems(overrides) == [], str(command)


def test_the_guided_deploy_starts_from_the_typed_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN `sam deploy --guided` as the README writes it, read with samconfig.toml's defaults
    monkeypatch.chdir(ROOT)
    (words,) = [
        w
        for c in documented()["README.md"]
        for _, w in c.simple_commands()
        if w[:2] == ["sam", "deploy"]
    ]
    params = sam_context(words).params
    # THEN the defaults it offers are the stack the other commands name, and the typed mapping
    assert params["guided"] is True
    assert params["stack_name"] == "sqs-airtable-poller"
    overrides = params["parameter_overrides"]
    assert overrides["FieldMapFile"] == "field_maps/donations.json"
    assert "FieldMap" not in overrides
    assert parameter_problems(overrides) == []


#: poller subcommands being built elsewhere; remove a name once `poller` has it.
PENDING_POLLER_COMMANDS: set[str] = set()


@pytest.mark.parametrize(("command", "words"), simple("poller"))
def test_every_poller_command_parses(command: Command, words: list[str]) -> None:
    from poller_ops.cli import build_parser

    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    if words[1] in PENDING_POLLER_COMMANDS and words[1] not in known:
        pytest.skip(f"poller has no {words[1]} command yet")
    # WHEN poller's own parser reads the words THEN it accepts them (argparse exits 2 if not)
    parser.parse_args(words[1:])


# ------------------------------------------------------------------ names used by aws commands


def stack_names() -> set[str]:
    from samcli.lib.config.samconfig import SamConfig

    config = SamConfig(str(ROOT), "samconfig.toml")
    return {
        config.get_all(["deploy"], "parameters", env)["stack_name"]
        for env in ("default", "dev", "prod")
    }


def outputs() -> set[str]:
    from samtranslator.yaml_helper import yaml_parse

    return set(yaml_parse((ROOT / "template.yaml").read_text())["Outputs"])


@pytest.mark.parametrize(("command", "words"), simple("aws") + simple("sam"))
def test_the_names_the_commands_use_are_the_stacks(command: Command, words: list[str]) -> None:
    # GIVEN a command that names a stack, a secret, a function, an output or a mapping file
    text = " ".join(words)
    stacks = stack_names()
    # THEN each is what samconfig.toml's stacks and template.yaml create
    for stack in re.findall(r"--stack-name (\S+)", text):
        assert stack in stacks, f"{command}: no environment deploys a stack named {stack}"
    for secret in re.findall(r"--secret-id (\S+)", text):
        assert secret in {f"{s}/airtable-token" for s in stacks}, f"{command}: {secret}"
    for function in re.findall(r"--function-name (\S+)", text):
        assert function in {f"{s}-poller" for s in stacks}, f"{command}: {function}"
    for output in re.findall(r"OutputKey=='(\w+)'", text):
        assert output in outputs(), f"{command}: the template has no output {output}"


def test_the_mapping_file_the_steps_name_ships_with_the_function() -> None:
    named = {
        value
        for command in all_commands()
        for prefix, _ in command.simple_commands()
        for name, value in prefix.items()
        if name == "FIELD_MAP"
    }
    assert named == {"field_maps/donations.json"}
    for value in named:
        assert (ROOT / "src" / "poller" / value).is_file()


# ------------------------------------------------------------------ one region for every tool


def exported(document: str) -> dict[str, str]:
    """The variables the document's commands export, in order, `$NAME` expanded."""
    values: dict[str, str] = {}
    for command in documented()[document]:
        for prefix, words in command.simple_commands():
            if words[:1] == ["export"]:
                for name, value in prefix.items():
                    values[name] = re.sub(
                        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                        lambda m: values.get(m.group(1), ""),
                        value,
                    )
    return values


def sam_region(words: list[str]) -> str | None:
    """The region `sam` would use for this command, as the SAM CLI resolves it: its context's
    (--region, or samconfig.toml's `region`), else botocore's setting (AWS_DEFAULT_REGION or
    the profile's), which `sam deploy --guided` offers as its default."""
    from botocore.session import Session
    from samcli.cli.context import Context

    context = sam_context(words).find_object(Context)
    return (context.region if context else None) or Session().get_config_variable("region")


def aws_cli_region(env: dict[str, str]) -> str | None:
    """The AWS CLI v2's order: AWS_REGION, then AWS_DEFAULT_REGION (then the profile's)."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")


@pytest.mark.parametrize("document", ["README.md", "docs/deploy.md"])
def test_every_command_of_the_deploy_steps_uses_the_region_typed_in_step_1(
    document: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a shell with no AWS configuration but what the document exports
    monkeypatch.chdir(ROOT)  # sam reads samconfig.toml from here
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    env = exported(document)
    typed = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    assert typed, f"{document} exports no region"
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    from poller_ops.cli.common import region as poller_region

    # WHEN each command that reaches AWS resolves its region with its own tool's rules
    # (`sam validate` and `sam build` need none)
    regions = {}
    for command in documented()[document]:
        for _, words in command.simple_commands():
            if words and kind(words) == "sam":
                regions[" ".join(words)] = sam_region(words)
            elif words and kind(words) == "aws":
                regions[" ".join(words)] = aws_cli_region(env)
            elif words and kind(words) == "poller":
                regions[" ".join(words)] = poller_region(None)
    # THEN every one is the region typed in step 1: sam (the guided deploy's default and
    # `sam logs`), aws and poller alike
    assert regions
    assert {c: r for c, r in regions.items() if r != typed} == {}
