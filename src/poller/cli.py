"""`poller`: the operator's toolbox, against real AWS (default credentials) or the local stack.

  status        what is waiting, in flight and dead-lettered, and why (one command)
  peek-dlq      the dead-lettered messages with their reasons; nothing is consumed
  redrive       move dead letters back to the source queue
  send          send messages from a JSON/JSONL file, or sample events
  run           one local invocation of the real handler, with a progress display
  check-config  validate the environment and mapping, check the table, preview a record

Every command reads the poller's own variables (QUEUE_URL, DEAD_LETTER_QUEUE_URL, FIELD_MAP,
...; see README.md, "Configuration"), optionally from --env-file, and boto3's
(AWS_ENDPOINT_URL_SQS, AWS_REGION, credentials). Output is for humans; --json is for scripts.
Exit status: 0 fine, 1 the command found a problem, 2 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import admin

PROG = "poller"
_REGION_IN_URL = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com")
_DEFAULT_LOCAL_REGION = "us-east-1"


class UsageError(Exception):
    """Bad or missing input: exit status 2, with a hint."""


# -- arguments ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument(
        "--env-file",
        type=Path,
        help="JSON object or KEY=VALUE lines to add to the environment first "
        "(e.g. what `python -m devstack serve` prints)",
    )
    where.add_argument("--queue-url", help="the source queue (default: $QUEUE_URL)")
    where.add_argument(
        "--dlq-url",
        help="the dead-letter queue (default: $DEAD_LETTER_QUEUE_URL, else the source's "
        "RedrivePolicy)",
    )
    where.add_argument(
        "--endpoint-url", help="SQS endpoint, e.g. the local stack (default: $AWS_ENDPOINT_URL_SQS)"
    )
    where.add_argument("--region", help="AWS region (default: boto3's, else from the queue URL)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=help_,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    status = command(
        "status",
        "queue depth, in flight, delayed, oldest age, DLQ depth and reasons",
        "What is stuck and why: the source queue's counts and the age of its oldest message\n"
        "(CloudWatch ApproximateAgeOfOldestMessage), and the dead-letter queue's depth with\n"
        "its reasons grouped (read without consuming).",
    )
    status.add_argument(
        "--cloudwatch-endpoint-url",
        help="CloudWatch endpoint for the age (default: $AWS_ENDPOINT_URL_CLOUDWATCH, else "
        "the SQS endpoint when one is set, else AWS)",
    )
    status.add_argument(
        "--reasons-limit", type=int, default=100, help="dead letters to read for reasons"
    )
    status.add_argument("--no-reasons", action="store_true", help="do not read the DLQ")

    peek = command(
        "peek-dlq",
        "list dead-lettered messages with their reasons (not consumed)",
        "Read dead-lettered messages and show why each is there. Each message is hidden\n"
        "while it is read and made visible again at once: nothing is consumed (its receive\n"
        "count in the DLQ goes up by one).",
    )
    peek.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    peek.add_argument("--body", action="store_true", help="also show the message bodies")

    redrive = command(
        "redrive",
        "move dead letters back to the source queue",
        "Move the DLQ's messages back to the source queue with StartMessageMoveTask when\n"
        "SQS offers it (asynchronous; watch with `poller status`), else by a copy loop that\n"
        "deletes each message from the DLQ only after its send was confirmed.",
    )
    redrive.add_argument(
        "--method",
        choices=("auto", "move-task", "copy"),
        default="auto",
        help="auto: move task, falling back to copy",
    )
    redrive.add_argument("--limit", type=int, help="move at most this many (uses the copy loop)")
    redrive.add_argument("--rate", type=int, help="move task: messages per second (max 500)")

    send = command(
        "send",
        "send messages from a JSON/JSONL file, or sample events",
        "Send message bodies to the source queue. FILE is a JSON array (each element one\n"
        "body), a JSON object (one body) or JSONL (one body per line, sent verbatim, so bad\n"
        "bodies can be sent too); '-' reads stdin. --sample N sends N sample\n"
        "DonationCreatedIntegrationEvent bodies.",
    )
    send.add_argument("file", nargs="?", help="JSON or JSONL file, or - for stdin")
    send.add_argument("--sample", type=int, metavar="N", help="send N sample donation events")
    send.add_argument("--group-id", help="FIFO queues: the MessageGroupId (default 'default')")

    run = command(
        "run",
        "one local invocation of the handler, with progress",
        "Invoke the real Lambda handler once in this process, with the current environment\n"
        "(the poller's variables), a scheduled event and a Lambda-like context. Progress\n"
        "(queue counts) goes to stderr while it drains; logs and metrics go to stderr; the\n"
        "run's summary goes to stdout.",
    )
    run.add_argument("--event", type=Path, help="event JSON file (default: a scheduled event)")
    run.add_argument(
        "--timeout", type=float, default=300, help="Lambda timeout to emulate, s (default 300)"
    )
    run.add_argument("--progress-interval", type=float, default=2.0, help="seconds (default 2)")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--log-level", help="POWERTOOLS_LOG_LEVEL for this run, e.g. DEBUG")

    check = command(
        "check-config",
        "validate env and mapping, check the table's schema, preview a record",
        "Validate the environment exactly as the Lambda does, check the Airtable table\n"
        "against FIELD_MAP and MERGE_ON (needs schema.bases:read), and print what would be\n"
        "written for a sample message (by default, one built from the mapping).",
    )
    sample = check.add_mutually_exclusive_group()
    sample.add_argument("--message", type=Path, help="a message body file (JSON)")
    sample.add_argument("--body", help="a message body, inline JSON")
    check.add_argument("--no-schema", action="store_true", help="skip the schema check")
    return parser


# -- entry point ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "status": cmd_status,
        "peek-dlq": cmd_peek_dlq,
        "redrive": cmd_redrive,
        "send": cmd_send,
        "run": cmd_run,
        "check-config": cmd_check_config,
    }
    try:
        with scoped_environ(_environment(args)):
            return commands[args.command](args)
    except BrokenPipeError:  # `poller ... | head`: the reader has gone, which is fine
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UsageError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not _is_aws_error(exc):
            raise
        print(f"{PROG} {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _is_aws_error(exc: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError)


@contextlib.contextmanager
def scoped_environ(updates: Mapping[str, str]) -> Iterator[None]:
    """Apply `updates` to os.environ for one command, then restore it (the handler and
    boto3 read the environment; tests call `main` in-process)."""
    saved = dict(os.environ)
    os.environ.update(updates)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _environment(args: argparse.Namespace) -> dict[str, str]:
    env: dict[str, str] = {}
    if args.env_file:
        env.update(read_env_file(args.env_file))
    flags = {
        "QUEUE_URL": args.queue_url,
        "DEAD_LETTER_QUEUE_URL": args.dlq_url,
        "AWS_ENDPOINT_URL_SQS": args.endpoint_url,
        "AWS_REGION": args.region,
        "AWS_DEFAULT_REGION": args.region,
    }
    env.update({k: v for k, v in flags.items() if v})
    return env


def read_env_file(path: Path) -> dict[str, str]:
    """A JSON object, or KEY=VALUE lines (# comments, optional quotes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--env-file {path}: {exc.strerror}") from None
    with contextlib.suppress(json.JSONDecodeError):
        data = json.loads(text)
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items() if v is not None}
    env = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise UsageError(f"--env-file {path}:{number}: expected KEY=VALUE")
        env[key.strip()] = value.strip().strip("'\"")
    return env


