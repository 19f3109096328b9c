"""The handler end to end: moto's SQS server -> poller -> Airtable emulator, over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from devstack import donation
from devstack.feeder import Feeder, as_bodies
from harness import EMPTY, rows_by_id, untouched

from poller.errors import ConfigErrors, RunFailedError

POISON = [
    "not json at all",
    json.dumps([1, 2, 3]),
    json.dumps({"DonationAmount": 12.0, "DonorDisplayName": "no id"}),
    json.dumps(donation(900_001, DonationAmount="twenty")),  # Airtable rejects the type: 422
    json.dumps(donation(900_002, CreationDate="yesterday-ish")),  # not a date: 422
]


def test_drains_a_queue_with_duplicates_and_poison_exactly_once(stack, invoke):
    # GIVEN 320 donations, 32 of them delivered twice, and 5 poison messages, fed through a
    # shallow queue
    valid = [donation(n) for n in range(320)]
    bodies = as_bodies(valid + valid[::10])
    bodies[150:150] = POISON
    # WHEN the handler drains it with MERGE_ON=Id
    with Feeder(stack, bodies) as feeder:
        summary = invoke(timeout_s=120)
    assert feeder.remaining == 0
    # THEN there is exactly one row per donation id, with the message's values
    rows = stack.rows()
    by_id = {r["fields"]["Id"]: r["fields"] for r in rows}
    assert len(rows) == len(by_id) == 320
    for body in valid[::37]:
        fields = by_id[body["Id"]]
        assert fields["Donation Amount"] == body["DonationAmount"]
        assert fields["Donor Display Name"] == body["DonorDisplayName"]
        assert fields["Fundraiser Id"] == body["FundraiserId"]
    # AND every poison message is in the DLQ with a reason, the source queue is empty
    letters = stack.dead_letters()
    assert sorted(b for b, _ in letters) == sorted(POISON)
    assert all(a.get("poller.reason") for _, a in letters)
    assert stack.counts() == EMPTY
    # AND the summary counts what happened, in full requests
    assert summary["stopped_because"] == "empty"
    assert summary["received"] == len(bodies)
    assert summary["deleted"] == len(bodies)
    assert summary["dead_lettered"] == len(POISON)
    assert summary["records_per_request"] >= 8
    # AND the base was never hammered: a 429 (arrivals bunched by a busy machine) costs one
    # lockout, after which the learned pace keeps clear of the limit
    assert stack.emulator.stats.lockouts <= 1 and stack.emulator.stats.throttled <= 4


def test_reasons_name_the_problem(stack, invoke):
    # GIVEN one message of each poison shape
    stack.send_messages(POISON)
    # WHEN drained
    invoke()
    # THEN each reason says what was wrong with that message
    reasons = {body: attrs["poller.reason"] for body, attrs in stack.dead_letters()}
    assert "not valid JSON" in reasons[POISON[0]]
    assert "expected an object" in reasons[POISON[1]]
    assert 'merge key field "Id"' in reasons[POISON[2]]
    assert (
        "INVALID_VALUE_FOR_COLUMN" in reasons[POISON[3]] and "Donation Amount" in reasons[POISON[3]]
    )
    assert (
        "INVALID_VALUE_FOR_COLUMN" in reasons[POISON[4]] and "Creation Date" in reasons[POISON[4]]
    )
    assert {a["poller.error_type"] for _, a in stack.dead_letters()} >= {
        "MAPPING_ERROR",
        "INVALID_VALUE_FOR_COLUMN",
    }


def test_warm_start_reuses_the_clients_and_drains_again(stack, invoke):
    # GIVEN a first run on a warm container
    stack.send_messages(as_bodies([donation(n) for n in range(15)]))
    first = invoke()
    # WHEN more messages arrive, including an update of an existing donation
    stack.send_messages(
        as_bodies([donation(n) for n in range(15, 25)] + [donation(3, DonationAmount=999.0)])
    )
    second = invoke()
    # THEN the second run updates the existing row instead of duplicating it
    rows = rows_by_id(stack)
    assert len(rows) == 25 and rows[donation(3)["Id"]]["Donation Amount"] == 999.0
    assert (first["created"], second["created"], second["updated"]) == (15, 10, 1)


def test_merge_on_none_creates_records(stack, invoke):
    # GIVEN MERGE_ON=none (create mode) and 12 donations, one of them sent twice
    stack.send_messages(as_bodies([donation(n) for n in range(12)] + [donation(3)]))
    # WHEN drained
    summary = invoke(MERGE_ON="none")
    # THEN every message becomes a created record: without a merge key, a second delivery
    # of one donation is a second row
    assert summary["created"] == 13 and len(stack.rows()) == 13
    assert sorted(r["fields"]["Id"] for r in stack.rows()).count(donation(3)["Id"]) == 2


def test_merge_on_unset_stops_before_touching_a_message(stack, invoke):
    # GIVEN a queue with messages and no MERGE_ON at all
    stack.send_messages(as_bodies([donation(1)]))
    # WHEN the handler runs
    with pytest.raises(ConfigErrors) as raised:
        invoke(MERGE_ON=None)
    # THEN the error says that MERGE_ON is required and what `none` means, and the message
    # was never received
    [problem] = raised.value.errors
    assert problem.variable == "MERGE_ON" and "MERGE_ON=none" in problem.problem
    assert untouched(stack, 1)


def test_bad_config_stops_before_touching_a_message(stack, invoke):
    # GIVEN a queue with messages and a nonsense WAIT_TIME_SECONDS
    stack.send_messages(as_bodies([donation(1)]))
    # WHEN the handler runs
    with pytest.raises(ConfigErrors) as raised:
        invoke(WAIT_TIME_SECONDS="30", AIRTABLE_MAX_RPS="fast")
    # THEN the error names each bad variable and why, and the message was not received
    text = str(raised.value)
    assert "WAIT_TIME_SECONDS must be between 0 and 20, got 30" in text
    assert "AIRTABLE_MAX_RPS must be a number" in text
    assert untouched(stack, 1)


def test_field_map_pointing_at_a_missing_field_stops_the_run_before_any_receive(stack, invoke):
    # GIVEN a FIELD_MAP whose target field does not exist in the table, and SCHEMA_CHECK=off,
    # a retired variable, which does not turn the check off
    stack.send_messages(as_bodies([donation(n) for n in range(5)]))
    # WHEN the handler runs
    with pytest.raises(RunFailedError) as raised:
        invoke(
            FIELD_MAP=json.dumps({"Id": "Id", "DonationAmount": "Amount (USD)"}), SCHEMA_CHECK="off"
        )
    # THEN the check before the run names the field, and no message was received: nothing
    # is dead-lettered, no receive count was spent
    summary = raised.value.summary
    assert summary["stopped_because"] == "systemic" and summary["received"] == 0
    assert 'targets "Amount (USD)"' in str(raised.value)
    assert untouched(stack, 5) and stack.rows() == []
    # AND the retired variable was reported as such
    assert invoke.logged("SCHEMA_CHECK is no longer read")


def run_in_process(stack, **env: str) -> subprocess.CompletedProcess[str]:
    """One invocation in its own process, as Lambda would run it; stdout is the function's log."""
    return subprocess.run(
        [sys.executable, "-m", "devstack.invoke", "--timeout", "30"],
        env={**os.environ, **stack.poller_env(**env)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_token_never_appears_in_the_output(stack):
    # GIVEN a run at DEBUG with poison (which logs reasons), and a run with a config error
    stack.send_messages(POISON + as_bodies([donation(1)]))
    # WHEN each runs in its own process, as Lambda runs it
    runs = [
        run_in_process(stack, POWERTOOLS_LOG_LEVEL="DEBUG"),
        run_in_process(
            stack,
            AIRTABLE_TOKEN_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
        ),
    ]
    output = "".join(r.stdout + r.stderr for r in runs)
    # THEN the logs were there (JSON, with the reasons), and nothing contains the token
    assert '"message":"dead-lettering message"' in output
    assert "AIRTABLE_TOKEN or AIRTABLE_TOKEN_SECRET_ARN: exactly one must be set" in output
    assert "patLocalDevToken" not in output


LOADED_AFTER_EACH_RUN = """
import json, sys
from devstack import LambdaContext
from poller.lambda_function import lambda_handler
loaded = []
for run in range(2):
    summary = lambda_handler({}, LambdaContext(timeout_ms=30_000))
    loaded.append([sys.modules.get("pyairtable") is not None, summary["deleted"]])
    if run == 0:  # the test sends a donation, then lets the second run start
        print("FIRST RUN DONE", flush=True)
        sys.stdin.readline()
print(json.dumps(loaded))
"""


def test_a_run_that_finds_the_queue_empty_never_loads_pyairtable(stack):
    # GIVEN a cold container, in its own process, and an empty queue
    process = subprocess.Popen(
        [sys.executable, "-c", LOADED_AFTER_EACH_RUN],
        env={**os.environ, **stack.poller_env(POWERTOOLS_METRICS_DISABLED="true")},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    # WHEN it runs once, a donation arrives, and it runs again (warm)
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "FIRST RUN DONE":
            break
    stack.send_messages(as_bodies([donation(1)]))
    out, _ = process.communicate("next\n", timeout=120)
    # THEN the empty run loaded no Airtable client, and the next one loaded it and wrote
    assert json.loads(out.splitlines()[-1]) == [[False, 0], [True, 1]]
    assert [r["fields"]["Id"] for r in stack.rows()] == [donation(1)["Id"]]
