"""The measurements, one function each. Each returns a JSON-friendly dict for the report."""

from __future__ import annotations

import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.factories import donation
from devstack.stack import AWS_ENV, create_queues, sqs_client
from devstack.stack import poller_env as devstack_poller_env

from .cgroup import CpuQuota
from .feeder import Feeder
from .procs import (
    PYTHON,
    BenchError,
    EmulatorOptions,
    Service,
    airtable_emulator,
    child_env,
    cpu_seconds,
    get_json,
    machine_busy,
    run_json,
)
from .world import WATCH_POLL_S, Background

#: Airtable's physical ceiling for one base: 5 requests/s x 10 records.
CEILING_RECORDS_PER_S = 50.0
#: Airtable's per-token limit: 50 requests/s across every base, x 10 records.
TOKEN_LIMIT_RECORDS_PER_S = 500.0
#: The Lambda timeout the poller runs under (the longest Lambda allows).
LAMBDA_TIMEOUT_S = 900
#: Width of the rolling windows used to check that the rate is sustained.
WINDOW_S = 10.0
#: Width of the bins of the records/s timeline (the plot).
BIN_S = 1.0


@dataclass(frozen=True)
class Queue:
    url: str
    dlq_url: str


def new_queue(endpoint: str, prefix: str, max_receive_count: int = 5) -> Queue:
    """A queue and its DLQ; a message goes to the DLQ once received more than
    `max_receive_count` times (the queue's redrive policy)."""
    url, dlq_url = create_queues(
        sqs_client(endpoint),
        f"bench-{prefix}-{uuid.uuid4().hex[:6]}",
        max_receive_count=max_receive_count,
    )
    return Queue(url, dlq_url)


def delete_queue(endpoint: str, queue: Queue) -> None:
    """Drop a phase's queues so later phases share moto with nothing left over."""
    sqs = sqs_client(endpoint)
    for url in (queue.url, queue.dlq_url):
        sqs.delete_queue(QueueUrl=url)


def bodies(count: int, start: int = 0) -> list[str]:
    """Distinct donation bodies, numbered from `start`."""
    return [json.dumps(donation(n)) for n in range(start, start + count)]


def poller_env(
    endpoint: str, queue: Queue, api_url: str, extra: dict[str, str | None]
) -> dict[str, str]:
    """What the deployed function would get, pointed at the local services (None drops a
    variable: routes replace the single-table variables)."""
    return devstack_poller_env(endpoint, queue.url, queue.dlq_url, api_url, **extra)


def invoke_poller(
    env: dict[str, str],
    log: Path,
    quota: CpuQuota | None = None,
    around: list[str] | None = None,
) -> dict[str, Any]:
    """The real handler, once, in its own process (`devstack.invoke`), inside the cpu
    cgroup of `quota` if given (the process enters it before Python starts). `around`:
    `bench.poller`'s options (a short lockout, short probes, the send trace), which then
    runs devstack.invoke in its process."""
    module = ["-m", "bench.poller", *around] if around else ["-m", "devstack.invoke"]
    argv = [PYTHON, *module, "--timeout", str(LAMBDA_TIMEOUT_S)]
    if quota is not None:
        argv = quota.wrap(argv)
    report = run_json(argv, log, key="invoke_ms", env=env, timeout=LAMBDA_TIMEOUT_S + 60)
    if report.get("error"):
        raise BenchError(f"the poller failed: {report['error']}; see {log}")
    return report


# ---------------------------------------------------------------- moto's own ceiling
def moto_ceiling(endpoint: str, depth: int, held: int, seconds: float) -> dict[str, Any]:
    """Receive 10 + DeleteMessageBatch in one loop, with the feeder at `depth` visible and
    `held` messages in flight (as the poller holds its buffer): what moto can serve."""
    queue = new_queue(endpoint, "ceiling")
    sqs = sqs_client(endpoint)
    try:
        if held:
            sqs_send(sqs, queue.url, bodies(held))
            got = 0
            while got < held:
                got += len(
                    sqs.receive_message(
                        QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=3600
                    ).get("Messages", [])
                )
        supply = bodies(int(seconds * 600) + depth, start=held)
        consumed = calls = 0
        with Feeder(endpoint, queue.url, supply, depth):
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                messages = sqs.receive_message(
                    QueueUrl=queue.url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=3600,
                ).get("Messages", [])
                calls += 1
                if messages:
                    sqs.delete_message_batch(
                        QueueUrl=queue.url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
                    calls += 1
                consumed += len(messages)
            elapsed = time.perf_counter() - started
        return {
            "msgs_per_s": round(consumed / elapsed, 1),
            "depth": depth,
            "held_in_flight": held,
            "seconds": round(elapsed, 1),
            "calls": calls,
        }
    finally:
        delete_queue(endpoint, queue)


def sqs_send(sqs: Any, queue_url: str, items: list[str]) -> None:
    for start in range(0, len(items), 10):
        chunk = items[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)],
        )


