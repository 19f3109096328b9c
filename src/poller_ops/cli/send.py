"""`poller send`: message bodies from a file or stdin, verbatim, or sample events."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from poller_ops import admin

from .common import UsageError, client, emit, queue_url

_WHITESPACE = " \t\n\r"


def add_parser(command: Any) -> None:
    send = command(
        "send",
        "send messages from a JSON/JSONL file, or sample events",
        "Send message bodies to the source queue. FILE is JSONL (one body per line), a JSON\n"
        "object (one body) or a JSON array (each element one body). Bodies are sent as\n"
        "written, byte for byte, so bad bodies can be sent too; a string element of an array\n"
        "is sent as its text. '-' reads stdin. --sample N sends N sample\n"
        "DonationCreatedIntegrationEvent bodies.",
    )
    send.add_argument("file", nargs="?", help="JSON or JSONL file, or - for stdin")
    send.add_argument("--sample", type=int, metavar="N", help="send N sample donation events")
    send.add_argument("--group-id", help="FIFO queues: the MessageGroupId (default 'default')")
    send.set_defaults(handler=cmd_send)


def cmd_send(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.sample is None):
        raise UsageError("give a FILE or --sample N (one of them)")
    if args.sample is not None:
        from poller_ops.samples import donation_event

        if args.sample < 1:
            raise UsageError("--sample must be at least 1")
        bodies = [json.dumps(donation_event(n)) for n in range(args.sample)]
        origin = f"{args.sample} sample donation event(s)"
    else:
        bodies = read_bodies(args.file)
        origin = "stdin" if args.file == "-" else args.file
    url = queue_url()
    ids = admin.send(client("sqs", url), url, bodies, group_id=args.group_id)
    emit(
        args,
        {"url": url, "sent": len(ids), "message_ids": ids},
        lambda: f"sent {len(ids)} message(s) from {origin} to {url}",
    )
    return 0


def read_bodies(name: str) -> list[str]:
    """The bodies a file holds, each exactly as written (never re-serialised: that could
    change its bytes, and push a body near SQS's 1 MiB over it).

    A file that is one JSON array gives its elements (a string element gives its text);
    any other file gives its non-blank lines (JSONL), so a one-line file gives that line.
    A JSON object written over several lines is one body. Raises `UsageError`."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not UTF-8 text") from None
    stripped = text.strip(_WHITESPACE)
    lines = [line for line in text.splitlines() if line.strip(_WHITESPACE)]
    bodies = lines
    if stripped.startswith("["):
        elements = _array_elements(stripped)
        if elements is not None:
            bodies = elements
    elif stripped.startswith("{") and len(lines) > 1 and _is_one_value(stripped):
        bodies = [stripped]
    if not bodies:
        raise UsageError(f"{name}: no messages in it")
    return bodies


def _is_one_value(text: str) -> bool:
    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _array_elements(text: str) -> list[str] | None:
    """The elements of the JSON array `text`, each as its own source text (a string element
    as its value), or None when `text` is not exactly one JSON array (or nests deeper than
    the parser goes)."""
    try:
        return list(_elements(text))
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None


def _elements(text: str) -> Iterator[str]:
    decoder = json.JSONDecoder()
    at = _skip(text, 1)
    if text[at : at + 1] == "]":
        if _skip(text, at + 1) != len(text):
            raise ValueError("text after the array")
        return
    while True:
        value, end = decoder.raw_decode(text, at)
        yield value if isinstance(value, str) else text[at:end]
        at = _skip(text, end)
        if text[at : at + 1] == ",":
            at = _skip(text, at + 1)
            continue
        if text[at : at + 1] == "]" and _skip(text, at + 1) == len(text):
            return
        raise ValueError("not one JSON array")


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at
