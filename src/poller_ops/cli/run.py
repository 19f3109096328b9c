"""`poller run`: one local invocation of the real handler, with a progress display.

The progress line shows the queue's counts (read from SQS every interval) and what the run
is doing that the counts cannot show: a wait for Airtable's lockout, with its countdown, and
writes given up after their retries. The run says those in its log records (`poller.drain`);
`RunEvents` is a logging handler that reads them, so the core needs no hook for the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poller_ops import admin

from .common import UsageError, aws_error_text, client, emit, is_aws_error, queue_url, rows

#: The core's log messages (their %-templates) that the progress line shows.
LOCKOUT_WAIT = "Airtable rate limit hit: waiting out the"
LOCKOUT_GIVEN_UP = "Airtable rate limit hit and no time left"
WRITE_GIVEN_UP = "write failed after"
#: One line per retry of a write (drain.writer).
WRITE_RETRY = "retrying a write"


def add_parser(command: Any) -> None:
    run = command(
        "run",
        "one local invocation of the handler, with progress",
        "Invoke the real Lambda handler once in this process, with the current environment\n"
        "(the poller's variables), a scheduled event and a Lambda-like context. Progress\n"
        "(queue counts, Airtable lockouts with their countdown, retries) and the handler's\n"
        "logs and metrics go to stderr; the run's summary goes to stdout.",
    )
    run.add_argument("--event", type=Path, help="event JSON file (default: a scheduled event)")
    run.add_argument(
        "--timeout", type=float, default=300, help="Lambda timeout to emulate, s (default 300)"
    )
    run.add_argument("--progress-interval", type=float, default=2.0, help="seconds (default 2)")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--log-level", help="POWERTOOLS_LOG_LEVEL for this run, e.g. DEBUG")
    run.set_defaults(handler=cmd_run)


class LocalContext:
    """What the Lambda runtime passes as `context`, for one local invocation."""

    def __init__(self, timeout_s: float) -> None:
        self.function_name = "sqs-airtable-poller-cli"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:local:000000000000:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._ends = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._ends - time.monotonic()) * 1000), 0)


# -- what the run is doing -----------------------------------------------------------------


@dataclass
class RunState:
    """What the progress line knows: the queue's last counts, and the run's events."""

    waiting: int | None = None
    in_flight: int | None = None
    done: int = 0
    dead: int | None = None
    lockouts: int = 0
    lockout_seconds: float = 0.0
    lockout_ends: float = 0.0  # time.monotonic()
    retries: int = 0
    given_up: int = 0


def progress_line(state: RunState, elapsed: float, now: float) -> str:
    """One line: `[  12.0s] 3 waiting, 20 in flight, ~40 done, 1 in the dead-letter queue;
    waiting out Airtable's 30 s lockout: 12 s left; 1 lockout(s), 2 retries`."""
    parts = []
    if state.waiting is not None:
        parts.append(
            f"{state.waiting} waiting, {state.in_flight} in flight, ~{state.done} done"
            + (f", {state.dead} in the dead-letter queue" if state.dead is not None else "")
        )
    left = state.lockout_ends - now
    if left > 0:
        parts.append(
            f"waiting out Airtable's {state.lockout_seconds:g} s lockout: {left:.0f} s left"
        )
    tally = []
    if state.lockouts:
        tally.append(f"{state.lockouts} lockout(s)")
    if state.retries:
        tally.append(f"{state.retries} retries")
    if state.given_up:
        tally.append(f"{state.given_up} write(s) given up after retries")
    if tally:
        parts.append(", ".join(tally))
    return f"[{elapsed:6.1f}s] " + ("; ".join(parts) or "starting")


class RunEvents(logging.Handler):
    """Reads the core's log records into `state`; calls `changed` after a lockout starts,
    so that the countdown is shown at once, whatever the progress interval."""

    def __init__(
        self, state: RunState, changed: Callable[[], None], clock: Callable[[], float]
    ) -> None:
        super().__init__(logging.DEBUG)
        self.state, self.changed, self.clock = state, changed, clock

    def emit(self, record: logging.LogRecord) -> None:
        template = str(record.msg)
        state = self.state
        if template.startswith(LOCKOUT_WAIT) or template.startswith(LOCKOUT_GIVEN_UP):
            seconds = float(record.args[0]) if record.args else 0.0  # type: ignore[index]
            state.lockouts += 1
            state.lockout_seconds = seconds
            if template.startswith(LOCKOUT_WAIT):
                state.lockout_ends = self.clock() + seconds
            self.changed()
        elif template.startswith(WRITE_RETRY):
            state.retries += 1
        elif template.startswith(WRITE_GIVEN_UP):
            state.given_up += 1


class Progress:
    """Prints the progress line to stderr every `interval` s, and at once when a lockout
    starts, while a run drains the queue."""

    def __init__(self, url: str, dlq_url: str | None, interval: float) -> None:
        self.url, self.dlq_url, self.interval = url, dlq_url, interval
        self.state = RunState()
        self.events = RunEvents(self.state, self.show, time.monotonic)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="poller-progress")
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.start = 0

    def __enter__(self) -> Progress:
        self.sqs = client("sqs", self.url)
        with contextlib.suppress(Exception):
            source = admin.status(self.sqs, self.url)
            self.start = source.visible + source.in_flight
        logging.getLogger("poller.drain").addHandler(self.events)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("poller.drain").removeHandler(self.events)
        self.stop.set()
        self.thread.join()
        if self.tty:
            print(file=sys.stderr)

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                source = admin.status(self.sqs, self.url)
                dead = admin.status(self.sqs, self.dlq_url).visible if self.dlq_url else None
            except Exception:  # progress is best effort; the run reports its own errors
                continue
            left = source.visible + source.in_flight
            self.start = max(self.start, left)
            self.state.waiting, self.state.in_flight = source.visible, source.in_flight
            self.state.done, self.state.dead = self.start - left, dead
            self.show()

    def show(self) -> None:
        now = time.monotonic()
        line = progress_line(self.state, now - self.started, now)
        with self.lock:
            if self.tty:
                width = shutil.get_terminal_size().columns - 1
                print(f"\r{line[:width]:<{width}}", end="", file=sys.stderr, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)


class ExpectedErrorsInOneLine(logging.Filter):
    """A log record whose exception the operator can act on (an AWS or connection error, a
    `PollerError`) carries it as one `error` line instead of a traceback; a bug's exception
    keeps its traceback. For the CLI's stderr only: the deployed function logs them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and expected(exc):
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.error = (
                aws_error_text(exc) if is_aws_error(exc) else f"{type(exc).__name__}: {exc}"
            )
        return True


