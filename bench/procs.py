"""Child processes: start each service in its own session, always stop it, read its output.

Every child gets its own process group (`start_new_session`), so Ctrl-C in the terminal
reaches only the benchmark, which then stops each child it started, by process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PYTHON = sys.executable
BIN = Path(PYTHON).parent
STOP_GRACE_SECONDS = 5.0
_LISTENING = re.compile(r"listening on (http://\S+)")
#: Every child this process started, so the report can show that none outlived the run.
STARTED_PIDS: list[int] = []


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message says which and where its log is."""


@dataclass(frozen=True)
class Service:
    """A server the benchmark started: where it listens and which process it is."""

    url: str
    pid: int

    def __str__(self) -> str:
        return self.url


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a live process has used so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU jiffies of the whole machine so far (Linux /proc/stat), else None."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for servers that cannot be told to pick one)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without AWS or poller settings, plus `overrides`.

    Dropping the caller's AWS_* variables keeps a developer's profile or region from
    leaking into a child that must only talk to loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides or {})
    return env


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it has not gone in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def started(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[Any]]:
    """Run `argv` for the block, its stdout and stderr going to `log_path`; stop it after."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(env),
            start_new_session=True,
        )
        STARTED_PIDS.append(process.pid)
        try:
            yield process
        finally:
            stop(process)


def _wait_for(what: str, ready: Any, process: subprocess.Popen[Any], log: Path) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with status {process.returncode}; see {log}")
        value = ready()
        if value:
            return value
        time.sleep(0.05)
    raise BenchError(f"{what} did not start within 30 s; see {log}")


@contextlib.contextmanager
def moto_server(log_path: Path) -> Iterator[Service]:
    """moto's standalone SQS server on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with started(argv, log_path) as process:

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
                    return True
            except OSError:
                return False

        _wait_for("moto_server", ready, process, log_path)
        yield Service(url, process.pid)


@dataclass(frozen=True)
class Placement:
    """Which CPUs run what, and at which priority the emulator runs.

    The Airtable stand-in's clock is what the figures rest on: it counts each request at
    the moment it reads it. On a 2-core machine shared with moto, the poller and the
    feeder, a starved emulator reads late and records arrivals bunched together, then
    answers 429s that real Airtable would not send. So the emulator gets a CPU of its own
    (`taskset`), and, where allowed, a priority above everything else on that CPU (other
    users of the machine); it sleeps most of the time. Everything else the benchmark
    starts, and the benchmark itself, runs on the other CPUs. On a single CPU nothing is
    pinned, and the report says so.

    The priority is `nice` (-20, the normal scheduler) by default, not `fifo` (real-time,
    `chrt --fifo 1`): under SCHED_FIFO the emulator's own threads do not share its CPU, so
    while one thread evaluates a lookup's formula over a large table (hundreds of ms), a
    thread that has a new request to read cannot run at all, and that request's arrival
    is read that much late (measured: up to 330 ms, and lockouts Airtable would not have
    given). At nice -20 the threads share the CPU in slices of a few ms and still run
    before any other process there."""

    emulator_cpus: tuple[int, ...] = ()
    other_cpus: tuple[int, ...] = ()
    #: "nice" (-20), "fifo" (SCHED_FIFO 1) or "normal"
    priority: str = "normal"

    @property
    def realtime(self) -> bool:
        return self.priority == "fifo"

    def prefix(self) -> list[str]:
        """What the emulator's command line starts with."""
        out: list[str] = []
        if self.emulator_cpus:
            out += ["taskset", "-c", ",".join(map(str, self.emulator_cpus))]
        if self.priority == "fifo":
            out += ["chrt", "--fifo", str(REALTIME_PRIORITY)]
        elif self.priority == "nice":
            out += ["nice", "-n", str(NICE)]
        return out

    def pin_self(self) -> None:
        """Move this process (and so every child it starts) to the other CPUs."""
        if self.other_cpus:
            os.sched_setaffinity(0, set(self.other_cpus))

    def describe(self) -> dict[str, Any]:
        def cpus(values: tuple[int, ...]) -> str:
            return ",".join(map(str, values)) if values else "any"

        emulator = f"CPU {cpus(self.emulator_cpus)}"
        if self.priority == "fifo":
            emulator += f", SCHED_FIFO {REALTIME_PRIORITY}"
        elif self.priority == "nice":
            emulator += f", nice {NICE}"
        return {
            "emulator": emulator,
            "moto, poller, feeder, baseline": f"CPU {cpus(self.other_cpus)}",
        }


