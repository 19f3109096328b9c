"""The CLI against the local stack, as a new user meets it: error paths without tracebacks,
--json keys that are identifiers, the lockout on the progress line, bodies sent verbatim,
dead letters without room for a reason, the last systemic failure, and `make serve`'s file."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devstack import donation
from devstack.__main__ import (
    DEFAULT_EVENT,
    DEFAULT_MESSAGES,
    ENV_FILE,
    local_env,
    run_once,
    serve,
    write_env_file,
)
from devstack.feeder import as_bodies
from devstack.stack import LocalStack, moto_client
from harness import LOCKOUT_SECONDS, pacers_with_lockout

from poller import runtime
from poller.systemic import FIXES, Cause
from poller_ops.cli import main

Cli = Callable[..., tuple[int, str, str]]
POISON = ["not json at all", json.dumps(donation(900_001, DonationAmount="twenty"))]


@pytest.fixture
def env_file(stack: LocalStack, tmp_path: Path) -> Path:
    """The local environment as `make serve` writes it (the typed Donations mapping)."""
    path = tmp_path / "local.json"
    write_env_file(path, local_env(stack, POWERTOOLS_METRICS_DISABLED="true"))
    return path


@pytest.fixture
def cli(env_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`poller ARGS --env-file FILE` in-process: (exit status, stdout, stderr). The file's
    variables are taken out of this process's environment (which would win over it)."""
    monkeypatch.setenv("POLLER_ENV_FILE", "")
    for name in [*json.loads(env_file.read_text()), "FIELD_MAP"]:
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, env: Path | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main([*args, "--env-file", str(env or env_file)])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def variant(env_file: Path, tmp_path: Path, **changes: str | None) -> Path:
    env = {**json.loads(env_file.read_text()), **changes}
    path = tmp_path / f"variant-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({k: v for k, v in env.items() if v is not None}))
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_letter_some(stack: LocalStack, cli: Cli) -> None:
    stack.send_messages(POISON + as_bodies([donation(1)]))
    status, _, err = cli("run", "--no-progress")
    assert status == 0, err
    assert len(stack.dead_letters()) == 2


# -- no traceback in any error path ------------------------------------------------------------

COMMANDS = [
    ["status"],
    ["peek-dlq"],
    ["redrive"],
    ["redrive", "--method", "move-task"],
    ["redrive", "--method", "copy"],
    ["send", "--sample", "1"],
    ["run", "--no-progress", "--timeout", "20"],
    ["check-config"],
    ["init-tables"],
]
#: Commands that read no queue: an unreachable SQS does not break them.
NO_QUEUE_COMMANDS = ("check-config", "init-tables")


def _case(name: str, env_file: Path, tmp_path: Path, stack: LocalStack) -> Path:
    if name == "unreachable endpoint":
        dead = f"http://127.0.0.1:{closed_port()}"
        return variant(
            env_file,
            tmp_path,
            AWS_ENDPOINT_URL_SQS=dead,
            QUEUE_URL=f"{dead}/123456789012/donations",
            DEAD_LETTER_QUEUE_URL=f"{dead}/123456789012/donations-dlq",
            AIRTABLE_API_URL=f"http://127.0.0.1:{closed_port()}",
        )
    if name == "unreachable SQS":  # Airtable answers: `run` gets as far as its first receive
        dead = f"http://127.0.0.1:{closed_port()}"
        return variant(
            env_file,
            tmp_path,
            AWS_ENDPOINT_URL_SQS=dead,
            QUEUE_URL=f"{dead}/123456789012/donations",
            DEAD_LETTER_QUEUE_URL=f"{dead}/123456789012/donations-dlq",
        )
    if name == "missing queue":
        return variant(
            env_file,
            tmp_path,
            QUEUE_URL=stack.queue_url + "-gone",
            DEAD_LETTER_QUEUE_URL=stack.dlq_url + "-gone",
            AIRTABLE_TABLE="Gone",
        )
    if name == "missing env file":
        return tmp_path / "nowhere.json"
    if name == "bad env file":
        path = tmp_path / "bad.env"
        path.write_text("QUEUE_URL\n")
        return path
    assert name == "invalid config"
    return variant(
        env_file, tmp_path, QUEUE_URL=None, DEAD_LETTER_QUEUE_URL=None, WAIT_TIME_SECONDS="99"
    )


