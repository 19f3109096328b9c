"""A base already locked out when a run starts: another client of the base (the app's own
pages, a script) tripped Airtable's limit, or an earlier run ended inside a lockout.

The run's first request to the base is the check's schema read, and it meets the 429. A
lockout is the base's capacity, not a failure of Airtable: it is waited out when the run
has the time, and otherwise the run receives nothing and says that the base is locked out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devstack import donation
from devstack.feeder import as_bodies
from devstack.stack import BASE_ID, LocalStack, default_emulator_config
from harness import EMPTY, Container, rows_by_id, untouched

#: The lockout in these tests, on both sides (the emulator's, and the poller's pacers).
LOCKOUT = 3.0
#: A lockout longer than a run of 25 s can wait (it keeps 13 s free at its end).
LONG_LOCKOUT = 60.0


@pytest.fixture
def stack(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=LOCKOUT)
    with LocalStack.start(sqs_endpoint=sqs_endpoint, emulator_config=config) as local:
        yield local


@pytest.fixture
def container(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Container:
    return Container(stack, monkeypatch, lockout_seconds=LOCKOUT)


def test_a_lockout_in_force_when_a_run_starts_is_waited_out(stack, container):
    # GIVEN ten donations, and the base locked out by another client just now, for far less
    # than the run has
    stack.send_messages(as_bodies([donation(n) for n in range(10)]))
    stack.emulator.trigger_lockout(BASE_ID)
    # WHEN the scheduled run starts
    summary = container.run(timeout_s=60)
    # THEN it waits the lockout out and drains the queue, with no failure to report
    assert "raised" not in summary, summary["raised"]
    assert summary["stopped_because"] == "empty" and summary["written"] == 10
    assert container.logged("systemic failure") == []
    assert sorted(rows_by_id(stack)) == sorted(donation(n)["Id"] for n in range(10))
    assert stack.counts() == EMPTY


def test_a_lockout_that_outlasts_the_run_costs_no_receive(stack, monkeypatch):
    # GIVEN ten donations, and the base locked out for a minute, longer than the next run
    # can wait (the poller knows this world's lockout: a minute)
    container = Container(stack, monkeypatch, lockout_seconds=LONG_LOCKOUT)
    stack.emulator.configure(lockout_seconds=LONG_LOCKOUT)
    stack.send_messages(as_bodies([donation(n) for n in range(10)]))
    stack.emulator.trigger_lockout(BASE_ID)
    # WHEN the scheduled run starts
    summary = container.run(timeout_s=25)
    # THEN it receives nothing: no message pays a receive count for the base's lockout
    assert summary["received"] == 0 and summary["written"] == 0
    assert untouched(stack, 10)


def test_a_lockout_that_outlasts_the_run_is_named_as_the_bases_capacity(stack, monkeypatch):
    # GIVEN ten donations, and the base locked out for a minute, longer than the next run
    # can wait
    container = Container(stack, monkeypatch, lockout_seconds=LONG_LOCKOUT)
    stack.emulator.configure(lockout_seconds=LONG_LOCKOUT)
    stack.send_messages(as_bodies([donation(n) for n in range(10)]))
    stack.emulator.trigger_lockout(BASE_ID)
    # WHEN the scheduled run starts
    summary = container.run(timeout_s=25)
    # THEN one warning names the lockout as the base's capacity, never as an outage, and the
    # invocation succeeds (no one needs to act: the backlog waits, the age alarm watches it)
    lines = container.logged("systemic failure")
    assert [(line["level"], line["systemic_cause"]) for line in lines] == [("WARNING", "capacity")]
    assert "raised" not in summary and summary["stopped_because"] == "deadline"
