"""Stats per base: the "Airtable requests" a client spent, and how each was answered."""

from __future__ import annotations

from collections.abc import Callable

from airtable_emulator import BaseStats, donations_schema
from emulator_testkit import BASE, FakeClock, Running

OTHER = "appOtherBase00001"


def test_requests_are_counted_per_base_by_kind_and_answer(start: Callable[..., Running]) -> None:
    # GIVEN two bases, a 2 req/s capacity on BASE and a fake clock
    clock = FakeClock()
    running = start(
        bases={BASE: donations_schema(), OTHER: donations_schema()},
        rate_limit_rps=5,
        lockout_seconds=30,
        clock=clock,
    )
    running.emu.set_capacity(BASE, 2)
    api = running.api()
    # WHEN BASE gets a schema read, a create and a list (the list is refused), the other
    # base a list, and whoami is called
    api.base(BASE).schema()
    api.table(BASE, "Donations").create({"Id": "a"})
    refused = running.http().get(running.records_url())
    api.table(OTHER, "Donations").all()
    api.whoami()
    # THEN each base counts its own data and meta requests and their answers
    stats = running.emu.stats
    assert refused.status_code == 429
    assert stats.base(BASE) == BaseStats(
        data_requests=2,
        meta_requests=1,
        accepted=2,
        rate_limited=1,
        lockouts=1,
        operations={"meta": 1, "create": 1, "list": 1},
    )
    assert stats.base(OTHER) == BaseStats(data_requests=1, accepted=1, operations={"list": 1})
    # AND whoami is in the totals only, and a base with no request reads as zeros
    assert stats.requests == 5 and stats.base("appNeverCalled001") == BaseStats()


def test_the_stats_endpoint_carries_the_per_base_stats(emu: Running) -> None:
    # GIVEN a create and a list
    emu.table().create({"Id": "a"})
    emu.table().all()
    # WHEN the stats are read over HTTP
    stats = emu.http(token=None).get(f"{emu.url}/__emulator/stats").json()
    # THEN they hold the base's counts as JSON
    assert stats["by_base"][BASE]["data_requests"] == 2
    assert stats["by_base"][BASE]["operations"] == {"create": 1, "list": 1}
    assert stats["billing_blocked"] == 0
