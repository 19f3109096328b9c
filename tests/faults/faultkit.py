"""Helpers of the fault tests: moto's SQS server and the Airtable emulator over real HTTP,
the poller as a real process (`poller_process.py`, which is `python -m devstack.invoke`
with a short lockout) that can be killed, and logs from both sides on one clock
(CLOCK_MONOTONIC is system-wide on Linux, so the `time.monotonic()` values of different
processes compare).

* `SqsCallLog` reads what each poller process did with SQS (devstack.invoke --sqs-log).
* `AccessLog` records every API request the emulator answered: when it arrived, when the
  answer left, its status, whether the answer was dropped, and the records' Ids.
* `receive_counts` reads each message's receive count from moto's server in this process,
  without receiving (which would spend one).

The poller waits out Airtable's 30 s lockout after a 429 (a fact, not a setting); the fault
tests shrink it on both sides: the emulator's `lockout_seconds`, and `Poller(lockout_seconds=
...)` for the poller's pacers. The poller's must never be shorter than the emulator's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.stack import ACCOUNT, REGION, LocalStack

#: The poller process: devstack.invoke with its pacers' lockout set (see its docstring).
POLLER_PROCESS = Path(__file__).resolve().parent / "poller_process.py"


# --------------------------------------------------------------------------- emulator side
@dataclass(frozen=True)
class Access:
    """One API request as the emulator saw it."""

    arrived: float
    answered: float
    method: str
    status: int
    dropped: bool
    error_type: str
    #: json.dumps of each record's "Id" field (sent by name or, as the poller does once the
    #: schema check resolved it, by field id), in request order (empty for reads)
    keys: tuple[str, ...]

    @property
    def confirmed(self) -> bool:
        """The client got a 200 for this write."""
        return self.status == 200 and not self.dropped and self.method in ("PATCH", "POST")


class AccessLog:
    """Wraps `Emulator.handle` (what its HTTP server calls for every API request)."""

    def __init__(self, emulator: Any) -> None:
        self.entries: list[Access] = []
        self._lock = threading.Lock()
        inner = emulator.handle
        ids = {
            f["id"]
            for base in emulator.config.bases.values()
            for table in base["tables"]
            for f in table["fields"]
            if f["name"] == "Id"
        }

        def key_of(fields: dict[str, Any]) -> Any:
            return fields.get("Id", next((fields[i] for i in ids if i in fields), None))

        def handle(request: Any) -> Any:
            reply = inner(request)
            answered = time.monotonic()
            keys: tuple[str, ...] = ()
            if request.method in ("PATCH", "POST", "PUT") and request.body:
                try:
                    records = json.loads(request.body).get("records", [])
                    keys = tuple(json.dumps(key_of(r.get("fields", {}))) for r in records)
                except (ValueError, AttributeError):
                    keys = ()
            error = reply.body.get("error") if isinstance(reply.body, dict) else None
            error_type = error.get("type", "") if isinstance(error, dict) else str(error or "")
            if reply.status == 429:
                error_type = "RATE_LIMIT_REACHED"
            access = Access(
                request.arrived,
                answered,
                request.method,
                reply.status,
                reply.drop,
                error_type,
                keys,
            )
            with self._lock:
                self.entries.append(access)
            return reply

        emulator.handle = handle

    def snapshot(self) -> list[Access]:
        with self._lock:
            return list(self.entries)


# --------------------------------------------------------------------------- poller side
class SqsCallLog:
    """The JSON lines `devstack.invoke --sqs-log` appends (see `log_sqs_calls`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self, run: str | None = None, op: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        # Each line is one write(2) ending in a newline; whatever follows the last newline
        # is a line still being written by a live poller: not read yet.
        for raw in self.path.read_text().split("\n")[:-1]:
            line = json.loads(raw)
            if (run is None or line["run"] == run) and (op is None or line["op"] == op):
                out.append(line)
        return out

    def copies(self, source_queue_url: str) -> dict[str, str]:
        """A requeued copy's SQS message id -> the message id it was first sent with (a
        copy of a copy names the first one), over every run."""
        return {
            line["result"]["message_id"]: attribute(line, "poller.source_message_id")
            for line in self.lines(op="SendMessage")
            if line["params"]["QueueUrl"] == source_queue_url
        }

    def dead_letters(self, dead_letter_queue_url: str) -> list[dict[str, Any]]:
        """The SendMessage lines that stored a dead letter."""
        return [
            line
            for line in self.lines(op="SendMessage")
            if line["params"]["QueueUrl"] == dead_letter_queue_url
        ]

    def receipts(self) -> dict[str, str]:
        """Receipt handle -> message id, over every receive of every run."""
        return {
            receipt: message_id
            for line in self.lines(op="ReceiveMessage")
            for message_id, receipt, _ in line["result"]["messages"]
        }

    def confirmed_batch_entries(self, op: str, run: str | None = None) -> list[tuple[str, float]]:
        """(message id, time the call started) for each entry SQS confirmed."""
        receipts = self.receipts()
        out = []
        for line in self.lines(run, op):
            by_id = {e["Id"]: e["ReceiptHandle"] for e in line["params"]["Entries"]}
            out += [(receipts[by_id[i]], line["t0"]) for i in line["result"]["ok"]]
        return out

    def received(self, run: str) -> list[str]:
        return [
            message_id
            for line in self.lines(run, "ReceiveMessage")
            for message_id, _, _ in line["result"]["messages"]
        ]

    def wait_for(self, run: str, op: str, timeout: float, nonempty: bool = True) -> float | None:
        """Poll until `run` has logged `op` (for a receive: one that got messages); return
        when the call ended (`t1`). `timeout` is a guard against a run that never does it."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            for line in self.lines(run, op):
                if not nonempty or op != "ReceiveMessage" or line["result"]["messages"]:
                    return line["t1"]
            time.sleep(0.02)
        return None


def attribute(line: dict[str, Any], name: str) -> str:
    """A message attribute's string value from a logged SendMessage's parameters."""
    return str(line["params"]["MessageAttributes"][name]["StringValue"])


def receive_counts(stack: LocalStack) -> dict[str, int]:
    """Message id -> ApproximateReceiveCount of every message in the source queue, read from
    moto's server in this process."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT][REGION].get_queue(stack.queue_url.rsplit("/", 1)[-1])
    return {m.id: m.approximate_receive_count for m in queue._messages}


@dataclass
class PollerRun:
    """One invocation of the real handler in its own process."""

    label: str
    process: subprocess.Popen[bytes]
    started: float
    out: Path
    err: Path
    killed_at: float | None = None
    alive_when_killed: bool = False
    #: `time.monotonic()` once the process is gone (killed, or seen to have exited)
    ended: float | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def kill(self) -> None:
        """SIGKILL: no `finally`, no release, no flush. What a Lambda timeout looks like."""
        self.alive_when_killed = self.process.poll() is None
        self.process.send_signal(signal.SIGKILL)
        self.killed_at = time.monotonic()
        self.process.wait(timeout=10)
        self.ended = time.monotonic()

    def wait(self, timeout: float) -> PollerRun:
        """Wait for the run to end; `timeout` is a guard against a hung process only."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.label} did not finish in {timeout} s; killed it") from None
        self.ended = time.monotonic()
        lines = [ln for ln in self.out.read_text().splitlines() if ln.startswith("{")]
        assert lines, f"{self.label} printed no report; stderr:\n{self.err.read_text()[-3000:]}"
        self.report = json.loads(lines[-1])
        return self

    @property
    def summary(self) -> dict[str, Any]:
        return self.report.get("summary") or {}


class Poller:
    """Starts poller processes against a stack, all logging SQS calls to one file; their
    pacers wait `lockout_seconds` after a 429 (per run: `start(lockout_seconds=...)`)."""

    def __init__(
        self, stack: LocalStack, workdir: Path, *, lockout_seconds: float, **env: str
    ) -> None:
        self.stack = stack
        self.workdir = workdir
        self.log = SqsCallLog(workdir / "sqs-calls.jsonl")
        self.lockout_seconds = lockout_seconds
        self.env = env

    def start(
        self, label: str, timeout_s: float, *, lockout_seconds: float | None = None, **env: str
    ) -> PollerRun:
        full_env = {
            **os.environ,
            **self.stack.poller_env(
                POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING"
            ),
            **self.env,
            **env,
        }
        out, err = self.workdir / f"{label}.out", self.workdir / f"{label}.err"
        lockout = self.lockout_seconds if lockout_seconds is None else lockout_seconds
        command = [
            sys.executable,
            str(POLLER_PROCESS),
            "--lockout-seconds",
            str(lockout),
            "--timeout",
            str(timeout_s),
            "--sqs-log",
            str(self.log.path),
            "--label",
            label,
        ]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(command, env=full_env, stdout=stdout, stderr=stderr)
        return PollerRun(label, process, time.monotonic(), out, err)
