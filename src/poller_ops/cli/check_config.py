"""`poller check-config`: validate the environment as the Lambda does, check the table's
schema, and show what a sample message would become."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .common import emit, quiet, rows, validated_config
from .send import read_bodies

#: The human labels of the `config` keys (the JSON keys are identifiers).
LABELS = {
    "queue": "queue",
    "dead_letter_queue": "dead-letter queue",
    "airtable": "Airtable",
    "token": "token",
    "envelope": "envelope",
    "schema_check": "schema check",
    "mapping": "mapping",
}
#: How a schema problem's variable reads when it is about a named route (its ROUTES key).
ROUTE_KEYS = {
    "FIELD_MAP": "",
    "AIRTABLE_TABLE": " table",
    "MERGE_ON": " merge_on",
    "AIRTABLE_BASE_ID": " base",
}
#: A schema-check outcome: (what to show, the table's fields when they could be read).
Check = tuple[dict[str, Any], tuple[Any, ...]]


def add_parser(command: Any) -> None:
    check = command(
        "check-config",
        "validate env and routes, check each table's schema, preview a record",
        "Validate the environment exactly as the Lambda does, show every route (the single\n"
        'table is one route named "default"), check each route\'s table against its mapping\n'
        "and merge fields (needs schema.bases:read), and show which route a sample message\n"
        "matches and what would be written (by default, a message built from the first\n"
        "route's mapping).",
    )
    sample = check.add_mutually_exclusive_group()
    sample.add_argument("--message", type=str, help="a message body file (JSON)")
    sample.add_argument("--body", help="a message body, inline JSON")
    check.add_argument("--no-schema", action="store_true", help="skip the schema check")
    check.set_defaults(handler=cmd_check_config)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = validated_config(args)
    if config is None:
        return 1
    with quiet("poller"):  # the outcome is printed below; no stray log line on stderr
        checks = schema_checks(config, skip=args.no_schema)
    sample = preview(config, args, checks)
    warnings = config.warnings()
    ok = not any(check.get("problems") for check, _ in checks.values()) and "error" not in sample
    routes = [route_data(config, route, checks[route.name][0]) for route in config.routes]
    data = {
        "ok": ok,
        "config": describe(config),
        "routes": routes,
        "warnings": warnings,
        "sample": sample,
    }

    def human() -> str:
        lines = ["configuration is valid"]
        lines += rows([(LABELS[k], v) for k, v in data["config"].items()])
        for route, shown in zip(config.routes, routes, strict=True):
            lines += route_lines(route, shown)
        lines += [f"warning: {w}" for w in warnings]
        lines += sample_lines(sample)
        lines.append("OK" if ok else "NOT OK")
        return "\n".join(lines)

    emit(args, data, human)
    return 0 if ok else 1


def describe(config: Any) -> dict[str, Any]:
    """The config without secrets: the token is shown as set or not, never its value."""
    return {
        "queue": config.queue_url,
        "dead_letter_queue": config.dead_letter_queue_url or "-",
        "airtable": config.api_url,
        "token": "set (AIRTABLE_TOKEN)" if config.token else "from AIRTABLE_TOKEN_SECRET_ARN",
        "envelope": f"{config.envelope} (ENVELOPE; a route may set its own)",
        "schema_check": config.schema_check,
        "mapping": mapping_origin(config),
    }


def mapping_origin(config: Any) -> str:
    """Where the routes come from: `ROUTES_FILE routes.json (2 routes)`, `inline ROUTES`,
    or for the single table `FIELD_MAP_FILE field_maps/donations.json` or `inline
    FIELD_MAP`, with the mapping's own description when it has one."""
    if config.routes_from in ("ROUTES", "ROUTES_FILE"):
        path = os.environ.get("ROUTES_FILE", "").strip()
        origin = f"ROUTES_FILE {path}" if config.routes_from == "ROUTES_FILE" else "inline ROUTES"
        return f"{origin} ({len(config.routes)} route(s))"
    path = os.environ.get("FIELD_MAP_FILE", "").strip()
    origin = f"FIELD_MAP_FILE {path}" if path else "inline FIELD_MAP"
    description = config.field_map.description
    return f"{origin}: {description}" if description else origin


