"""Targeted fault tests over real HTTP (moto's SQS server, the Airtable emulator, the poller
in its own process): the behaviours the campaign cannot pinpoint on its own.

In-memory counterparts (FIFO ordering, the receive-count rule, isolation) are in
tests/unit/test_delivery.py.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airtable_emulator import Faults
from devstack.factories import donation
from devstack.stack import BASE_ID, LocalStack, default_emulator_config
from faultkit import AccessLog, Poller

FAST = {
    "WAIT_TIME_SECONDS": "1",
    "AIRTABLE_TIMEOUT_SECONDS": "2",
    "STOP_MARGIN_SECONDS": "2.5",
    "BATCH_LINGER_SECONDS": "0.2",
    "SCHEMA_CHECK": "off",  # these tests are about the drain, not the start-up check
}

StackFactory = Callable[..., LocalStack]

#: The Lambda timeout of every run here. A run ends when the queue is empty, long before
#: this on any machine: it is only there so that no verdict hangs on how fast the machine
#: is (a 15 s timeout on 2 busy cores could cut a run short and change its summary).
LAMBDA_TIMEOUT_S = 60
#: How long the test waits for a run to end: a guard against a hung process only.
HANG_GUARD_S = LAMBDA_TIMEOUT_S + 30


@pytest.fixture
def make_stack(sqs_endpoint: str) -> Iterator[StackFactory]:
    """Fresh queues and emulator per call; everything is torn down after the test."""
    with contextlib.ExitStack() as stacks:

        def start(emulator: dict[str, Any] | None = None, **queue: Any) -> LocalStack:
            config = default_emulator_config(**{"lockout_seconds": 1.0, **(emulator or {})})
            return stacks.enter_context(
                LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config, **queue)
            )

        yield start


def send(stack: LocalStack, count: int, start: int = 0, **overrides: Any) -> list[str]:
    return stack.send_messages(
        [json.dumps(donation(n, **overrides)) for n in range(start, start + count)]
    )


def test_messages_stay_hidden_while_the_run_waits_out_a_lockout(make_stack, tmp_path: Path):
    # GIVEN a queue whose default visibility is 1 s, 25 messages, and a 4 s lockout that
    # starts right after the poller's first receive
    stack = make_stack(visibility_timeout=1)
    send(stack, 25)
    poller = Poller(stack, tmp_path, **FAST, AIRTABLE_LOCKOUT_SECONDS="4")
    stack.emulator.configure(lockout_seconds=4.0)
    run = poller.start("run", LAMBDA_TIMEOUT_S)
    assert poller.log.wait_for("run", "ReceiveMessage", HANG_GUARD_S) is not None
    stack.emulator.trigger_lockout(BASE_ID)
    locked_at = time.monotonic()
    # WHEN the run waits out the lockout, watched from outside
    seen: list[tuple[float, dict[str, int]]] = []
    while run.process.poll() is None:
        seen.append((time.monotonic(), stack.counts()))
        time.sleep(0.2)
    run.wait(HANG_GUARD_S)
    # THEN once the run held all 25, none became visible to another consumer during the
    # lockout (4 x the queue's own visibility timeout), although none was written
    receives = [
        line for line in poller.log.lines("run", "ReceiveMessage") if line["result"]["messages"]
    ]
    assert sum(len(line["result"]["messages"]) for line in receives) == 25
    last_receive = max(line["t1"] for line in receives)
    during = [c for t, c in seen if max(last_receive, locked_at) < t < locked_at + 4.0]
    # (each sample is an SQS call, slow on a busy machine: one inside the lockout suffices)
    assert len(during) >= 1, "the lockout was not observed"
    assert all(c["visible"] == 0 for c in during), during
    # AND the run waited the lockout out, then wrote everything
    assert run.summary["throttled"] >= 1 and run.summary["stopped_because"] == "empty"
    assert len(stack.rows()) == 25 and stack.counts()["visible"] + stack.counts()["in_flight"] == 0


def test_messages_that_keep_failing_are_dead_lettered_with_the_last_error(make_stack, tmp_path):
    # GIVEN 6 messages already received 3 times by runs that failed, 4 fresh ones, a queue
    # that redrives after 5 receives, and an Airtable that answers 503 to every write
    stack = make_stack(emulator={"faults": Faults(error_5xx_rate=1.0)}, max_receive_count=5)
    tired = send(stack, 6)
    for _ in range(3):
        _receive_and_give_back(stack, expected=6)
    fresh = send(stack, 4, start=100)
    poller = Poller(stack, tmp_path, **FAST)
    # WHEN a run with DEAD_LETTER_AFTER_RECEIVES=4 fails to write them (2 attempts each)
    run = poller.start(
        "run",
        LAMBDA_TIMEOUT_S,
        DEAD_LETTER_AFTER_RECEIVES="4",
        WRITE_MAX_ATTEMPTS="2",
        MAX_IN_FLIGHT_WRITES="1",
    ).wait(HANG_GUARD_S)
    # THEN the six on their 4th receive are in the DLQ with the last error as their reason,
    # the queue's redrive policy never had to move them without one
    letters = stack.dead_letters()
    assert len(letters) == 6
    for _, attributes in letters:
        assert attributes["poller.source_message_id"] in tired
        assert "failed on 4 receives" in attributes["poller.reason"]
        assert "503" in attributes["poller.reason"]
        assert attributes["poller.receive_count"] == "4"
    # AND the four fresh ones were not dead-lettered: they are back in the queue, visible
    assert run.summary["dead_lettered"] == 6 and run.summary["released"] == 4
    remaining = {m["MessageId"] for m in _peek(stack)}
    assert remaining == set(fresh)


def _receive_and_give_back(stack: LocalStack, expected: int) -> None:
    messages: dict[str, str] = {}
    for _ in range(10):
        for m in stack.sqs.receive_message(
            QueueUrl=stack.queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            WaitTimeSeconds=0,
        ).get("Messages", []):
            messages[m["MessageId"]] = m["ReceiptHandle"]
        if len(messages) == expected:
            break
    assert len(messages) == expected
    handles = list(messages.values())
    for start in range(0, len(handles), 10):
        stack.sqs.change_message_visibility_batch(
            QueueUrl=stack.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + 10])
            ],
        )


def _peek(stack: LocalStack) -> list[dict[str, Any]]:
    messages = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
    ).get("Messages", [])
    return messages


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        (
            {"FIELD_MAP": json.dumps({"Id": "Id", "DonationAmount": "Amount (USD)"})},
            "UNKNOWN_FIELD_NAME",
        ),
        ({"AIRTABLE_TABLE": "Donationz"}, "403"),
    ],
    ids=["unknown-field", "wrong-table"],
)
def test_a_configuration_error_stops_the_run_and_never_dead_letters(
    make_stack, tmp_path, setting, error
):
    # GIVEN 12 messages already received 5 times, and a configuration Airtable refuses
    stack = make_stack(max_receive_count=10)
    send(stack, 12)
    for _ in range(5):
        _receive_and_give_back(stack, expected=12)
    poller = Poller(stack, tmp_path, **FAST)
    # WHEN a run with DEAD_LETTER_AFTER_RECEIVES=4 tries to write them
    run = poller.start("run", LAMBDA_TIMEOUT_S, DEAD_LETTER_AFTER_RECEIVES="4", **setting).wait(
        HANG_GUARD_S
    )
    # THEN it fails loudly with Airtable's reason (a systemic failure of its only route),
    # and leaves every message in the queue: the messages are not poison, the
    # configuration is wrong
    assert run.summary["stopped_because"] == "systemic" and error in run.report["error"]
    assert list(run.summary["stopped_routes"]) == ["default"]
    assert stack.dead_letters() == [] and stack.rows() == []
    assert stack.counts() == {"visible": 12, "in_flight": 0, "delayed": 0}


def test_a_lost_response_is_retried_by_the_poller_only_and_leaves_one_row(make_stack, tmp_path):
    # GIVEN an Airtable that applies every write and never answers, and 5 messages
    stack = make_stack(emulator={"faults": Faults(lost_response_rate=1.0)})
    send(stack, 5)
    poller = Poller(stack, tmp_path, **FAST)
    # WHEN a run with a single attempt per request drains them
    first = poller.start("first", LAMBDA_TIMEOUT_S, WRITE_MAX_ATTEMPTS="1").wait(HANG_GUARD_S)
    # THEN exactly one request reached Airtable (no hidden re-send by pyairtable/urllib3),
    # the records were applied but nothing was deleted: the messages are back in the queue
    assert stack.emulator.stats.write_requests == 1 and len(stack.rows()) == 5
    assert first.summary["deleted"] == 0 and first.summary["released"] == 5
    # WHEN Airtable answers again and the next run writes them once more
    stack.emulator.configure(faults=Faults())
    second = poller.start("second", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    # THEN the upsert matched the existing rows: still one row per donation, queue empty
    assert len(stack.rows()) == 5 and second.summary["updated"] == 5
    assert stack.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_without_merge_on_a_lost_response_duplicates_rows(make_stack, tmp_path):
    # GIVEN no MERGE_ON (creates, not upserts) and a first write whose answer is lost
    stack = make_stack(emulator={"faults": Faults(lost_response_rate=1.0)})
    send(stack, 5)
    poller = Poller(stack, tmp_path, **FAST, MERGE_ON="")
    poller.start("first", LAMBDA_TIMEOUT_S, WRITE_MAX_ATTEMPTS="1").wait(HANG_GUARD_S)
    stack.emulator.configure(faults=Faults())
    # WHEN the messages are written again by the next run
    poller.start("second", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    # THEN each donation is in the table twice: without a merge key, delivery is at least once
    ids = [r["fields"]["Id"] for r in stack.rows()]
    assert len(ids) == 10 and len(set(ids)) == 5


def test_a_fifo_group_is_drained_in_order_in_one_run(make_stack, tmp_path):
    # GIVEN one FIFO message group of 25 (SQS hands out 10 at a time and hides the group
    # while any of them is held)
    stack = make_stack(fifo=True)
    stack.send_messages([json.dumps(donation(n)) for n in range(25)], group_id="donor-7")
    access = AccessLog(stack.emulator)
    poller = Poller(stack, tmp_path, **FAST)
    # WHEN one run drains the queue
    run = poller.start("run", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    # THEN it wrote all 25, in the group's order, in that one run
    written = [key for a in access.snapshot() if a.confirmed for key in a.keys]
    assert written == [json.dumps(donation(n)["Id"]) for n in range(25)]
    assert run.summary["stopped_because"] == "empty" and run.summary["deleted"] == 25
    assert stack.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}
