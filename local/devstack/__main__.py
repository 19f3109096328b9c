"""`python -m devstack run|serve`: the poller on the local stack, no AWS account, no Docker.

run    start moto's SQS server and the Airtable emulator, create the queue and its DLQ,
       send the sample messages, invoke the real handler once with a scheduled event and a
       Lambda-like context, then print the summary, the rows in the table and the DLQ.
serve  start the same stack and keep it up (for `sam local invoke` with Docker, or for
       pointing the `poller` CLI at it) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MESSAGES = ROOT / "events" / "messages" / "donations.jsonl"
DEFAULT_EVENT = ROOT / "events" / "scheduled-event.json"
#: What `serve` writes for the `poller` CLI, which reads it by default (gitignored: it holds
#: the local token).
ENV_FILE = ROOT / "local.json"
#: The typed Donations mapping the function ships (docs/field-mapping.md).
FIELD_MAP_FILE = "field_maps/donations.json"
BODY_CHARS = 100


def local_env(stack: Any, **overrides: str | None) -> dict[str, str]:
    """The poller's environment for this stack, with the typed Donations mapping."""
    return stack.poller_env(**{"FIELD_MAP": FIELD_MAP_FILE, **overrides})


class MotoNotImplemented(logging.Filter):
    """moto's server answers an operation it lacks (StartMessageMoveTask) with HTTP 500, and
    werkzeug logs a 40-line traceback for each attempt. Say it in one line instead; every
    other record passes unchanged."""

    PATTERN = re.compile(r"NotImplementedError: The (\w+) action has not been implemented")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        match = self.PATTERN.search(text) if text.startswith("Error on request") else None
        if match:
            action = "".join(part.title() for part in match.group(1).split("_"))
            record.msg, record.args = "moto: %s is not implemented (answered HTTP 500)", (action,)
            record.exc_info = record.exc_text = None
        return True


def quiet_moto() -> None:
    logging.getLogger("werkzeug").addFilter(MotoNotImplemented())


def read_messages(path: Path) -> list[str]:
    """One message body per line, verbatim (so that bad bodies can be sent too)."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "serve"):
        p = sub.add_parser(name)
        p.add_argument(
            "--sqs-port", type=int, default=int(os.environ.get("DEVSTACK_SQS_PORT", 9324))
        )
        p.add_argument(
            "--airtable-port", type=int, default=int(os.environ.get("DEVSTACK_AIRTABLE_PORT", 8787))
        )
        p.add_argument("--queue-name", default="donations")
        p.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to bind; 0.0.0.0 lets a container (sam local invoke) reach the stack",
        )
    run = sub.choices["run"]
    run.add_argument(
        "--messages", type=Path, default=DEFAULT_MESSAGES, help="JSONL file: one body per line"
    )
    run.add_argument(
        "--event", type=Path, default=DEFAULT_EVENT, help="the scheduled event to invoke with"
    )
    run.add_argument(
        "--timeout", type=int, default=60, help="the Lambda timeout to emulate, seconds"
    )
    serve_parser = sub.choices["serve"]
    serve_parser.add_argument(
        "--env-file",
        type=Path,
        default=ENV_FILE,
        help="where to write the poller's environment (default: local.json at the repository's "
        "root, which the poller CLI reads by default)",
    )
    args = parser.parse_args(argv)
    name = f"{parser.prog} {args.command}"

    if args.command == "serve":
        live = live_stack(args.env_file)
        if live:
            print(
                f"{name}: {_shown(args.env_file)} describes a local stack that is running "
                f"({live} answers): stop that `make serve` first, or give this one "
                "--env-file FILE to write another file",
                file=sys.stderr,
            )
            return 1

    from .stack import LocalStack, PortTaken

    quiet_moto()
    try:
        stack_cm = LocalStack.start(
            host=args.host,
            sqs_port=args.sqs_port,
            airtable_port=args.airtable_port,
            queue_name=args.queue_name,
        )
        stack = stack_cm.__enter__()
    except PortTaken as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{name}: could not start the local stack: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "serve":
            return serve(stack, args.env_file)
        return run_once(stack, args.messages, args.event, args.timeout)
    finally:
        stack_cm.__exit__(None, None, None)


def serve(stack: Any, env_file: Path = ENV_FILE, stop: threading.Event | None = None) -> int:
    """Write the CLI's env file, say how to use it, and serve until Ctrl-C, SIGTERM or `stop`.
    The file is removed when serving ends, so that it only ever describes a running stack
    (after a crash it stays: a command that cannot reach it says so)."""
    env = local_env(stack)
    write_env_file(env_file, env)
    try:
        print(f"SQS (moto)        {stack.sqs_endpoint}")
        print(f"Airtable emulator {stack.airtable_url}")
        print(f"QUEUE_URL             {stack.queue_url}")
        print(f"DEAD_LETTER_QUEUE_URL {stack.dlq_url}")
        print(
            f"\nwrote the poller's environment to {_shown(env_file)} (mode 0600: it holds the"
            " local token; removed when this stops)."
        )
        if env_file.resolve() == ENV_FILE.resolve():
            print(
                "In another terminal, the poller CLI reads it from the repository root by default:"
            )
            option = ""
        else:
            print("In another terminal, point the poller CLI at it:")
            option = f" --env-file {_shown(env_file)}"
        print(f"  .venv/bin/poller status{option}")
        print(f"  .venv/bin/poller send --sample 40{option} && .venv/bin/poller run{option}")
        print(f"  .venv/bin/poller peek-dlq{option}")
        print("serving; Ctrl-C to stop", flush=True)
        if stop is None:
            stop = threading.Event()
            for number in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        remove_env_file(env_file, env)
    return 0


def remove_env_file(path: Path, env: dict[str, str]) -> None:
    """Delete `path` if it still holds `env` (another stack may have written it since)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")) == env:
            path.unlink()


