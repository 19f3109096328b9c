"""`poller check-config`: will a run work? The run's own checks, and a preview.

It validates the environment as the function does, then proves what a run needs, the way a
run proves it before its first receive:

* the queue: `GetQueueAttributes` on QUEUE_URL and, when set, on DEAD_LETTER_QUEUE_URL;
* Airtable: `poller.preflight.Preflight.check`, the very checks before every run (the
  token and its scopes, the bases list's permission levels, each base's schema against its
  routes, one data read per base), each base's requests in a slot of its `Pacer`.

OK means that every one of them was reached and passed. Anything that could not be checked
(no network, a 5xx, a lockout) is named, and the verdict is NOT OK: one verdict line, at
the end. A sample message is then mapped by the real router and shown as the write would
send it, with the advice the schema gives.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .common import aws_error_text, client, emit, is_aws_error, quiet, rows, validated_config
from .send import read_bodies

#: The human labels of the `config` keys (the JSON keys are identifiers).
LABELS = {
    "queue": "queue",
    "dead_letter_queue": "dead-letter queue",
    "airtable": "Airtable",
    "token": "token",
    "envelope": "envelope",
    "mapping": "mapping",
}
#: How long the Airtable checks may wait for a base's slot (a lockout included).
CHECK_SECONDS = 60.0
#: Causes that mean "could not be checked", not "found wrong".
UNREACHED = ("outage", "capacity")


def add_parser(command: Any) -> None:
    check = command(
        "check-config",
        "the run's own checks (queue, token, bases, schema, data read), and a preview",
        "Validate the environment exactly as the function does, then make the checks a run\n"
        "makes before it receives: the queue and the dead-letter queue (GetQueueAttributes),\n"
        "and Airtable (the token and its scopes, the bases list's permission levels, each\n"
        "base's schema against its routes, one data read per base). OK means all of them\n"
        "were reached and passed; anything not reached (no network, a 5xx) makes it NOT OK\n"
        "(exit status 1). Then show which route a sample message takes and what would be\n"
        "written (by default, a message built from the first route's mapping).",
    )
    sample = check.add_mutually_exclusive_group()
    sample.add_argument("--message", type=str, help="a message body file (JSON)")
    sample.add_argument("--body", help="a message body, inline JSON")
    check.set_defaults(handler=cmd_check_config)


@dataclass
class AirtableCheck:
    """What the preflight found: the routes that may be written (resolved), their fits,
    each route's failures, the requests it made, and the bases that locked it out (429)
    meanwhile: the check waits a lockout out and asks again, as a run does."""

    routes: dict[str, Any] = field(default_factory=dict)
    fits: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, list[Any]] = field(default_factory=dict)
    requests: int = 0
    locked_out: list[str] = field(default_factory=list)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = validated_config(args)
    if config is None:
        return 1
    with quiet("poller"):  # the outcome is printed below; no stray log line on stderr
        queues = check_queues(config)
        airtable = check_airtable(config)
    sample = preview(config, args, airtable)
    routes = [route_data(config, route, airtable) for route in config.routes]
    warnings = warnings_of(config)
    problems = verdict_problems(queues, routes, sample)
    ok = not problems
    queue = "the queue, the dead-letter queue" if len(queues) > 1 else "the queue"
    bases = len(config.bases)
    verdict = (
        f"OK: {queue} and Airtable (the token, {bases} base(s): schema and a data read each) "
        "were reached, and every route fits its table"
        if ok
        else "NOT OK: " + "; ".join(problems)
    )
    data = {
        "ok": ok,
        "config": describe(config),
        "checks": {
            "queue": queues[0],
            "dead_letter_queue": queues[1] if len(queues) > 1 else None,
            "airtable": {
                "requests": airtable.requests,
                "locked_out": airtable.locked_out,
                "routes_fit": sorted(airtable.routes),
            },
        },
        "routes": routes,
        "warnings": warnings,
        "sample": sample,
        "verdict": verdict,
    }

    def human() -> str:
        items = [(LABELS[k], v) for k, v in data["config"].items()]
        for check in queues:
            at = 0 if check["name"] == "queue" else 1
            items[at] = (items[at][0], f"{check['url']}: {check_text(check)}")
        lines = rows(items, "")
        for route, shown in zip(config.routes, routes, strict=True):
            lines += route_lines(route, shown)
        lines += [f"warning: {w}" for w in warnings]
        lines += sample_lines(sample)
        if airtable.locked_out:
            lines.append(
                f"note: Airtable locked base(s) {', '.join(airtable.locked_out)} out (429) during "
                "the checks; they waited the lockout out and asked again, as a run does"
            )
        lines.append(verdict)
        return "\n".join(lines)

    emit(args, data, human)
    return 0 if ok else 1


# -- what is checked ------------------------------------------------------------------------


def check_queues(config: Any) -> list[dict[str, Any]]:
    """GetQueueAttributes on the source queue and the DLQ, through the function's adapter."""
    from poller.sqs import SqsQueue

    sqs = client("sqs", config.queue_url)
    queue = SqsQueue(sqs, config.queue_url, config.dead_letter_queue_url)
    checks = []
    try:
        facts = queue.facts()
        detail = f"{facts.visible} waiting, {facts.in_flight} in flight" + (
            f", maxReceiveCount {facts.max_receive_count}" if facts.max_receive_count else ""
        )
        checks.append(_queue("queue", config.queue_url, True, True, detail))
    except Exception as exc:
        checks.append(_queue("queue", config.queue_url, *_not_reached(exc)))
    if config.dead_letter_queue_url:
        url = config.dead_letter_queue_url
        try:
            exists = queue.dead_letter_queue_exists()
        except Exception as exc:
            checks.append(_queue("dead_letter_queue", url, *_not_reached(exc)))
        else:
            detail = "exists" if exists else "does not exist: a run would fail on it"
            checks.append(_queue("dead_letter_queue", url, True, exists, detail))
    return checks


