"""The one validated configuration, built from the environment through `settings`.

A bad value stops the run before any message is touched, with every problem listed at once,
each naming its variable (`ConfigErrors`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import settings
from .errors import ConfigError, ConfigErrors
from .fieldmap import FieldMap
from .routes import base_problem, merge_problem, parse_routes
from .routing import Route, single_route

#: Hosts that AIRTABLE_API_URL may name over plain http: the token never leaves the machine
#: (loopback), or only reaches the Docker host (`sam local`). IPv4 loopback is 127.0.0.0/8.
PLAIN_HTTP_HOSTS = frozenset({"localhost", "host.docker.internal"})
#: Seconds kept free at the end of a run beyond one long poll and one request's timeout.
STOP_MARGIN_EXTRA_SECONDS = 2.0
#: Airtable's limit per token across every base, beside 5 per base, in requests/s (Airtable's
#: Web API documentation, "Rate limits").
TOKEN_MAX_RPS = 50.0
#: Base ids that are placeholders from the samples, never a real base.
PLACEHOLDER_BASE = re.compile(r"^app(REPLACEME|X{5}|Y{5})", re.IGNORECASE)


def _setting(name: str) -> Any:
    """A field that `from_env` fills with setting `name` as read; its default is the
    setting's, so that a Config built in code agrees with the table."""
    return field(default=settings.BY_NAME[name].default, metadata={"setting": name})


#: `fail(variable, problem)`: record one problem of the configuration.
Fail = Callable[[str, str], None]


@dataclass(frozen=True)
class Config:
    """Everything a run needs. `routes` always holds at least one route: the single-table
    variables make one route named "default" that matches every message."""

    queue_url: str
    routes: tuple[Route, ...]
    token: str | None = _setting("AIRTABLE_TOKEN")
    token_secret_arn: str | None = _setting("AIRTABLE_TOKEN_SECRET_ARN")
    dead_letter_queue_url: str | None = _setting("DEAD_LETTER_QUEUE_URL")
    api_url: str = settings.BY_NAME["AIRTABLE_API_URL"].default
    envelope: str = _setting("ENVELOPE")
    wait_time_seconds: int = _setting("WAIT_TIME_SECONDS")
    max_rps: float = _setting("AIRTABLE_MAX_RPS")
    token_max_rps: float = TOKEN_MAX_RPS
    max_in_flight: int = _setting("MAX_IN_FLIGHT_WRITES")
    timeout_seconds: float = _setting("AIRTABLE_TIMEOUT_SECONDS")
    max_attempts: int = _setting("WRITE_MAX_ATTEMPTS")
    dead_letter_after_receives: int = _setting("DEAD_LETTER_AFTER_RECEIVES")
    typecast: bool = _setting("AIRTABLE_TYPECAST")
    wire_debug: bool = _setting("WIRE_DEBUG")
    pace_parameter_prefix: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:  # never print the token
        routes = [f"{r.name}->{r.base_id}/{r.table}" for r in self.routes]
        return (
            f"Config(queue_url={self.queue_url!r}, routes={routes!r}, "
            f"token={'<set>' if self.token else None}, "
            f"token_secret_arn={self.token_secret_arn!r}, api_url={self.api_url!r})"
        )

    @property
    def is_fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")

    @property
    def stop_margin(self) -> float:
        """Seconds kept free at the end of a run to finish the request in flight and release
        the rest: one long poll, one request's timeout, and 2 s."""
        return self.wait_time_seconds + self.timeout_seconds + STOP_MARGIN_EXTRA_SECONDS

    @property
    def bases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.base_id for r in self.routes))

    @property
    def base_rps(self) -> float:
        """The most requests/s one base may get: AIRTABLE_MAX_RPS, within an even share of
        the token's 50 (or the deprecated AIRTABLE_TOKEN_MAX_RPS)."""
        return min(self.max_rps, self.token_max_rps / len(self.bases))

    @property
    def in_flight(self) -> int:
        """Requests in flight per base: one on FIFO queues, so a group's order holds."""
        return 1 if self.is_fifo else self.max_in_flight

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, require_queue: bool = True) -> Config:
        """Build and validate; raise `ConfigErrors` listing every problem at once.

        `require_queue=False` is for tools that never touch the queue (`poller init-tables`):
        QUEUE_URL may then be unset (`queue_url` is "")."""
        found = settings.read(env)
        errors = list(found.errors)

        def fail(variable: str, problem: str) -> None:
            errors.append(ConfigError(variable, problem))

        if require_queue and not found["QUEUE_URL"]:
            fail("QUEUE_URL", "is required but not set")
        token, secret_arn = found["AIRTABLE_TOKEN"], found["AIRTABLE_TOKEN_SECRET_ARN"]
        if bool(token) == bool(secret_arn):
            fail(
                "AIRTABLE_TOKEN",
                "or AIRTABLE_TOKEN_SECRET_ARN: exactly one must be set "
                f"({'both are' if token else 'neither is'} set); use the secret ARN when deployed",
            )
        elif secret_arn and not secret_arn.startswith("arn:"):
            fail(
                "AIRTABLE_TOKEN_SECRET_ARN",
                "must be a Secrets Manager ARN (arn:aws:secretsmanager:...)",
            )
        if (why := plain_http_refused(found["AIRTABLE_API_URL"])) is not None:
            fail("AIRTABLE_API_URL", why)
        token_max_rps = found["AIRTABLE_TOKEN_MAX_RPS"] or TOKEN_MAX_RPS
        if token_max_rps < found["AIRTABLE_MAX_RPS"]:
            fail(
                "AIRTABLE_TOKEN_MAX_RPS",
                f"({found['AIRTABLE_TOKEN_MAX_RPS']:g}) must be at least AIRTABLE_MAX_RPS "
                f"({found['AIRTABLE_MAX_RPS']:g})",
            )
        prefix = found["PACE_PARAMETER_PREFIX"]
        if prefix and not re.fullmatch(r"(/[A-Za-z0-9_.\-]+)+", prefix):
            fail(
                "PACE_PARAMETER_PREFIX",
                f"must be an SSM path such as /my-poller/pace, got {prefix!r}",
            )
        routes = _routes(found, env, fail)
        if errors:
            raise ConfigErrors(errors)
        return cls(
            **{f.name: found[f.metadata["setting"]] for f in fields(cls) if f.metadata},
            queue_url=found["QUEUE_URL"] or "",
            routes=routes,
            api_url=found["AIRTABLE_API_URL"].rstrip("/"),
            token_max_rps=token_max_rps,
            pace_parameter_prefix=prefix.rstrip("/") if prefix else None,
            warnings=tuple(found.warnings),
        )


