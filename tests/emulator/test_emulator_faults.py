"""Injected faults and latency: the failure modes the poller must recover from."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable

import pytest
import requests
from airtable_emulator import Faults, pipeline
from emulator_testkit import BASE, TABLE, Running, error_of
from pyairtable import retry_strategy


def outcomes(running: Running, count: int) -> list[str]:
    """Send ``count`` single-record creates one by one; return each outcome."""
    session = running.http()
    seen = []
    for n in range(count):
        try:
            response = session.post(running.records_url(), json={"fields": {"Id": str(n)}})
            seen.append(str(response.status_code))
        except requests.ConnectionError:
            seen.append("lost")
    return seen


def test_same_seed_gives_the_same_faults(start: Callable[..., Running]) -> None:
    # GIVEN two emulators with the same seed and fault rates, and one with another seed
    faults = Faults(error_5xx_rate=0.3, lost_response_rate=0.2)
    first, second = start(seed=11, faults=faults), start(seed=11, faults=faults)
    other = start(seed=12, faults=faults)
    # WHEN each receives the same 30 writes
    runs = [outcomes(running, 30) for running in (first, second, other)]
    # THEN the same seed faults the same requests, with every kind of outcome present
    assert runs[0] == runs[1]
    assert {"200", "503", "lost"} <= set(runs[0])
    assert runs[0] != runs[2]
    # AND what was applied matches: 200s and lost responses, never 503s
    applied = runs[0].count("200") + runs[0].count("lost")
    assert len(first.emu.records(BASE, TABLE)) == applied
    stats = first.emu.stats
    assert stats.injected_5xx == runs[0].count("503")
    assert stats.lost_responses == runs[0].count("lost")
    assert stats.requests == sum(stats.by_status.values()) + stats.lost_responses


def test_5xx_write_is_not_applied(start: Callable[..., Running]) -> None:
    # GIVEN every write fails with a 5xx
    running = start(faults=Faults(error_5xx_rate=1.0))
    # WHEN pyairtable creates a record
    with pytest.raises(requests.HTTPError) as caught:
        running.table().create({"Id": "a"})
    # THEN it gets a 503 and the record does not exist
    assert caught.value.response.status_code == 503
    assert error_of(caught.value.response)["type"] == "SERVICE_UNAVAILABLE"
    assert running.emu.records(BASE, TABLE) == []
    assert running.emu.stats.injected_5xx == 1
    assert running.emu.write_log == []


def test_lost_response_is_applied_and_the_client_sees_a_connection_error(
    start: Callable[..., Running],
) -> None:
    # GIVEN every write response is lost, and a client that does not retry
    running = start(faults=Faults(lost_response_rate=1.0))
    table = running.table()
    # WHEN it creates a record
    with pytest.raises(requests.ConnectionError):
        table.create({"Id": "a"})
    # THEN the record exists anyway (the client cannot know), and is logged as created
    assert [r["fields"] for r in running.emu.records(BASE, TABLE)] == [{"Id": "a"}]
    assert [e.kind for e in running.emu.write_log] == ["created"]
    assert running.emu.stats.lost_responses == 1
    # AND the server keeps serving, on the same client
    assert [r["fields"]["Id"] for r in table.all()] == ["a"]


def test_lost_response_of_a_refused_write_is_lost_too(start: Callable[..., Running]) -> None:
    # GIVEN every write response is lost
    running = start(faults=Faults(lost_response_rate=1.0))
    # WHEN an invalid write is sent
    with pytest.raises(requests.ConnectionError):
        running.table().create({"No Such Field": "a"})
    # THEN the client learns nothing, nothing is written, and the loss is counted
    assert running.emu.records(BASE, TABLE) == []
    assert running.emu.stats.lost_responses == 1
    assert running.emu.stats.by_status == {}


def test_default_pyairtable_retry_resends_a_write_whose_response_was_lost(
    start: Callable[..., Running],
) -> None:
    # GIVEN lost responses and pyairtable's retry strategy with its default 5 retries and
    # allowed_methods=None, which retries POST after a read error (no backoff, to be quick)
    running = start(faults=Faults(lost_response_rate=1.0))
    table = running.table(retry_strategy=retry_strategy(backoff_factor=0))
    # WHEN it creates one record
    with pytest.raises(requests.ConnectionError):
        table.create({"Id": "a"})
    # THEN the record was written once per attempt: the duplicate-write hazard
    assert len(running.emu.records(BASE, TABLE)) == 6


def test_reads_are_never_faulted(start: Callable[..., Running]) -> None:
    # GIVEN every write would fail
    running = start(faults=Faults(error_5xx_rate=1.0))
    # WHEN records and the schema are read
    # THEN they are served
    assert running.table().all() == []
    assert running.api().base(BASE).schema().table(TABLE).name == TABLE


class SleepRecorder:
    """Stands in for the emulator's `time.sleep`: records each latency it was asked to wait,
    and, with `together`, holds each sleeper until that many sleep at once."""

    def __init__(self, together: int = 1) -> None:
        self.delays: list[float] = []
        self._barrier = threading.Barrier(together, timeout=30) if together > 1 else None

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._barrier is not None:
            self._barrier.wait()  # raises BrokenBarrierError if the requests were serialized


def record_sleeps(monkeypatch: pytest.MonkeyPatch, together: int = 1) -> SleepRecorder:
    recorder = SleepRecorder(together)
    clock = types.SimpleNamespace(
        **{n: getattr(time, n) for n in dir(time) if not n.startswith("_")}
    )
    clock.sleep = recorder.sleep
    monkeypatch.setattr(pipeline, "time", clock)
    return recorder


def test_latency_applies_and_can_be_changed_at_runtime(
    start: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a fixed latency of 0.2 s
    running = start(latency=(0.2, 0.2))
    sleeps = record_sleeps(monkeypatch)
    table = running.table()
    # WHEN a request is made, THEN it waits that long before its answer
    table.all()
    assert sleeps.delays == [0.2]
    # WHEN latency is switched off at runtime, THEN requests no longer wait
    running.emu.configure(latency=(0.0, 0.0))
    table.all()
    assert sleeps.delays == [0.2]


def test_latency_overlaps_across_concurrent_requests(
    start: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a latency of 0.3 s, each request's wait held until all six wait at once
    running = start(latency=(0.3, 0.3))
    sleeps = record_sleeps(monkeypatch, together=6)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            running.table().create({"Id": str(n)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    # WHEN six writes run concurrently
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN the six latencies overlapped (a server that answered one request at a time would
    # never have six waiting together) and all are applied
    assert not errors and sleeps.delays == [0.3] * 6
    assert len(running.emu.records(BASE, TABLE)) == 6


def test_write_log_times_fall_inside_the_request(start: Callable[..., Running]) -> None:
    # GIVEN a latency of 0.15 s
    running = start(latency=(0.15, 0.15))
    # WHEN a record is created
    before = time.monotonic()
    running.table().create({"Id": "a"})
    after = time.monotonic()
    # THEN it is confirmed after the latency, before the client got the answer
    (entry,) = running.emu.write_log
    assert before + 0.15 <= entry.time <= after
    assert (entry.base, entry.table, entry.method, entry.kind) == (BASE, TABLE, "POST", "created")


def test_concurrent_writers_lose_nothing(emu: Running) -> None:
    # GIVEN eight threads each creating ten batches of ten records
    def writer(n: int) -> None:
        table = emu.table()
        for batch in range(10):
            table.batch_create([{"Id": f"{n}-{batch}-{i}"} for i in range(10)])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    # WHEN they run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every record exists exactly once with a unique id
    records = emu.emu.records(BASE, TABLE)
    assert len(records) == 800
    assert len({r["id"] for r in records}) == 800
    assert len({r["fields"]["Id"] for r in records}) == 800
    assert emu.emu.stats.records_per_write == [10] * 80
