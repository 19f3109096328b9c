"""`poller`: the operator's toolbox, against real AWS (default credentials) or the local stack.

  status        what is waiting, in flight and dead-lettered, and why; this month's
                Airtable API calls and their forecast
  peek-dlq      the dead-lettered messages with their reasons; nothing is consumed
  redrive       move dead letters back to the source queue
  send          send messages from a JSON/JSONL file, or sample events
  run           one local invocation of the real handler, with a progress display
  check-config  the checks a run makes (queue, token, bases, schemas, a data read), and a
                preview of a record
  init-tables   create each route's tables and missing fields (links, selects, versions...)

Every command reads the poller's own variables (QUEUE_URL, DEAD_LETTER_QUEUE_URL, FIELD_MAP,
...; see docs/configuration.md) and boto3's (AWS_ENDPOINT_URL_SQS, AWS_REGION,
credentials), over an environment file: --env-file FILE, else $POLLER_ENV_FILE, else
./local.json when present (what `make serve` writes). The environment wins over the file,
and flags over both. The result goes to stdout (--json for scripts: every key an
identifier); logs, progress and errors go to stderr.
Exit status: 0 fine, 1 the command found a problem, 2 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import check_config, dlq, init_tables, run, send, status
from .common import (
    PROG,
    CommandFailed,
    UsageError,
    age_text,
    aws_error_text,
    env_file_path,
    environment,
    is_aws_error,
    local_stack_hint,
    note,
    read_env_file,
    region_mismatch,
    scoped_environ,
)
from .send import read_bodies

__all__ = [
    "PROG",
    "UsageError",
    "age_text",
    "build_parser",
    "main",
    "read_bodies",
    "read_env_file",
]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument(
        "--env-file",
        type=Path,
        help="JSON object or KEY=VALUE lines under the environment (default: "
        "$POLLER_ENV_FILE, else ./local.json when present, which `make serve` writes)",
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
    where.add_argument(
        "--region",
        help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the queue URL's, boto3's)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    sections = __doc__.split("\n\n")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=sections[0],
        epilog="\n\n".join(sections[2:]),
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

    status.add_parser(command)
    dlq.add_parsers(command)
    send.add_parser(command)
    run.add_parser(command)
    check_config.add_parser(command)
    init_tables.add_parser(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = f"{PROG} {args.command}"
    try:
        updates, drop = environment(args)
        path, implicit = env_file_path(args)
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if implicit:
        note(f"using {path} (written by `make serve`; --env-file or POLLER_ENV_FILE= to change)")
    with scoped_environ(updates, drop):
        mismatch = region_mismatch()
        if mismatch:
            note(f"warning: {mismatch}")
        status = run_command(args, name)
        if status not in (0, 2, 130) or args.command == "check-config":
            # check-config succeeds with a schema check it could not run: say why too
            hint = local_stack_hint(path)
            if hint:
                note(hint)
        return status


def run_command(args: argparse.Namespace, name: str) -> int:
    """The command's exit status; an error it can name in one line, never a traceback."""
    try:
        return int(args.handler(args))
    except BrokenPipeError:  # `poller ... | head`: the reader has gone, which is fine
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except CommandFailed as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from poller.errors import PollerError

        if is_aws_error(exc):
            print(f"{name}: {aws_error_text(exc)}", file=sys.stderr)
            return 1
        if isinstance(exc, PollerError):
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