# -- AWS clients ------------------------------------------------------------------------


def _region(url: str | None) -> str | None:
    explicit = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if explicit:
        return explicit
    match = _REGION_IN_URL.search(url or "")
    if match:
        return match.group(1)
    return _DEFAULT_LOCAL_REGION if os.environ.get("AWS_ENDPOINT_URL_SQS") else None


def _client(service: str, url: str | None, endpoint: str | None = None) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        service,
        region_name=_region(url),
        endpoint_url=endpoint,
        config=BotoConfig(
            connect_timeout=3, read_timeout=30, retries={"mode": "standard", "max_attempts": 2}
        ),
    )


def _queue_url() -> str:
    url = os.environ.get("QUEUE_URL", "").strip()
    if not url:
        raise UsageError("no queue: pass --queue-url or set QUEUE_URL (or use --env-file)")
    return url


def _dlq_url(sqs: Any, source: admin.QueueStatus | None = None) -> str:
    url = os.environ.get("DEAD_LETTER_QUEUE_URL", "").strip()
    if url:
        return url
    if source is None:
        source = admin.status(sqs, _queue_url())
    if source.dead_letter_queue_url:
        return source.dead_letter_queue_url
    raise UsageError(
        "no dead-letter queue: pass --dlq-url, set DEAD_LETTER_QUEUE_URL, or give the source "
        "queue a RedrivePolicy"
    )