@pytest.mark.parametrize(
    "case",
    [
        "unreachable endpoint",
        "unreachable SQS",
        "missing queue",
        "missing env file",
        "bad env file",
        "invalid config",
    ],
)
def test_no_command_shows_a_traceback_on_an_error(case, cli, env_file, tmp_path, stack):
    # GIVEN an environment that cannot work, and a dead letter to move (when reachable)
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="x")
    path = _case(case, env_file, tmp_path, stack)
    # (check-config and init-tables read no queue: they are only in the cases that break them)
    unaffected = NO_QUEUE_COMMANDS if case == "unreachable SQS" else ()
    commands = [c for c in COMMANDS if c[0] not in unaffected]
    for command in commands:
        # WHEN each command runs in it
        status, out, err = cli(*command, env=path)
        # THEN it fails with a message, never a traceback or an HTML page
        assert status != 0, (command, out, err)
        assert "Traceback" not in out + err, (command, err)
        assert "<html" not in (out + err).lower(), (command, err)
        assert err.strip() or out.strip(), command
        # AND when part of the local stack does not answer, it asks whether it is running
        if case.startswith("unreachable"):
            assert "is `make serve` running?" in err, (command, err)
        elif case == "missing queue":
            assert "make serve" not in err, (command, err)


def test_move_task_on_moto_says_it_is_not_available(cli, stack):
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="x")
    status, _, err = cli("redrive", "--method", "move-task")
    assert status == 1
    assert f"StartMessageMoveTask is not available on {stack.sqs_endpoint}" in err
    assert "Use --method copy" in err and stack.counts(stack.dlq_url)["visible"] == 1


# -- --json keys are identifiers --------------------------------------------------------------


def keys(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from keys(value)
    elif isinstance(data, list):
        for item in data:
            yield from keys(item)


def test_every_json_key_of_every_command_is_an_identifier(cli, stack, env_file, tmp_path):
    # GIVEN dead letters, waiting messages and a bad config to report
    dead_letter_some(stack, cli)
    bad = variant(env_file, tmp_path, WAIT_TIME_SECONDS="99")
    runs = [
        ("status",),
        ("peek-dlq", "--body"),
        ("send", "--sample", "2"),
        ("run", "--no-progress"),
        ("check-config",),
        ("check-config", "--body", json.dumps({"Odd Key": 1, "Id": "x"})),
        ("init-tables",),
        ("redrive", "--dry-run"),
        ("redrive",),
    ]
    outputs = [json.loads(cli(*args, "--json")[1]) for args in runs]
    outputs += [
        json.loads(cli(cmd, "--json", env=bad)[1]) for cmd in ("run", "check-config", "init-tables")
    ]
    # THEN every key, at every depth, is a Python identifier
    found = [k for output in outputs for k in keys(output)]
    assert len(found) > 50
    assert [k for k in found if not k.isidentifier()] == []


# -- run: output ------------------------------------------------------------------------------


def test_run_prints_the_error_only_when_there_is_one(cli, stack):
    stack.send_messages(as_bodies([donation(1)]))
    status, out, err = cli("run", "--no-progress")
    assert status == 0 and "run summary" in out
    assert "error" not in out and "None" not in out
    # AND no log line went anywhere: the summary is printed once, on stdout
    assert not [line for line in (out + err).splitlines() if line.startswith("{")]


def test_the_progress_line_shows_a_lockout_countdown(cli, stack, env_file, tmp_path, monkeypatch):
    # GIVEN a pace faster than Airtable's 5 requests/s, so the emulator locks the base out
    # (for 1 s here, and the poller's pacers wait as long), and 80 donations
    monkeypatch.setattr(runtime, "Pacer", pacers_with_lockout(LOCKOUT_SECONDS))
    fast = variant(env_file, tmp_path, AIRTABLE_MAX_RPS="50")
    stack.send_messages(as_bodies([donation(n) for n in range(80)]))
    # WHEN run with a progress interval longer than the run
    status, out, err = cli("run", "--progress-interval", "600", "--timeout", "60", env=fast)
    # THEN the lockout was shown when it began, with its countdown, and nothing was lost
    assert status == 0, err
    assert "lockout: 1 s left (Airtable 429)" in err
    assert "1 lockout(s)" in err
    assert len(stack.rows()) == 80
    # AND the summary counts the 429
    assert re.search(r"\n  throttled +[1-9]", out)


def test_run_names_a_systemic_failure_without_a_traceback(cli, stack, env_file, tmp_path):
    # GIVEN a waiting message and an Airtable that cannot be reached
    stack.send_messages(as_bodies([donation(1)]))
    bad = variant(env_file, tmp_path, AIRTABLE_API_URL=f"http://127.0.0.1:{closed_port()}")
    # WHEN run
    status, out, err = cli("run", "--no-progress", env=bad)
    # THEN it fails in one line, with the cause's fix, and the message is still waiting
    assert status == 1 and out.startswith("the run failed: ")
    assert FIXES[Cause.OUTAGE] in out.splitlines()[0]
    assert "Traceback" not in out + err
    assert stack.counts()["visible"] == 1


# -- send --------------------------------------------------------------------------------------


def test_send_sends_a_one_line_file_and_stdin_verbatim(cli, stack, tmp_path, monkeypatch):
    line = '{"Id":"a",  "DonorDisplayName":"Zoë"}'
    path = tmp_path / "one.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    status, out, _ = cli("send", str(path))
    assert status == 0
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n"))
    status, out, _ = cli("send", "-")
    assert status == 0 and out.strip() == f"sent 1 message(s) from stdin to {stack.queue_url}"
    bodies = [
        m["Body"]
        for m in stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)[
            "Messages"
        ]
    ]
    assert bodies == [line, line]


