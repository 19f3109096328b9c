"""`poller run`: one local invocation of the real handler, with a progress display.

The progress shows the queue's counts (read from SQS every interval, through the function's
own adapter) and what the counts cannot show: a wait for Airtable's lockout, with its
countdown, read from the pacers of the function's container (`poller.handler.runtime`,
the same object the handler then uses), and the run's retries when the container exposes
the summary it is filling. Nothing here reads the wording of a log message.

On a terminal it is a Rich progress bar fitted to the terminal's width, and the summary a
table with what each key means; without one, plain lines. The function's own JSON log
lines go to stderr only with `--verbose`; metrics are off (POWERTOOLS_METRICS_DISABLED).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from poller_ops import report

from .common import UsageError, aws_error_text, client, is_aws_error, queue_url

#: How often the countdown is redrawn; SQS is read every --progress-interval.
TICK_SECONDS = 0.25


def add_parser(command: Any) -> None:
    run = command(
        "run",
        "one local invocation of the handler, with progress",
        "Invoke the real Lambda handler once in this process, with the current environment\n"
        "(the poller's variables), a scheduled event and a Lambda-like context. Progress\n"
        "(queue counts, Airtable lockouts with their countdown, retries) goes to stderr; the\n"
        "run's summary goes to stdout: a table on a terminal, plain lines otherwise, one JSON\n"
        "document with --json. The function's JSON log lines go to stderr with --verbose.",
    )
    run.epilog = "the summary's keys:\n" + report.legend_text()
    run.add_argument("--event", type=Path, help="event JSON file (default: a scheduled event)")
    run.add_argument(
        "--timeout", type=float, default=300, help="Lambda timeout to emulate, s (default 300)"
    )
    run.add_argument(
        "--progress-interval", type=float, default=2.0, help="seconds between queue reads (2)"
    )
    run.add_argument("--no-progress", action="store_true")
    run.add_argument(
        "--verbose",
        action="store_true",
        help="also write the function's JSON log lines to stderr",
    )
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
    """What the progress knows: the queue's last counts, and the container's pacers."""

    total: int = 0  # messages there were to drain (the most ever seen waiting or in flight)
    waiting: int | None = None
    in_flight: int | None = None
    dead: int | None = None
    dead_at_start: int | None = None
    lockouts: int = 0
    lockout_left: float = 0.0
    retries: int | None = None

    @property
    def done(self) -> int:
        if self.waiting is None or self.in_flight is None:
            return 0
        return max(self.total - self.waiting - self.in_flight, 0)

    def counted(self, waiting: int, in_flight: int) -> None:
        self.waiting, self.in_flight = waiting, in_flight
        self.total = max(self.total, waiting + in_flight)

    def status(self) -> str:
        """What the counts cannot show: `lockout: 12 s left (Airtable 429); 1 lockout(s),
        2 retries`."""
        parts = []
        if self.lockout_left > 0:
            parts.append(f"lockout: {self.lockout_left:.0f} s left (Airtable 429)")
        tally = []
        if self.lockouts:
            tally.append(f"{self.lockouts} lockout(s)")
        if self.retries:
            tally.append(f"{self.retries} retries")
        if tally:
            parts.append(", ".join(tally))
        return "; ".join(parts)


def progress_line(state: RunState, elapsed: float) -> str:
    """One plain line: `[  12.0s] 3 waiting, 20 in flight, ~40 done, 1 dead-lettered;
    lockout: 12 s left (Airtable 429); 1 lockout(s), 2 retries`."""
    parts = []
    if state.waiting is not None:
        dead = ""
        if state.dead is not None:
            dead = f", {state.dead - (state.dead_at_start or 0)} dead-lettered"
        parts.append(
            f"{state.waiting} waiting, {state.in_flight} in flight, ~{state.done} done{dead}"
        )
    if state.status():
        parts.append(state.status())
    return f"[{elapsed:6.1f}s] " + ("; ".join(parts) or "starting")


@dataclass
class Watch:
    """Where the progress reads from: the queue's counts (and the DLQ's), the container's
    pacers, and the summary of the run in progress when the container exposes one."""

    counts: Callable[[], tuple[int, int]]
    dead: Callable[[], int] | None = None
    pacers: Mapping[str, Any] = field(default_factory=dict)
    live_summary: Callable[[], Any] = lambda: None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lockouts_before = sum(p.lockouts for p in self.pacers.values())

    def pace(self, state: RunState) -> None:
        """The lockout countdown and count, from the pacers (no request is made)."""
        now = self.clock()
        state.lockouts = sum(p.lockouts for p in self.pacers.values()) - self._lockouts_before
        state.lockout_left = max([p.paused_until - now for p in self.pacers.values()] + [0.0])
        summary = self.live_summary()
        if summary is not None:
            state.retries = getattr(summary, "retries", None)

    def queue(self, state: RunState) -> None:
        waiting, in_flight = self.counts()
        state.counted(waiting, in_flight)
        if self.dead is not None:
            state.dead = self.dead()
            if state.dead_at_start is None:
                state.dead_at_start = state.dead


def watch_container(container: Any) -> Watch:
    """A `Watch` on a `poller.runtime.Runtime`: its queue adapter and its pacers."""
    from poller.sqs import SqsQueue

    queue = container.queue

    def counts() -> tuple[int, int]:
        facts = queue.facts()
        return facts.visible + facts.delayed, facts.in_flight

    dead = None
    if queue.dead_letter_queue_url:
        dlq = SqsQueue(queue.client, queue.dead_letter_queue_url)
        dead = lambda: dlq.facts().visible  # noqa: E731
    return Watch(
        counts,
        dead,
        dict(container.pacers),
        lambda: getattr(container, "live_summary", None),
    )


def watch_queue(url: str, dlq_url: str | None) -> Watch:
    """A `Watch` on the queue alone (no container: its configuration did not build)."""
    from poller.sqs import SqsQueue

    sqs = client("sqs", url)
    queue = SqsQueue(sqs, url)

    def counts() -> tuple[int, int]:
        facts = queue.facts()
        return facts.visible + facts.delayed, facts.in_flight

    dead = None
    if dlq_url:
        dlq = SqsQueue(sqs, dlq_url)
        dead = lambda: dlq.facts().visible  # noqa: E731
    return Watch(counts, dead)


class Progress:
    """Shows the run's progress on `stream` while it drains: a Rich bar (fitted to the
    terminal) redrawn every tick, or a plain line every `interval` and at once when a
    lockout begins. SQS is read every `interval`; the pacers every tick."""

    def __init__(
        self,
        watch: Watch,
        interval: float,
        stream: IO[str] | None = None,
        terminal: bool | None = None,
    ) -> None:
        self.watch, self.interval = watch, max(interval, TICK_SECONDS)
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.state = RunState()
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="poller-progress")
        self.bar: Any = None

    def __enter__(self) -> Progress:
        with contextlib.suppress(Exception):  # progress is best effort
            self.watch.queue(self.state)
        if self.terminal:
            self.bar = rich_bar(self.stream)
            self.task = self.bar.add_task("draining", total=max(self.state.total, 1), text="")
            self.bar.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        with contextlib.suppress(Exception):
            self.watch.queue(self.state)
        self.watch.pace(self.state)
        self.show()
        if self.bar is not None:
            self.bar.stop()

    def _loop(self) -> None:
        next_read = time.monotonic() + self.interval
        lockouts = 0
        while not self.stop.wait(TICK_SECONDS):
            self.watch.pace(self.state)
            read = time.monotonic() >= next_read
            if read:
                next_read = time.monotonic() + self.interval
                with contextlib.suppress(Exception):  # the run reports its own errors
                    self.watch.queue(self.state)
            began = self.state.lockouts > lockouts
            lockouts = self.state.lockouts
            if self.terminal or read or began:
                self.show()

    def show(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.bar is None:
            print(progress_line(self.state, elapsed), file=self.stream, flush=True)
            return
        state = self.state
        self.bar.update(
            self.task, total=max(state.total, 1), completed=state.done, text=bar_text(state)
        )


def bar_text(state: RunState) -> str:
    """The text beside the bar: the lockout first (what a wait is), then the queue's counts."""
    queue = (
        f"{state.waiting} waiting, {state.in_flight} in flight"
        if state.waiting is not None
        else "starting"
    )
    status = state.status()
    return f"[yellow]{status}[/] · {queue}" if status else queue