# -- output -----------------------------------------------------------------------------


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else human())


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if minutes or hours or days:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts[:2])


def _rows(rows: Sequence[tuple[str, Any]], indent: str = "  ") -> list[str]:
    width = max(len(label) for label, _ in rows)
    return [f"{indent}{label:<{width}}  {value}" for label, value in rows]


# -- status -----------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    url = _queue_url()
    sqs = _client("sqs", url)
    source = admin.status(sqs, url)
    age, age_note = _oldest_age(args, url)
    dlq_url = os.environ.get("DEAD_LETTER_QUEUE_URL") or source.dead_letter_queue_url
    dlq = admin.status(sqs, dlq_url) if dlq_url else None
    letters: list[admin.Letter] = []
    if dlq is not None and dlq.visible and not args.no_reasons:
        letters = admin.peek(sqs, dlq.url, limit=args.reasons_limit)
    grouped = admin.reasons(letters)
    data = {
        "queue": {**asdict(source), "oldest_age_seconds": age, "oldest_age_note": age_note},
        "dead_letter_queue": None
        if dlq is None
        else {
            "url": dlq.url,
            "messages": dlq.visible,
            "in_flight": dlq.in_flight,
            "reasons_read": len(letters),
            "reasons": [{"count": n, "error_type": t, "reason": r} for n, t, r in grouped],
        },
    }

    def human() -> str:
        rows: list[tuple[str, Any]] = [
            ("queue", url),
            ("  waiting (visible)", source.visible),
            ("  in flight", source.in_flight),
            ("  delayed", source.delayed),
            ("  oldest message", f"{age_text(age)} ({age_note})"),
            ("  maxReceiveCount", source.max_receive_count or "-"),
        ]
        if dlq is None:
            return "\n".join(_rows([*rows, ("dead-letter queue", "none configured")], ""))
        rows += [
            ("dead-letter queue", dlq.url),
            ("  messages", dlq.visible),
            ("  in flight", dlq.in_flight),
        ]
        lines = _rows(rows, "")
        if grouped:
            lines.append(f"  why ({len(letters)} read, nothing consumed):")
            lines += [f"    {n:>4} x {t}: {r}" for n, t, r in grouped]
        elif dlq.visible and args.no_reasons:
            lines.append("  why: not read (--no-reasons); see `poller peek-dlq`")
        return "\n".join(lines)

    emit(args, data, human)
    return 0


def _oldest_age(args: argparse.Namespace, url: str) -> tuple[float | None, str]:
    endpoint = args.cloudwatch_endpoint_url
    if not endpoint and not os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS") or None
    try:
        age = admin.oldest_age_seconds(_client("cloudwatch", url, endpoint), url)
    except Exception as exc:  # the age is a nicety: never fail `status` for it
        return None, f"CloudWatch unavailable: {type(exc).__name__}"
    if age is None:
        return None, "no CloudWatch data in the last 15 minutes"
    return age, "CloudWatch ApproximateAgeOfOldestMessage"


