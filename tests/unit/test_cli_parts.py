"""The CLI's pure parts: reading bodies, the environment's precedence, the progress, the
no-room dead letter, the systemic-failure log line, and the local demo's output helpers."""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import stat
from pathlib import Path

import pytest
from devstack.__main__ import MotoNotImplemented, clip, table, write_env_file

from poller.capacity import Capacity
from poller.errors import SystemicSinkError
from poller.letters import MAX_ERROR_TYPE_CHARS, MAX_MESSAGE_BYTES, dead_letter_request
from poller.model import Message, Verdict
from poller.pacing import Pacer
from poller.systemic import Cause
from poller_ops import admin
from poller_ops.cli.common import environment
from poller_ops.cli.run import (
    ExpectedErrorsInOneLine,
    Progress,
    RunState,
    Watch,
    progress_line,
)
from poller_ops.cli.send import read_bodies
from poller_ops.cli.status import log_group, newest_systemic, reason_text, systemic_text

# -- send: bodies verbatim ------------------------------------------------------------------


def test_a_one_line_jsonl_file_is_sent_as_written(tmp_path: Path) -> None:
    # GIVEN one line whose bytes json.dumps would change (spacing, non-ASCII, escapes)
    line = '{"Id":"a","DonorDisplayName":"Zoë 😀","Note":"\\u00e9"}'
    path = tmp_path / "one.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    # WHEN read THEN the body is that line, byte for byte
    assert read_bodies(str(path)) == [line]


def test_array_elements_keep_their_text(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[ {"a":1,  "b":"é"} ,"raw text", [1,2] ]\n', encoding="utf-8")
    assert read_bodies(str(path)) == ['{"a":1,  "b":"é"}', "raw text", "[1,2]"]


def test_a_multi_line_object_is_one_body_and_jsonl_lines_stay_lines(tmp_path: Path) -> None:
    pretty, lines = tmp_path / "p.json", tmp_path / "l.jsonl"
    pretty.write_text('{\n  "a": 1\n}\n')
    lines.write_text('{"a": 1}\n{"a": 2}\n')
    assert read_bodies(str(pretty)) == ['{\n  "a": 1\n}']
    assert read_bodies(str(lines)) == ['{"a": 1}', '{"a": 2}']


def test_deeply_nested_json_is_sent_as_a_line_not_a_crash(tmp_path: Path) -> None:
    # GIVEN 100,000 levels of "[" (the parser's recursion limit is far lower)
    deep = "[" * 100_000
    path = tmp_path / "deep.jsonl"
    path.write_text(deep + "\n" + "]" * 100_000 + "\n")
    # WHEN read THEN each line is a body, verbatim
    assert read_bodies(str(path)) == [deep, "]" * 100_000]
    balanced = tmp_path / "balanced.json"
    balanced.write_text("[" * 100_000 + "]" * 100_000)
    assert read_bodies(str(balanced)) == ["[" * 100_000 + "]" * 100_000]


# -- the environment: flags > environment > file ---------------------------------------------


def _args(env_file: Path | None) -> argparse.Namespace:
    return argparse.Namespace(
        env_file=env_file, queue_url=None, dlq_url=None, endpoint_url=None, region=None
    )


def test_the_environment_wins_over_the_file_and_map_variables_are_one_setting(
    tmp_path: Path,
) -> None:
    # GIVEN a file with FIELD_MAP_FILE and a queue, and an environment with an inline map
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"FIELD_MAP_FILE": "m.json", "QUEUE_URL": "q", "MERGE_ON": "Id"}))
    env = {"FIELD_MAP": '{"Id": "Id"}', "MERGE_ON": "Key", "EMPTY": ""}
    # WHEN the command's environment is built
    updates, drop = environment(_args(path), env)
    # THEN the environment's map replaces the file's, its MERGE_ON wins, the rest is added
    assert updates == {"QUEUE_URL": "q"}
    assert drop == ["FIELD_MAP_FILE"]