def test_send_and_check_config_survive_deep_nesting(cli, stack, tmp_path):
    deep = "[" * 100_000
    path = tmp_path / "deep.json"
    path.write_text(deep)
    status, _, err = cli("send", str(path))
    assert status == 0, err
    status, out, err = cli("check-config", "--body", deep)
    assert status == 1 and "would be dead-lettered" in out and "Traceback" not in out + err
    status, out, err = cli("check-config", "--message", str(path))
    assert status == 1 and "would be dead-lettered" in out


# -- check-config ------------------------------------------------------------------------------


def test_the_readme_check_config_example_runs_as_written(cli, monkeypatch):
    # GIVEN local.json as `make serve` writes it, and a map given by its path:
    # FIELD_MAP=field_maps/donations.json poller check-config --env-file local.json
    monkeypatch.setenv("FIELD_MAP", "field_maps/donations.json")
    status, out, _ = cli("check-config")
    assert status == 0 and out.rstrip().splitlines()[-1].startswith("OK")
    assert "mapping            FIELD_MAP field_maps/donations.json" in out
    # AND an inline FIELD_MAP in the environment replaces the file's mapping file
    monkeypatch.setenv("FIELD_MAP", json.dumps({"Id": "Id", "DonationAmount": "Donation Amount"}))
    status, out, _ = cli("check-config")
    assert status == 0 and "mapping            inline FIELD_MAP" in out


# -- peek-dlq -------------------------------------------------------------------------------


def test_peek_dlq_tells_no_room_from_moved_by_sqs(cli, stack):
    # GIVEN a dead letter as the poller leaves it when no reason fitted (its error type only)
    stack.sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody="x" * 1000,
        MessageAttributes={"poller.error_type": {"DataType": "String", "StringValue": "REJECTED"}},
    )
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}")
    status, out, _ = cli("peek-dlq")
    assert status == 0
    assert "REJECTED" in out and "left no room for one within SQS's 1048576-byte limit" in out
    assert "SQS_REDRIVE" in out and "moved by SQS after maxReceiveCount" in out


def test_a_poison_body_near_1_mib_is_dead_lettered_with_its_type_and_read_as_no_room(cli, stack):
    # GIVEN a poison message whose body leaves room for its error type but not for any
    # character of reason, dead-lettered through the real adapter into moto's DLQ
    from poller.letters import MAX_MESSAGE_BYTES
    from poller.model import Message, Verdict
    from poller.sqs import SqsQueue

    spare = len("poller.error_type") + len("String") + len("MAPPING_ERROR") + 10
    body = "x" * (MAX_MESSAGE_BYTES - spare)
    message = Message(id="src-1", receipt="r", body=body)
    letter = Verdict.dead_letter(message, "body is not JSON " * 5, "MAPPING_ERROR")
    stored = SqsQueue(stack.sqs, stack.queue_url, stack.dlq_url).dead_letter([letter])
    assert [m.id for m in stored] == ["src-1"]
    # WHEN peek-dlq reads it
    status, out, _ = cli("peek-dlq", "--json")
    # THEN it shows the poller's error type and says the reason had no room, not "moved by SQS"
    (read,) = json.loads(out)["messages"]
    assert status == 0 and read["error_type"] == "MAPPING_ERROR"
    assert "left no room for one" in read["reason"] and "moved by SQS" not in read["reason"]