# -- peek-dlq ---------------------------------------------------------------------------


def cmd_peek_dlq(args: argparse.Namespace) -> int:
    sqs = _client("sqs", os.environ.get("QUEUE_URL") or os.environ.get("DEAD_LETTER_QUEUE_URL"))
    url = _dlq_url(sqs)
    letters = admin.peek(sqs, url, limit=args.limit)
    records = []
    for letter in letters:
        record = asdict(letter)
        if not args.body:
            del record["body"]
        records.append(record)

    def human() -> str:
        lines = [f"{len(letters)} dead-lettered message(s) in {url} (nothing consumed)"]
        for letter in letters:
            source = (
                f", source message {letter.source_message_id}" if letter.source_message_id else ""
            )
            lines.append(
                f"- {letter.message_id}  {letter.error_type}  sent {letter.sent_at or '?'}"
                f"{source}, dead-lettered after {letter.receive_count} receive(s)"
            )
            lines.append(f"    reason: {letter.reason}")
            if args.body:
                lines.append(f"    body:   {letter.body}")
        return "\n".join(lines)

    emit(args, {"url": url, "count": len(letters), "messages": records}, human)
    return 0


# -- redrive ----------------------------------------------------------------------------


def cmd_redrive(args: argparse.Namespace) -> int:
    url = _queue_url()
    sqs = _client("sqs", url)
    dlq_url = _dlq_url(sqs)
    result = admin.redrive(sqs, dlq_url, url, method=args.method, limit=args.limit, rate=args.rate)

    def human() -> str:
        if result.method == "move-task":
            return (
                f"started StartMessageMoveTask {result.task_handle}\n"
                f"  from {dlq_url}\n  to   {url}\n"
                "messages move asynchronously; watch with `poller status`"
            )
        lines = [f"moved {result.moved} message(s) from {dlq_url} to {url} (copy)"]
        if result.fallback_because:
            lines.append(f"  why copy: {result.fallback_because}")
        if result.send_failures or result.delete_failures:
            lines.append(
                f"  {result.send_failures} send failure(s) (left in the DLQ), "
                f"{result.delete_failures} delete failure(s) (now in both queues)"
            )
        return "\n".join(lines)

    emit(args, {"from": dlq_url, "to": url, **result.to_dict()}, human)
    return 1 if result.send_failures or result.delete_failures else 0


# -- send -------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.sample is None):
        raise UsageError("give a FILE or --sample N (one of them)")
    if args.sample is not None:
        from .samples import donation_event

        if args.sample < 1:
            raise UsageError("--sample must be at least 1")
        bodies = [json.dumps(donation_event(n)) for n in range(args.sample)]
        origin = f"{args.sample} sample donation event(s)"
    else:
        bodies = read_bodies(args.file)
        origin = args.file
    url = _queue_url()
    ids = admin.send(_client("sqs", url), url, bodies, group_id=args.group_id)
    emit(
        args,
        {"url": url, "sent": len(ids), "message_ids": ids},
        lambda: f"sent {len(ids)} message(s) from {origin} to {url}",
    )
    return 0


def read_bodies(name: str) -> list[str]:
    """Bodies from a JSON array / object file, or JSONL (lines verbatim)."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        bodies = [line for line in text.splitlines() if line.strip()]
    else:
        items = data if isinstance(data, list) else [data]
        bodies = [i if isinstance(i, str) else json.dumps(i) for i in items]
    if not bodies:
        raise UsageError(f"{name}: no messages in it")
    return bodies


# -- run --------------------------------------------------------------------------------


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


class Progress:
    """Prints the queue's counts to stderr every `interval` s while a run drains it."""

    def __init__(self, url: str, dlq_url: str | None, interval: float) -> None:
        self.url, self.dlq_url, self.interval = url, dlq_url, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="poller-progress")
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.start = 0

    def __enter__(self) -> Progress:
        self.sqs = _client("sqs", self.url)
        with contextlib.suppress(Exception):
            source = admin.status(self.sqs, self.url)
            self.start = source.visible + source.in_flight
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
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
            line = (
                f"[{time.monotonic() - self.started:6.1f}s] {source.visible} waiting, "
                f"{source.in_flight} in flight, ~{self.start - left} done"
                + (f", {dead} in the dead-letter queue" if dead is not None else "")
            )
            print(
                f"\r{line:<78}" if self.tty else line,
                end="" if self.tty else "\n",
                file=sys.stderr,
                flush=True,
            )