def rich_bar(stream: IO[str], width: int | None = None) -> Any:
    """A Rich progress display on `stream`, as wide as the terminal (or `width`): the bar,
    done of total, elapsed time, and `bar_text` (the lockout countdown, then the queue's
    counts), cut with an ellipsis when the terminal is narrow."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Column

    console = Console(file=stream, force_terminal=True, highlight=False, width=width)
    return Progress(
        SpinnerColumn(table_column=Column(no_wrap=True, min_width=1)),
        BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=3, max_width=30)),
        MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=5)),
        TimeElapsedColumn(table_column=Column(no_wrap=True, min_width=7)),
        TextColumn(
            "{task.fields[text]}",
            table_column=Column(no_wrap=True, overflow="ellipsis", ratio=4, min_width=4),
        ),
        console=console,
        transient=False,
        auto_refresh=True,
        refresh_per_second=4,
        expand=True,
        redirect_stdout=False,  # what the handler prints is routed by handler_output_to_stderr
        redirect_stderr=True,  # log lines (--verbose) are written above the bar
    )


# -- the handler's output --------------------------------------------------------------------


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


class CurrentStderr(io.TextIOBase):
    """Writes to whatever `sys.stderr` is at the time of the write: while a progress bar
    is shown, that is Rich's proxy, which prints the line above the bar."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