def _queue(name: str, url: str, reached: bool, passed: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "url": url, "reached": reached, "passed": passed, "detail": detail}


def _not_reached(exc: BaseException) -> tuple[bool, bool, str]:
    """(reached, passed, detail) of a queue call that raised: an answer (the queue does not
    exist, no permission) was reached; a connection that failed was not."""
    if getattr(exc, "response", None):
        return True, False, aws_error_text(exc)
    text = aws_error_text(exc) if is_aws_error(exc) else f"{type(exc).__name__}: {exc}"
    return False, False, f"not reached ({text})"


def check_text(check: Mapping[str, Any]) -> str:
    if check["passed"]:
        return f"reached ({check['detail']})"
    return check["detail"] if not check["reached"] else f"FAILED: {check['detail']}"


def check_airtable(config: Any) -> AirtableCheck:
    """The checks before every run (`Preflight.check`) on every route, paced per base."""
    from poller.airtable import make_api
    from poller.capacity import Capacity
    from poller.credentials import SecretUnavailableError, TokenNotConfiguredError, TokenSource
    from poller.pacing import Deadline, Pacer
    from poller.preflight import Preflight
    from poller.systemic import Cause, SystemicFailure

    result = AirtableCheck()
    tokens = TokenSource(token=config.token, secret_arn=config.token_secret_arn)
    try:
        token = tokens.current()
    except (TokenNotConfiguredError, SecretUnavailableError) as exc:
        for route in config.routes:
            result.failures[route.name] = [SystemicFailure(route.name, Cause.SECRET, str(exc))]
        return result
    api = make_api(token=token, api_url=config.api_url, timeout=config.timeout_seconds)
    pacers = {base: Pacer(Capacity(config.base_rps)) for base in config.bases}
    ends = time.monotonic() + CHECK_SECONDS
    deadline = Deadline(lambda: int((ends - time.monotonic()) * 1000), 0.0)
    checked = Preflight(api, tokens, pacers, typecast=config.typecast).check(
        config.routes, deadline
    )
    result.routes = {name: ready.route for name, ready in checked.ready.items()}
    result.fits = {name: ready.fit for name, ready in checked.ready.items()}
    result.requests = checked.requests
    for failure in checked.failures:
        result.failures.setdefault(failure.route, []).append(failure)
    result.locked_out = [base for base, pacer in pacers.items() if pacer.lockouts]
    return result