#: The lowest real-time priority: above every normal process, below the kernel's own threads.
REALTIME_PRIORITY = 1
#: The highest priority of the normal scheduler.
NICE = -20


def plan_placement(emulator_cpu: int | None, priority: str) -> Placement:
    """`emulator_cpu` None picks the last CPU this process may use; -1 pins nothing.
    `priority` is "auto" (nice -20 if allowed here, else normal), "nice", "fifo" or
    "normal"."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if emulator_cpu == -1 or len(allowed) < 2 or not shutil.which("taskset"):
        pinned: tuple[int, ...] = ()
        others: tuple[int, ...] = ()
    else:
        chosen = allowed[-1] if emulator_cpu is None else emulator_cpu
        if chosen not in allowed:
            raise BenchError(f"--emulator-cpu {chosen}: this process may use CPUs {allowed}")
        pinned, others = (chosen,), tuple(c for c in allowed if c != chosen)
    if priority == "auto":
        priority = "nice" if _nice_allowed() else "normal"
    return Placement(pinned, others, priority)


def _nice_allowed() -> bool:
    """Whether this process may raise a child's priority (root, or CAP_SYS_NICE)."""
    if not shutil.which("nice"):
        return False
    done = subprocess.run(
        ["nice", "-n", str(NICE), sys.executable, "-c", "import os; print(os.nice(0))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == str(NICE)


@dataclass(frozen=True)
class EmulatorOptions:
    """How the Airtable emulator is started (its CLI flags, and where it runs)."""

    base: str
    token: str
    latency: tuple[float, float]
    seed: int
    lockout_seconds: float = 30.0
    rate_limit_rps: int = 5
    #: Airtable counts each request at its arrival plus a seeded 0..J ms (network jitter)
    arrival_jitter_ms: float = 0.0
    placement: Placement = Placement()
    #: record when each request reached the limiter (`bench.emulator`), in this file
    trace_arrivals: Path | None = None

    def argv(self) -> list[str]:
        low, high = self.latency
        jitter = ["--arrival-jitter-ms", f"{self.arrival_jitter_ms:g}"]
        module = ["bench.emulator"]  # the emulator at a 1 ms switch interval
        if self.trace_arrivals:
            module += ["--trace-arrivals", str(self.trace_arrivals)]
        return [
            *self.placement.prefix(),
            PYTHON,
            "-m",
            *module,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--token",
            self.token,
            "--base",
            self.base,
            "--latency",
            f"{low}:{high}",
            "--lockout-seconds",
            str(self.lockout_seconds),
            "--rate-limit-rps",
            str(self.rate_limit_rps),
            "--seed",
            str(self.seed),
            *(jitter if self.arrival_jitter_ms else []),
        ]


@contextlib.contextmanager
def airtable_emulator(options: EmulatorOptions, log_path: Path) -> Iterator[Service]:
    """The emulator through its CLI (`--port 0`), at the URL of its "listening on" line."""
    with started(options.argv(), log_path) as process:

        def ready() -> str | None:
            match = _LISTENING.search(log_path.read_text(encoding="utf-8", errors="replace"))
            return match.group(1) if match else None

        yield Service(_wait_for("airtable_emulator", ready, process, log_path), process.pid)


def get_json(url: str, timeout: float = 60.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def put_json(url: str, payload: Any, method: str = "PUT", timeout: float = 60.0) -> Any:
    """Send `payload` as JSON (a control endpoint of the emulator); return its JSON answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def run_json(
    argv: Sequence[str],
    log_path: Path,
    *,
    key: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """Run a child to completion; return the last JSON object it printed that has `key`.

    Its whole output is kept in `log_path` (the poller's JSON logs go there too)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    found: list[dict[str, Any]] = []
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(env),
            start_new_session=True,
            text=True,
        )
        STARTED_PIDS.append(process.pid)

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                text = line.strip()
                if text.startswith("{") and f'"{key}"' in text:
                    with contextlib.suppress(ValueError):
                        found.append(json.loads(text))

        reader = threading.Thread(target=pump, name="bench-log-pump", daemon=True)
        reader.start()
        try:
            process.wait(timeout=timeout)
            reader.join(timeout=10)
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"{' '.join(argv[1:3])} ran over {timeout:.0f} s; see {log_path}"
            ) from None
        finally:
            stop(process)
    if not found:
        raise BenchError(
            f"{' '.join(argv[1:3])} printed no report (exit {process.returncode}); see {log_path}"
        )
    return found[-1]