@contextlib.contextmanager
def _handler_output_to_stderr(handler: Any, log_level: str | None) -> Iterator[None]:
    """Logs and EMF metrics to stderr, so stdout holds only the summary (for --json).

    The stream is swapped by assignment, not `setStream`, which would flush the old one
    (possibly closed: Powertools binds sys.stdout when the handler module is imported)."""
    stream_handler = handler.logger.registered_handler
    saved_stream = getattr(stream_handler, "stream", None)
    saved_level = handler.logger.log_level
    if saved_stream is not None:
        stream_handler.stream = sys.stderr
    if log_level:
        handler.logger.setLevel(log_level.upper())
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved_stream is not None:
            stream_handler.stream = saved_stream
        handler.logger.setLevel(saved_level)


def cmd_run(args: argparse.Namespace) -> int:
    from .errors import ConfigErrors, RunFailedError
    from .samples import SCHEDULED_EVENT

    event = SCHEDULED_EVENT
    if args.event:
        try:
            event = json.loads(args.event.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"--event {args.event}: {exc}") from None
    if args.log_level:
        os.environ["POWERTOOLS_LOG_LEVEL"] = args.log_level.upper()
    url = _queue_url()
    from . import handler

    status, summary, error = 0, None, None
    progress: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if not args.no_progress:
        progress = Progress(url, os.environ.get("DEAD_LETTER_QUEUE_URL"), args.progress_interval)
    try:
        with _handler_output_to_stderr(handler, args.log_level), progress:
            summary = handler.lambda_handler(event, LocalContext(args.timeout))
    except ConfigErrors as exc:
        status, error = 1, str(exc)
    except RunFailedError as exc:
        status, error, summary = 1, str(exc), exc.summary

    def human() -> str:
        lines = [] if error is None else [f"the run failed: {error}"]
        if summary:
            lines.append("run summary")
            lines += _rows([(k, v) for k, v in summary.items()])
        return "\n".join(lines)

    emit(args, {"ok": status == 0, "error": error, "summary": summary}, human)
    return status