# ---------------------------------------------------------------- cold import
IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import {modules}; "
    "print(round((time.perf_counter() - t) * 1000, 1))"
)
#: What the first invocation that finds messages imports lazily: boto3 (`Runtime.on_aws`,
#: every run) and pyairtable (`airtable.make_api`, only once messages wait).
LAZY_MODULES = "poller.handler, boto3, pyairtable"


def cold_import(runs: int) -> dict[str, Any]:
    """Median time to import the handler in fresh interpreters, and what dominates it."""
    handler = [_time_import("poller.handler") for _ in range(runs)]
    with_lazy = [_time_import(LAZY_MODULES) for _ in range(runs)]
    return {
        "runs": runs,
        "handler_ms": handler,
        "handler_median_ms": round(statistics.median(handler), 1),
        "with_first_invoke_imports_ms": with_lazy,
        "with_first_invoke_imports_median_ms": round(statistics.median(with_lazy), 1),
        "handler_by_package_ms": import_breakdown("poller.handler"),
        "with_first_invoke_imports_by_package_ms": import_breakdown(LAZY_MODULES),
    }


def _time_import(modules: str) -> float:
    out = subprocess.run(
        [PYTHON, "-c", IMPORT_SNIPPET.format(modules=modules)],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
    )
    return float(out.stdout.strip().splitlines()[-1])


def import_breakdown(modules: str, top: int = 6) -> dict[str, float]:
    """`python -X importtime`: self time summed per top-level package (stdlib as one),
    counting only what the import of `modules` pulls in (not the interpreter's start-up)."""
    out = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", f"import {modules}"],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
    )
    targets = {m.strip().split(".")[0] for m in modules.split(",")} | {"boto3", "botocore"}
    by_package: dict[str, float] = defaultdict(float)
    # Lines come in post-order: a module follows everything it imported. A top-level line
    # (no indent) closes a tree; attribute the tree to the run if its root is ours.
    pending: list[tuple[str, float]] = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        head, _cumulative, name = line.split("|", 2)
        self_us = int(head.rsplit(":", 1)[1])
        name = name[1:].rstrip()
        depth = (len(name) - len(name.lstrip(" "))) // 2
        module = name.strip()
        pending.append((module, self_us / 1000))
        if depth == 0:
            if module.split(".")[0] in targets or module.startswith("__editable__"):
                for mod, ms in pending:
                    by_package[_package(mod)] += ms
            pending = []
    ranked = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)
    shown = {k: round(v, 1) for k, v in ranked[:top]}
    rest_ms = sum(v for _, v in ranked[top:])
    if rest_ms:
        shown["other"] = round(rest_ms, 1)
    return shown


def _package(module: str) -> str:
    root = module.split(".")[0]
    if root in sys.stdlib_module_names or root.startswith("_"):
        return "stdlib"
    return root


def _writes(log: list[dict[str, Any]], base: str | None = None) -> list[tuple[float, int]]:
    """(time, records) of every confirmed create or update in the write log, of one base
    or of all."""
    return [
        (e["time"], len(e["record_ids"]))
        for e in log
        if e["kind"] in ("created", "updated") and (base is None or e["base"] == base)
    ]


def timeline(log: list[dict[str, Any]], lockouts: list[float], lockout_s: float) -> dict[str, Any]:
    """Records confirmed per `BIN_S` from the first write on, and when each lockout began
    (seconds from the first write): what the plot draws."""
    writes = _writes(log)
    if not writes:
        return {"bin_s": BIN_S, "records_per_bin": [], "lockouts_at_s": [], "lockout_s": lockout_s}
    start = min(t for t, _ in writes)
    bins = [0] * (int((max(t for t, _ in writes) - start) / BIN_S) + 1)
    for t, n in writes:
        bins[int((t - start) / BIN_S)] += n
    return {
        "bin_s": BIN_S,
        "records_per_bin": bins,
        "lockouts_at_s": [round(t - start, 2) for t in lockouts],
        "lockout_s": lockout_s,
        "first_write": start,
    }


