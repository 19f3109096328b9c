"""The operator CLI against the local stack: moto's SQS server and the Airtable emulator."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devstack import donation
from devstack.feeder import as_bodies
from devstack.stack import BASE_ID, LocalStack, moto_client

from poller_ops.cli import main

POISON = ["not json at all", json.dumps(donation(900_001, DonationAmount="twenty"))]
POLLER = Path(sys.executable).with_name("poller")

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def env_file(stack: LocalStack, tmp_path: Path) -> Path:
    """What `python -m devstack serve` prints, saved as a file for --env-file."""
    path = tmp_path / "env.json"
    path.write_text(json.dumps(stack.poller_env(POWERTOOLS_METRICS_DISABLED="true")))
    return path


@pytest.fixture
def cli(env_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run `poller ARGS --env-file ...` in-process; return (exit status, stdout, stderr).

    The environment wins over the env file, so the file's variables are taken out of this
    process's environment (a developer's shell may hold some), and no default file is read."""
    monkeypatch.setenv("POLLER_ENV_FILE", "")
    for name in json.loads(env_file.read_text()):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, env: bool = True) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main([*args, *(["--env-file", str(env_file)] if env else [])])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def edit_env(path: Path, **changes: str | None) -> None:
    """Change the env file: a value of None removes the variable."""
    env = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in env.items() if v is not None}))


def cli_json(cli: Cli, *args: str) -> Any:
    status, out, err = cli(*args, "--json")
    assert status == 0, err
    return json.loads(out)


def dead_letter_some(stack: LocalStack, invoke: Callable[..., Any]) -> None:
    """Two poison messages through a real run, so the DLQ holds the poller's reasons."""
    stack.send_messages(POISON + as_bodies([donation(1)]))
    invoke()
    assert len(stack.dead_letters()) == 2


# -- help -------------------------------------------------------------------------------


