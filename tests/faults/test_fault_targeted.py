"""Targeted fault tests over real HTTP (moto's SQS server, the Airtable emulator, the poller
in its own process): the behaviours the campaign cannot pinpoint on its own.

Each test places its fault by what the run did (its first receive, its first write), never
by the clock, and asserts outcomes: rows, the DLQ, receive counts read from moto.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airtable_emulator import Faults
from devstack.factories import donation
from devstack.stack import BASE_ID, TABLE, TOKEN, LocalStack, default_emulator_config
from faultkit import AccessLog, Poller, receive_counts
from pyairtable import Api

#: The emulator's lockout, and what the poller's pacers wait after a 429.
LOCKOUT = 1.0
FAST = {"WAIT_TIME_SECONDS": "1", "AIRTABLE_TIMEOUT_SECONDS": "2"}
EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}

StackFactory = Callable[..., LocalStack]

#: The Lambda timeout of every run here. A run ends when the queue is empty, long before
#: this on any machine: it is only there so that no verdict hangs on how fast the machine
#: is (a short timeout on 2 busy cores could cut a run short and change its summary).
LAMBDA_TIMEOUT_S = 60
#: How long the test waits for a run to end: a guard against a hung process only.
HANG_GUARD_S = LAMBDA_TIMEOUT_S + 30


@pytest.fixture
def make_stack(sqs_endpoint: str) -> Iterator[StackFactory]:
    """Fresh queues and emulator per call; everything is torn down after the test."""
    with contextlib.ExitStack() as stacks:

        def start(emulator: dict[str, Any] | None = None, **queue: Any) -> LocalStack:
            config = default_emulator_config(**{"lockout_seconds": LOCKOUT, **(emulator or {})})
            return stacks.enter_context(
                LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config, **queue)
            )

        yield start


def send(stack: LocalStack, count: int, start: int = 0, **overrides: Any) -> list[str]:
    return stack.send_messages(
        [json.dumps(donation(n, **overrides)) for n in range(start, start + count)]
    )


def at_the_first_write(stack: LocalStack, action: Callable[[], None]) -> threading.Event:
    """Run `action` when the first record write reaches the emulator, before the emulator
    handles it (after the check before the run, which only reads). The event is set once
    it ran."""
    emulator, inner, done = stack.emulator, stack.emulator.handle, threading.Event()

    def handle(request: Any) -> Any:
        if request.method in ("PATCH", "POST") and "/meta/" not in request.path:
            emulator.handle = inner
            action()
            done.set()
        return inner(request)

    emulator.handle = handle
    return done


def test_messages_stay_hidden_while_the_run_waits_out_a_lockout(make_stack, tmp_path: Path):
    # GIVEN a queue whose default visibility is 1 s, 25 messages, and a lockout of 5 s that
    # starts with the run's first write, so that the run holds messages it cannot write
    lockout = 5.0
    stack = make_stack(emulator={"lockout_seconds": lockout}, visibility_timeout=1)
    send(stack, 25)
    locked = at_the_first_write(stack, lambda: stack.emulator.trigger_lockout(BASE_ID))
    poller = Poller(stack, tmp_path, lockout_seconds=lockout, **FAST)
    run = poller.start("run", LAMBDA_TIMEOUT_S)
    # WHEN the run waits out the lockout, watched from outside
    assert locked.wait(HANG_GUARD_S), "the run never wrote"
    seen: list[tuple[float, dict[str, int]]] = []
    while run.process.poll() is None:
        seen.append((time.monotonic(), stack.counts()))
        time.sleep(0.1)
    run.wait(HANG_GUARD_S)
    # THEN from a second after its first receive (the queue's own visibility) until its
    # first delete, which came after the lockout, every message the run had received by
    # then was still hidden from other consumers
    log = poller.log
    receives = [line for line in log.lines("run", "ReceiveMessage") if line["result"]["messages"]]
    first_delete = min(line["t0"] for line in log.lines("run", "DeleteMessageBatch"))
    window = [(t, counts) for t, counts in seen if receives[0]["t1"] + 1.5 < t < first_delete - 0.2]
    assert window, "no sample fell between the queue's visibility and the first delete"
    for t, counts in window:
        held = sum(len(line["result"]["messages"]) for line in receives if line["t1"] < t)
        assert counts["in_flight"] >= held, (t, counts, held)
    # AND the run waited the lockout out, then wrote everything
    assert run.summary["throttled"] >= 1 and run.summary["stopped_because"] == "empty"
    assert len(stack.rows()) == 25 and stack.counts() == EMPTY


def test_messages_that_keep_failing_are_dead_lettered_with_the_last_error(make_stack, tmp_path):
    # GIVEN 6 messages already received 3 times by runs that failed, 4 fresh ones, a queue
    # that redrives after 5 receives, and an Airtable that answers 503 to every write
    stack = make_stack(emulator={"faults": Faults(error_5xx_rate=1.0)}, max_receive_count=5)
    tired = send(stack, 6)
    for _ in range(3):
        _receive_and_give_back(stack, expected=6)
    fresh = send(stack, 4, start=100)
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **FAST)
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
    assert set(receive_counts(stack)) == set(fresh)
    assert stack.counts() == {**EMPTY, "visible": 4}


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


@pytest.mark.parametrize(
    ("setting", "cause", "detail"),
    [
        (
            {"FIELD_MAP": json.dumps({"Id": "Id", "DonationAmount": "Amount (USD)"})},
            "field",
            'targets "Amount (USD)"',
        ),
        ({"AIRTABLE_TABLE": "Donationz"}, "table", 'table "Donationz" is not in the base'),
    ],
    ids=["unknown-field", "wrong-table"],
)
def test_a_configuration_error_stops_the_run_before_any_receive(
    make_stack, tmp_path, setting, cause, detail
):
    # GIVEN 12 messages already received 5 times, and a configuration Airtable refuses
    stack = make_stack(max_receive_count=10)
    send(stack, 12)
    for _ in range(5):
        _receive_and_give_back(stack, expected=12)
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **FAST)
    # WHEN a run with DEAD_LETTER_AFTER_RECEIVES=4 starts
    run = poller.start("run", LAMBDA_TIMEOUT_S, DEAD_LETTER_AFTER_RECEIVES="4", **setting).wait(
        HANG_GUARD_S
    )
    # THEN it fails loudly, naming the problem (a systemic failure of its only route), and
    # never received: the messages are not poison, the configuration is wrong, and not one
    # receive count was spent on them
    assert run.summary["stopped_because"] == "systemic" and detail in run.report["error"]
    assert list(run.summary["stopped_routes"]) == ["default"]
    assert f'"systemic_cause":"{cause}"' in run.out.read_text().replace(" ", "")
    assert poller.log.lines("run", "ReceiveMessage") == []
    assert sorted(receive_counts(stack).values()) == [5] * 12
    assert stack.dead_letters() == [] and stack.rows() == []


def test_a_field_deleted_during_a_run_holds_the_queue_and_requeues_the_last_receives(
    make_stack, tmp_path
):
    # GIVEN 12 messages already received twice, a queue that redrives on the 4th receive
    # (maxReceiveCount 3), and a mapped field deleted just before the run's first write
    stack = make_stack(max_receive_count=3)
    sent = send(stack, 12)
    for _ in range(2):
        _receive_and_give_back(stack, expected=12)
    deleted = at_the_first_write(
        stack, lambda: stack.emulator.delete_field(BASE_ID, TABLE, "Donor Display Name")
    )
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **FAST)
    # WHEN the run, on its receive number 3, meets the missing field
    first = poller.start("first", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    assert deleted.is_set()
    # THEN it stops that route and names the field, dead-letters nothing, and what it
    # received on its last receive before the redrive policy is requeued as a fresh copy
    # (keeping its first id), so that no donation reaches the DLQ without a reason
    assert first.summary["stopped_because"] == "systemic", first.report
    assert "UNKNOWN_FIELD_NAME" in first.report["error"]
    assert '"systemic_cause":"field"' in first.out.read_text().replace(" ", "")
    assert first.summary["dead_lettered"] == 0 and stack.dead_letters() == []
    received = poller.log.received("first")
    assert received and first.summary["requeued"] == len(received)
    copies = poller.log.copies(stack.queue_url)
    assert sorted(copies.values()) == sorted(received)
    counts = receive_counts(stack)
    assert {copy: counts[copy] for copy in copies} == dict.fromkeys(copies, 0)
    assert len(counts) == 12 and set(counts) == set(copies) | (set(sent) - set(received))
    # WHEN the next run starts while the field is missing THEN it receives nothing
    held = poller.start("held", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    assert held.summary["received"] == 0 and poller.log.lines("held", "ReceiveMessage") == []
    assert '"Donor Display Name"' in held.report["error"]
    # WHEN the field is back, the next run writes every donation once
    Api(TOKEN, endpoint_url=stack.airtable_url).table(BASE_ID, TABLE).create_field(
        "Donor Display Name", "singleLineText"
    )
    fixed = poller.start("fixed", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    assert fixed.summary["stopped_because"] == "empty"
    ids = sorted(r["fields"]["Id"] for r in stack.rows())
    assert ids == sorted(donation(n)["Id"] for n in range(12))
    assert stack.dead_letters() == [] and stack.counts() == EMPTY


def test_a_body_nested_too_deeply_is_poison_and_the_run_goes_on(make_stack, tmp_path):
    # GIVEN a JSON array nested 100,000 deep (it crashes Python's parser) among 9 donations
    stack = make_stack()
    deep = "[" * 100_000 + "]" * 100_000
    stack.send_messages([deep, *[json.dumps(donation(n)) for n in range(9)]])
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **FAST)
    # WHEN a run drains the queue
    run = poller.start("run", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    # THEN the poison is in the DLQ with its reason, the donations are rows, and the run
    # ended on the empty queue, not on an error
    assert run.report.get("error") is None, run.report.get("error")
    [(body, attributes)] = stack.dead_letters()
    assert body == deep and "nested too deeply" in attributes["poller.reason"]
    assert sorted(r["fields"]["Id"] for r in stack.rows()) == sorted(
        donation(n)["Id"] for n in range(9)
    )
    assert stack.counts() == EMPTY


def test_a_lost_response_is_retried_by_the_poller_only_and_leaves_one_row(make_stack, tmp_path):
    # GIVEN an Airtable that applies every write and never answers, and 5 messages
    stack = make_stack(emulator={"faults": Faults(lost_response_rate=1.0)})
    send(stack, 5)
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **FAST)
    # WHEN a run with a single attempt per request drains them
    first = poller.start("first", LAMBDA_TIMEOUT_S, WRITE_MAX_ATTEMPTS="1").wait(HANG_GUARD_S)
    # THEN exactly one write reached Airtable (no hidden re-send by pyairtable/urllib3; the
    # check before the run only reads), the records were applied but nothing was deleted:
    # the messages are back in the queue
    assert stack.emulator.stats.write_requests == 1 and len(stack.rows()) == 5
    assert first.summary["deleted"] == 0 and first.summary["released"] == 5
    # WHEN Airtable answers again and the next run writes them once more
    stack.emulator.configure(faults=Faults())
    second = poller.start("second", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    # THEN the upsert matched the existing rows: still one row per donation, queue empty
    assert len(stack.rows()) == 5 and second.summary["updated"] == 5
    assert stack.counts() == EMPTY


def test_in_create_mode_a_lost_response_duplicates_rows(make_stack, tmp_path):
    # GIVEN MERGE_ON=none (creates, not upserts) and a first write whose answer is lost
    stack = make_stack(emulator={"faults": Faults(lost_response_rate=1.0)})
    send(stack, 5)
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **FAST, MERGE_ON="none")
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
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **FAST)
    # WHEN one run drains the queue
    run = poller.start("run", LAMBDA_TIMEOUT_S).wait(HANG_GUARD_S)
    # THEN it wrote all 25, in the group's order, in that one run
    written = [key for a in access.snapshot() if a.confirmed for key in a.keys]
    assert written == [json.dumps(donation(n)["Id"]) for n in range(25)]
    assert run.summary["stopped_because"] == "empty" and run.summary["deleted"] == 25
    assert stack.counts() == EMPTY
