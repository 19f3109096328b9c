"""The scenarios, and one poller run (or two) per scenario through a fresh emulator.

A `Scenario` says what is drained (`bench.workload`), how the world behaves meanwhile
(arrival jitter, a base's capacity, a neighbour client, a lockout forced on a base, a
capacity that drops and comes back, a CPU hog beside the poller, Lambda's CPU share), and
how many poller processes run: one, two at once on one base, or one and then a second
cold one that starts from the pace the first kept in SSM. `poller_run` measures it and
returns one report entry per poller run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.stack import BASE_ID, TABLE, moto_client

from . import pace, workload
from .cgroup import CpuQuota
from .feeder import Feeder
from .phases import (
    BIN_S,
    CEILING_RECORDS_PER_S,
    TOKEN_LIMIT_RECORDS_PER_S,
    CgroupCpuWatch,
    CpuMeter,
    Queue,
    _leftovers,
    _quota_use,
    _writes,
    base_figures,
    delete_queue,
    empty_run,
    invoke_poller,
    lockouts_by_base,
    new_queue,
    poller_env,
    timeline,
    write_figures,
)
from .procs import EmulatorOptions, Service, airtable_emulator, get_json, put_json
from .world import (
    WATCH_POLL_S,
    CapacityChange,
    CapacityChanger,
    EmulatorWatch,
    ForcedLockout,
    cpu_hog,
    set_capacity,
    start_neighbour,
    stop_neighbour,
)

#: Airtable's requests/s per base.
AIRTABLE_RPS = 5
#: The cold start's donations are numbered from here (distinct from the first run's).
COLD_START_FROM = 2_000_000


@dataclass(frozen=True)
class Scenario:
    """One scenario measured through a fresh emulator.

    * `kind` names what it shows (the report's targets follow it): `ceiling`, `jitter`,
      `two-bases`, `two-bases-locked`, `hog`, `capacity`, `neighbour`, `capacity-change`,
      `two-pollers`, `mirror`, `cpu-share`.
    * `bases` 1 is donations into one table (the single-table variables); 2 is the even
      mix of donations and FundraiserCreated events into two bases; more is donations
      sharded over that many bases. `mirror` is a variant of `workload.MIRROR_VARIANTS`.
    * The world: `arrival_jitter_ms` in front of Airtable's window; `capacity_rps`, the
      base's capacity from the start (`POST /__emulator/capacity/{base}`);
      `capacity_change`, one that drops and comes back while the poller drains;
      `neighbour_rps`, another client of the base; `lock_out_base_after_s`, a lockout
      forced on the second base that long after the first write; `cpu_hog`, a busy loop
      on the poller's CPU; `memory_mb` / `cpu_quota`, Lambda's CPU share.
    * The pollers: `pollers` processes at once (each its own queue, table and pace
      prefix); `keep_pace` sets PACE_PARAMETER_PREFIX (moto's SSM); `cold_start_messages`
      runs a second poller with the same prefix after the first, on the same emulator.
    """

    name: str
    messages: int
    kind: str = "ceiling"
    arrival_jitter_ms: float = 0.0
    bases: int = 1
    memory_mb: int | None = None
    cpu_quota: CpuQuota | None = None
    lock_out_base_after_s: float | None = None
    capacity_rps: int | None = None
    capacity_change: CapacityChange | None = None
    neighbour_rps: float | None = None
    cpu_hog: bool = False
    max_receive_count: int = 5
    keep_pace: bool = False
    cold_start_messages: int = 0
    pollers: int = 1
    mirror: str | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    @property
    def ceiling(self) -> float:
        """Airtable's ceiling: 5 requests/s x 10 records per base, at most the token's
        50 requests/s; a base's lower capacity, or a neighbour's share, lowers it."""
        if self.pollers > 1 or self.mirror:
            return CEILING_RECORDS_PER_S
        per_base = CEILING_RECORDS_PER_S
        if self.capacity_rps is not None:
            per_base = 10.0 * self.capacity_rps
        if self.neighbour_rps:
            per_base -= 10.0 * self.neighbour_rps
        return min(per_base * self.bases, TOKEN_LIMIT_RECORDS_PER_S)

    @property
    def physical_limit(self) -> float:
        """The best any client can do at this jitter: requests sent 1 s / 5 apart may
        arrive J ms closer, so 5 of them must span 1000 + J ms: 50 x 1000 / (1000 + J)."""
        return self.ceiling * 1000.0 / (1000.0 + self.arrival_jitter_ms)

    def workloads(self) -> list[workload.Workload]:
        """One workload per poller process."""
        if self.mirror:
            return [workload.mirror(self.messages, self.mirror)]
        if self.pollers == 2:
            return workload.two_pollers(self.messages)
        if self.pollers != 1:
            raise ValueError("one or two pollers")
        if self.bases == 1:
            return [workload.single(self.messages)]
        if self.bases == 2:
            return [workload.two_bases(self.messages)]
        return [workload.sharded(self.messages, self.bases)]


@dataclass(frozen=True)
class Harness:
    """What every poller run of a benchmark shares."""

    moto: Service
    options: EmulatorOptions
    depth: int
    extra_env: dict[str, str]
    results: Path
    #: `bench.poller`'s options that do not depend on the scenario (short probes)
    poller_options: tuple[str, ...] = ()
    #: record each request's pacer stamp and its arrival at the emulator
    trace: bool = True


@dataclass
class _Poller:
    """One poller process of a run: its queue, what it drains, its environment and logs."""

    label: str
    load: workload.Workload
    queue: Queue
    env: dict[str, str]
    log: Path
    sends: Path | None
    feeder: Feeder | None = None
    report: dict[str, Any] = field(default_factory=dict)


def poller_run(
    harness: Harness, scenario: Scenario, *, with_empty_run: bool = False
) -> list[dict[str, Any]]:
    """The real handler drains the scenario's messages through a fresh emulator; first, if
    asked, one cold run against an empty queue. One entry per poller run (two when a
    second poller starts cold after the first)."""
    slug = scenario.slug
    results = harness.results
    arrivals = results / f"arrivals-{slug}.jsonl" if harness.trace else None
    options = dataclasses.replace(
        harness.options, arrival_jitter_ms=scenario.arrival_jitter_ms, trace_arrivals=arrivals
    )
    loads = scenario.workloads()
    with airtable_emulator(options, results / f"emulator-{slug}.log") as emulator:
        api_url = emulator.url
        for load in loads:
            for base_id, schema in load.extra_bases.items():
                put_json(f"{api_url}/__emulator/bases/{base_id}", schema)
        if scenario.capacity_rps is not None:
            set_capacity(api_url, BASE_ID, scenario.capacity_rps)
        empty = (
            empty_run(
                harness.moto.url, api_url, harness.extra_env, results / "poller-empty-queue.log"
            )
            if with_empty_run
            else None
        )
        prefix = f"/bench/{uuid.uuid4().hex[:8]}/{slug}" if scenario.keep_pace else None
        pollers = [
            _poller(
                harness,
                scenario,
                load,
                api_url,
                f"{slug}-{n}" if len(loads) > 1 else slug,
                n,
                prefix and (prefix if len(loads) == 1 else f"{prefix}/poller-{n}"),
            )
            for n, load in enumerate(loads)
        ]
        first = _measure(harness, scenario, scenario.name, pollers, emulator, arrivals)
        if empty is not None:
            first["empty_run"] = empty
        if prefix:
            first["kept_pace"] = _kept(harness.moto.url, [p.env for p in pollers])
        runs = [first]
        if scenario.cold_start_messages:
            put_json(f"{api_url}/__emulator/stats/reset", {}, method="POST")
            load = workload.single(scenario.cold_start_messages, start=COLD_START_FROM)
            second = dataclasses.replace(
                scenario,
                name=f"{scenario.name}: cold start",
                messages=scenario.cold_start_messages,
                kind="cold-start",
                cold_start_messages=0,
            )
            poller = _poller(harness, second, load, api_url, f"{slug}-cold-start", 0, prefix)
            run = _measure(harness, second, second.name, [poller], emulator, arrivals)
            run["kept_pace_before"] = first.get("kept_pace")
            run["kept_pace"] = _kept(harness.moto.url, [poller.env])
            runs.append(run)
    return runs


def _poller(
    harness: Harness,
    scenario: Scenario,
    load: workload.Workload,
    api_url: str,
    label: str,
    n: int,
    prefix: str | None,
) -> _Poller:
    endpoint = harness.moto.url
    queue = new_queue(endpoint, label[:20], scenario.max_receive_count)
    extra: dict[str, str | None] = {**harness.extra_env, **load.env}
    if prefix:
        extra |= {"PACE_PARAMETER_PREFIX": prefix, "AWS_ENDPOINT_URL_SSM": endpoint}
    sends = harness.results / f"sends-{label}.jsonl" if harness.trace else None
    if sends is not None:
        sends.unlink(missing_ok=True)
    return _Poller(
        label=f"poller {chr(ord('A') + n)}" if scenario.pollers > 1 else "poller",
        load=load,
        queue=queue,
        env=poller_env(endpoint, queue, api_url, extra),
        log=harness.results / f"poller-{label}.log",
        sends=sends,
    )


def _around(harness: Harness, poller: _Poller) -> list[str]:
    """`bench.poller`'s options for this process (none: devstack.invoke itself)."""
    out = list(harness.poller_options)
    if harness.options.lockout_seconds != 30.0:
        out += ["--lockout-seconds", f"{harness.options.lockout_seconds:g}"]
    if poller.sends is not None:
        out += ["--trace-sends", str(poller.sends)]
    return out


def _measure(
    harness: Harness,
    scenario: Scenario,
    name: str,
    pollers: list[_Poller],
    emulator: Service,
    arrivals: Path | None,
) -> dict[str, Any]:
    """Run the pollers (at once) with their feeders and the scenario's world; the figures."""
    endpoint, api_url = harness.moto.url, emulator.url
    lockout_s = harness.options.lockout_seconds
    load_before = os.getloadavg()
    base_labels: dict[str, str] = {}
    for poller in pollers:
        base_labels |= poller.load.base_labels
    second_base = next(iter(pollers[0].load.base_labels.keys() - {BASE_ID}), None)
    quota = scenario.cpu_quota
    neighbour: dict[str, Any] | None = None
    try:
        quota_before = quota.stat() if quota else {}
        with contextlib.ExitStack() as stack:
            meter = CpuMeter({"moto": harness.moto, "emulator": emulator})
            hog = (
                stack.enter_context(cpu_hog(harness.results / f"hog-{scenario.slug}.log"))
                if scenario.cpu_hog
                else None
            )
            if scenario.neighbour_rps:
                start_neighbour(api_url, BASE_ID, scenario.neighbour_rps)
            watch = stack.enter_context(EmulatorWatch(api_url))
            for poller in pollers:
                poller.feeder = stack.enter_context(
                    Feeder(endpoint, poller.queue.url, poller.load.bodies, harness.depth)
                )
            forced = None
            if scenario.lock_out_base_after_s is not None and second_base:
                forced = stack.enter_context(
                    ForcedLockout(api_url, second_base, scenario.lock_out_base_after_s)
                )
            changer = None
            if scenario.capacity_change is not None:
                assert pollers[0].feeder is not None
                changer = stack.enter_context(
                    CapacityChanger(
                        api_url,
                        BASE_ID,
                        scenario.capacity_change,
                        watch,
                        lockout_s,
                        pollers[0].feeder,
                    )
                )
            sampler = stack.enter_context(CgroupCpuWatch(quota)) if quota else None
            _invoke_all(harness, pollers, quota)
            if scenario.neighbour_rps:
                neighbour = stop_neighbour(api_url, BASE_ID)
        cpu = meter.stop("poller" if len(pollers) == 1 else "pollers")
        quota_after = quota.stat() if quota else {}
        left = [_leftovers(endpoint, p.queue) for p in pollers]
        stats = get_json(f"{api_url}/__emulator/stats")
        log = get_json(f"{api_url}/__emulator/write-log")
        tables = tuple(sorted({label for p in pollers for label in p.load.base_labels.values()}))
        table_rows = _table_rows(api_url, pollers) if scenario.kind == "capacity" else None
    finally:
        for poller in pollers:
            delete_queue(endpoint, poller.queue)
    mirror = bool(scenario.mirror)
    main_log = [e for e in log if not mirror or e["table"] in tables]
    figures = write_figures(stats, main_log)
    first_write = figures.get("first_write")
    series = timeline(main_log, watch.started_at, lockout_s)
    per_base = base_figures(main_log, base_labels) if not scenario.pollers > 1 else {}
    lockouts = lockouts_by_base(stats, main_log, watch.started_at_by_base(), lockout_s, first_write)
    series["records_per_bin_by_base"] = (
        _bins(main_log, base_labels, "base") if len(base_labels) > 1 else {}
    )
    series["lockouts_by_base_at_s"] = lockouts.pop("at_s")
    samples = watch.snapshot()
    messages = sum(p.feeder.stats.sent for p in pollers if p.feeder)
    summaries = [p.report.get("summary") or {} for p in pollers]
    summary = summaries[0]
    calls: dict[str, int] = defaultdict(int)
    for p in pollers:
        for op, n in (p.report.get("sqs_calls") or {}).items():
            calls[op] += n
    out: dict[str, Any] = {
        "name": name,
        "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
        "kind": scenario.kind,
        "bases": scenario.bases,
        "base_labels": base_labels,
        "arrival_jitter_ms": scenario.arrival_jitter_ms,
        "ceiling_records_per_s": scenario.ceiling,
        "physical_limit_records_per_s": round(scenario.physical_limit, 1),
        "messages": messages,
        **figures,
        "per_base": per_base,
        "lockouts_by_base": lockouts,
        "pacing_rps": min((s.get("pacing_rps") or 0.0 for s in summaries), default=None),
        "poller_throttled": sum(s.get("throttled", 0) for s in summaries),
        "poller_records_per_request": summary.get("records_per_request"),
        "poller_airtable_requests": sum(s.get("airtable_requests", 0) for s in summaries),
        "emulator_requests_of_bases": {
            b: (stats.get("by_base") or {}).get(b, {}).get("data_requests", 0)
            + (stats.get("by_base") or {}).get(b, {}).get("meta_requests", 0)
            for b in base_labels
        },
        "sqs_calls": dict(calls),
        "sqs_calls_per_message": round(sum(calls.values()) / messages, 4) if messages else None,
        "peak_rss_mb": max(p.report.get("peak_rss_mb", 0) for p in pollers),
        "import_ms": pollers[0].report.get("import_ms"),
        "invoke_ms": pollers[0].report.get("invoke_ms"),
        "wall_s": cpu["seconds"],
        "cpu": cpu,
        "poller_cpu_ms_per_record": (
            round(1000 * cpu["cpu_s_exact"][next(iter(cpu["cpu_s_exact"]))] / figures["records"], 2)
            if figures["records"]
            else None
        ),
        "summary": summary,
        "feeder": pollers[0].feeder.stats.to_dict() if pollers[0].feeder else {},
        "left_in_queue": _sum_counts(left),
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "timeline": series,
    }
    if scenario.pollers > 1:
        out["pollers"] = _per_poller(pollers, log, watch.started_at, lockout_s, first_write)
        series["records_per_bin_by_line"] = {
            p.label: _bins_of(
                log, first_write, lambda e, p=p: e["table"] in p.load.base_labels.values()
            )
            for p in pollers
        }
    if mirror:
        out["mirror"] = _mirror_figures(stats, log, tables, figures["records"])
    if hog is not None:
        out["cpu_hog"] = " ".join(hog)
    if neighbour is not None:
        out["neighbour"] = _neighbour(scenario, neighbour, watch.started_at, lockout_s, samples)
    if table_rows is not None:
        out["rows"] = table_rows
    if scenario.capacity_rps is not None:
        out["capacity_rps"] = scenario.capacity_rps
    if first_write is not None and watch.started_at:
        learned = watch.started_at[-1] + lockout_s
        out["after_learning"] = {
            "from_s": round(learned - first_write, 1),
            **pace.records_after(main_log, learned),
        }
    if changer is not None and first_write is not None:
        out["capacity_change"] = _change(
            changer, samples, watch.started_at, first_write, lockout_s, pollers[0].sends
        )
        series["capacity_at_s"] = _capacity_steps(out["capacity_change"])
    elif scenario.capacity_rps is not None:
        series["capacity_at_s"] = [[0.0, scenario.capacity_rps]]
    if first_write is not None:
        end = figures.get("last_write") or first_write
        out["pace_timeline"] = (
            {b: pace.rate_timeline(samples, b, first_write, end, step=2.0) for b in base_labels}
            if scenario.kind in ("capacity-change", "two-pollers", "neighbour", "capacity")
            else {}
        )
    if forced is not None:
        out["forced_lockout"] = forced.describe()
    if quota is not None:
        out["cpu_quota"] = {**quota.describe(), **_quota_use(quota_before, quota_after, cpu)}
        assert sampler is not None
        out["while_writing"] = sampler.while_writing(log)
    if harness.trace:
        out["stamp_to_arrival"] = pace.stamp_to_arrival(
            _joined([p.sends for p in pollers], harness.results / f"sends-{out['slug']}.all"),
            arrivals,
        )
    return out


def _invoke_all(harness: Harness, pollers: list[_Poller], quota: CpuQuota | None) -> None:
    """Each poller's process, all at once; the first failure is raised once all ended."""
    errors: list[BaseException] = []

    def run(poller: _Poller) -> None:
        try:
            poller.report = invoke_poller(poller.env, poller.log, quota, _around(harness, poller))
        except BaseException as exc:  # raised below, in the benchmark's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,), name=f"bench-{p.label}") for p in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _joined(paths: list[Path | None], into: Path) -> Path | None:
    """One trace of every poller's sends (each line names its base)."""
    present = [p for p in paths if p is not None and p.exists()]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    into.write_text("".join(p.read_text(encoding="utf-8") for p in present), encoding="utf-8")
    return into


def _sum_counts(items: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for item in items:
        for k, v in item.items():
            out[k] += v
    return dict(out)


def _bins(log: list[dict[str, Any]], labels: dict[str, str], key: str) -> dict[str, list[int]]:
    writes = _writes(log)
    if not writes:
        return {}
    start = min(t for t, _ in writes)
    return {b: _bins_of(log, start, lambda e, b=b: e[key] == b) for b in labels}


def _bins_of(log: list[dict[str, Any]], start: float | None, keep: Any) -> list[int]:
    """Records confirmed per `BIN_S` from `start` of the write-log entries `keep` accepts,
    on the run's common time axis."""
    writes = [(e["time"], len(e["record_ids"])) for e in log if e["kind"] in ("created", "updated")]
    if not writes or start is None:
        return []
    size = int((max(t for t, _ in writes) - start) / BIN_S) + 1
    bins = [0] * size
    for e in log:
        if e["kind"] in ("created", "updated") and keep(e) and e["time"] >= start:
            bins[int((e["time"] - start) / BIN_S)] += len(e["record_ids"])
    return bins


def _per_poller(
    pollers: list[_Poller],
    log: list[dict[str, Any]],
    lockouts: list[float],
    lockout_s: float,
    first: float | None,
) -> dict[str, Any]:
    """Each poller's records/s over its own write span and after the last lockout, and what
    its summary says (its pace at the end, its 429s)."""
    out: dict[str, Any] = {}
    settled = lockouts[-1] + lockout_s if lockouts else None
    for poller in pollers:
        table = next(iter(poller.load.base_labels.values()))
        mine = [e for e in log if e["table"] == table]
        figures = base_figures(mine, {BASE_ID: table})[BASE_ID]
        summary = poller.report.get("summary") or {}
        out[poller.label] = {
            "table": table,
            "records": figures["records"],
            "records_per_s": figures["records_per_s"],
            "after_last_lockout": pace.records_after(mine, settled) if settled else None,
            "pacing_rps_at_end": summary.get("pacing_rps"),
            "throttled": summary.get("throttled"),
            "first_write_s": round(min(e["time"] for e in mine) - first, 1)
            if mine and first
            else None,
        }
    if settled is not None:
        out["combined_after_last_lockout"] = pace.records_after(log, settled)
        out["settled_at_s"] = round(settled - first, 1) if first else None
    return out


def _mirror_figures(
    stats: dict[str, Any], log: list[dict[str, Any]], tables: tuple[str, ...], records: int
) -> dict[str, Any]:
    """Lookups (list requests) and link stubs of a faithful-mirror run."""
    ops = ((stats.get("by_base") or {}).get(BASE_ID) or {}).get("operations") or {}
    lookups = int(ops.get("list", 0)) + int(ops.get("list_post", 0))
    stubs = sum(
        len(e["record_ids"]) for e in log if e["kind"] == "created" and e["table"] not in tables
    )
    return {
        "lookup_requests": lookups,
        "lookup_requests_per_100_records": round(100 * lookups / records, 2) if records else None,
        "operations": ops,
        "link_stubs_created": stubs,
    }


def _neighbour(
    scenario: Scenario,
    stats: dict[str, int],
    lockouts: list[float],
    lockout_s: float,
    samples: list[Any],
) -> dict[str, Any]:
    """The neighbour's requests, and how many of them fell inside a lockout: those are the
    refusals the lockouts cost it (a request of its own that overfilled the window is one
    more)."""
    rps = scenario.neighbour_rps or 0.0
    return {
        "rps": rps,
        **stats,
        "lockouts": len(lockouts),
        "refusals_a_lockout_costs": round(rps * lockout_s, 1),
        "refusals_bound": int(len(lockouts) * (rps * lockout_s + 1)),
    }


def _change(
    changer: CapacityChanger,
    samples: list[Any],
    lockouts: list[float],
    first: float,
    lockout_s: float,
    sends: Path | None,
) -> dict[str, Any]:
    """When the capacity dropped and came back, every lockout and the pace the poller kept
    after it (from its pacer stamps), when the lower pace was learned, the probes that
    failed, and when the rate reached each whole request/s again after the restore."""
    described = changer.describe(first)
    dropped, restored = changer.dropped_at, changer.restored_at
    low = changer.change.low_rps
    end = samples[-1].t if samples else first
    after = pace.limits_after(sends, BASE_ID, lockouts, lockout_s, end)
    learned = next(
        (
            t
            for t, limit in zip(lockouts, after, strict=True)
            if dropped is not None
            and t >= dropped - WATCH_POLL_S
            and limit is not None
            and limit <= low
        ),
        None,
    )
    failed = [t for t in lockouts if learned is not None and t > learned]
    steps = pace.steps(samples, BASE_ID, restored) if restored is not None else {}
    back = steps.get(">= 4.5")
    return {
        **described,
        "lockouts_at_s": [round(t - first, 1) for t in lockouts],
        "pace_after_each_lockout": after,
        "lockouts_after_drop": sum(
            1 for t in lockouts if dropped is not None and t >= dropped - WATCH_POLL_S
        ),
        "lockouts_to_learn": sum(
            1
            for t in lockouts
            if dropped is not None and dropped - WATCH_POLL_S <= t <= (learned or -1.0)
        ),
        "failed_probes": len(failed),
        "failed_probes_at_s": [round(t - first, 1) for t in failed],
        "learned_at_s": None if learned is None else round(learned - first, 1),
        "paced_at_low_from_s": None if learned is None else round(learned + lockout_s - first, 1),
        "steps_after_restore_s": {
            k: None if v is None else round(v - first, 1) for k, v in steps.items()
        },
        "back_at_5_s_after_restore": (
            None if back is None or restored is None else round(back - restored, 1)
        ),
        "back_at_5_s_after_learning": (
            None if back is None or learned is None else round(back - learned, 1)
        ),
        "low_rps": low,
    }


def _capacity_steps(change: dict[str, Any]) -> list[list[float]]:
    """[seconds from the first write, the base's capacity from then on]."""
    points = [[0.0, AIRTABLE_RPS]]
    if change.get("dropped_at_s") is not None:
        points.append([change["dropped_at_s"], change["low_rps"]])
    if change.get("restored_at_s") is not None:
        points.append([change["restored_at_s"], AIRTABLE_RPS])
    return points


def _table_rows(api_url: str, pollers: list[_Poller]) -> dict[str, Any]:
    """The Donations table as the emulator holds it: rows, and distinct Ids among them."""
    rows = get_json(f"{api_url}/__emulator/records/{BASE_ID}/{TABLE}")
    ids = [r["fields"].get("Id") for r in rows]
    return {"rows": len(rows), "distinct_ids": len(set(ids))}


def _kept(endpoint: str, envs: list[dict[str, str]]) -> dict[str, Any]:
    """The pace each poller kept in SSM (moto's), per parameter."""
    ssm = moto_client("ssm", endpoint)
    out: dict[str, Any] = {}
    for env in envs:
        prefix = env.get("PACE_PARAMETER_PREFIX")
        if not prefix:
            continue
        name = f"{prefix}/{BASE_ID}"
        with contextlib.suppress(Exception):
            out[name] = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    return out