def verdict_problems(
    queues: Sequence[Mapping[str, Any]],
    routes: Sequence[Mapping[str, Any]],
    sample: Mapping[str, Any],
) -> list[str]:
    """What keeps the verdict from OK, each in a few words."""
    problems = []
    for check in queues:
        what = "the queue" if check["name"] == "queue" else "the dead-letter queue"
        if not check["reached"]:
            problems.append(f"{what} was not reached")
        elif not check["passed"]:
            problems.append(f"{what} failed its check")
    for route in routes:
        check = route["check"]
        if check["result"] == "not checked":
            problems.append(f'route "{route["name"]}" could not be checked ({check["cause"]})')
        elif check["result"] != "passed":
            problems.append(f'route "{route["name"]}" failed its check ({check["cause"]})')
    if "error" in sample:
        problems.append("the sample message would be dead-lettered")
    return problems


def warnings_of(config: Any) -> list[str]:
    """The configuration's own warnings, and each route written in create mode."""
    from poller.model import DEFAULT_ROUTE, Action

    found = list(config.warnings)
    for route in config.routes:
        if route.action is not Action.CREATE:
            continue
        who = (
            "MERGE_ON is none"
            if route.name == DEFAULT_ROUTE
            else f'route "{route.name}" has no merge_on'
        )
        found.append(
            f"{who}: records are created, not upserted, so a redelivered message or a lost "
            "answer makes a duplicate row"
        )
    if not config.dead_letter_queue_url:
        found.append(
            "DEAD_LETTER_QUEUE_URL is not set: poison stays in the source queue until its "
            "redrive policy moves it, without a reason"
        )
    return found


# -- what is shown ----------------------------------------------------------------------------


def describe(config: Any) -> dict[str, Any]:
    """The config without secrets: the token is shown as set or not, never its value."""
    return {
        "queue": config.queue_url,
        "dead_letter_queue": config.dead_letter_queue_url or "-",
        "airtable": config.api_url,
        "token": "set (AIRTABLE_TOKEN)" if config.token else "from AIRTABLE_TOKEN_SECRET_ARN",
        "envelope": f"{config.envelope} (ENVELOPE; a route may set its own)",
        "mapping": mapping_origin(config),
    }


def mapping_origin(config: Any) -> str:
    """Where the routes come from: `ROUTES_FILE routes.json (2 route(s))`, `inline ROUTES`,
    or for the single table `FIELD_MAP field_maps/donations.json` or `inline FIELD_MAP`
    (named by the variable that was set), with the mapping's own description if any."""
    from poller.model import DEFAULT_ROUTE

    def given(name: str) -> str:
        return os.environ.get(name, "").strip()

    if config.routes[0].name != DEFAULT_ROUTE or given("ROUTES") or given("ROUTES_FILE"):
        inline = given("ROUTES").lstrip()[:1] in ("{", "[")
        name = "ROUTES_FILE" if given("ROUTES_FILE") else "ROUTES"
        path = given(name) if name == "ROUTES_FILE" or not inline else ""
        origin = f"{name} {path}" if path else "inline ROUTES"
        return f"{origin} ({len(config.routes)} route(s))"
    inline = given("FIELD_MAP").lstrip()[:1] == "{"
    name = "FIELD_MAP_FILE" if given("FIELD_MAP_FILE") else "FIELD_MAP"
    path = given(name) if name == "FIELD_MAP_FILE" or not inline else ""
    origin = f"{name} {path}" if path else "inline FIELD_MAP"
    description = config.routes[0].field_map.description
    return f"{origin}: {description}" if description else origin