def _routes(found: settings.Values, env: Mapping[str, str], fail: Fail) -> tuple[Route, ...]:
    """ROUTES, or the single-table variables as one route."""
    single = [
        n
        for n in ("AIRTABLE_BASE_ID", "AIRTABLE_TABLE", "FIELD_MAP", "MERGE_ON")
        if n in found.given
    ]
    if found["ROUTES"]:
        variable = found.given["ROUTES"]
        if single:
            fail(
                variable,
                f"is set together with the single-table variables {single}; keep one style",
            )
        try:
            routes = parse_routes(json_or_file(found["ROUTES"], variable, env), variable)
        except ConfigError as exc:
            fail(exc.variable, exc.problem)
            return ()
        for route in routes:  # parse_routes checked the form of each base id
            if (why := _placeholder(route.base_id)) is not None:
                fail(variable, f'route "{route.name}": {why}')
        return routes
    base_id = found["AIRTABLE_BASE_ID"]
    if not base_id:
        fail("AIRTABLE_BASE_ID", "is required but not set (or set ROUTES for several tables)")
    elif (why := base_problem(base_id) or _placeholder(base_id)) is not None:
        fail("AIRTABLE_BASE_ID", why)
    table = found["AIRTABLE_TABLE"]
    if not table:
        fail("AIRTABLE_TABLE", "is required but not set")
    field_map = None
    if not found["FIELD_MAP"]:
        fail("FIELD_MAP", "is required but not set: a JSON object, or the path of a mapping file")
    else:
        variable = found.given["FIELD_MAP"]
        try:
            field_map = FieldMap.parse(json_or_file(found["FIELD_MAP"], variable, env), variable)
        except ConfigError as exc:
            fail(exc.variable, exc.problem)
    merge_on = _merge_on(found["MERGE_ON"], field_map, fail)
    if not (base_id and table and field_map) or merge_on is None:
        return ()
    return (single_route(base_id, table, field_map, merge_on),)


def _merge_on(raw: str | None, field_map: FieldMap | None, fail: Fail) -> tuple[str, ...] | None:
    """MERGE_ON's fields; `none` is create mode; unset is a mistake (None)."""
    if not raw:
        fail(
            "MERGE_ON",
            "is required: the field(s) to upsert on, e.g. MERGE_ON=Id, so that a redelivered "
            "message updates its row; MERGE_ON=none creates rows instead (duplicates on redelivery)",
        )
        return None
    if raw.lower() == "none":
        return ()
    names = tuple(n.strip() for n in raw.split(","))
    if (why := merge_problem(list(names), field_map, "FIELD_MAP")) is not None:
        fail("MERGE_ON", why)
        return None
    return names


def _placeholder(base_id: str) -> str | None:
    if PLACEHOLDER_BASE.match(base_id):
        return f"{base_id!r} is a placeholder: put your base's id (from its URL)"
    return None


def json_or_file(value: str, variable: str, env: Mapping[str, str]) -> str:
    """The JSON text of a setting that takes inline JSON or a file's path."""
    if value.lstrip()[:1] in ("{", "["):  # JSON (the parser says what is wrong with it)
        return value
    path = find_file(value, env.get("LAMBDA_TASK_ROOT"), variable)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(variable, f"cannot be read ({path}: {exc.strerror})") from None


def find_file(value: str, task_root: str | None, variable: str) -> Path:
    """A mapping or routes file: absolute, or relative to the package, the Lambda task root
    or the working directory, the first that exists."""
    path = Path(value)
    package = Path(__file__).resolve().parent
    roots = [package, Path(task_root) if task_root else package.parent, Path.cwd()]
    candidates = [path] if path.is_absolute() else [root / path for root in roots]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise ConfigError(variable, f"is neither JSON nor a file that exists (looked for {looked})")


def plain_http_refused(url: str) -> str | None:
    """Why `url` may not carry the bearer token, or None: https, or http to a loopback host
    or host.docker.internal (the host a client connects to: `http://localhost@evil.example`
    names evil.example)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None  # not a URL at all: the format check reports it
    if parts.scheme.lower() != "http" or not host or host in PLAIN_HTTP_HOSTS:
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"must be https:// (plain http would send the Airtable token unencrypted to {host!r}); "
        "http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost) "
        "or host.docker.internal"
    )
