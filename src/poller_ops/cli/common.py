"""What every command shares: the environment (and its file), AWS clients, the queues, output.

Precedence, highest first: a command-line flag (--queue-url, ...), a non-empty variable of
the environment, the environment file (--env-file FILE, else $POLLER_ENV_FILE, else
./local.json when present, which `make serve` writes). FIELD_MAP and FIELD_MAP_FILE are one
setting: when the environment sets either, the file's are both ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from poller_ops import admin

PROG = "poller"
#: What `make serve` (`python -m devstack serve`) writes, and what every command reads when
#: it is in the working directory and no --env-file is given.
DEFAULT_ENV_FILE = Path("local.json")
#: Names another default env file; empty turns the default off.
ENV_FILE_VARIABLE = "POLLER_ENV_FILE"
#: Variables that are one setting: the environment's choice replaces the file's as a whole.
ONE_SETTING = (("FIELD_MAP", "FIELD_MAP_FILE"),)
_REGION_IN_URL = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com")
_DEFAULT_LOCAL_REGION = "us-east-1"


class UsageError(Exception):
    """Bad or missing input: exit status 2, with a hint."""


class CommandFailed(Exception):
    """The command met a problem it can name: exit status 1, the message, no traceback."""


# -- the environment ----------------------------------------------------------------------


@contextlib.contextmanager
def scoped_environ(updates: Mapping[str, str], drop: Sequence[str] = ()) -> Iterator[None]:
    """Apply `updates` (and remove `drop`) in os.environ for one command, then restore it
    (the handler and boto3 read the environment; tests call `main` in-process)."""
    saved = dict(os.environ)
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(updates)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def env_file_path(args: argparse.Namespace) -> tuple[Path | None, bool]:
    """The env file to read, and whether it was chosen implicitly (the default)."""
    if args.env_file is not None:
        return args.env_file, False
    named = os.environ.get(ENV_FILE_VARIABLE)
    if named is not None:
        return (Path(named), False) if named.strip() else (None, False)
    return (DEFAULT_ENV_FILE, True) if DEFAULT_ENV_FILE.is_file() else (None, False)


def environment(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """(variables to set, variables to remove) for the command, by the precedence above."""
    env = os.environ if env is None else env
    path, _ = env_file_path(args)
    from_file = read_env_file(path) if path is not None else {}
    given = {k for k, v in env.items() if v.strip()}
    updates = {k: v for k, v in from_file.items() if k not in given}
    drop: list[str] = []
    for group in ONE_SETTING:
        if given & set(group):
            for name in group:
                updates.pop(name, None)
                if name not in given:
                    drop.append(name)
    flags = {
        "QUEUE_URL": args.queue_url,
        "DEAD_LETTER_QUEUE_URL": args.dlq_url,
        "AWS_ENDPOINT_URL_SQS": args.endpoint_url,
        "AWS_REGION": args.region,
        "AWS_DEFAULT_REGION": args.region,
    }
    updates.update({k: v for k, v in flags.items() if v})
    return updates, drop


def read_env_file(path: Path) -> dict[str, str]:
    """A JSON object, or KEY=VALUE lines (# comments, optional quotes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"env file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"env file {path}: not UTF-8 text") from None
    with contextlib.suppress(json.JSONDecodeError, RecursionError):
        data = json.loads(text)
        if isinstance(data, dict):
            return {str(k): _text(v) for k, v in data.items() if v is not None}
        raise UsageError(f"env file {path}: JSON must be an object of variables")
    env = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError(f"env file {path}:{number}: expected KEY=VALUE")
        env[key.strip()] = value.strip().strip("'\"")
    return env


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# -- AWS clients --------------------------------------------------------------------------


def url_region(url: str | None) -> str | None:
    """The region an SQS queue URL names (`https://sqs.<region>.amazonaws.com/...`), if any."""
    match = _REGION_IN_URL.search(url or "")
    return match.group(1) if match else None


def region_mismatch() -> str | None:
    """Why SQS would answer "The specified queue does not exist." for a queue that exists:
    the region set in the environment is not the one the queue's URL names. None when they
    agree (or either is unknown)."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        explicit = os.environ.get(variable, "").strip()
        if explicit:
            break
    else:
        return None
    for name in ("QUEUE_URL", "DEAD_LETTER_QUEUE_URL"):
        in_url = url_region(os.environ.get(name))
        if in_url and in_url != explicit:
            return (
                f"{name} is a queue in {in_url}, but {variable} is {explicit}: SQS in "
                f"{explicit} answers that the queue does not exist. Set {variable}={in_url} "
                f"(or pass --region {in_url})"
            )
    return None


def region(url: str | None) -> str | None:
    explicit = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if explicit:
        return explicit
    in_url = url_region(url)
    if in_url:
        return in_url
    return _DEFAULT_LOCAL_REGION if os.environ.get("AWS_ENDPOINT_URL_SQS") else None


def client(service: str, url: str | None, endpoint: str | None = None) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        service,
        region_name=region(url),
        endpoint_url=endpoint,
        config=BotoConfig(
            connect_timeout=3, read_timeout=30, retries={"mode": "standard", "max_attempts": 2}
        ),
    )


def side_endpoint(flag: str | None, variable: str) -> str | None:
    """The endpoint for CloudWatch or CloudWatch Logs: the flag, else boto3's own variable
    (None: boto3 reads it), else the SQS endpoint when one is set (moto serves them all)."""
    if flag:
        return flag
    if os.environ.get(variable):
        return None
    return os.environ.get("AWS_ENDPOINT_URL_SQS") or None


def queue_url() -> str:
    url = os.environ.get("QUEUE_URL", "").strip()
    if not url:
        raise UsageError("no queue: pass --queue-url or set QUEUE_URL (or use --env-file)")
    return url


def dlq_url(sqs: Any, source: admin.QueueStatus | None = None) -> str:
    url = os.environ.get("DEAD_LETTER_QUEUE_URL", "").strip()
    if url:
        return url
    if source is None:
        source = admin.status(sqs, queue_url())
    if source.dead_letter_queue_url:
        return source.dead_letter_queue_url
    raise UsageError(
        "no dead-letter queue: pass --dlq-url, set DEAD_LETTER_QUEUE_URL, or give the source "
        "queue a RedrivePolicy"
    )


# -- the local stack ------------------------------------------------------------------------

#: The variables that point a command at the local stack, and what answers there.
LOCAL_SERVICES = (
    ("AWS_ENDPOINT_URL_SQS", "moto's SQS"),
    ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "moto's Secrets Manager"),
    ("AIRTABLE_API_URL", "the Airtable emulator"),
)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def local_endpoints() -> list[tuple[str, str]]:
    """(URL, what answers there) for each endpoint of this machine the environment names:
    the local stack (`make serve`). Remote endpoints are not local, whatever they are."""
    found: dict[str, str] = {}
    for variable, service in LOCAL_SERVICES:
        url = os.environ.get(variable, "").strip().rstrip("/")
        if _loopback(urlsplit(url).hostname) and url not in found:
            found[url] = service
    return list(found.items())


def on_local_stack() -> bool:
    """Whether the queue is the local stack's (an SQS endpoint on this machine)."""
    return any(service == "moto's SQS" for _, service in local_endpoints())


def unreachable_local_endpoints() -> list[tuple[str, str]]:
    """The local endpoints of the environment where nothing accepts a connection."""
    dead = []
    for url, service in local_endpoints():
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = "127.0.0.1" if parts.hostname in ("0.0.0.0", None) else parts.hostname
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            dead.append((url, service))
    return dead


def local_stack_hint(env_file: Path | None) -> str | None:
    """`nothing answers at ...: is make serve running?`, when the environment points at the
    local stack and part of it is down; else None."""
    dead = unreachable_local_endpoints()
    if not dead:
        return None
    where = ", ".join(f"{url} ({service})" for url, service in dead)
    origin = (
        f" ({env_file} points there; it is stale if that stack has stopped)" if env_file else ""
    )
    return f"nothing answers at {where}{origin}: is `make serve` running?"


def is_aws_error(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError)


def aws_error_text(exc: BaseException) -> str:
    """An AWS error in one line: the operation, the code and the message, never an HTML
    page (moto answers an unimplemented operation with one)."""
    response = getattr(exc, "response", None)
    if not response:
        return f"{type(exc).__name__}: {exc}"
    error = response.get("Error", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or status or type(exc).__name__)
    message = str(error.get("Message") or "")
    if "<" in message and ">" in message:  # an HTML error page, not a message
        message = ""
    operation = getattr(exc, "operation_name", "")
    parts = [operation and f"{operation} failed:", code, f"(HTTP {status})" if status else ""]
    return " ".join(p for p in parts if p) + (f": {message}" if message else "")


# -- output -------------------------------------------------------------------------------


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    """The command's result on stdout: JSON with --json (every key a Python identifier),
    else the human text. Logs and progress go to stderr."""
    print(json.dumps(data, indent=2, default=str) if args.json else human())


def validated_config(args: argparse.Namespace, *, require_queue: bool = True) -> Any | None:
    """The `Config` the function would build from this environment, or None after printing
    every problem (`{"ok": false, "problems": [...]}` with --json): the caller exits 1."""
    from poller.config import Config
    from poller.errors import ConfigErrors

    try:
        return Config.from_env(os.environ, require_queue=require_queue)
    except ConfigErrors as exc:
        problems = [str(e) for e in exc.errors]
        emit(
            args,
            {"ok": False, "problems": problems},
            lambda: "configuration is invalid:\n" + "\n".join(f"  - {p}" for p in problems),
        )
        return None


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


def rows(items: Sequence[tuple[str, Any]], indent: str = "  ") -> list[str]:
    width = max(len(label) for label, _ in items)
    return [f"{indent}{label:<{width}}  {value}" for label, value in items]


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, with an ellipsis when something was cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


@contextlib.contextmanager
def quiet(name: str) -> Iterator[None]:
    """Silence logger `name` and its children while the command reports the same thing
    itself (their handlers, e.g. the function's JSON handler after an in-process run, and
    Python's last-resort handler)."""
    manager = logging.getLogger().manager
    names = [name] + [n for n in list(manager.loggerDict) if n.startswith(name + ".")]
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg, lg.handlers[:], lg.propagate) for lg in loggers]
    for logger in loggers:
        logger.handlers = [logging.NullHandler()]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate


def note(text: str) -> None:
    """A remark for the human at the terminal, on stderr (stdout stays the result)."""
    print(f"{PROG}: {text}", file=sys.stderr)