def live_stack(path: Path) -> str | None:
    """The endpoint of the stack `path` describes when something answers there, else None
    (no file, not ours, or a stale one left by a stack that stopped without removing it)."""
    from urllib.parse import urlsplit

    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(env, dict):
        return None
    for variable in ("AWS_ENDPOINT_URL_SQS", "AIRTABLE_API_URL"):
        url = str(env.get(variable) or "")
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            continue
        with contextlib.suppress(OSError):
            socket.create_connection((parts.hostname, parts.port), timeout=1).close()
            return url
    return None


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write `env` as JSON, readable by its owner only (0600, also when it existed).

    The file appears whole or not at all: it is written beside `path` and renamed over
    it, so a CLI that reads it at any moment never sees a half-written file."""
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(env, file, indent=2)
            file.write("\n")
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def run_once(stack: Any, messages_path: Path, event_path: Path, timeout_s: int) -> int:
    """Send the messages, invoke the handler once, and report on stdout: a table on a
    terminal, plain lines when piped; the progress on stderr. The function's own log lines
    are counted, not shown (`poller run --verbose` shows them)."""
    from poller import handler
    from poller_ops.cli.run import invoke, print_outcome

    from .context import LambdaContext
    from .stack import BASE_ID, TABLE

    bodies = read_messages(messages_path)
    stack.send_messages(bodies)
    print(f"sent {len(bodies)} messages from {_shown(messages_path)} to {stack.queue_url}")

    os.environ.update(local_env(stack, POWERTOOLS_METRICS_DISABLED="true"))
    os.environ.pop("FIELD_MAP_FILE", None)
    event = (
        json.loads(event_path.read_text())
        if event_path.exists()
        else {"detail-type": "Scheduled Event"}
    )
    print(
        f"invoking poller.handler.lambda_handler with {event_path.name} (timeout {timeout_s} s,"
        f" mapping {FIELD_MAP_FILE})\n",
        flush=True,
    )
    outcome = invoke(handler, event, LambdaContext(timeout_ms=timeout_s * 1000))
    print("== run summary")
    print_outcome(outcome)
    status = 0 if outcome.ok else 1
    rows = stack.rows()  # the emulator's own view: reading through the API would spend rate limit
    print(f"\n== {len(rows)} rows in the Airtable table {TABLE!r} of base {BASE_ID}")
    columns = list(mapped_fields())
    ordered = sorted(rows, key=lambda r: str(r["fields"].get("Creation Date", "")))
    print(table(columns, [[row["fields"].get(c) for c in columns] for row in ordered]))
    letters = stack.dead_letters()
    print(f"\n== {len(letters)} messages in the dead-letter queue")
    for body, attributes in letters:
        print(f"- {attributes.get('poller.reason')}\n    body: {clip(body, BODY_CHARS)}")
    counts = stack.counts()
    print(f"\n== source queue: {counts['visible']} visible, {counts['in_flight']} in flight")
    return status


def mapped_fields() -> tuple[str, ...]:
    """Every field the typed Donations mapping writes, in its order."""
    from poller.config import json_or_file
    from poller.fieldmap import FieldMap

    return FieldMap.parse(json_or_file(FIELD_MAP_FILE, "FIELD_MAP", {})).fields


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, with an ellipsis when something was cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> str:
    """A text table of every column, fitted to `width` (default: the terminal's): columns
    wider than their share are cut, with an ellipsis, widest first."""
    width = width or shutil.get_terminal_size((160, 24)).columns
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    sizes = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    gap = 2
    while sum(sizes) + gap * (len(sizes) - 1) > width and max(sizes) > 4:
        sizes[sizes.index(max(sizes))] -= 1
    lines = [
        "  ".join(clip(v, n).ljust(n) for v, n in zip(line, sizes, strict=True)).rstrip()
        for line in [list(columns), *cells]
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
