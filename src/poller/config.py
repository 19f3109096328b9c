"""The one validated configuration object, built from the environment in one place.

Every variable is part of the public contract and documented in docs/configuration.md. A bad value
stops the run before any message is touched, with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from .envelopes import MODES as ENVELOPE_MODES
from .errors import ConfigError, ConfigErrors
from .mapping import FieldMap, resolve_map_file
from .routing import FIELD_ID, Route, load_routes, parse_routes, single_route

T = TypeVar("T", int, float)

DEFAULT_API_URL = "https://api.airtable.com"
_BASE_ID = re.compile(r"^app[A-Za-z0-9]{14}$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
#: Hosts that AIRTABLE_API_URL may name over plain http: the token never leaves the machine
#: (loopback), or only reaches the Docker host (`sam local`). IPv4 loopback is 127.0.0.0/8.
PLAIN_HTTP_HOSTS = frozenset({"localhost", "host.docker.internal"})
#: SCHEMA_CHECK: auto checks when the token may read the schema, on requires it, off skips it.
SCHEMA_CHECK_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Tuning:
    """Knobs with safe defaults; each is an environment variable (docs/configuration.md)."""

    wait_time_seconds: int = 1
    max_rps: float = 5.0
    max_in_flight: int = 4
    airtable_timeout_seconds: float = 10.0
    max_attempts: int = 4
    dead_letter_after_receives: int = 4
    batch_linger_seconds: float = 1.0
    max_buffered_messages: int = 100
    stop_margin_seconds: float | None = None
    lockout_seconds: float = 30.0
    typecast: bool = False
    #: Airtable's limit per token across all bases; lower it to give each of several functions
    #: sharing one token a static share (docs: "Performance", sharding).
    token_max_rps: float = 50.0
    #: While a systemic failure cannot be re-checked (the token may not read the schema),
    #: how long to hold the queue before trying to write again.
    systemic_retry_seconds: float = 900.0

    @property
    def stop_margin(self) -> float:
        """Seconds kept free at the end of a run to finish in-flight work and release the rest."""
        if self.stop_margin_seconds is not None:
            return self.stop_margin_seconds
        return self.wait_time_seconds + self.airtable_timeout_seconds + 2.0


@dataclass(frozen=True)
class Config:
    """Everything a run needs. `routes` always holds at least one route: the single-table
    variables (AIRTABLE_BASE_ID, AIRTABLE_TABLE, FIELD_MAP/FIELD_MAP_FILE, MERGE_ON) make one
    route named "default" that matches every message; ROUTES or ROUTES_FILE make several.
    `base_id`, `table`, `field_map` and `merge_on` are the first route's."""

    queue_url: str
    routes: tuple[Route, ...]
    token: str | None = None
    token_secret_arn: str | None = None
    dead_letter_queue_url: str | None = None
    api_url: str = DEFAULT_API_URL
    tuning: Tuning = Tuning()
    schema_check: str = "auto"
    #: ENVELOPE: how message bodies are unwrapped unless a route says otherwise.
    envelope: str = "auto"
    #: Where the routes came from: "ROUTES", "ROUTES_FILE" or "FIELD_MAP" (single table).
    routes_from: str = "FIELD_MAP"
    #: WIRE_DEBUG: log botocore/urllib3 wire traffic at DEBUG, bodies included, secrets masked
    #: (`poller.logs`). Off by default: message bodies never reach the logs.
    wire_debug: bool = False

    def __repr__(self) -> str:  # never print the token
        token = "<set>" if self.token else None
        routes = [f"{r.name}->{r.base_id}/{r.table}" for r in self.routes]
        return (
            f"Config(queue_url={self.queue_url!r}, routes={routes!r}, "
            f"token={token}, token_secret_arn={self.token_secret_arn!r}, "
            f"dead_letter_queue_url={self.dead_letter_queue_url!r}, api_url={self.api_url!r}, "
            f"envelope={self.envelope!r}, tuning={self.tuning!r}, "
            f"schema_check={self.schema_check!r}, wire_debug={self.wire_debug!r})"
        )

    __str__ = __repr__

    @property
    def base_id(self) -> str:
        return self.routes[0].base_id

    @property
    def table(self) -> str:
        return self.routes[0].table

    @property
    def field_map(self) -> FieldMap:
        return self.routes[0].field_map

    @property
    def merge_on(self) -> tuple[str, ...]:
        return self.routes[0].merge_on

    def warnings(self) -> list[str]:
        """Not errors, but what an operator must know: routes written in create mode."""
        notes = []
        for route in self.routes:
            if not route.merge_on:
                where = (
                    "MERGE_ON is not set"
                    if route.name == "default"
                    else (f'route "{route.name}" has no merge_on')
                )
                notes.append(
                    f"{where}: records are created, not upserted, so a redelivered message or a "
                    "lost Airtable response makes a duplicate row; for idempotency map a unique "
                    'value (e.g. "$MessageId" or the event\'s Id) to a field and merge on it'
                )
        return notes

    @property
    def is_fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, require_queue: bool = True) -> Config:
        """Build and validate; raise `ConfigErrors` listing every problem at once.

        `require_queue=False` is for tools that never touch the queue (`poller init-tables`):
        QUEUE_URL may then be unset (`queue_url` is ""), and is still checked when set."""
        reader = _Reader(env)
        queue_url = reader.url("QUEUE_URL", required=require_queue) or ""
        dlq_url = reader.url("DEAD_LETTER_QUEUE_URL", required=False)
        envelope = reader.choice("ENVELOPE", ENVELOPE_MODES, "auto")
        routes, routes_from = reader.routes()
        token = reader.text("AIRTABLE_TOKEN", required=False)
        secret_arn = reader.text("AIRTABLE_TOKEN_SECRET_ARN", required=False)
        if bool(token) == bool(secret_arn):
            reader.fail(
                "AIRTABLE_TOKEN",
                "or AIRTABLE_TOKEN_SECRET_ARN: exactly one must be set "
                f"({'both are' if token else 'neither is'} set); use the secret ARN when deployed",
            )
        elif secret_arn and not secret_arn.startswith("arn:"):
            reader.fail(
                "AIRTABLE_TOKEN_SECRET_ARN",
                "must be a Secrets Manager ARN (arn:aws:secretsmanager:...)",
            )
        api_url = reader.url("AIRTABLE_API_URL", required=False) or DEFAULT_API_URL
        if (why := _plain_http_refused(api_url)) is not None:
            reader.fail("AIRTABLE_API_URL", why)
        wire_debug = reader.flag("WIRE_DEBUG", False)
        tuning = Tuning(
            wait_time_seconds=reader.number("WAIT_TIME_SECONDS", int, 1, 0, 20),
            max_rps=reader.number("AIRTABLE_MAX_RPS", float, 5.0, 0.1, 50.0),
            max_in_flight=reader.number("MAX_IN_FLIGHT_WRITES", int, 4, 1, 10),
            airtable_timeout_seconds=reader.number(
                "AIRTABLE_TIMEOUT_SECONDS", float, 10.0, 1.0, 120.0
            ),
            max_attempts=reader.number("WRITE_MAX_ATTEMPTS", int, 4, 1, 10),
            dead_letter_after_receives=reader.number("DEAD_LETTER_AFTER_RECEIVES", int, 4, 0, 1000),
            batch_linger_seconds=reader.number("BATCH_LINGER_SECONDS", float, 1.0, 0.0, 60.0),
            max_buffered_messages=reader.number("MAX_BUFFERED_MESSAGES", int, 100, 20, 1000),
            stop_margin_seconds=reader.optional_number("STOP_MARGIN_SECONDS", float, 0.0, 600.0),
            lockout_seconds=reader.number("AIRTABLE_LOCKOUT_SECONDS", float, 30.0, 0.0, 300.0),
            typecast=reader.flag("AIRTABLE_TYPECAST", False),
            token_max_rps=reader.number("AIRTABLE_TOKEN_MAX_RPS", float, 50.0, 0.1, 50.0),
            systemic_retry_seconds=reader.number(
                "SYSTEMIC_RETRY_SECONDS", float, 900.0, 0.0, 86_400.0
            ),
        )
        schema_check = reader.choice("SCHEMA_CHECK", SCHEMA_CHECK_MODES, "auto")
        if tuning.token_max_rps < tuning.max_rps:
            reader.fail(
                "AIRTABLE_TOKEN_MAX_RPS",
                f"({tuning.token_max_rps}) must be at least AIRTABLE_MAX_RPS ({tuning.max_rps})",
            )
        reader.raise_if_failed()
        assert routes and (queue_url or not require_queue)
        return cls(
            queue_url=queue_url,
            routes=routes,
            token=token,
            token_secret_arn=secret_arn,
            dead_letter_queue_url=dlq_url,
            api_url=api_url.rstrip("/"),
            tuning=tuning,
            schema_check=schema_check,
            envelope=envelope,
            routes_from=routes_from,
            wire_debug=wire_debug,
        )