# -- check-config -----------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    from .config import Config
    from .errors import ConfigErrors

    try:
        config = Config.from_env(os.environ)
    except ConfigErrors as exc:
        problems = [str(e) for e in exc.errors]
        emit(
            args,
            {"ok": False, "problems": problems},
            lambda: "configuration is invalid:\n" + "\n".join(f"  - {p}" for p in problems),
        )
        return 1
    with _quiet("poller"):  # the outcome is printed below; no stray log line on stderr
        schema, airtable_fields = _schema_check(config, skip=args.no_schema)
    sample = _preview(config, args, airtable_fields)
    ok = not schema.get("problems") and "error" not in sample
    data = {
        "ok": ok,
        "config": _describe(config),
        "mapping": [
            {
                "source": s.source,
                "field": s.field,
                "type": s.type,
                "required": s.required,
                "default": s.default if s.default_json is not None else None,
            }
            for s in config.field_map.specs
        ],
        "schema_check": schema,
        "sample": sample,
    }

    def human() -> str:
        lines = ["configuration is valid"]
        lines += _rows([(k, v) for k, v in data["config"].items()])
        lines.append(f"mapping ({len(config.field_map.specs)} field(s))")
        lines += [f"  {s.describe()}" for s in config.field_map.specs]
        lines.append(f"schema check: {schema['result']}")
        lines += [f"  - {p}" for p in schema.get("problems", [])]
        lines += [f"  note: {n}" for n in schema.get("notes", [])]
        lines.append(f"sample message ({sample['origin']}):")
        lines.append(f"  {json.dumps(sample['body'])}")
        if "error" in sample:
            lines.append(f"would be dead-lettered: {sample['error']}")
        else:
            lines.append("would write:")
            lines += _rows([(f'"{k}"', json.dumps(v)) for k, v in sample["fields"].items()], "  ")
            if sample.get("merge_key"):
                lines.append(f"  upsert on {list(config.merge_on)} = {sample['merge_key']}")
        lines.append("OK" if ok else "NOT OK")
        return "\n".join(lines)

    emit(args, data, human)
    return 0 if ok else 1


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Give logger `name` a handler that drops records, so Python's last-resort handler
    does not print them to stderr while the command reports the same thing itself."""
    null = logging.NullHandler()
    logger = logging.getLogger(name)
    logger.addHandler(null)
    try:
        yield
    finally:
        logger.removeHandler(null)


def _describe(config: Any) -> dict[str, Any]:
    """The config without secrets: the token is shown as set or not, never its value."""
    return {
        "queue": config.queue_url,
        "dead-letter queue": config.dead_letter_queue_url or "-",
        "Airtable": f"{config.api_url} base {config.base_id} table {config.table!r}",
        "token": "set (AIRTABLE_TOKEN)" if config.token else "from AIRTABLE_TOKEN_SECRET_ARN",
        "merge on": ", ".join(config.merge_on) or "- (every message creates a record)",
        "schema check": config.schema_check,
        "mapping": config.field_map.description or "-",
    }


def _schema_check(config: Any, *, skip: bool) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The check's outcome for display, and the table's fields when it could be read."""
    from .errors import ConfigErrors, PollerError
    from .handler import airtable_table
    from .schema import advice, verify_at_start

    if skip:
        return {"result": "skipped (--no-schema)", "checked": False}, ()
    mode = "on" if config.schema_check == "on" else "auto"
    try:
        table = airtable_table(config)
        check = verify_at_start(table, config.table, config.field_map, config.merge_on, mode)
    except ConfigErrors as exc:
        problems = [str(e) for e in exc.errors]
        return {"result": "FAILED", "checked": True, "problems": problems}, ()
    except PollerError as exc:
        return {"result": "FAILED", "checked": False, "problems": [str(exc)]}, ()
    if not check.checked:
        return {"result": f"skipped: {check.skipped_because}", "checked": False}, ()
    result = {
        "result": f"passed ({check.fields} field(s) fit the table)",
        "checked": True,
        "notes": advice(config.field_map, check.airtable_fields),
    }
    return result, check.airtable_fields


def _preview(
    config: Any, args: argparse.Namespace, airtable_fields: Sequence[Any] = ()
) -> dict[str, Any]:
    from .errors import MappingError
    from .mapping import Mapper
    from .model import Message
    from .samples import synthetic_body

    if args.body is not None:
        body, origin = args.body, "--body"
    elif args.message is not None:
        body, origin = read_bodies(str(args.message))[0], str(args.message)
    else:
        body = json.dumps(synthetic_body(config.field_map, airtable_fields))
        origin = "built from the mapping" + (" and the table" if airtable_fields else "")
    message = Message(
        id="00000000-0000-0000-0000-000000000000",
        receipt="-",
        body=body,
        sent_at_ms=int(time.time() * 1000),
        attributes={
            s.source.split(".", 1)[1]: "example"
            for s in config.field_map.specs
            if s.source.startswith("$MessageAttributes.")
        },
    )
    try:
        parsed: Any = json.loads(body)
    except json.JSONDecodeError:
        parsed = body
    try:
        record = Mapper(config.field_map, config.merge_on)(message)
    except MappingError as exc:
        return {"origin": origin, "body": parsed, "error": exc.reason}
    key = [json.loads(k) for k in record.key] if record.key else None
    return {"origin": origin, "body": parsed, "fields": dict(record.fields), "merge_key": key}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