# -- status: the last systemic failure -----------------------------------------------------------


def test_status_shows_the_last_systemic_failure_from_the_log_group(cli, stack, sqs_endpoint):
    # GIVEN the function's log group in moto's CloudWatch Logs, with two systemic failures
    logs = moto_client("logs", sqs_endpoint)
    group = f"/aws/lambda/test-{time.time_ns()}-poller"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    lines = [
        (now - 60_000, {"message": "systemic failure", "systemic_cause": "auth", "fix": "old"}),
        (now - 30_000, {"message": "run finished", "summary": {}}),
        (
            now - 10_000,
            {
                "message": 'systemic failure: route "default": a field is gone; fix: rename',
                "systemic_cause": "field",
                "route": "default",
                "detail": "a field is gone",
                "fix": "rename",
            },
        ),
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": t, "message": json.dumps(line)} for t, line in lines],
    )
    # WHEN status reads it
    data = json.loads(cli("status", "--no-reasons", "--json", "--log-group", group)[1])
    status, out, _ = cli("status", "--no-reasons", "--log-group", group)
    # THEN the newest is shown; without a log group, or with one that does not exist, it says so
    assert data["last_systemic_failure"] | {"at": None} == {
        "found": True,
        "cause": "field",
        "route": "default",
        "detail": "a field is gone",
        "fix": "rename",
        "at": None,
        "log_group": group,
    }
    assert status == 0 and re.search(
        r'\nsystemic failure +field \(route "default"\) at \S+: a field is gone; fix: rename\n',
        out,
    )
    missing = cli("status", "--no-reasons", "--log-group", "/aws/lambda/nope")[1]
    assert "unknown (no log group /aws/lambda/nope)" in missing


def test_status_on_the_local_stack_does_not_ask_for_a_log_group(cli, stack):
    # GIVEN the local stack, whose function logs to the terminal of `poller run`
    # WHEN status runs without --log-group
    status, out, err = cli("status", "--no-reasons")
    data = json.loads(cli("status", "--no-reasons", "--json")[1])
    # THEN it reports the queues, and neither looks for a log group nor asks for one
    assert status == 0 and stack.queue_url in out
    assert "--log-group" not in out + err and "systemic failure" not in out
    assert data["last_systemic_failure"]["found"] is False
    assert data["last_systemic_failure"]["looked_up"] is False


# -- a queue in another region than the environment's ------------------------------------------