def _plain_http_refused(url: str) -> str | None:
    """Why `url` may not carry the bearer token, or None when it may: https, or http to a
    loopback host or host.docker.internal (the host is the one a client would connect to, so
    `http://localhost@evil.example` names evil.example)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None  # not a URL at all: the format check already reports it
    if parts.scheme.lower() != "http" or not host:
        return None
    if host in PLAIN_HTTP_HOSTS:
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


class _Reader:
    """Reads variables, collecting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[ConfigError] = []

    def fail(self, variable: str, problem: str) -> None:
        self.errors.append(ConfigError(variable, problem))

    def raise_if_failed(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)

    def text(self, name: str, *, required: bool) -> str | None:
        value = self.env.get(name, "").strip()
        if not value:
            if required:
                self.fail(name, "is required but not set")
            return None
        return value

    def url(self, name: str, *, required: bool) -> str | None:
        value = self.text(name, required=required)
        if value and not _URL.match(value):
            self.fail(name, f"must be an http(s) URL, got {value!r}")
        return value

    def number(self, name: str, kind: Callable[[str], T], default: T, low: T, high: T) -> T:
        value = self.optional_number(name, kind, low, high)
        return default if value is None else value

    def optional_number(self, name: str, kind: Callable[[str], T], low: T, high: T) -> T | None:
        raw = self.env.get(name, "").strip()
        if not raw:
            return None
        what = "a whole number" if kind is int else "a number"
        try:
            value = kind(raw)
        except ValueError:
            self.fail(name, f"must be {what} between {low} and {high}, got {raw!r}")
            return None
        if not low <= value <= high:
            self.fail(name, f"must be between {low} and {high}, got {raw}")
            return None
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        self.fail(name, f"must be true or false, got {raw!r}")
        return default

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        raw = self.env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw not in choices:
            self.fail(name, f"must be one of {', '.join(choices)}, got {raw!r}")
            return default
        return raw

    def routes(self) -> tuple[tuple[Route, ...], str]:
        """ROUTES (inline JSON) or ROUTES_FILE, or the single-table variables as one route."""
        raw = self.text("ROUTES", required=False)
        path = self.text("ROUTES_FILE", required=False)
        single = [
            name
            for name in (
                "AIRTABLE_BASE_ID",
                "AIRTABLE_TABLE",
                "FIELD_MAP",
                "FIELD_MAP_FILE",
                "MERGE_ON",
            )
            if self.env.get(name, "").strip()
        ]
        if raw and path:
            self.fail("ROUTES", "and ROUTES_FILE are both set; keep one")
            return (), "ROUTES"
        if raw or path:
            variable = "ROUTES" if raw else "ROUTES_FILE"
            if single:
                self.fail(
                    variable,
                    f"is set together with the single-table variables {single}; routes replace "
                    "them: keep one style",
                )
            try:
                if path:
                    file = resolve_map_file(path, self.env.get("LAMBDA_TASK_ROOT"), variable)
                    return load_routes(file, variable), variable
                assert raw is not None
                return parse_routes(raw, variable), variable
            except ConfigError as exc:
                self.errors.append(exc)
                return (), variable
        base_id = self.text("AIRTABLE_BASE_ID", required=True)
        if base_id and not _BASE_ID.match(base_id):
            self.fail(
                "AIRTABLE_BASE_ID", f"must look like app + 14 letters/digits, got {base_id!r}"
            )
        table = self.text("AIRTABLE_TABLE", required=True)
        field_map = self.field_map()
        merge_on = self.merge_on(field_map)
        if not (base_id and table and field_map):
            return (), "FIELD_MAP"
        return (single_route(base_id, table, field_map, merge_on),), "FIELD_MAP"

    def field_map(self) -> FieldMap | None:
        """FIELD_MAP (inline JSON) or FIELD_MAP_FILE (a JSON file shipped with the function)."""
        raw = self.text("FIELD_MAP", required=False)
        path = self.text("FIELD_MAP_FILE", required=False)
        if raw and path:
            self.fail("FIELD_MAP", "and FIELD_MAP_FILE are both set; keep one")
            return None
        if not raw and not path:
            self.fail(
                "FIELD_MAP", "is required but not set (or set FIELD_MAP_FILE to a mapping file)"
            )
            return None
        try:
            if path:
                return FieldMap.load(resolve_map_file(path, self.env.get("LAMBDA_TASK_ROOT")))
            assert raw is not None
            return FieldMap.parse(raw)
        except ConfigError as exc:
            self.errors.append(exc)
            return None

    def merge_on(self, field_map: FieldMap | None) -> tuple[str, ...]:
        raw = self.env.get("MERGE_ON", "").strip()
        if not raw:
            return ()
        names = tuple(n.strip() for n in raw.split(","))
        if any(not n for n in names) or len(set(names)) != len(names):
            self.fail(
                "MERGE_ON", f"must be 1 to 3 distinct comma-separated field names, got {raw!r}"
            )
            return ()
        if len(names) > 3:
            self.fail("MERGE_ON", f"takes at most 3 fields (Airtable's limit), got {len(names)}")
        if field_map is not None:
            # a field id (fld…) is resolved against the table's schema at cold start
            unknown = [n for n in names if n not in field_map.fields and not FIELD_ID.match(n)]
            if unknown:
                self.fail(
                    "MERGE_ON",
                    f"names {unknown}, which FIELD_MAP never fills; merge fields must be mapping targets "
                    f"(targets: {list(field_map.fields)})",
                )
        return names