class Tally(logging.Filter):
    """Counts the records the function logs, by level; lets them through only when
    `verbose` (else they are dropped before they are formatted)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose
        self.levels: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        self.levels[record.levelname] = self.levels.get(record.levelname, 0) + 1
        return self.verbose

    def text(self) -> str:
        """`3 warning(s), 1 error(s)` of what was logged at WARNING or above, or ""."""
        counts = [
            f"{self.levels[level]} {level.lower()}(s)"
            for level in ("WARNING", "ERROR", "CRITICAL")
            if self.levels.get(level)
        ]
        return ", ".join(counts)


def expected(exc: BaseException) -> bool:
    from requests import RequestException

    from poller.errors import PollerError

    return is_aws_error(exc) or isinstance(exc, PollerError | RequestException | OSError)


@contextlib.contextmanager
def handler_output_to_stderr(
    handler: Any, log_level: str | None = None, *, verbose: bool = False
) -> Iterator[Tally]:
    """While the handler runs: its JSON log lines to stderr only when `verbose` (expected
    errors in one line unless the level is DEBUG), else only counted (the `Tally` it
    yields); anything it prints (EMF, when metrics are on) to stderr when `verbose`, else
    nowhere; metrics off unless POWERTOOLS_METRICS_DISABLED says otherwise. stdout is left
    to the caller's summary.

    The stream is swapped by assignment, not `setStream`, which would flush the old one
    (possibly closed: Powertools binds sys.stdout when the handler module is imported)."""
    stream_handler = handler.logger.registered_handler
    saved_stream = getattr(stream_handler, "stream", None)
    saved_level = handler.logger.log_level
    metrics = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    if metrics is None:
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    if saved_stream is not None:
        stream_handler.stream = CurrentStderr()
    if log_level:
        handler.logger.setLevel(log_level.upper())
    tally, one_line = Tally(verbose), ExpectedErrorsInOneLine()
    stream_handler.addFilter(tally)
    if handler.logger.log_level > logging.DEBUG:
        stream_handler.addFilter(one_line)
    printed: IO[str] = CurrentStderr() if verbose else io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield tally
    finally:
        stream_handler.removeFilter(one_line)
        stream_handler.removeFilter(tally)
        if saved_stream is not None:
            stream_handler.stream = saved_stream
        handler.logger.setLevel(saved_level)
        if metrics is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)


@dataclass
class Invocation:
    """One local invocation: the summary (also of a failed run, up to the failure), the
    error that stopped it, and what was logged meanwhile."""

    summary: dict[str, Any] | None
    error: str | None
    logged: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def container_of(handler: Any) -> Any | None:
    """The container (`poller.runtime.Runtime`) the handler will use for this environment,
    built now if it is not yet (the handler's own cache keeps it), or None when the
    configuration does not build one: the handler then reports why itself."""
    from poller.config import Config

    try:
        config = Config.from_env(os.environ)
        with _silenced("poller"):  # the handler's run logs what matters
            return handler.runtime(config)
    except Exception:
        return None


def invoke(
    handler: Any,
    event: Mapping[str, Any],
    context: Any,
    *,
    verbose: bool = False,
    progress: bool = True,
    interval: float = 2.0,
    log_level: str | None = None,
    stream: IO[str] | None = None,
) -> Invocation:
    """Call `handler.lambda_handler(event, context)` once, with its output as
    `handler_output_to_stderr` routes it and, unless `progress` is False, the progress on
    `stream` (stderr). What `poller run` and `make run` do."""
    from poller.errors import PollerError

    summary, error = None, None
    with handler_output_to_stderr(handler, log_level, verbose=verbose) as tally:
        shown: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if progress:
            container = container_of(handler)
            watch = (
                watch_container(container)
                if container is not None
                else watch_queue(queue_url(), os.environ.get("DEAD_LETTER_QUEUE_URL"))
            )
            shown = Progress(watch, interval, stream)
        with shown, warnings.catch_warnings():
            # A run that stops before its first metric makes Powertools warn that there is
            # nothing to publish: true, and not news to the operator.
            warnings.filterwarnings("ignore", "No application metrics to publish")
            try:
                summary = handler.lambda_handler(dict(event), context)
            except PollerError as exc:  # config, secret, a run stopped on an error: named
                error = str(exc)
                summary = getattr(exc, "summary", None)
    return Invocation(summary, error, tally.text())


def print_outcome(
    outcome: Invocation,
    *,
    json_output: bool = False,
    verbose: bool = False,
    stream: IO[str] | None = None,
) -> None:
    """The run's result on `stream` (stdout): JSON `{"ok", "error", "summary"}`, a table on
    a terminal, or plain lines; and on stderr how much was logged, when not shown."""
    stream = stream or sys.stdout
    if json_output:
        report.print_json(outcome.ok, outcome.error, outcome.summary, stream)
    else:
        report.print_summary(outcome.summary, error=outcome.error, stream=stream)
    if outcome.logged and not verbose:
        print(
            f"poller: the function logged {outcome.logged} (--verbose shows its log lines)",
            file=sys.stderr,
        )


@contextlib.contextmanager
def _silenced(name: str) -> Iterator[None]:
    """Records of logger `name` and its children dropped for the block."""
    logger = logging.getLogger(name)
    saved = logger.disabled
    logger.disabled = True
    children = [
        logging.getLogger(n)
        for n in list(logging.root.manager.loggerDict)
        if n.startswith(name + ".")
    ]
    states = [(c, c.disabled) for c in children]
    for child in children:
        child.disabled = True
    try:
        yield
    finally:
        logger.disabled = saved
        for child, state in states:
            child.disabled = state


def cmd_run(args: argparse.Namespace) -> int:
    from poller_ops.samples import SCHEDULED_EVENT

    event: Any = SCHEDULED_EVENT
    if args.event:
        try:
            event = json.loads(args.event.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise UsageError(f"--event {args.event}: {exc}") from None
    if args.log_level:
        os.environ["POWERTOOLS_LOG_LEVEL"] = args.log_level.upper()
    queue_url()  # no queue: a usage error before anything runs
    from poller import handler

    outcome = invoke(
        handler,
        event,
        LocalContext(args.timeout),
        verbose=args.verbose,
        progress=not args.no_progress,
        interval=args.progress_interval,
        log_level=args.log_level,
    )
    print_outcome(outcome, json_output=args.json, verbose=args.verbose)
    return 0 if outcome.ok else 1