def route_data(config: Any, route: Any, check: dict[str, Any]) -> dict[str, Any]:
    """One route for display: where it writes, when, how, and its schema check."""
    return {
        "name": route.name,
        "base": route.base_id,
        "table": route.table,
        "when": [c.describe() for c in route.when],
        "envelope": route.envelope or config.envelope,
        "envelope_from": "route" if route.envelope else "ENVELOPE",
        "merge_on": list(route.merge_on),
        "mapping": [
            {
                "source": s.source,
                "field": s.field,
                "type": s.type,
                "required": s.required,
                "default": s.default if s.default_json is not None else None,
            }
            for s in route.field_map.specs
        ],
        "schema_check": check,
    }


def route_lines(route: Any, shown: dict[str, Any]) -> list[str]:
    when = " and ".join(shown["when"]) or "every message"
    check = shown["schema_check"]
    envelope = shown["envelope"] + (" (ENVELOPE)" if shown["envelope_from"] == "ENVELOPE" else "")
    merge_on = ", ".join(shown["merge_on"]) or "- (every message creates a record)"
    lines = [f'route "{route.name}": base {route.base_id}, table "{route.table}"']
    lines += rows([("when", when), ("envelope", envelope), ("merge on", merge_on)])
    lines.append(f"  mapping ({len(route.field_map.specs)} field(s))")
    lines += [f"    {s.describe()}" for s in route.field_map.specs]
    lines.append(f"  schema check: {check['result']}")
    lines += [f"    - {p}" for p in check.get("problems", [])]
    lines += [f"    note: {n}" for n in check.get("notes", [])]
    return lines


def sample_lines(sample: dict[str, Any]) -> list[str]:
    lines = [f"sample message ({sample['origin']}):", f"  {sample['body']}"]
    if "error" in sample:
        return [*lines, f"would be dead-lettered: {sample['error']}"]
    if "note" in sample:
        return [*lines, f"note: {sample['note']}"]
    lines.append(
        f'matched route "{sample["route"]}": would write to base {sample["base"]}, '
        f'table "{sample["table"]}":'
    )
    lines += rows([(f'"{f["field"]}"', json.dumps(f["value"])) for f in sample["fields"]])
    if sample.get("merge_key"):
        lines.append(f"  upsert on {sample['merge_on']} = {sample['merge_key']}")
    return lines


def schema_checks(config: Any, *, skip: bool) -> dict[str, Check]:
    """Each route's schema check (by route name), as the cold start runs it
    (`runtime.Runtime.check_all_at_start`): one Api for the token, each base's reads paced
    by one limiter. SCHEMA_CHECK=off is checked anyway (as auto): that is what this
    command is for."""
    from poller.airtable import make_api
    from poller.credentials import TokenSource
    from poller.errors import PollerError
    from poller_ops.tables import per_base_limiters

    if skip:
        skipped = {"result": "skipped (--no-schema)", "checked": False}
        return {route.name: (dict(skipped), ()) for route in config.routes}
    mode = "on" if config.schema_check == "on" else "auto"
    try:
        tokens = TokenSource(token=config.token, secret_arn=config.token_secret_arn)
        api = make_api(
            token=tokens.current(),
            api_url=config.api_url,
            timeout=config.tuning.airtable_timeout_seconds,
        )
    except PollerError as exc:
        failed = {"result": "FAILED", "checked": False, "problems": [str(exc)]}
        return {route.name: (dict(failed), ()) for route in config.routes}
    pace = per_base_limiters()
    return {
        route.name: schema_check(
            api.table(route.base_id, route.table), route, mode, pace(route.base_id)
        )
        for route in config.routes
    }


def schema_check(table: Any, route: Any, mode: str, limiter: Any = None) -> Check:
    """One route's check for display, and the table's fields when they could be read."""
    from poller.errors import ConfigErrors, PollerError
    from poller.schema import advice, verify_at_start

    try:
        check = verify_at_start(
            table, route.table, route.field_map, route.merge_on, mode, limiter=limiter
        )
    except ConfigErrors as exc:
        problems = [problem_text(route, e) for e in exc.errors]
        return {"result": "FAILED", "checked": True, "problems": problems}, ()
    except PollerError as exc:
        return {"result": "FAILED", "checked": False, "problems": [str(exc)]}, ()
    if not check.checked:
        return {"result": f"skipped: {check.skipped_because}", "checked": False}, ()
    result = {
        "result": f"passed ({check.fields} field(s) fit the table)",
        "checked": True,
        "notes": advice(route.field_map, check.airtable_fields),
    }
    return result, check.airtable_fields


