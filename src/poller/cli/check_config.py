"""`poller check-config`: validate the environment as the Lambda does, check the table's
schema, and show what a sample message would become."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from .common import emit, quiet, rows
from .send import read_bodies

#: The human labels of the `config` keys (the JSON keys are identifiers).
LABELS = {
    "queue": "queue",
    "dead_letter_queue": "dead-letter queue",
    "airtable": "Airtable",
    "token": "token",
    "merge_on": "merge on",
    "schema_check": "schema check",
    "mapping": "mapping",
}


def add_parser(command: Any) -> None:
    check = command(
        "check-config",
        "validate env and mapping, check the table's schema, preview a record",
        "Validate the environment exactly as the Lambda does, check the Airtable table\n"
        "against FIELD_MAP and MERGE_ON (needs schema.bases:read), and print what would be\n"
        "written for a sample message (by default, one built from the mapping).",
    )
    sample = check.add_mutually_exclusive_group()
    sample.add_argument("--message", type=str, help="a message body file (JSON)")
    sample.add_argument("--body", help="a message body, inline JSON")
    check.add_argument("--no-schema", action="store_true", help="skip the schema check")
    check.set_defaults(handler=cmd_check_config)


def cmd_check_config(args: argparse.Namespace) -> int:
    from ..config import Config
    from ..errors import ConfigErrors

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
    with quiet("poller"):  # the outcome is printed below; no stray log line on stderr
        schema, airtable_fields = schema_check(config, skip=args.no_schema)
    sample = preview(config, args, airtable_fields)
    ok = not schema.get("problems") and "error" not in sample
    data = {
        "ok": ok,
        "config": describe(config),
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
        lines += rows([(LABELS[k], v) for k, v in data["config"].items()])
        lines.append(f"mapping ({len(config.field_map.specs)} field(s))")
        lines += [f"  {s.describe()}" for s in config.field_map.specs]
        lines.append(f"schema check: {schema['result']}")
        lines += [f"  - {p}" for p in schema.get("problems", [])]
        lines += [f"  note: {n}" for n in schema.get("notes", [])]
        lines.append(f"sample message ({sample['origin']}):")
        lines.append(f"  {sample['body']}")
        if "error" in sample:
            lines.append(f"would be dead-lettered: {sample['error']}")
        else:
            lines.append("would write:")
            lines += rows([(f'"{f["field"]}"', json.dumps(f["value"])) for f in sample["fields"]])
            if sample.get("merge_key"):
                lines.append(f"  upsert on {list(config.merge_on)} = {sample['merge_key']}")
        lines.append("OK" if ok else "NOT OK")
        return "\n".join(lines)

    emit(args, data, human)
    return 0 if ok else 1


def describe(config: Any) -> dict[str, Any]:
    """The config without secrets: the token is shown as set or not, never its value."""
    return {
        "queue": config.queue_url,
        "dead_letter_queue": config.dead_letter_queue_url or "-",
        "airtable": f"{config.api_url} base {config.base_id} table {config.table!r}",
        "token": "set (AIRTABLE_TOKEN)" if config.token else "from AIRTABLE_TOKEN_SECRET_ARN",
        "merge_on": ", ".join(config.merge_on) or "- (every message creates a record)",
        "schema_check": config.schema_check,
        "mapping": mapping_origin(config),
    }


def mapping_origin(config: Any) -> str:
    """Where the mapping comes from: `FIELD_MAP_FILE field_maps/donations.json` or
    `inline FIELD_MAP`, with the mapping's own description when it has one."""
    path = os.environ.get("FIELD_MAP_FILE", "").strip()
    origin = f"FIELD_MAP_FILE {path}" if path else "inline FIELD_MAP"
    description = config.field_map.description
    return f"{origin}: {description}" if description else origin


def schema_check(config: Any, *, skip: bool) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The check's outcome for display, and the table's fields when it could be read."""
    from ..errors import ConfigErrors, PollerError
    from ..handler import airtable_table
    from ..schema import advice, verify_at_start

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


def preview(
    config: Any, args: argparse.Namespace, airtable_fields: Sequence[Any] = ()
) -> dict[str, Any]:
    """What the sample message would become: {"origin", "body" (the text, verbatim),
    "fields": [{"field", "value"}], "merge_key"}, or {"origin", "body", "error"}."""
    from ..errors import MappingError
    from ..mapping import Mapper
    from ..model import Message
    from ..samples import synthetic_body

    if args.body is not None:
        body, origin = args.body, "--body"
    elif args.message is not None:
        body, origin = read_bodies(args.message)[0], args.message
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
        record = Mapper(config.field_map, config.merge_on)(message)
    except MappingError as exc:
        return {"origin": origin, "body": body, "error": exc.reason}
    except Exception as exc:  # the drain dead-letters a message whose mapping crashes, too
        error = f"mapping failed ({type(exc).__name__}: {str(exc)[:200]})"
        return {"origin": origin, "body": body, "error": error}
    fields = [{"field": k, "value": v} for k, v in record.fields.items()]
    key = [json.loads(k) for k in record.key] if record.key else None
    return {"origin": origin, "body": body, "fields": fields, "merge_key": key}