def route_data(config: Any, route: Any, airtable: AirtableCheck) -> dict[str, Any]:
    """One route for display: where it writes, when, how, and what its check found."""
    return {
        "name": route.name,
        "base": route.base_id,
        "table": route.table,
        "when": [c.describe() for c in route.when],
        "envelope": route.envelope or config.envelope,
        "envelope_from": "route" if route.envelope else "ENVELOPE",
        "action": str(route.action),
        "merge_on": list(route.merge_on),
        "version": {"source": route.version[0], "field": route.version[1]}
        if route.version
        else None,
        "deleted_field": route.deleted_field,
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
        "check": route_check(route, airtable),
    }


def route_check(route: Any, airtable: AirtableCheck) -> dict[str, Any]:
    """`{"result": "passed", "fields", "notes"}`, or `{"result": "FAILED" or "not checked",
    "cause", "detail", "fix"}` from the route's first failure."""
    from poller_ops.advice import advice

    failures = airtable.failures.get(route.name)
    if failures:
        first = failures[0]
        cause = str(first.cause)
        return {
            "result": "not checked" if cause in UNREACHED else "FAILED",
            "cause": cause,
            "detail": "; ".join(dict.fromkeys(f.detail for f in failures)),
            "fix": first.fix,
        }
    found = airtable.fits.get(route.name)
    if found is None:  # not reached: the check stopped before this route's base
        detail = "the checks stopped before this route's base"
        return {"result": "not checked", "cause": "outage", "detail": detail, "fix": ""}
    return {
        "result": "passed",
        "fields": len(route.field_map.specs),
        "notes": advice(route, found.fields),
    }


def route_lines(route: Any, shown: Mapping[str, Any]) -> list[str]:
    when = " and ".join(shown["when"]) or "every message"
    check = shown["check"]
    envelope = shown["envelope"] + (" (ENVELOPE)" if shown["envelope_from"] == "ENVELOPE" else "")
    merge_on = ", ".join(shown["merge_on"]) or "- (every message creates a record)"
    items = [("when", when), ("envelope", envelope), ("action", shown["action"])]
    items.append(("merge on", merge_on))
    if shown["version"]:
        version = shown["version"]
        items.append(("version", f'{version["source"]} -> "{version["field"]}"'))
    if shown["deleted_field"]:
        items.append(("deleted", f'"{shown["deleted_field"]}" ticked (a soft delete)'))
    lines = [f'route "{route.name}": base {route.base_id}, table "{route.table}"']
    lines += rows(items)
    lines.append(f"  mapping ({len(route.field_map.specs)} field(s))")
    lines += [f"    {s.describe()}" for s in route.field_map.specs]
    if check["result"] == "passed":
        lines.append(
            f"  check: passed (the token, the base, {check['fields']} field(s) that fit the "
            "table, a data read)"
        )
        lines += [f"    note: {n}" for n in check["notes"]]
    else:
        lines.append(f"  check: {check['result']} ({check['cause']})")
        if check["detail"]:
            lines.append(f"    - {check['detail']}")
        if check["fix"]:
            lines.append(f"    fix: {check['fix']}")
    return lines


def sample_lines(sample: Mapping[str, Any]) -> list[str]:
    lines = [f"sample message ({sample['origin']}):", f"  {sample['body']}"]
    if "error" in sample:
        return [*lines, f"would be dead-lettered: {sample['error']}"]
    if "note" in sample:
        return [*lines, f"note: {sample['note']}"]
    lines.append(
        f'matched route "{sample["route"]}": would write to base {sample["base"]}, '
        f'table "{sample["table"]}":'
    )
    shown = []
    for f in sample["fields"]:
        value = json.dumps(f["value"])
        if f.get("links_to"):
            value += f' (rows of "{f["links_to"]}" by this key; their record ids are written)'
        shown.append((f'"{f["field"]}"', value))
    lines += rows(shown)
    lines.append(f"  {sample['write']}")
    return lines