def test_the_readme_check_config_example_environment(tmp_path: Path) -> None:
    # GIVEN local.json as `make serve` writes it (FIELD_MAP_FILE), and the README's
    # FIELD_MAP_FILE=field_maps/donations.json on the command line
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"FIELD_MAP_FILE": "field_maps/donations.json", "QUEUE_URL": "q"}))
    updates, drop = environment(_args(path), {"FIELD_MAP_FILE": "field_maps/donations.json"})
    assert updates == {"QUEUE_URL": "q"} and drop == ["FIELD_MAP"]


def test_a_default_env_file_is_read_only_when_present(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLLER_ENV_FILE", raising=False)
    assert environment(_args(None), {}) == ({}, [])
    (tmp_path / "local.json").write_text(json.dumps({"QUEUE_URL": "local"}))
    assert environment(_args(None), {}) == ({"QUEUE_URL": "local"}, [])
    monkeypatch.setenv("POLLER_ENV_FILE", "")
    assert environment(_args(None), {}) == ({}, [])


def test_the_env_file_is_replaced_whole_and_private(tmp_path: Path) -> None:
    # GIVEN an env file left world-readable by an earlier stack
    path = tmp_path / "local.json"
    path.write_text('{"QUEUE_URL": "old"}')
    path.chmod(0o644)
    # WHEN the stack writes its environment
    write_env_file(path, {"QUEUE_URL": "new"})
    # THEN the file holds the whole new mapping, only its owner can read it, and no staged
    # copy is left beside it
    assert json.loads(path.read_text()) == {"QUEUE_URL": "new"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["local.json"]


def test_a_failed_env_file_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    # GIVEN a complete env file
    path = tmp_path / "local.json"
    path.write_text('{"QUEUE_URL": "old"}')
    # WHEN a write fails half-way (a value JSON cannot hold)
    with pytest.raises(TypeError):
        write_env_file(path, {"QUEUE_URL": "new", "BAD": object()})  # type: ignore[dict-item]
    # THEN a reader still sees the old file whole, and no staged copy is left
    assert json.loads(path.read_text()) == {"QUEUE_URL": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["local.json"]


# -- run: the progress ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_progress_line_counts_down_a_lockout_and_tallies_it() -> None:
    # GIVEN a container's pacer, and a queue that had 60 messages, 40 of them done
    clock = Clock()
    pacer = Pacer(Capacity(5.0), lockout_seconds=30.0, clock=clock)
    watch = Watch(lambda: (3, 17), lambda: 1, {"appA": pacer}, clock=clock)
    state = RunState(total=60)
    watch.queue(state)
    # WHEN Airtable answers a request with a 429, and 18 s pass
    pacer.throttled(pacer.send(pacer.reserve(), not_after=clock() + 1) or 0.0)
    clock.now += 18
    watch.pace(state)
    # THEN the line shows the counts, the countdown and the lockout
    line = progress_line(state, elapsed=12.0)
    assert line.startswith("[  12.0s] 3 waiting, 17 in flight, ~40 done, 0 dead-lettered")
    assert "lockout: 12 s left (Airtable 429)" in line and "1 lockout(s)" in line
    # AND once the lockout is over, only the tally remains
    clock.now += 13
    watch.pace(state)
    assert "left" not in progress_line(state, elapsed=31.0)
    assert "1 lockout(s)" in progress_line(state, elapsed=31.0)


def test_lockouts_before_the_run_are_not_counted() -> None:
    # GIVEN a warm container whose pacer was locked out in an earlier run
    clock = Clock()
    pacer = Pacer(Capacity(5.0), lockout_seconds=1.0, clock=clock)
    pacer.throttled(pacer.send(pacer.reserve(), not_after=clock() + 1) or 0.0)
    clock.now += 5
    # WHEN this run's progress watches it THEN it counts none
    state = RunState()
    Watch(lambda: (0, 0), pacers={"appA": pacer}, clock=clock).pace(state)
    assert state.lockouts == 0 and state.status() == ""


def test_retries_come_from_the_summary_the_container_fills() -> None:
    # GIVEN a container that exposes the summary of the run in progress
    summary = type("Live", (), {"retries": 2})()
    state = RunState()
    # WHEN the progress reads it THEN the retries are tallied
    Watch(lambda: (0, 0), live_summary=lambda: summary).pace(state)
    assert state.status() == "2 retries"


def test_without_a_terminal_the_progress_is_plain_lines() -> None:
    # GIVEN a queue that empties
    counts = iter([(5, 0)])
    stream = io.StringIO()
    # WHEN the progress runs around a short run, on a stream that is no terminal
    with Progress(Watch(lambda: next(counts, (0, 0))), 0.25, stream, terminal=False):
        pass
    # THEN it wrote plain lines, the last one with what was done, and no escape code
    lines = stream.getvalue().splitlines()
    assert lines and "\x1b" not in stream.getvalue()
    assert lines[-1].endswith("0 waiting, 0 in flight, ~5 done")


def test_on_a_terminal_the_progress_bar_fits_its_width() -> None:
    # GIVEN a narrow terminal and a run locked out by Airtable
    clock = Clock()
    pacer = Pacer(Capacity(5.0), lockout_seconds=30.0, clock=clock)
    pacer.throttled(pacer.send(pacer.reserve(), not_after=clock() + 1) or 0.0)
    from poller_ops.cli.run import bar_text, rich_bar

    stream = io.StringIO()
    bar = rich_bar(stream, width=50)
    task = bar.add_task("draining", total=80, text="")
    state = RunState(total=80)
    watch = Watch(lambda: (0, 50), pacers={"appA": pacer}, clock=clock)
    watch.queue(state)
    watch.pace(state)
    bar.update(task, completed=state.done, text=bar_text(state))
    # WHEN one frame is drawn
    bar.console.print(bar.get_renderable())
    # THEN it is no wider than the terminal, and the countdown is on it
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert text.strip() and all(len(line) <= 50 for line in text.splitlines())
    assert "lockout: 30 s left" in text and "30/80" in text


def test_expected_errors_lose_their_traceback_and_bugs_keep_it() -> None:
    one_line = ExpectedErrorsInOneLine()

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "poller.drain", logging.ERROR, "", 0, "failed", (), (type(exc), exc, None)
        )

    expected = record(SystemicSinkError("Airtable answered 401", Cause.TOKEN, status=401))
    bug = record(KeyError("x"))
    assert one_line.filter(expected) and one_line.filter(bug)
    assert (
        expected.exc_info is None and expected.error == "SystemicSinkError: Airtable answered 401"
    )  # type: ignore[attr-defined]
    assert bug.exc_info is not None


# -- peek-dlq: no room for a reason ----------------------------------------------------------


def _as_received(request: dict) -> dict:
    return {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": request["MessageBody"],
        "MessageAttributes": request["MessageAttributes"],
        "Attributes": {"SentTimestamp": "1525176000000"},
    }


@pytest.mark.parametrize("spare", [0, 10, 19])
def test_a_dead_letter_without_room_for_a_reason_says_so(spare: int) -> None:
    # GIVEN what the SQS adapter sends for a poison body that leaves `spare` bytes of 1 MiB
    body = "x" * (MAX_MESSAGE_BYTES - spare)
    message = Message(id="src", receipt="r", body=body)
    letter = Verdict.dead_letter(message, "a long reason " * 10, "MAPPING_ERROR")
    request = dead_letter_request(letter, "dlq", body)
    # WHEN peek-dlq reads it back
    read = admin._letter(_as_received(request))
    # THEN its reason says that there was no room, not that SQS moved it
    assert "poller.reason" not in request["MessageAttributes"]
    assert read.reason.startswith("no poller reason: the ") and "no room" in read.reason
    assert "moved by SQS" not in read.reason


def test_a_poller_error_type_without_a_reason_means_no_room() -> None:
    # GIVEN the marker the adapter is asked to keep: poller.error_type fitted, the reason not
    raw = _as_received(
        {
            "MessageBody": "x" * 1000,
            "MessageAttributes": {
                "poller.error_type": {"DataType": "String", "StringValue": "MAPPING_ERROR"}
            },
        }
    )
    read = admin._letter(raw)
    assert read.error_type == "MAPPING_ERROR" and "no room" in read.reason


TYPE = "INVALID_VALUE_FOR_COLUMN"
#: What `poller.error_type` = TYPE counts towards the 1 MiB (name, data type, value).
TYPE_BYTES = len("poller.error_type") + len("String") + len(TYPE)
REASON_OVERHEAD = len("poller.reason") + len("String")


def _near_limit(spare: int) -> dict:
    """The dead-letter request for a body that leaves `spare` bytes of SQS's 1 MiB."""
    body = "x" * (MAX_MESSAGE_BYTES - spare)
    reason = "Airtable answered 422 INVALID_VALUE_FOR_COLUMN: " + "a long reason " * 10
    letter = Verdict.dead_letter(Message(id="src", receipt="r", body=body), reason, TYPE)
    return dead_letter_request(letter, "dlq", body)


@pytest.mark.parametrize("extra", [0, REASON_OVERHEAD])
def test_the_error_type_is_fitted_before_the_reason(extra: int) -> None:
    # GIVEN a body that leaves room for the error type, and for at most a reason's name and
    # type beside it (room a reason alone would have fitted in, cut short)
    request = _near_limit(TYPE_BYTES + extra)
    attributes = request["MessageAttributes"]
    # THEN the type is kept and the reason, which has no character of room, is not: the
    # dependable "no room" marker, which peek-dlq reads as such
    assert attributes["poller.error_type"]["StringValue"] == TYPE
    assert "poller.reason" not in attributes
    read = admin._letter(_as_received(request))
    assert read.error_type == TYPE and "no room" in read.reason


def test_a_reason_cut_short_keeps_its_error_type() -> None:
    # GIVEN room for the type and 20 characters of reason
    request = _near_limit(TYPE_BYTES + REASON_OVERHEAD + 20)
    attributes = request["MessageAttributes"]
    # THEN both are there: the reason shortened to what fits, never a reason without its type
    assert attributes["poller.error_type"]["StringValue"] == TYPE
    assert attributes["poller.reason"]["StringValue"] == "Airtable answered 42"
    read = admin._letter(_as_received(request))
    assert read.error_type == TYPE and read.reason == "Airtable answered 42"
    assert admin.message_bytes(_as_received(request)) == MAX_MESSAGE_BYTES


@pytest.mark.parametrize("spare", [REASON_OVERHEAD + 5, TYPE_BYTES - 1])
def test_without_room_for_the_type_there_is_no_reason_either(spare: int) -> None:
    # GIVEN room for a shortened reason but not for the error type
    request = _near_limit(spare)
    # THEN neither is sent (a reason without its type would read as moved by SQS), and
    # peek-dlq still says there was no room, from the size
    assert "poller.reason" not in request["MessageAttributes"]
    assert "poller.error_type" not in request["MessageAttributes"]
    read = admin._letter(_as_received(request))
    assert read.error_type == "NO_ROOM_FOR_REASON" and "no room" in read.reason


def test_a_long_error_type_is_cut_to_its_bound() -> None:
    letter = Verdict.dead_letter(Message(id="src", receipt="r", body="{}"), "why", "T" * 500)
    value = dead_letter_request(letter, "dlq", "{}")["MessageAttributes"]["poller.error_type"]
    assert value["StringValue"] == "T" * MAX_ERROR_TYPE_CHARS


def test_a_message_sqs_moved_still_says_so() -> None:
    read = admin._letter(_as_received({"MessageBody": "{}", "MessageAttributes": {}}))
    assert read.error_type == "SQS_REDRIVE" and read.reason == admin.NO_REASON


# -- status: the last systemic failure ---------------------------------------------------------


def _event(stamp: int, **line: object) -> dict:
    return {"timestamp": stamp, "message": json.dumps(line)}


def test_the_newest_systemic_failure_line_is_found() -> None:
    events = [
        _event(1_000, message="systemic failure", systemic_cause="token", fix="rotate"),
        {"timestamp": 3_000, "message": "START RequestId: 1"},
        _event(4_000, message="run finished", systemic_cause="nope"),
        _event(2_000, message="systemic failure", systemic_cause="field", fix="rename back"),
    ]
    assert newest_systemic(events) == {
        "cause": "field",
        "route": "",
        "detail": "",
        "fix": "rename back",
        "at": "1970-01-01T00:00:02+00:00",
    }
    assert newest_systemic(events[1:3]) is None


def test_status_reads_the_line_the_handler_really_writes() -> None:
    # GIVEN the function's own report of a systemic failure, as its JSON formatter writes it
    # to CloudWatch Logs
    from poller import handler, telemetry
    from poller.systemic import Cause, SystemicFailure

    failure = SystemicFailure(
        "default",
        Cause.TYPE,
        'field fldA "Donation Amount" is now checkbox; the mapping sends currency',
    )
    written = io.StringIO()
    capture = logging.StreamHandler(written)
    capture.setFormatter(handler.logger.registered_formatter)  # the function's JSON lines
    underlying = logging.getLogger(handler.logger.name)
    underlying.addHandler(capture)
    try:
        telemetry.report(handler.logger, [failure])
    finally:
        underlying.removeHandler(capture)
    line = next(x for x in written.getvalue().splitlines() if "systemic_cause" in x)
    # WHEN status looks for the newest such line
    found = newest_systemic([{"timestamp": 5_000, "message": line}])
    # THEN it finds it, with the cause, the route, what is wrong and the fix
    assert found is not None
    assert (found["cause"], found["route"]) == ("type", "default")
    assert "is now checkbox" in found["detail"] and found["fix"] == failure.fix
    assert "is now checkbox" in systemic_text({"found": True, **found})


def test_the_log_group_comes_from_the_flag_or_the_stack_s_queue_name(monkeypatch) -> None:
    monkeypatch.delenv("POLLER_LOG_GROUP", raising=False)
    args = argparse.Namespace(log_group=None)
    base = "https://sqs.eu-west-1.amazonaws.com/123456789012/"
    assert log_group(args, base + "donations-PollerQueue-AbC123") == "/aws/lambda/donations-poller"
    assert log_group(args, base + "donations") is None
    assert log_group(argparse.Namespace(log_group="/x"), base + "donations") == "/x"


# -- the local demo ----------------------------------------------------------------------------


def test_cut_text_ends_in_an_ellipsis() -> None:
    assert clip("x" * 150, 100) == "x" * 99 + "…" and clip("short", 100) == "short"


def test_the_rows_table_shows_every_column_within_the_width() -> None:
    columns = [
        "Id",
        "Creation Date",
        "Donor Id",
        "Fundraiser Id",
        "Donation Amount",
        "Donor Display Name",
    ]
    row = ["1" * 36, "2018-05-01T12:00:00.000Z", "user-1", "f" * 36, "12.5", "Donor 1"]
    text = table(columns, [row], width=100)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert all(c[:4] in text.splitlines()[0] for c in columns)
    assert "…" in text.splitlines()[1]


def test_moto_s_not_implemented_traceback_becomes_one_line() -> None:
    traceback = "Traceback (most recent call last):\n  ...\nNotImplementedError: The start_message_move_task action has not been implemented"
    record = logging.LogRecord(
        "werkzeug", logging.ERROR, "", 0, f"Error on request:\n{traceback}", (), None
    )
    other = logging.LogRecord(
        "werkzeug", logging.ERROR, "", 0, "Error on request:\nKeyError", (), None
    )
    assert MotoNotImplemented().filter(record) and MotoNotImplemented().filter(other)
    assert (
        record.getMessage() == "moto: StartMessageMoveTask is not implemented (answered HTTP 500)"
    )
    assert other.getMessage() == "Error on request:\nKeyError"


def test_a_reason_that_names_its_type_is_shown_alone() -> None:
    airtable = 'Airtable answered 422 INVALID_VALUE_FOR_COLUMN: Field "X" cannot accept it'
    assert reason_text("INVALID_VALUE_FOR_COLUMN", airtable) == airtable
    assert reason_text("MAPPING_ERROR", "body is not valid JSON") == (
        "MAPPING_ERROR: body is not valid JSON"
    )


# -- init-tables: what it reads ----------------------------------------------------------------


def test_init_tables_needs_no_queue_but_validates_everything_else() -> None:
    from poller.config import Config
    from poller.errors import ConfigErrors
    from poller_ops.cli.init_tables import table_specs

    def load_config(env: dict[str, str]) -> Config:  # as init-tables validates it
        return Config.from_env(env, require_queue=False)

    # GIVEN the README's step 3: a token, a base, a table, a mapping file, no QUEUE_URL
    env = {
        "AIRTABLE_TOKEN": "patExample",
        "AIRTABLE_BASE_ID": "appAbCdEfGh123456",
        "AIRTABLE_TABLE": "Donations",
        "FIELD_MAP_FILE": "field_maps/donations.json",
        "MERGE_ON": "Id",
    }
    config = load_config(env)
    # THEN the config is valid, and its one route is one table to plan
    assert config.queue_url == ""
    (spec,) = table_specs(config)
    assert (spec.base_id, spec.table, spec.merge_on, spec.route) == (
        "appAbCdEfGh123456",
        "Donations",
        ("Id",),
        "default",
    )
    # AND a QUEUE_URL that is set is still checked, like every other variable
    with pytest.raises(ConfigErrors) as raised:
        load_config({**env, "QUEUE_URL": "not a url", "AIRTABLE_BASE_ID": "nope"})
    assert {e.variable for e in raised.value.errors} == {"QUEUE_URL", "AIRTABLE_BASE_ID"}


@pytest.mark.parametrize(("typed", "created"), [("y\n", True), ("YES\n", True), ("\n", False)])
def test_init_tables_creates_only_on_yes(typed: str, created: bool) -> None:

    from poller_ops.cli.init_tables import QUESTION, ask

    prompt = io.StringIO()
    assert ask(io.StringIO(typed), prompt) is created
    assert prompt.getvalue() == QUESTION


# -- run: the summary for a person, and the function's output --------------------------------


def test_every_key_of_the_summary_is_explained() -> None:
    # GIVEN the summary the handler returns
    from poller.summary import RunSummary
    from poller_ops.report import LEGEND, legend_text

    keys = set(RunSummary().to_dict())
    # THEN each of its keys has a meaning, shown in the table and in `poller run --help`
    assert keys - set(LEGEND) == set()
    assert all(key in legend_text() for key in keys)


def test_the_terminal_table_rounds_numbers_and_fits_the_width() -> None:
    from poller.summary import RunSummary
    from poller_ops.report import print_summary

    summary = RunSummary(received=40, written=40, created=40, requests=4, elapsed_ms=12_345)
    summary.pacing_rps = 4.901960784313725
    stream = io.StringIO()
    # WHEN printed for a terminal 60 columns wide
    print_summary(summary.to_dict(), stream=stream, terminal=True, width=60)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    # THEN the pace is rounded, the time is in seconds, and no line is wider than 60
    assert "4.9 requests/s" in text and "4.90196" not in text and "12.3 s" in text
    assert all(len(line) <= 60 for line in text.splitlines())
    # AND the zero counts are named in one line, not one row each
    assert "0: " in text and "\n throttled " not in text


def test_without_a_terminal_the_summary_is_plain_lines_once() -> None:
    from poller.summary import RunSummary
    from poller_ops.report import print_summary

    stream = io.StringIO()
    summary = RunSummary(received=3, elapsed_ms=1500)
    summary.pacing_rps = 4.901960784313725
    print_summary(summary.to_dict(), error="run stopped: x", stream=stream, terminal=False)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "the run failed: run stopped: x" and lines.count("run summary") == 1
    assert "  pacing_rps           4.9" in lines and "\x1b" not in stream.getvalue()


@pytest.mark.parametrize("verbose", [False, True])
def test_the_function_s_log_lines_reach_stderr_only_when_verbose(verbose, capsys) -> None:
    # GIVEN the handler module's own logger, as the run uses it
    from poller import handler
    from poller_ops.cli.run import handler_output_to_stderr

    # WHEN it logs a warning and prints (as EMF would) inside the CLI's context
    with handler_output_to_stderr(handler, verbose=verbose) as tally:
        handler.logger.warning("dead-lettering message", extra={"message_id": "m1"})
        print('{"_aws": {"emf": true}}')
    out, err = capsys.readouterr()
    # THEN stdout has neither; stderr has both only with --verbose; the warning is counted
    assert out == ""
    assert ("dead-lettering message" in err) is verbose and ('"_aws"' in err) is verbose
    assert tally.text() == "1 warning(s)"
