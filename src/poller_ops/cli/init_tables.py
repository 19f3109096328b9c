"""`poller init-tables`: create each route's table, and the fields it lacks, from the mapping.

It reads the configuration like every command, plans against each base's schema
(`tables.plan`), prints the plan, asks on a terminal (or takes `--yes`), and makes the
changes through Airtable's meta API (`tables.apply`, token scope `schema.bases:write`), each
request in a slot of its base's pacer. Link fields, multiple selects, attachments, a route's
version field and a soft delete's checkbox are created too. It
never changes or deletes an existing field: a misfit is reported and left alone, and makes
the exit status 1.

It needs only the routes (or the single-table variables), the token and AIRTABLE_API_URL:
it runs before the stack exists, so QUEUE_URL may be unset (`Config.from_env(..., require_queue=False)`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .common import emit, quiet, validated_config

QUESTION = "create these? [y/N] "
#: Said when the plan has changes but nobody may confirm them.
NEEDS_YES = "stdin is not a terminal, so nobody can answer; pass --yes to create these"


def add_parser(command: Any) -> None:
    init = command(
        "init-tables",
        "create each route's tables and missing fields (links, selects, versions, ...)",
        "Compare each route's table (or the single table) with its typed mapping, print the\n"
        "plan (tables to create, fields to add, existing fields that do not fit), ask, and\n"
        "create what is missing through Airtable's meta API (token scope\n"
        "schema.bases:write): typed fields, link fields (the linked table first), multiple\n"
        "selects with their declared choices, attachments, a route's version field (a\n"
        "number, or a dateTime when its entry declares one) and a soft delete's checkbox.\n"
        "Existing fields are never changed or deleted. Exit status 1 when a field does not\n"
        "fit, or when the plan was not confirmed.",
    )
    init.add_argument(
        "--yes", action="store_true", help="create without asking (needed without a terminal)"
    )
    init.set_defaults(handler=cmd_init_tables)


def table_specs(config: Any) -> list[Any]:
    """One `TableSpec` per route, in route order. Routes writing to the same table of a
    base are merged by `tables.plan` (one table, the union of their fields, the first
    route's first)."""
    from poller_ops.tables import TableSpec

    return [TableSpec.of(route) for route in config.routes]


def cmd_init_tables(args: argparse.Namespace) -> int:
    from poller.airtable import make_api
    from poller.credentials import TokenSource
    from poller_ops.tables import apply, per_base_limiters, plan

    config = validated_config(args, require_queue=False)
    if config is None:
        return 1
    tokens = TokenSource(token=config.token, secret_arn=config.token_secret_arn)
    api = make_api(token=tokens.current(), api_url=config.api_url, timeout=config.timeout_seconds)
    pace = per_base_limiters(config.base_rps)
    planned = plan(api, table_specs(config), limiter_for=pace)
    if not args.json:
        print("plan:")
        print("\n".join(f"  {line}" for line in planned.describe()))
        print("\n".join(f"  note: {line}" for line in planned.notes), end="")
        if planned.notes:
            print()
    if not planned.has_changes:
        confirmed, outcome = False, "nothing to create: every table and mapped field exists"
    elif args.yes:
        confirmed, outcome = True, ""
    elif not sys.stdin.isatty():
        confirmed, outcome = False, f"{NEEDS_YES}; nothing was changed"
    else:
        confirmed = ask(sys.stdin, sys.stderr)
        outcome = "" if confirmed else "not confirmed; nothing was changed"
    with quiet("poller"):  # what was done is printed below; no log line repeats it
        done = apply(api, planned, limiter_for=pace) if confirmed else []
    if confirmed:
        outcome = f"done: {len(done)} change(s)"
    if planned.misfits:
        outcome += (
            f"; {len(planned.misfits)} misfit(s) left alone: change the mapping or the field "
            "in Airtable, then run again"
        )
    ok = not planned.misfits and (confirmed or not planned.has_changes)
    data = {
        "ok": ok,
        "plan": planned.to_dict(),
        "confirmed": confirmed,
        "done": done,
        "outcome": outcome,
    }
    emit(args, data, lambda: "\n".join([*(f"  {d}" for d in done), outcome]))
    return 0 if ok else 1


def ask(stdin: TextIO, prompt_to: TextIO) -> bool:
    """Ask QUESTION (on stderr: stdout is the result); True only for y or yes."""
    sys.stdout.flush()  # the plan first
    print(QUESTION, end="", file=prompt_to, flush=True)
    return stdin.readline().strip().lower() in ("y", "yes")