def base_bins(log: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, list[int]]:
    """Per base, records confirmed per `BIN_S` on the run's common time axis (the first
    write of any base is 0)."""
    writes = _writes(log)
    if not writes or len(labels) < 2:
        return {}
    start = min(t for t, _ in writes)
    size = int((max(t for t, _ in writes) - start) / BIN_S) + 1
    out = {}
    for base in labels:
        bins = [0] * size
        for t, n in _writes(log, base):
            bins[int((t - start) / BIN_S)] += n
        out[base] = bins
    return out


def base_figures(log: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    """Per base: records, records/s over that base's own write span, its lowest 10 s
    window, and its share of the aggregate."""
    out: dict[str, Any] = {}
    for base, label in labels.items():
        per_time: dict[float, int] = defaultdict(int)
        for t, n in _writes(log, base):
            per_time[t] += n
        times = sorted(per_time)
        records = sum(per_time.values())
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        out[base] = {
            "label": label,
            "records": records,
            "write_span_s": round(span, 2),
            "records_per_s": round((records - per_time[times[0]]) / span, 2) if span else None,
            **_windows([(t, per_time[t]) for t in times]),
        }
    return out


def lockouts_by_base(
    stats: dict[str, Any],
    log: list[dict[str, Any]],
    started_at: dict[str, list[float]],
    lockout_s: float,
    first: float | None = None,
) -> dict[str, Any]:
    """How many lockouts each base had (the emulator's `by_base[...].lockouts`), when each
    began (sampled per base, seconds from the first write), and, for each base that was
    locked out, the records/s every other base confirmed meanwhile."""
    by_base = stats.get("by_base") or {}
    bases = sorted({e["base"] for e in log} | set(by_base))
    writes = _writes(log)
    if first is None:
        first = min((t for t, _ in writes), default=0.0)
    counts = {b: int((by_base.get(b) or {}).get("lockouts", 0)) for b in bases}
    at_s = {b: [round(t - first, 2) for t in started_at.get(b, [])] for b in bases}
    return {
        "counts": counts,
        "unattributed": 0,
        "source": "emulator (by_base)",
        "others_during": _others_during(log, at_s, first, lockout_s) if len(bases) > 1 else {},
        "at_s": at_s,
    }


def _others_during(
    log: list[dict[str, Any]], at_s: dict[str, list[float]], first: float, lockout_s: float
) -> dict[str, dict[str, float]]:
    """For each base that was locked out: the records/s every other base confirmed while
    it was (from 1 s after each lockout began to 1 s before it ended), over its lockouts.
    A lockout on one base must not stall the others: these stay near 50."""
    out: dict[str, dict[str, float]] = {}
    span = lockout_s - 2.0
    for locked, starts in at_s.items():
        if not starts or span <= 0:
            continue
        out[locked] = {}
        for other in at_s:
            if other == locked:
                continue
            records = sum(
                n
                for began in starts
                for t, n in _writes(log, other)
                if first + began + 1.0 < t < first + began + lockout_s - 1.0
            )
            out[locked][other] = round(records / (span * len(starts)), 1)
    return out


# ---------------------------------------------------------------- write-log figures
def write_figures(
    stats: dict[str, Any], log: list[dict[str, Any]], tables: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Throughput, 429s and request fill, from the emulator's own counters and write log
    (the records of `tables` only, when given: a mirror's link stubs are not its records)."""
    writes = [
        e
        for e in log
        if e["kind"] in ("created", "updated") and (not tables or e["table"] in tables)
    ]
    per_time: dict[float, int] = defaultdict(int)
    for entry in writes:
        per_time[entry["time"]] += len(entry["record_ids"])
    times = sorted(per_time)
    records = sum(per_time.values())
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    per_write = stats["records_per_write"]
    figures: dict[str, Any] = {
        "records": records,
        "write_span_s": round(span, 2),
        # Fencepost-correct: the records of the first write land at the start of the span.
        "records_per_s": round((records - per_time[times[0]]) / span, 2) if span else None,
        "first_write": times[0] if times else None,
        "last_write": times[-1] if times else None,
        "write_requests": stats["write_requests"],
        "records_per_request": round(sum(per_write) / len(per_write), 3) if per_write else None,
        "short_requests": sum(1 for n in per_write if n < 10),
        "throttled_429": stats["throttled"],
        "lockouts": stats["lockouts"],
        "api_requests": stats["requests"],
        "by_status": stats["by_status"],
        "records_created": stats["records_created"],
        "records_updated": stats["records_updated"],
    }
    figures.update(_windows([(t, per_time[t]) for t in times]))
    return figures


def _windows(points: list[tuple[float, int]]) -> dict[str, Any]:
    """Lowest and highest records/s over every full `WINDOW_S` window of the write span."""
    if not points or points[-1][0] - points[0][0] < 2 * WINDOW_S:
        return {"window_s": WINDOW_S, "min_window_records_per_s": None}
    rates = []
    end = 0
    total = 0
    last = points[-1][0]
    for start, (t0, _) in enumerate(points):
        if t0 + WINDOW_S > last:
            break
        while end < len(points) and points[end][0] < t0 + WINDOW_S:
            total += points[end][1]
            end += 1
        rates.append(total / WINDOW_S)
        total -= points[start][1]
    return {
        "window_s": WINDOW_S,
        "min_window_records_per_s": round(min(rates), 1),
        "max_window_records_per_s": round(max(rates), 1),
    }


# ---------------------------------------------------------------- CPU
class CpuMeter:
    """CPU seconds each process used over a span, and how busy the whole machine was.

    The poller is the only child this process waits for during the span, so the growth
    of RUSAGE_CHILDREN is its CPU; the feeder is a thread of this process (RUSAGE_SELF)."""

    def __init__(self, servers: dict[str, Service]) -> None:
        self.servers = servers
        self.started = time.perf_counter()
        self.children = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
        self.own = _cpu(resource.getrusage(resource.RUSAGE_SELF))
        self.server_cpu = {name: cpu_seconds(s.pid) for name, s in servers.items()}
        self.machine = machine_busy()

    def stop(self, child_name: str) -> dict[str, Any]:
        seconds = time.perf_counter() - self.started
        used = {
            child_name: _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - self.children,
            "feeder (benchmark process)": _cpu(resource.getrusage(resource.RUSAGE_SELF)) - self.own,
        }
        for name, server in self.servers.items():
            before, after = self.server_cpu[name], cpu_seconds(server.pid)
            if before is not None and after is not None:
                used[name] = after - before
        figures: dict[str, Any] = {
            "seconds": round(seconds, 1),
            "cpu_s": {k: round(v, 1) for k, v in used.items()},
            "cpu_s_exact": {k: round(v, 3) for k, v in used.items()},
            "cpu_pct_of_one_core": {k: round(100 * v / seconds, 1) for k, v in used.items()},
        }
        end = machine_busy()
        if self.machine and end and end[1] > self.machine[1]:
            busy = (end[0] - self.machine[0]) / (end[1] - self.machine[1])
            figures["machine_busy_pct"] = round(100 * busy, 1)
        return figures


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the runs
def empty_run(endpoint: str, api_url: str, extra_env: dict[str, str], log: Path) -> dict[str, Any]:
    """A cold invocation against an empty queue: what a run costs when there is nothing to do."""
    queue = new_queue(endpoint, "empty")
    try:
        report = invoke_poller(poller_env(endpoint, queue, api_url, extra_env), log)
    finally:
        delete_queue(endpoint, queue)
    summary = report["summary"]
    return {
        "import_ms": report["import_ms"],
        "invoke_ms": report["invoke_ms"],
        "lambda_ms": round(report["import_ms"] + report["invoke_ms"], 1),
        "drain_elapsed_ms": summary["elapsed_ms"],
        # cold-start work inside the invocation: lazy imports, clients, the schema check
        "setup_ms": round(report["invoke_ms"] - summary["elapsed_ms"], 1),
        "stopped_because": summary["stopped_because"],
        "sqs_calls": report["sqs_calls"],
        "peak_rss_mb": report["peak_rss_mb"],
    }


class CgroupCpuWatch(Background):
    """Samples the CPU time of the processes in a cgroup (the poller) every 0.2 s, so that
    its CPU can be read over the write span alone, without the cold start and the last
    empty poll: CPU per record and share of a core used while writing."""

    thread_name = "bench-cgroup-cpu"

    def __init__(self, quota: CpuQuota) -> None:
        super().__init__()
        self.quota = quota
        self.samples: list[tuple[float, float]] = []

    def _run(self) -> None:
        while not self._stop.wait(WATCH_POLL_S):
            used = [cpu_seconds(pid) for pid in self.quota.pids()]
            if used and None not in used:
                self.samples.append((time.monotonic(), sum(u for u in used if u is not None)))

    def _at(self, t: float) -> float | None:
        """CPU seconds at `t`, interpolated between the samples around it."""
        for (t0, c0), (t1, c1) in itertools.pairwise(self.samples):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c0
        return None

    def while_writing(self, log: list[dict[str, Any]]) -> dict[str, Any]:
        writes = sorted(_writes(log))
        if len(writes) < 2:
            return {}
        first, last = writes[0][0], writes[-1][0]
        start, end = self._at(first), self._at(last)
        if start is None or end is None or last <= first:
            return {"note": "too few CPU samples over the write span"}
        records = sum(n for _, n in writes) - writes[0][1]
        used = end - start
        return {
            "span_s": round(last - first, 2),
            "poller_cpu_s": round(used, 3),
            "poller_cpu_ms_per_record": round(1000 * used / records, 3) if records else None,
            "poller_cpu_pct_of_one_core": round(100 * used / (last - first), 1),
        }


def _quota_use(before: dict[str, int], after: dict[str, int], cpu: dict[str, Any]) -> dict:
    """How hard the quota bit: the share of periods in which the poller was stalled."""
    periods = after.get("nr_periods", 0) - before.get("nr_periods", 0)
    throttled = after.get("nr_throttled", 0) - before.get("nr_throttled", 0)
    stalled_us = after.get("throttled_usec", 0) - before.get("throttled_usec", 0)
    return {
        "periods": periods,
        "throttled_periods": throttled,
        "throttled_pct_of_periods": round(100 * throttled / periods, 1) if periods else None,
        "stalled_s": round(stalled_us / 1e6, 1),
        "poller_cpu_pct_of_one_core": cpu["cpu_pct_of_one_core"].get("poller"),
    }


def baseline_run(
    moto: Service, options: EmulatorOptions, messages: int, depth: int, results: Path
) -> dict[str, Any]:
    """The serial loop, in its own process, against its own fresh emulator."""
    endpoint = moto.url
    with airtable_emulator(options, results / "emulator-baseline.log") as emulator:
        queue = new_queue(endpoint, "baseline")
        argv = [
            PYTHON,
            "-m",
            "bench.baseline",
            "--sqs-endpoint",
            endpoint,
            "--queue-url",
            queue.url,
            "--api-url",
            emulator.url,
            "--count",
            str(messages),
        ]
        try:
            meter = CpuMeter({"moto": moto, "emulator": emulator})
            with Feeder(endpoint, queue.url, bodies(messages), depth) as feeder:
                report = run_json(argv, results / "baseline.log", key="baseline", env=AWS_ENV)
            cpu = meter.stop("baseline")
        finally:
            delete_queue(endpoint, queue)
        figures = write_figures(
            get_json(f"{emulator.url}/__emulator/stats"),
            get_json(f"{emulator.url}/__emulator/write-log"),
        )
    loop = report["baseline"]
    calls = loop["sqs_calls"]
    return {
        "messages": messages,
        **figures,
        "sqs_calls": calls,
        "sqs_calls_per_message": round(sum(calls.values()) / messages, 4),
        "errors": loop["error_count"],
        "error_samples": loop["errors"],
        "loop_elapsed_s": loop["elapsed_s"],
        "wall_s": cpu["seconds"],
        "cpu": cpu,
        "feeder": feeder.stats.to_dict(),
    }


def _leftovers(endpoint: str, queue: Queue) -> dict[str, int]:
    sqs = sqs_client(endpoint)
    out = {}
    for name, url in (("queue", queue.url), ("dlq", queue.dlq_url)):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        out[f"{name}_visible"] = int(attributes["ApproximateNumberOfMessages"])
        out[f"{name}_in_flight"] = int(attributes["ApproximateNumberOfMessagesNotVisible"])
    return out


def check_complete(run: dict[str, Any], what: str) -> None:
    if run["records"] < run["messages"]:
        raise BenchError(
            f"{what}: only {run['records']} of {run['messages']} records were written; "
            "see the logs in the results directory"
        )
