"""The batcher: collapse a merge key, never the same key in two requests at once, and keep
a FIFO group's order."""

from __future__ import annotations

from poller.batching import Batcher
from poller.model import Message, Record


def message(n: int, group: str | None = None, sent: int | None = None) -> Message:
    return Message(
        id=f"m{n}",
        receipt=f"r{n}",
        body="{}",
        sent_at_ms=sent if sent is not None else n,
        group_id=group,
        sequence=n,
    )


def record(
    key: str | None, route: str = "default", version: float | None = None, **fields: object
) -> Record:
    return Record(
        fields={"Id": key, **fields}, key=(key,) if key else None, route=route, version=version
    )


def test_messages_of_one_key_collapse_and_the_latest_sent_wins() -> None:
    # GIVEN two messages of one key, the later one sent first
    batcher = Batcher()
    assert batcher.add(record("a", amount=2), message(2, sent=200), now=0) is None
    loser = batcher.add(record("a", amount=1), message(1, sent=100), now=0)
    # THEN one entry holds both, with the later-sent record; the earlier message lost
    [entry] = batcher.take("default", 10)
    assert entry.record.fields["amount"] == 2 and loser is not None and loser.id == "m1"
    assert {m.id for m in entry.messages} == {"m1", "m2"}


def test_on_a_versioned_route_the_newest_version_wins_whatever_the_send_order() -> None:
    # GIVEN version 3 sent before version 2
    batcher = Batcher()
    batcher.add(record("a", version=3.0, v=3), message(1, sent=100), now=0)
    loser = batcher.add(record("a", version=2.0, v=2), message(2, sent=200), now=0)
    # THEN version 3 stays, and version 2 is the loser
    [entry] = batcher.take("default", 10)
    assert entry.record.fields["v"] == 3 and loser is not None and loser.id == "m2"


def test_a_key_in_flight_is_not_taken_again_until_its_request_ends() -> None:
    # GIVEN a request of key "a" in flight, and a newer message of "a" waiting
    batcher = Batcher()
    batcher.add(record("a"), message(1), now=0)
    first = batcher.take("default", 10)
    batcher.add(record("a"), message(2), now=0)
    batcher.add(record("b"), message(3), now=0)
    # WHEN the next request is taken
    second = batcher.take("default", 10)
    # THEN only "b" goes; "a" goes once the first request is done
    assert [e.record.key for e in second] == [("b",)]
    batcher.done(first)
    assert [e.record.key for e in batcher.take("default", 10)] == [("a",)]


def test_fifo_groups_one_request_at_a_time_and_never_past_a_blocked_message() -> None:
    # GIVEN two messages of group g and one of group h
    batcher = Batcher()
    batcher.add(record("a"), message(1, group="g"), now=0)
    batcher.add(record("b"), message(2, group="g"), now=0)
    batcher.add(record("c"), message(3, group="h"), now=0)
    # WHEN group g is blocked (a message of it was released)
    batcher.block({"g"})
    # THEN only group h is taken
    assert [e.record.key for e in batcher.take("default", 10)] == [("c",)]


def test_a_group_is_not_overtaken_by_a_later_message_of_it_on_another_route() -> None:
    # GIVEN group g's first message on route "x" and its second on route "y"
    batcher = Batcher()
    batcher.add(record("a", route="x"), message(1, group="g"), now=0)
    batcher.add(record("b", route="y"), message(2, group="g"), now=0)
    # THEN route y's request does not take it before route x's went
    assert batcher.take("y", 10) == []
    taken = batcher.take("x", 10)
    assert [e.record.key for e in taken] == [("a",)]
    batcher.done(taken)
    assert [e.record.key for e in batcher.take("y", 10)] == [("b",)]