def test_a_queue_url_of_another_region_gets_a_warning_that_names_both(
    cli, stack, env_file, tmp_path, sqs_endpoint
):
    # GIVEN a queue that exists in eu-west-1 (moto keeps each region's queues apart), named
    # by its AWS-style URL, and an environment whose AWS_REGION is us-east-1
    name = f"regional-{time.time_ns()}"
    moto_client("sqs", sqs_endpoint, "eu-west-1").create_queue(QueueName=name)
    url = f"https://sqs.eu-west-1.amazonaws.com/123456789012/{name}"
    path = variant(env_file, tmp_path, QUEUE_URL=url, DEAD_LETTER_QUEUE_URL=None)
    path_in_region = variant(
        env_file,
        tmp_path,
        QUEUE_URL=url,
        DEAD_LETTER_QUEUE_URL=None,
        AWS_REGION="eu-west-1",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    # WHEN status looks at it in us-east-1
    status, _, err = cli("status", "--no-reasons", env=path)
    # THEN SQS there has no such queue, and the warning says why and what to set
    assert status == 1 and "does not exist" in err
    assert "is a queue in eu-west-1, but AWS_REGION is us-east-1" in err
    assert "AWS_REGION=eu-west-1" in err
    # AND in the queue's own region, as the warning says, it is found, with no warning
    status, out, err = cli("status", "--no-reasons", env=path_in_region)
    assert status == 0 and url in out and "warning" not in err


# -- make serve's env file ----------------------------------------------------------------------


def test_serve_writes_a_private_env_file_that_the_cli_reads_by_default(
    stack, tmp_path, monkeypatch, capsys
):
    # GIVEN `serve` on a stack, writing its file into an empty directory
    path = tmp_path / ENV_FILE.name
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLLER_ENV_FILE", raising=False)
    for name in local_env(stack):
        monkeypatch.delenv(name, raising=False)
    stop = threading.Event()
    serving = threading.Thread(target=serve, args=(stack, path, stop))
    serving.start()
    try:
        while not path.exists() and serving.is_alive():
            time.sleep(0.01)
        # THEN the file is private, uses the typed mapping, and `poller status` needs no flag
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        env = json.loads(path.read_text())
        assert "field_maps/donations.json" in (env.get("FIELD_MAP"), env.get("FIELD_MAP_FILE"))
        status = main(["status", "--no-reasons"])
        out, err = capsys.readouterr()
        assert status == 0 and stack.queue_url in out and "using local.json" in err
        assert ".venv/bin/poller status" in out
    finally:
        stop.set()
        serving.join()
    # AND once serving stops, the file is gone: it never describes a stack that is not running
    assert not path.exists()


# -- make run's report --------------------------------------------------------------------------


def test_the_local_demo_reports_on_stdout_and_logs_on_stderr(stack, capsys):
    # GIVEN the sample messages, and an environment restored after the demo changed it
    saved = dict(os.environ)
    try:
        status = run_once(stack, DEFAULT_MESSAGES, DEFAULT_EVENT, 60)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out, err = capsys.readouterr()
    # THEN stdout is the report: no JSON log line (on stderr neither), every mapped field as
    # a column, reasons from the typed mapping, and long bodies cut with an ellipsis
    assert status == 0
    assert not [line for line in (out + err).splitlines() if line.startswith('{"level"')]
    header = out.split("rows in the Airtable table", 1)[1].splitlines()[1]
    for column in ("Id", "Creation Date", "Donor Id", "Fundraiser Id", "Donation"):
        assert column in header
    assert "cannot convert str" in out  # a typed-mapping reason, not Airtable's 422
    assert "…" in out.split("messages in the dead-letter queue", 1)[1]


def test_a_leftover_local_json_says_the_local_stack_is_not_running(tmp_path, monkeypatch, capsys):
    # GIVEN the local.json `make serve` wrote, and the stack stopped since (nothing listens)
    dead = f"http://127.0.0.1:{closed_port()}"
    (tmp_path / "local.json").write_text(
        json.dumps(
            {
                "QUEUE_URL": f"{dead}/123456789012/donations",
                "AWS_ENDPOINT_URL_SQS": dead,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLLER_ENV_FILE", raising=False)
    for name in ("QUEUE_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    # WHEN a command runs
    status = main(["status", "--no-reasons"])
    # THEN it fails in one line and says what is probably wrong, without a traceback
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert "is `make serve` running?" in err


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("from_secret", [False, True], ids=["variable", "secret"])
def test_the_token_appears_in_no_output_at_any_level(cli, stack, env_file, tmp_path, from_secret):
    # GIVEN the token in AIRTABLE_TOKEN, or in a Secrets Manager secret (moto), the wire
    # logged at DEBUG (bodies included), and a waiting donation and a poison message
    token = json.loads(env_file.read_text())["AIRTABLE_TOKEN"]
    changes: dict[str, str | None] = {"WIRE_DEBUG": "true"}
    if from_secret:
        changes["AIRTABLE_TOKEN"] = None
        changes["AIRTABLE_TOKEN_SECRET_ARN"] = stack.create_token_secret()
    path = variant(env_file, tmp_path, **changes)
    stack.send_messages(as_bodies([donation(1)]) + POISON[:1])
    # WHEN every command that reads the token runs, the run at DEBUG with its log lines
    outputs = [
        cli("run", "--verbose", "--log-level", "DEBUG", "--progress-interval", "0.2", env=path),
        cli("check-config", env=path),
        cli("check-config", "--json", env=path),
        cli("init-tables", "--json", env=path),
    ]
    # THEN they worked (the run logged at DEBUG), and the token is in none of their output
    assert outputs[0][0] == 0 and outputs[1][0] == 0, outputs[:2]
    assert '"level":"DEBUG"' in outputs[0][2].replace(" ", "")
    assert all(token not in out + err for _, out, err in outputs)