def test_help_as_a_console_script_and_as_a_module():
    # WHEN `poller --help` runs as the installed console script and `python -m poller_ops`
    script = subprocess.run([POLLER, "--help"], capture_output=True, text=True, timeout=60)
    module = subprocess.run(
        [sys.executable, "-m", "poller_ops", "redrive", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # THEN both answer, listing the commands / the command's options
    assert script.returncode == 0 and module.returncode == 0
    for command in ("status", "peek-dlq", "redrive", "send", "run", "check-config", "init-tables"):
        assert command in script.stdout
    assert "StartMessageMoveTask" in module.stdout and "--method" in module.stdout


@pytest.mark.parametrize(
    "command", ["status", "peek-dlq", "redrive", "send", "run", "check-config", "init-tables"]
)
def test_every_command_has_help_with_json_and_endpoint_flags(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "--json" in out and "--endpoint-url" in out and "--env-file" in out


def test_without_a_queue_it_is_a_usage_error(cli, monkeypatch):
    monkeypatch.delenv("QUEUE_URL", raising=False)
    status, _, err = cli("status", env=False)
    assert status == 2 and "no queue: pass --queue-url or set QUEUE_URL" in err


# -- send and status --------------------------------------------------------------------


def test_send_reads_jsonl_json_and_samples(cli, stack, tmp_path):
    # GIVEN a JSONL file with a bad line, a JSON array, and sample events
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("not json\n" + json.dumps(donation(1)) + "\n\n")
    array = tmp_path / "m.json"
    array.write_text(json.dumps([donation(2), "raw text", donation(3)]))
    # WHEN each is sent
    sent = [cli_json(cli, "send", str(jsonl)), cli_json(cli, "send", str(array))]
    status, out, _ = cli("send", "--sample", "4")
    # THEN every body arrived verbatim, and the human output says how many went where
    assert [s["sent"] for s in sent] == [2, 3] and status == 0
    assert out.strip() == f"sent 4 message(s) from 4 sample donation event(s) to {stack.queue_url}"
    bodies = receive_all(stack)
    assert "not json" in bodies and "raw text" in bodies
    samples = [json.loads(b) for b in bodies if b.startswith("{") and "Sample donor" in b]
    assert len(samples) == 4 and {"Id", "CreationDate", "DonationAmount"} <= samples[0].keys()


def test_send_needs_a_file_or_samples(cli):
    status, _, err = cli("send")
    assert status == 2 and "give a FILE or --sample N" in err


def test_status_answers_what_is_stuck_and_why(cli, stack, invoke, sqs_endpoint):
    # GIVEN two dead-lettered messages, three waiting, one in flight, and CloudWatch's age
    dead_letter_some(stack, invoke)
    stack.send_messages(as_bodies([donation(n) for n in range(10, 14)]))
    stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    put_age(sqs_endpoint, stack.queue_url, 754.0)
    # WHEN `poller status` runs, for humans and for scripts
    status, out, _ = cli("status")
    data = cli_json(cli, "status")
    # THEN one answer holds the counts, the age and why the dead letters are there
    assert status == 0
    assert data["queue"] | {"url": None} == {
        "url": None,
        "visible": 3,
        "in_flight": 1,
        "delayed": 0,
        "oldest_age_seconds": 754.0,
        "oldest_age_note": "CloudWatch ApproximateAgeOfOldestMessage",
        "max_receive_count": 5,
        "dead_letter_queue_url": stack.dlq_url,
    }
    reasons = {r["error_type"]: r for r in data["dead_letter_queue"]["reasons"]}
    assert data["dead_letter_queue"]["messages"] == 2
    assert reasons["MAPPING_ERROR"]["reason"].startswith("body is not valid JSON")
    assert "Donation Amount" in reasons["INVALID_VALUE_FOR_COLUMN"]["reason"]
    assert "waiting (visible)  3" in out and "oldest message     12m 34s" in out
    assert "1 x MAPPING_ERROR: body is not valid JSON" in out
    # AND a reason that carries Airtable's error type does not repeat it
    (rejected,) = [line for line in out.splitlines() if "Donation Amount" in line]
    assert rejected.count("INVALID_VALUE_FOR_COLUMN") == 1
    assert "1 x Airtable answered 422 INVALID_VALUE_FOR_COLUMN" in rejected
    # AND reading the reasons consumed nothing
    assert stack.counts(stack.dlq_url) == {"visible": 2, "in_flight": 0, "delayed": 0}


def test_status_without_cloudwatch_data_says_so(cli):
    data = cli_json(cli, "status", "--no-reasons")
    assert data["queue"]["oldest_age_seconds"] is None
    assert data["queue"]["oldest_age_note"] == "no CloudWatch data in the last 15 minutes"


# -- peek-dlq ---------------------------------------------------------------------------


def test_peek_dlq_shows_reasons_and_consumes_nothing(cli, stack, invoke):
    # GIVEN two dead letters
    dead_letter_some(stack, invoke)
    # WHEN peeked twice, once with bodies
    first = cli_json(cli, "peek-dlq")
    status, out, _ = cli("peek-dlq", "--body")
    # THEN both reads see the same messages, with the poller's reasons and source ids
    second = cli_json(cli, "peek-dlq")
    assert first["count"] == second["count"] == 2 and status == 0
    assert {m["message_id"] for m in first["messages"]} == {
        m["message_id"] for m in second["messages"]
    }
    assert all(m["source_message_id"] and m["reason"] for m in first["messages"])
    assert "body" not in first["messages"][0]
    assert "reason: body is not valid JSON" in out and "body:   not json at all" in out
    # AND they are still in the DLQ and visible at once
    assert stack.counts(stack.dlq_url) == {"visible": 2, "in_flight": 0, "delayed": 0}


def test_peek_dlq_explains_messages_moved_by_sqs(cli, stack):
    # GIVEN a message SQS moved itself (no poller attributes)
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}")
    # WHEN peeked THEN the reason says so
    [letter] = cli_json(cli, "peek-dlq")["messages"]
    assert letter["error_type"] == "SQS_REDRIVE" and "maxReceiveCount" in letter["reason"]


# -- redrive ----------------------------------------------------------------------------


def test_redrive_falls_back_to_copy_on_moto(cli, stack, invoke):
    # GIVEN two dead letters, each carrying the poller's reason attributes
    dead_letter_some(stack, invoke)
    # WHEN redriven (moto has no StartMessageMoveTask: HTTP 500)
    result = cli_json(cli, "redrive")
    # THEN they were copied back, the DLQ is empty, and the source has them without the
    # poller's attributes, as they were first sent
    assert result["method"] == "copy" and result["moved"] == 2
    assert result["fallback_because"].startswith("StartMessageMoveTask failed (HTTP 500")
    assert stack.counts(stack.dlq_url)["visible"] == 0
    messages = receive_all(stack, raw=True)
    assert sorted(m["Body"] for m in messages) == sorted(POISON)
    assert all("MessageAttributes" not in m for m in messages)


def test_redrive_with_a_limit_moves_only_that_many(cli, stack, invoke):
    dead_letter_some(stack, invoke)
    status, out, _ = cli("redrive", "--limit", "1")
    assert status == 0 and out.startswith(f"moved 1 message(s) from {stack.dlq_url}")
    assert stack.counts(stack.dlq_url) == {"visible": 1, "in_flight": 0, "delayed": 0}
    assert stack.counts()["visible"] == 1


def test_redrive_move_task_only_reports_the_failure(cli, stack, invoke):
    dead_letter_some(stack, invoke)
    status, _, err = cli("redrive", "--method", "move-task")
    assert status == 1 and "StartMessageMoveTask" in err
    assert stack.counts(stack.dlq_url)["visible"] == 2


def dead_letter_with_reasons(stack: LocalStack) -> list[str]:
    """Three dead letters in the DLQ as the poller stores them (its reason attributes), two
    of them for the same reason; returns their bodies."""
    letters = [
        ("not json at all", "MAPPING_ERROR", "body is not valid JSON"),
        ("[1]", "MAPPING_ERROR", "body is JSON list, expected an object"),
        ("[2]", "MAPPING_ERROR", "body is JSON list, expected an object"),
    ]
    for body, error_type, reason in letters:
        stack.sqs.send_message(
            QueueUrl=stack.dlq_url,
            MessageBody=body,
            MessageAttributes={
                "poller.reason": {"DataType": "String", "StringValue": reason},
                "poller.error_type": {"DataType": "String", "StringValue": error_type},
            },
        )
    return [body for body, _, _ in letters]


@pytest.mark.parametrize("method", ["auto", "move-task", "copy"])
def test_redrive_dry_run_shows_what_would_move_and_moves_nothing(cli, stack, method):
    # GIVEN three dead letters in the DLQ, for two reasons, and an empty source queue
    bodies = dead_letter_with_reasons(stack)
    # WHEN redrive runs with --dry-run, for a person and for a script
    status, out, err = cli("redrive", "--dry-run", "--method", method)
    data = cli_json(cli, "redrive", "--dry-run", "--method", method)
    # THEN it says how many would move, where, and why they are there
    assert status == 0, err
    assert out.startswith(f"dry run: would move 3 message(s) from {stack.dlq_url} to ")
    assert "nothing was moved" in out and "2 x MAPPING_ERROR: body is JSON list" in out
    assert (data["dry_run"], data["would_move"], data["method"]) == (True, 3, method)
    assert (data["from"], data["to"]) == (stack.dlq_url, stack.queue_url)
    assert sorted((r["count"], r["reason"]) for r in data["reasons"]) == [
        (1, "body is not valid JSON"),
        (2, "body is JSON list, expected an object"),
    ]
    # AND nothing moved: every dead letter is still visible in the DLQ, the source is empty
    assert stack.counts(stack.dlq_url) == {"visible": 3, "in_flight": 0, "delayed": 0}
    assert stack.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert sorted(body for body, _ in stack.dead_letters()) == sorted(bodies)


def test_redrive_dry_run_with_a_limit_counts_only_that_many(cli, stack):
    # GIVEN three dead letters
    dead_letter_with_reasons(stack)
    # WHEN a dry run is limited to 2
    data = cli_json(cli, "redrive", "--dry-run", "--limit", "2")
    # THEN it would move 2 by the copy loop (a limit always copies), and moved none
    assert (data["would_move"], data["method"]) == (2, "copy")
    assert stack.counts(stack.dlq_url)["visible"] == 3 and stack.counts()["visible"] == 0


def test_redrive_dry_run_of_an_empty_dlq_would_move_nothing(cli, stack):
    status, out, _ = cli("redrive", "--dry-run")
    assert status == 0 and out.startswith("dry run: would move 0 message(s)")


# -- run --------------------------------------------------------------------------------


def test_run_drains_with_progress_and_prints_the_summary(cli, stack):
    # GIVEN 30 waiting donations and one poison message
    stack.send_messages(as_bodies([donation(n) for n in range(30)]) + POISON[:1])
    # WHEN `poller run` invokes the handler once, with progress every 0.2 s, not on a terminal
    status, out, err = cli("run", "--json", "--progress-interval", "0.2", "--timeout", "60")
    # THEN stdout is only the summary, and the table has the rows
    result = json.loads(out)
    assert status == 0 and result["ok"] and result["error"] is None
    assert result["summary"]["written"] == 30 and result["summary"]["dead_lettered"] == 1
    assert len(stack.rows()) == 30
    # AND stderr had plain progress lines, and none of the handler's JSON log lines
    assert "waiting," in err and "in flight" in err and "\x1b" not in err
    assert json_lines(err) == []


def test_run_verbose_writes_the_function_s_log_lines_to_stderr(cli, stack):
    # GIVEN one donation
    stack.send_messages(as_bodies([donation(1)]))
    # WHEN run with --verbose
    status, out, err = cli("run", "--verbose", "--no-progress")
    # THEN stderr has the handler's JSON lines, the summary once among them, and stdout none
    assert status == 0 and json_lines(out) == []
    messages = [json.loads(line).get("message") for line in json_lines(err)]
    assert messages.count("run finished") == 1
    # AND stdout has the summary once
    assert out.count("run summary") == 1


def test_run_reports_a_bad_configuration(cli, env_file, monkeypatch):
    # GIVEN a bad value in the environment (which wins over the env file's good one)
    edit_env(env_file, WAIT_TIME_SECONDS="1")
    monkeypatch.setenv("WAIT_TIME_SECONDS", "99")
    # WHEN run THEN it fails with the named problem, for humans
    status, out, _ = cli("run", "--no-progress")
    assert status == 1 and "WAIT_TIME_SECONDS must be between 0 and 20, got 99" in out


def test_run_as_a_subprocess_honours_the_log_level(stack, env_file):
    # GIVEN POWERTOOLS_LOG_LEVEL=WARNING and one poison message
    stack.send_messages(POISON[:1])
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    # WHEN `poller run --verbose` runs in its own process
    done = subprocess.run(
        [POLLER, "run", "--env-file", str(env_file), "--no-progress", "--verbose"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    # THEN the run succeeds; warnings (the dead letter) are logged, info (the summary) is not
    assert done.returncode == 0, done.stderr
    levels = {json.loads(line)["level"] for line in json_lines(done.stderr) if "level" in line}
    assert "WARNING" in levels and "INFO" not in levels
    assert "dead_lettered        1" in done.stdout


# -- check-config -----------------------------------------------------------------------


def test_check_config_validates_checks_the_schema_and_previews_a_record(cli, env_file):
    # GIVEN the shipped typed Donations mapping
    edit_env(env_file, FIELD_MAP_FILE="field_maps/donations.json", FIELD_MAP=None)
    body = json.dumps(donation(5, CreationDate="2018-05-01T14:00:00+02:00"))
    # WHEN checked with a sample message
    status, out, _ = cli("check-config", "--body", body)
    data = cli_json(cli, "check-config", "--body", body)
    # THEN it is OK, the checks passed, and the record is what would be written
    assert status == 0 and last_line(out).startswith("OK")
    assert data["ok"] and data["routes"][0]["check"]["result"] == "passed"
    assert data["checks"]["queue"]["passed"] and data["checks"]["dead_letter_queue"]["passed"]
    assert "patLocalDevToken" not in out + json.dumps(data)
    fields = {f["field"]: f["value"] for f in data["sample"]["fields"]}
    assert fields["Creation Date"] == "2018-05-01T12:00:00.000Z"
    assert data["sample"]["merge_key"] == [donation(5)["Id"]]
    # AND the verdict is said once, at the end
    assert "OK" not in out.splitlines()[0] and out.count("\nOK") == 1


def test_check_config_builds_a_sample_and_gives_advice_for_plain_entries(cli):
    # GIVEN the plain Donations FIELD_MAP WHEN checked without a message
    data = cli_json(cli, "check-config")
    # THEN the sample follows the table's types, and untyped currency/dateTime entries are noted
    fields = {f["field"]: f["value"] for f in data["sample"]["fields"]}
    assert data["ok"] and fields["Donation Amount"] == 12.5
    (route,) = data["routes"]
    notes = " ".join(route["check"]["notes"])
    assert '"Donation Amount" is a currency field' in notes
    assert '"Creation Date" is a dateTime field' in notes


@pytest.mark.parametrize(
    ("target", "hint"),
    [("Donation Amont", 'did you mean "Donation Amount"?'), ("Gift Size", None)],
    ids=["misspelt", "unrelated"],
)
def test_a_field_the_table_lacks_is_cause_field_naming_it(cli, env_file, tmp_path, target, hint):
    # GIVEN a mapping file whose target the table does not have: misspelt, or a field
    # renamed or deleted in Airtable with nothing like it left
    path = tmp_path / "map.json"
    path.write_text(
        json.dumps({"Id": "Id", "DonationAmount": {"field": target, "type": "currency"}})
    )
    edit_env(env_file, FIELD_MAP_FILE=str(path), FIELD_MAP=None)
    # WHEN checked
    status, out, _ = cli("check-config")
    data = json.loads(cli("check-config", "--json")[1])
    # THEN it is NOT OK, of cause field, naming the field, with a suggestion only for a
    # close match
    assert status == 1 and last_line(out).startswith("NOT OK")
    check = data["routes"][0]["check"]
    assert (check["result"], check["cause"]) == ("FAILED", "field")
    assert f'"{target}"' in check["detail"]
    if hint:
        assert hint in check["detail"]
    else:
        assert "did you mean" not in check["detail"]


def test_check_config_shows_why_a_message_would_be_dead_lettered(cli, env_file):
    edit_env(env_file, FIELD_MAP_FILE="field_maps/donations.json", FIELD_MAP=None)
    body = json.dumps(donation(1, DonationAmount="twenty"))
    status, out, _ = cli("check-config", "--body", body)
    assert status == 1
    assert "would be dead-lettered: field \"Donation Amount\": cannot convert str 'twenty'" in out


def test_a_placeholder_or_unknown_base_is_named(cli, env_file):
    # GIVEN the samples' placeholder base id
    edit_env(env_file, AIRTABLE_BASE_ID="appXXXXXXXXXXXXXX")
    status, out, _ = cli("check-config")
    # THEN the configuration is invalid, naming the variable and the base
    assert status == 1 and "AIRTABLE_BASE_ID" in out and "appXXXXXXXXXXXXXX" in out
    # GIVEN a well-formed base id the token cannot reach
    edit_env(env_file, AIRTABLE_BASE_ID="appSomeOtherBase1")
    status, out, _ = cli("check-config")
    data = json.loads(cli("check-config", "--json")[1])
    # THEN it is NOT OK, of cause base_access, naming the base
    check = data["routes"][0]["check"]
    assert status == 1 and (check["cause"], data["ok"]) == ("base_access", False)
    assert "appSomeOtherBase1" in check["detail"] and "appSomeOtherBase1" in out


def test_without_network_nothing_is_ok(cli, env_file):
    # GIVEN a queue and an Airtable where nothing answers
    dead = f"http://127.0.0.1:{closed_port()}"
    edit_env(
        env_file,
        AWS_ENDPOINT_URL_SQS=dead,
        AIRTABLE_API_URL=f"http://127.0.0.1:{closed_port()}",
    )
    # WHEN checked
    status, out, err = cli("check-config")
    data = json.loads(cli("check-config", "--json")[1])
    # THEN what could not be checked is named, and the verdict is NOT OK
    assert status == 1 and not data["ok"]
    assert not data["checks"]["queue"]["reached"]
    assert data["routes"][0]["check"]["result"] == "not checked"
    assert data["routes"][0]["check"]["cause"] == "outage"
    assert last_line(out).startswith("NOT OK") and "not reached" in last_line(out)
    assert "Traceback" not in out + err


def test_an_airtable_5xx_is_named_and_not_ok(cli, stack):
    # GIVEN an Airtable outage on the base (an nginx 503 page)
    stack.emulator.set_outage(BASE_ID, True)
    # WHEN checked THEN the route could not be checked, of cause outage: NOT OK
    status, out, _ = cli("check-config")
    data = json.loads(cli("check-config", "--json")[1])
    check = data["routes"][0]["check"]
    assert status == 1 and (check["result"], check["cause"]) == ("not checked", "outage")
    assert "503" in check["detail"] and last_line(out).startswith("NOT OK")


def test_a_missing_dead_letter_queue_is_not_ok(cli, stack, env_file):
    edit_env(env_file, DEAD_LETTER_QUEUE_URL=stack.dlq_url + "-gone")
    data = json.loads(cli("check-config", "--json")[1])
    dlq = data["checks"]["dead_letter_queue"]
    assert not data["ok"] and dlq["reached"] and not dlq["passed"]


def test_check_config_lists_every_bad_variable(cli, env_file):
    edit_env(env_file, WAIT_TIME_SECONDS="99", MERGE_ON="Nope")
    status, out, _ = cli("check-config")
    assert status == 1 and out.startswith("configuration is invalid:")
    assert "WAIT_TIME_SECONDS" in out and "MERGE_ON" in out


FUNDRAISERS_BASE = "appFundraisers001"
ROUTES = {
    "routes": [
        {
            "name": "donations",
            "when": {"DonationAmount": {"exists": True}},
            "base": BASE_ID,
            "table": "Donations",
            "fields": {
                "Id": "Id",
                "DonationAmount": {"field": "Donation Amount", "type": "currency"},
            },
            "merge_on": ["Id"],
        },
        {
            "name": "fundraisers",
            "when": {"$Envelope.detail-type": "FundraiserCreated"},
            "envelope": "eventbridge",
            "base": FUNDRAISERS_BASE,
            "table": "Fundraisers",
            "fields": {"FundraiserId": "Fundraiser Id", "Name": {"field": "Name", "type": "text"}},
        },
    ]
}


@pytest.fixture
def routes_env(stack, env_file):
    """ROUTES into the Donations base and a Fundraisers base (whose Name is a checkbox)."""
    stack.emulator.define_base(
        FUNDRAISERS_BASE,
        {
            "tables": [
                {
                    "name": "Fundraisers",
                    "fields": [
                        {"name": "Fundraiser Id", "type": "singleLineText"},
                        {"name": "Name", "type": "checkbox", "options": {}},
                    ],
                }
            ]
        },
    )
    edit_env(
        env_file,
        AIRTABLE_BASE_ID=None,
        AIRTABLE_TABLE=None,
        FIELD_MAP=None,
        MERGE_ON=None,
        ROUTES=json.dumps(ROUTES),
    )
    return env_file


def fundraiser_event(fundraiser_id: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "FundraiserCreated",
            "source": "donations.app",
            "account": "123456789012",
            "time": "2026-11-24T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"FundraiserId": fundraiser_id, "Name": "Spring drive"},
        }
    )


def test_check_config_shows_and_checks_every_route(cli, routes_env):
    # GIVEN two routes in two bases; the second's table has a checkbox where text is written
    # WHEN checked with a FundraiserCreated event from EventBridge
    status, out, _ = cli("check-config", "--body", fundraiser_event("f-1"))
    data = json.loads(cli("check-config", "--json", "--body", fundraiser_event("f-1"))[1])
    # THEN every route is shown: name, base, table, when, envelope, merge fields, mapping
    assert [(r["name"], r["base"], r["table"]) for r in data["routes"]] == [
        ("donations", BASE_ID, "Donations"),
        ("fundraisers", FUNDRAISERS_BASE, "Fundraisers"),
    ]
    assert f'route "fundraisers": base {FUNDRAISERS_BASE}, table "Fundraisers"' in out
    assert '  when      $Envelope.detail-type equals "FundraiserCreated"' in out
    assert "  envelope  eventbridge\n" in out and "  envelope  auto (ENVELOPE)" in out
    assert '    DonationAmount -> "Donation Amount" (currency)' in out
    # AND each route's table was checked: the first fits, the second's problem is a type
    donations, fundraisers = (r["check"] for r in data["routes"])
    assert (donations["result"], donations["fields"]) == ("passed", 2)
    assert (fundraisers["result"], fundraisers["cause"]) == ("FAILED", "type")
    assert fundraisers["detail"].startswith('writes text to "Name", a checkbox field')
    # AND the sample went through the router: it matched the fundraisers route, unwrapped
    assert data["sample"]["route"] == "fundraisers"
    assert {f["field"]: f["value"] for f in data["sample"]["fields"]} == {
        "Fundraiser Id": "f-1",
        "Name": "Spring drive",
    }
    assert f'matched route "fundraisers": would write to base {FUNDRAISERS_BASE}' in out
    # AND the create-mode route is warned about; the table that does not fit makes it NOT OK
    shown = [line.removeprefix("warning: ") for line in out.splitlines()]
    assert data["warnings"] and set(data["warnings"]) <= set(shown)
    assert 'warning: route "fundraisers" has no merge_on: records are created' in out
    assert status == 1 and last_line(out).startswith("NOT OK")


def test_check_config_says_when_no_route_matches(cli, routes_env):
    status, out, _ = cli("check-config", "--body", json.dumps({"unrelated": 1}))
    assert status == 1
    assert 'would be dead-lettered: no route matched (top-level keys: ["unrelated"])' in out


def test_a_built_sample_that_no_route_takes_is_a_note_not_a_failure(cli, stack, routes_env):
    # GIVEN the fundraisers route first (its table now fits it): a sample built from its
    # mapping is no EventBridge event
    stack.emulator.define_base(
        FUNDRAISERS_BASE,
        {
            "tables": [
                {
                    "name": "Fundraisers",
                    "fields": [
                        {"name": "Fundraiser Id", "type": "singleLineText"},
                        {"name": "Name", "type": "singleLineText"},
                    ],
                }
            ]
        },
    )
    routes = {"routes": [ROUTES["routes"][1], ROUTES["routes"][0]]}
    edit_env(routes_env, ROUTES=json.dumps(routes))
    # WHEN checked without a message THEN that says nothing about the config: still OK
    status, out, _ = cli("check-config")
    assert status == 0 and last_line(out).startswith("OK")
    assert 'sample message (built from route "fundraisers"\'s mapping' in out
    assert "note: no route matched" in out and "pass --body or --message" in out


def test_check_config_with_one_table_shows_the_default_route_and_warns_about_create_mode(
    cli, env_file
):
    # GIVEN the single-table variables with MERGE_ON=none (create mode)
    edit_env(env_file, MERGE_ON="none")
    status, out, _ = cli("check-config")
    # THEN one route named "default" takes every message, and create mode is warned about
    assert status == 0, out
    assert f'route "default": base {BASE_ID}, table "Donations"' in out
    assert "  when      every message" in out
    assert "  merge on  - (every message creates a record)" in out
    assert "warning: MERGE_ON is none: records are created, not upserted" in out
    assert 'matched route "default"' in out
    # AND without MERGE_ON at all the configuration is invalid, naming it
    edit_env(env_file, MERGE_ON=None)
    status, out, _ = cli("check-config")
    assert status == 1 and out.startswith("configuration is invalid:") and "MERGE_ON" in out


# -- helpers ----------------------------------------------------------------------------


def last_line(text: str) -> str:
    return text.rstrip().splitlines()[-1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def receive_all(stack: LocalStack, raw: bool = False) -> list[Any]:
    """Every message of the source queue (consumed: only at the end of a test)."""
    found: list[Any] = []
    while True:
        messages = stack.sqs.receive_message(
            QueueUrl=stack.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return found
        found += messages if raw else [m["Body"] for m in messages]


def put_age(endpoint: str, queue_url: str, seconds: float) -> None:
    """What AWS publishes for a queue: moto's server stores it for get_metric_statistics."""
    cloudwatch = moto_client("cloudwatch", endpoint)
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[-1]}],
                "Value": seconds,
                "Unit": "Seconds",
            }
        ],
    )


def json_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("{")]


def test_a_lockout_during_the_checks_is_waited_out_and_still_ok(cli, stack, monkeypatch):
    # GIVEN a base that Airtable locks out (for 1 s here, which the checks' pacers wait)
    from harness import LOCKOUT_SECONDS, pacers_with_lockout

    from poller import pacing

    monkeypatch.setattr(pacing, "Pacer", pacers_with_lockout(LOCKOUT_SECONDS))
    stack.emulator.trigger_lockout(BASE_ID)
    # WHEN checked
    status, out, _ = cli("check-config")
    # THEN the checks waited and asked again, as a run does: everything was reached, OK
    assert status == 0 and last_line(out).startswith("OK")
    assert f"note: Airtable locked base(s) {BASE_ID} out (429)" in out
