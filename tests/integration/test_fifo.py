"""A FIFO queue in a warm container: the group order, the FIFO dead-letter queue and the
receive counts, through moto's SQS and the Airtable emulator over real HTTP.

One process, the real handler called again and again. The source queue and its DLQ are FIFO
(SQS requires a FIFO queue's DLQ to be FIFO too), with maxReceiveCount 3. moto does not keep a
group's order on redelivery after a partial delete (the field notes), so these scenarios
assert what a run wrote and what the queues hold, never the order in which moto hands a group
back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack import donation
from devstack.stack import BASE_ID, TOKEN, LocalStack, default_emulator_config
from harness import EMPTY, LOCKOUT_SECONDS, Container, failing_once, receive_counts, rows_by_id

from poller_ops.admin import peek_raw

pytestmark = pytest.mark.slow

MAX_RECEIVE_COUNT = 3
HELD_RUNS = 4  # more than MAX_RECEIVE_COUNT: a poller that spent receives would lose messages
POISON = '{"DonationAmount": 1.0}'  # no Id: MERGE_ON=Id needs one


@pytest.fixture
def world(sqs_endpoint: str) -> Iterator[LocalStack]:
    config = default_emulator_config(lockout_seconds=LOCKOUT_SECONDS)
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint,
        emulator_config=config,
        fifo=True,
        max_receive_count=MAX_RECEIVE_COUNT,
    ) as local:
        yield local


@pytest.fixture
def container(world: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Container:
    return Container(world, monkeypatch)


def ids(first: int, count: int) -> list[str]:
    return [donation(n)["Id"] for n in range(first, first + count)]


def written_ids(world: LocalStack) -> list[str]:
    """The Ids of the rows the emulator's write log confirmed, in the order it applied them."""
    by_record = {r["id"]: r["fields"]["Id"] for r in world.rows()}
    return [
        by_record[record]
        for entry in world.emulator.write_log
        for record in entry.record_ids
        if record in by_record
    ]


def dead_letter_groups(world: LocalStack) -> list[tuple[str, str | None, str]]:
    """Each DLQ message's body, MessageGroupId and `poller.reason`, not consumed."""
    return [
        (
            raw["Body"],
            raw["Attributes"].get("MessageGroupId"),
            raw["MessageAttributes"]["poller.reason"]["StringValue"],
        )
        for raw in peek_raw(world.sqs, world.dlq_url, wait_seconds=0)
    ]


def a_write_of(key: str) -> Callable[[Any], bool]:
    def matches(request: Any) -> bool:
        return request.method == "PATCH" and key.encode() in (request.body or b"")

    return matches


def test_poison_in_the_middle_of_a_group_goes_to_the_fifo_dlq_with_its_group_and_reason(
    world: LocalStack, container: Container
) -> None:
    # GIVEN two groups, and a poison message in the middle of the first
    world.send_messages([donation(n) for n in range(6)], group_id="donor-a")
    world.send_messages([POISON], group_id="donor-a")
    world.send_messages([donation(n) for n in range(6, 12)], group_id="donor-a")
    world.send_messages([donation(n) for n in range(12, 20)], group_id="donor-b")
    # WHEN a warm container runs until the queue is empty
    summaries = [container()]
    while world.counts()["visible"] and len(summaries) < 4:
        summaries.append(container())
    # THEN every valid donation is one row, the group's order was kept for its writes
    assert sorted(rows_by_id(world)) == sorted(ids(0, 20))
    assert [i for i in written_ids(world) if i in ids(0, 12)] == ids(0, 12)
    # AND the poison is in the FIFO DLQ, in its own group, with its reason
    [(body, group, reason)] = dead_letter_groups(world)
    assert (body, group) == (POISON, "donor-a")
    assert "Id" in reason
    assert sum(s["dead_lettered"] for s in summaries) == 1
    assert world.counts() == EMPTY


def test_write_access_lost_holds_a_fifo_queue_without_spending_a_receive(
    world: LocalStack, container: Container
) -> None:
    # GIVEN a warm container that wrote a group's first donations
    world.send_messages([donation(n) for n in range(5)], group_id="donor-a")
    assert container()["written"] == 5
    # WHEN the token may only read the base for more runs than maxReceiveCount
    world.emulator.set_permission(TOKEN, BASE_ID, "read")
    world.send_messages([donation(n) for n in range(5, 15)], group_id="donor-a")
    world.send_messages([donation(n) for n in range(15, 20)], group_id="donor-b")
    held = [container.run() for _ in range(HELD_RUNS)]
    # THEN each held run says why and receives nothing
    assert [(s["stopped_because"], s["received"]) for s in held] == [("systemic", 0)] * HELD_RUNS
    causes = [line["systemic_cause"] for line in container.logged("systemic failure")]
    assert causes == ["permission"] * HELD_RUNS
    assert receive_counts(world) == [0] * 15
    # AND once access is back, the next run writes the rest in the group's order
    world.emulator.set_permission(TOKEN, BASE_ID, "create")
    summary = container()
    assert summary["written"] == 15 and summary["stopped_because"] == "empty"
    assert [i for i in written_ids(world) if i in ids(0, 15)] == ids(0, 15)
    assert sorted(rows_by_id(world)) == sorted(ids(0, 20))
    assert world.dead_letters() == [] and world.counts() == EMPTY


def test_a_failed_write_keeps_the_rest_of_its_group_for_the_next_run(
    world: LocalStack, container: Container
) -> None:
    # GIVEN a warm container that has proven its writes, with no retry of a failed request
    world.send_messages([donation(0)], group_id="donor-a")
    assert container(WRITE_MAX_ATTEMPTS="1")["written"] == 1
    # AND a group of 15 whose first request will meet a 503, beside a second group
    world.send_messages([donation(n) for n in range(1, 16)], group_id="donor-a")
    world.send_messages([donation(n) for n in range(16, 21)], group_id="donor-b")
    failing_once(world, a_write_of(donation(1)["Id"]), BASE_ID)
    # WHEN the container runs
    first = container.run()
    # THEN no later donation of the failed group was written in that run, and none of the
    # messages it held was received twice
    assert max(receive_counts(world)) <= 1
    written = rows_by_id(world)
    assert not set(ids(1, 15)) & set(written), first
    assert first["dead_lettered"] == 0 and world.dead_letters() == []
    # AND the next runs write the group, in its order, each donation once
    for _ in range(3):
        if not world.counts()["visible"]:
            break
        container.run()
    assert [i for i in written_ids(world) if i in ids(1, 15)] == ids(1, 15)
    assert sorted(rows_by_id(world)) == sorted(ids(0, 21))
    assert world.dead_letters() == [] and world.counts() == EMPTY