def expected(exc: BaseException) -> bool:
    from requests import RequestException

    from poller.errors import PollerError

    return is_aws_error(exc) or isinstance(exc, PollerError | RequestException | OSError)


@contextlib.contextmanager
def handler_output_to_stderr(handler: Any, log_level: str | None = None) -> Iterator[None]:
    """Logs and EMF metrics to stderr, so stdout holds only the summary (for --json); expected
    errors in one line, unless the log level is DEBUG.

    The stream is swapped by assignment, not `setStream`, which would flush the old one
    (possibly closed: Powertools binds sys.stdout when the handler module is imported)."""
    stream_handler = handler.logger.registered_handler
    saved_stream = getattr(stream_handler, "stream", None)
    saved_level = handler.logger.log_level
    if saved_stream is not None:
        stream_handler.stream = sys.stderr
    if log_level:
        handler.logger.setLevel(log_level.upper())
    one_line = ExpectedErrorsInOneLine()
    if handler.logger.log_level > logging.DEBUG:
        stream_handler.addFilter(one_line)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        stream_handler.removeFilter(one_line)
        if saved_stream is not None:
            stream_handler.stream = saved_stream
        handler.logger.setLevel(saved_level)


def cmd_run(args: argparse.Namespace) -> int:
    from poller.errors import PollerError
    from poller_ops.samples import SCHEDULED_EVENT

    event = SCHEDULED_EVENT
    if args.event:
        try:
            event = json.loads(args.event.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise UsageError(f"--event {args.event}: {exc}") from None
    if args.log_level:
        os.environ["POWERTOOLS_LOG_LEVEL"] = args.log_level.upper()
    url = queue_url()
    from poller import handler

    status, summary, error = 0, None, None
    progress: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if not args.no_progress:
        progress = Progress(url, os.environ.get("DEAD_LETTER_QUEUE_URL"), args.progress_interval)
    try:
        with handler_output_to_stderr(handler, args.log_level), progress, warnings.catch_warnings():
            # A run that stops before its first metric (a bad config) makes Powertools warn
            # that there is nothing to publish: true, and not news to the operator.
            warnings.filterwarnings("ignore", "No application metrics to publish")
            summary = handler.lambda_handler(event, LocalContext(args.timeout))
    except PollerError as exc:  # config, schema, secret, a run stopped on an error: all named
        status, error = 1, str(exc)
        summary = getattr(exc, "summary", None)

    def human() -> str:
        lines = [] if error is None else [f"the run failed: {error}"]
        if summary:
            lines.append("run summary")
            lines += rows([(k, v) for k, v in summary.items() if v is not None])
        return "\n".join(lines)

    emit(args, {"ok": status == 0, "error": error, "summary": summary}, human)
    return status
