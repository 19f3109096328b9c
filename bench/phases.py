"""The measurements, one function each. Each returns a JSON-friendly dict for the report."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.factories import donation
from devstack.stack import AWS_ENV, create_queues, sqs_client
from devstack.stack import poller_env as devstack_poller_env

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

#: Airtable's physical ceiling for one base: 5 requests/s x 10 records.
CEILING_RECORDS_PER_S = 50.0
#: The Lambda timeout the poller runs under (the longest Lambda allows).
LAMBDA_TIMEOUT_S = 900
#: Width of the rolling windows used to check that the rate is sustained.
WINDOW_S = 10.0
#: Width of the bins of the records/s timeline (the plot).
BIN_S = 1.0
#: How often the emulator's lockout counter is sampled, to place each lockout in time.
LOCKOUT_POLL_S = 0.2


@dataclass(frozen=True)
class Scenario:
    """One drain measured through a fresh emulator: how many messages, how much arrival
    jitter in front of Airtable's window, over how many bases."""

    name: str
    messages: int
    arrival_jitter_ms: float = 0.0
    bases: int = 1

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    @property
    def ceiling(self) -> float:
        """Airtable's ceiling: 5 requests/s x 10 records per base."""
        return CEILING_RECORDS_PER_S * self.bases

    @property
    def physical_limit(self) -> float:
        """The best any client can do at this jitter: requests sent 1 s / 5 apart may
        arrive J ms closer, so 5 of them must span 1000 + J ms: 50 x 1000 / (1000 + J)."""
        return self.ceiling * 1000.0 / (1000.0 + self.arrival_jitter_ms)


@dataclass(frozen=True)
class Queue:
    url: str
    dlq_url: str


def new_queue(endpoint: str, prefix: str) -> Queue:
    url, dlq_url = create_queues(sqs_client(endpoint), f"bench-{prefix}-{uuid.uuid4().hex[:6]}")
    return Queue(url, dlq_url)


def delete_queue(endpoint: str, queue: Queue) -> None:
    """Drop a phase's queues so later phases share moto with nothing left over."""
    sqs = sqs_client(endpoint)
    for url in (queue.url, queue.dlq_url):
        sqs.delete_queue(QueueUrl=url)


def bodies(count: int, start: int = 0) -> list[str]:
    """Distinct donation bodies, numbered from `start`."""
    return [json.dumps(donation(n)) for n in range(start, start + count)]


def poller_env(endpoint: str, queue: Queue, api_url: str, extra: dict[str, str]) -> dict[str, str]:
    """What the deployed function would get, pointed at the local services."""
    return devstack_poller_env(endpoint, queue.url, queue.dlq_url, api_url, **extra)


def invoke_poller(env: dict[str, str], log: Path) -> dict[str, Any]:
    """The real handler, once, in its own process (`devstack.invoke`)."""
    argv = [PYTHON, "-m", "devstack.invoke", "--timeout", str(LAMBDA_TIMEOUT_S)]
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
#: What the first invocation imports lazily (in `handler._adapters` and `handler.run`).
LAZY_MODULES = "poller.handler, poller.airtable, poller.sqs, boto3"


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


# ---------------------------------------------------------------- lockouts in time
class LockoutWatch:
    """Samples the emulator's lockout counter (a control endpoint: neither counted nor
    rate-limited) so that each lockout can be placed in time. `time.monotonic()` is
    CLOCK_MONOTONIC on Linux, the clock of the emulator's write log too."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.started_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-lockouts", daemon=True)

    def __enter__(self) -> LockoutWatch:
        self._seen = get_json(f"{self.api_url}/__emulator/stats")["lockouts"]
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(LOCKOUT_POLL_S):
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        with contextlib.suppress(OSError, ValueError, KeyError):
            lockouts = get_json(f"{self.api_url}/__emulator/stats", timeout=5)["lockouts"]
            # each new lockout started since the last sample: place it half a poll earlier
            self.started_at += [now - LOCKOUT_POLL_S / 2] * (lockouts - self._seen)
            self._seen = lockouts


def timeline(api_url: str, lockouts: list[float], lockout_s: float) -> dict[str, Any]:
    """Records confirmed per `BIN_S` from the first write on, and when each lockout began
    (seconds from the first write): what the plot draws."""
    log = get_json(f"{api_url}/__emulator/write-log")
    writes = [(e["time"], len(e["record_ids"])) for e in log if e["kind"] in ("created", "updated")]
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
    }


# ---------------------------------------------------------------- write-log figures
def write_figures(api_url: str) -> dict[str, Any]:
    """Throughput, 429s and request fill, from the emulator's own counters and write log."""
    stats = get_json(f"{api_url}/__emulator/stats")
    log = get_json(f"{api_url}/__emulator/write-log")
    writes = [e for e in log if e["kind"] in ("created", "updated")]
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


def poller_run(
    moto: Service,
    options: EmulatorOptions,
    scenario: Scenario,
    depth: int,
    extra_env: dict[str, str],
    results: Path,
    *,
    with_empty_run: bool = True,
) -> dict[str, Any]:
    """The real handler drains the scenario's donations through a fresh emulator (with the
    scenario's arrival jitter); first, if asked, one cold run against an empty queue."""
    if scenario.bases != 1:
        raise BenchError(f"{scenario.name}: only single-base scenarios can run so far")
    endpoint = moto.url
    slug = scenario.slug
    options = dataclasses.replace(options, arrival_jitter_ms=scenario.arrival_jitter_ms)
    messages = scenario.messages
    load_before = os.getloadavg()
    with airtable_emulator(options, results / f"emulator-{slug}.log") as emulator:
        api_url = emulator.url
        queue = new_queue(endpoint, slug[:20])
        env = poller_env(endpoint, queue, api_url, extra_env)
        empty = (
            empty_run(endpoint, api_url, extra_env, results / "poller-empty-queue.log")
            if with_empty_run
            else None
        )
        try:
            meter = CpuMeter({"moto": moto, "emulator": emulator})
            with (
                LockoutWatch(api_url) as watch,
                Feeder(endpoint, queue.url, bodies(messages), depth) as feeder,
            ):
                report = invoke_poller(env, results / f"poller-{slug}.log")
            cpu = meter.stop("poller")
            left = _leftovers(endpoint, queue)
        finally:
            delete_queue(endpoint, queue)
        figures = write_figures(api_url)
        series = timeline(api_url, watch.started_at, options.lockout_seconds)
    summary = report["summary"]
    calls = report["sqs_calls"]
    return {
        "name": scenario.name,
        "slug": slug,
        "bases": scenario.bases,
        "arrival_jitter_ms": scenario.arrival_jitter_ms,
        "ceiling_records_per_s": scenario.ceiling,
        "physical_limit_records_per_s": round(scenario.physical_limit, 1),
        "messages": messages,
        **figures,
        # what the poller's pacing ended at (after any 429 widened it), if it reports it
        "pacing_rps": summary.get("pacing_rps"),
        "poller_throttled": summary["throttled"],
        "poller_records_per_request": summary["records_per_request"],
        "sqs_calls": calls,
        "sqs_calls_per_message": round(sum(calls.values()) / messages, 4),
        "peak_rss_mb": report["peak_rss_mb"],
        "import_ms": report["import_ms"],
        "invoke_ms": report["invoke_ms"],
        "wall_s": cpu["seconds"],
        "cpu": cpu,
        "summary": summary,
        "feeder": feeder.stats.to_dict(),
        "left_in_queue": left,
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "timeline": series,
        **({"empty_run": empty} if empty is not None else {}),
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
        figures = write_figures(emulator.url)
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