def problem_text(route: Any, error: Any) -> str:
    """A schema problem, named as the operator fixes it: the single-table variable
    (`FIELD_MAP targets ...`), or the route (`route "donations" targets ...`)."""
    from poller.model import DEFAULT_ROUTE

    variable = getattr(error, "variable", "")
    if route.name == DEFAULT_ROUTE or variable not in ROUTE_KEYS:
        return str(error)
    return f'route "{route.name}"{ROUTE_KEYS[variable]} {error.problem}'


def preview(config: Any, args: argparse.Namespace, checks: Mapping[str, Check]) -> dict[str, Any]:
    """What the sample message would become, through the real `routing.Router` of every
    route (resolved to the table's field ids where the schema was read, as a run does):
    {"origin", "body" (the text, verbatim), "route", "base", "table", "fields": [{"field",
    "value"}], "merge_on", "merge_key"}; or {"origin", "body", "route": None, "error"} for
    a message that would be dead-lettered; or, for a sample built from the first route's
    mapping that no route takes (its "when" is not filled in), {..., "route": None, "note"}."""
    from poller.errors import ConfigError, MappingError
    from poller.model import Message
    from poller.routing import Router
    from poller_ops.samples import synthetic_body

    first = config.routes[0]
    built = args.body is None and args.message is None
    if args.body is not None:
        body, origin = args.body, "--body"
    elif args.message is not None:
        body, origin = read_bodies(args.message)[0], args.message
    else:
        fields = checks[first.name][1]
        body = json.dumps(synthetic_body(first.field_map, fields))
        origin = "built from the mapping" + (" and the table" if fields else "")
        if len(config.routes) > 1:
            origin = f'built from route "{first.name}"\'s mapping' + (
                " and its table" if fields else ""
            )
    sources = [s.source for r in config.routes for s in r.field_map.specs]
    sources += [c.source for r in config.routes for c in r.when]
    attribute = "$MessageAttributes."
    message = Message(
        id="00000000-0000-0000-0000-000000000000",
        receipt="-",
        body=body,
        sent_at_ms=int(time.time() * 1000),
        attributes={
            s.removeprefix(attribute): "example" for s in sources if s.startswith(attribute)
        },
    )
    shown = {"origin": origin, "body": body, "route": None}
    routes = [resolved(route, checks[route.name][1]) for route in config.routes]
    try:
        record = Router(routes, config.envelope)(message)
    except ConfigError as exc:
        return {**shown, "error": f"cannot be previewed: {exc}"}
    except MappingError as exc:
        if built and exc.reason.startswith("no route matched"):
            note = (
                f"{exc.reason}: a sample built from the mapping does not fill in the "
                '"when" of the routes; pass --body or --message to preview a real message'
            )
            return {**shown, "note": note}
        return {**shown, "error": exc.reason}
    except Exception as exc:  # the drain dead-letters a message whose mapping crashes, too
        return {**shown, "error": f"mapping failed ({type(exc).__name__}: {str(exc)[:200]})"}
    route = next(r for r in routes if r.name == record.route)
    names = {s.key: s.field for s in route.field_map.specs}
    return {
        **shown,
        "route": route.name,
        "base": route.base_id,
        "table": route.table,
        "fields": [{"field": names.get(k, k), "value": v} for k, v in record.fields.items()],
        "merge_on": [names.get(k, k) for k in route.merge_on],
        "merge_key": [json.loads(k) for k in record.key] if record.key else None,
    }


def resolved(route: Any, airtable_fields: Sequence[Any]) -> Any:
    """The route as a run uses it once the schema was read (`Route.resolved`): writing by
    field id, with the table's field types; as configured when the schema is unknown."""
    from poller.errors import ConfigError
    from poller.routing import field_index

    if not airtable_fields:
        return route
    try:
        return route.resolved(*field_index(airtable_fields))
    except ConfigError:  # the schema check has reported it
        return route