def preview(config: Any, args: argparse.Namespace, airtable: AirtableCheck) -> dict[str, Any]:
    """What the sample message would become, through the real `routing.Router` of every
    route (resolved to the table's field ids where the schema was read, as a run does):
    {"origin", "body" (the text, verbatim), "route", "base", "table", "fields": [{"field",
    "value", "links_to"?}], "action", "merge_on", "merge_key", "version", "write"}; or
    {"origin", "body", "route": None, "error"} for a message that would be dead-lettered;
    or, for a sample built from the first route's mapping that no route takes (its "when"
    is not filled in), {..., "route": None, "note"}."""
    from poller.errors import ConfigError, MappingError
    from poller.model import Attribute, Message
    from poller.routing import Router
    from poller_ops.samples import synthetic_body

    first = config.routes[0]
    built = args.body is None and args.message is None
    if args.body is not None:
        body, origin = args.body, "--body"
    elif args.message is not None:
        body, origin = read_bodies(args.message)[0], args.message
    else:
        found = airtable.fits.get(first.name)
        fields = found.fields if found else ()
        version = first.version[1] if first.version else None
        body = json.dumps(synthetic_body(first.field_map, fields, version_field=version))
        origin = "built from the mapping" + (" and the table" if fields else "")
        if len(config.routes) > 1:
            origin = f'built from route "{first.name}"\'s mapping' + (
                " and its table" if fields else ""
            )
    sources = [s.source for r in config.routes for s in r.field_map.specs]
    sources += [c.source for r in config.routes for c in r.when]
    prefix = "$MessageAttributes."
    message = Message(
        id="00000000-0000-0000-0000-000000000000",
        receipt="-",
        body=body,
        sent_at_ms=int(time.time() * 1000),
        attributes={
            s.removeprefix(prefix): Attribute("String", "example")
            for s in sources
            if s.startswith(prefix)
        },
    )
    shown: dict[str, Any] = {"origin": origin, "body": body, "route": None}
    routes = [airtable.routes.get(route.name, route) for route in config.routes]
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
    return {**shown, **written(route, record)}


def written(route: Any, record: Any) -> dict[str, Any]:
    """The record as the write sends it, by field name, and the write it makes."""
    names = {s.key: s.field for s in route.field_map.specs}
    links = {s.key: s.options.table for s in route.field_map.specs if s.type == "link"}
    if route.deleted_field:
        names[route.deleted_field_id or route.deleted_field] = route.deleted_field
    fields = []
    for key, value in record.fields.items():
        entry: dict[str, Any] = {"field": names.get(key, key), "value": _plain(value)}
        if key in links:
            entry["links_to"] = links[key]
        fields.append(entry)
    merge_on = [names.get(k, k) for k in route.merge_on]
    key = list(record.key) if record.key else None
    action = str(record.action)
    if action == "create":
        write = "create a record (no merge fields: a redelivery makes another)"
    elif action == "delete":
        write = f"delete the row whose {merge_on} = {key}"
    else:
        write = f"upsert on {merge_on} = {key}"
    if record.version is not None:
        write += f", only if its version {record.version:g} is newer than the row's"
    return {
        "route": route.name,
        "base": route.base_id,
        "table": route.table,
        "fields": fields,
        "action": action,
        "merge_on": merge_on,
        "merge_key": key,
        "version": record.version,
        "write": write,
    }


def _plain(value: Any) -> Any:
    """A value as JSON shows it (a link's keys are a tuple)."""
    return list(value) if isinstance(value, tuple) else value
