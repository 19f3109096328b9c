"""Every environment variable the function reads, declared once.

Each `Setting` says its name, type, default, bounds, importance and what it does. `read`
builds the values from an environment and collects every problem at once; `Config` (in
`config`) is built from those values; docs/configuration.md's tables and the template's
`Environment` are checked against this table by the tests. Facts about Airtable (the 30 s
lockout, 10 records per request) are constants in the modules that use them, not settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One variable. `kind` is text, url, int, float, bool or choice; `default` None means
    unset (whether that is allowed is `config`'s rule, since some settings come in pairs).
    `aliases` are older names still read, with one warning."""

    name: str
    kind: str
    #: "high": most deployments set it; "tuning": a knob with a safe default; "deprecated":
    #: still read, with one warning, but no longer meant to be set
    importance: str
    doc: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        """The value of `raw` (already stripped, not empty); raise ConfigError."""
        if self.kind == "bool":
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ConfigError(self.name, f"must be true or false, got {raw!r}")
        if self.kind == "choice":
            if raw.lower() not in self.choices:
                raise ConfigError(
                    self.name, f"must be one of {', '.join(self.choices)}, got {raw!r}"
                )
            return raw.lower()
        if self.kind == "url" and not _URL.match(raw):
            raise ConfigError(self.name, f"must be an http(s) URL, got {raw!r}")
        if self.kind in ("int", "float"):
            return self._number(raw)
        return raw

    def _number(self, raw: str) -> int | float:
        what = "a whole number" if self.kind == "int" else "a number"
        try:
            value: int | float = int(raw) if self.kind == "int" else float(raw)
        except ValueError:
            raise ConfigError(
                self.name, f"must be {what} between {self.low:g} and {self.high:g}, got {raw!r}"
            ) from None
        assert self.low is not None and self.high is not None
        if not self.low <= value <= self.high:
            raise ConfigError(
                self.name, f"must be between {self.low:g} and {self.high:g}, got {raw}"
            )
        return value


SETTINGS: tuple[Setting, ...] = (
    # -- where messages come from and go ------------------------------------------------
    Setting("QUEUE_URL", "url", "high", "The source queue (standard or `.fifo`)."),
    Setting(
        "DEAD_LETTER_QUEUE_URL",
        "url",
        "high",
        "Where poison goes, with its reason. Unset: poison stays in the source queue until "
        "the queue's redrive policy moves it, without a reason.",
    ),
    Setting(
        "AIRTABLE_TOKEN_SECRET_ARN",
        "text",
        "high",
        "The Secrets Manager secret that holds the Airtable token (deployed). Exactly one of "
        "this and `AIRTABLE_TOKEN`.",
    ),
    Setting(
        "AIRTABLE_TOKEN",
        "text",
        "high",
        "The Airtable token itself (local runs). Exactly one of this and "
        "`AIRTABLE_TOKEN_SECRET_ARN`.",
    ),
    Setting(
        "AIRTABLE_BASE_ID",
        "text",
        "high",
        "The base of the single-table configuration (`app` + 14 letters/digits).",
    ),
    Setting("AIRTABLE_TABLE", "text", "high", "Its table, by name or id (`tbl…`)."),
    Setting(
        "FIELD_MAP",
        "text",
        "high",
        "Message key to Airtable field, typed (docs: field mapping): inline JSON, or the path "
        "of a JSON file shipped with the function.",
        aliases=("FIELD_MAP_FILE",),
    ),
    Setting(
        "MERGE_ON",
        "text",
        "high",
        "1-3 comma-separated fields to upsert on, which makes every write idempotent; "
        "`none` creates rows instead (a redelivery then makes a duplicate).",
    ),
    Setting(
        "ROUTES",
        "text",
        "high",
        "Several tables and bases instead of the four variables above (docs: routes): inline "
        "JSON, or the path of a JSON file shipped with the function.",
        aliases=("ROUTES_FILE",),
    ),
    Setting(
        "PACE_PARAMETER_PREFIX",
        "text",
        "high",
        "An SSM Parameter Store path, e.g. `/sqs-airtable-poller/pace`: each base's learned "
        "pace and API calls this month are kept under it, one parameter per base, so that a "
        "new container starts from them. Unset: nothing is kept.",
    ),
    # -- tuning ---------------------------------------------------------------------------
    Setting(
        "ENVELOPE",
        "choice",
        "tuning",
        "How bodies are unwrapped: SNS and EventBridge envelopes (docs: routes and envelopes).",
        default="auto",
        choices=("auto", "raw", "sns", "eventbridge"),
    ),
    Setting(
        "AIRTABLE_API_URL",
        "url",
        "tuning",
        "Airtable's endpoint (the local emulator in tests). https unless the host is loopback "
        "or `host.docker.internal`.",
        default="https://api.airtable.com",
    ),
    Setting(
        "WAIT_TIME_SECONDS",
        "int",
        "tuning",
        "Long-poll wait of each receive; an empty long poll ends the run.",
        default=1,
        low=0,
        high=20,
    ),
    Setting(
        "AIRTABLE_MAX_RPS",
        "float",
        "tuning",
        "The most requests/s sent to one base; the learned pace stays at or below it.",
        default=5.0,
        low=1.0,
        high=50.0,
    ),
    Setting(
        "MAX_IN_FLIGHT_WRITES",
        "int",
        "tuning",
        "Requests in flight at once per base (1 on FIFO queues).",
        default=4,
        low=1,
        high=10,
    ),
    Setting(
        "AIRTABLE_TIMEOUT_SECONDS",
        "float",
        "tuning",
        "Read timeout of each Airtable request (connect timeout 3.05 s).",
        default=10.0,
        low=1.0,
        high=120.0,
    ),
    Setting(
        "WRITE_MAX_ATTEMPTS",
        "int",
        "tuning",
        "Attempts of a request that fails transiently (5xx, timeout), with backoff.",
        default=4,
        low=1,
        high=10,
    ),
    Setting(
        "DEAD_LETTER_AFTER_RECEIVES",
        "int",
        "tuning",
        "A message whose write failed transiently on this many receives is dead-lettered with "
        "its last error (never later than the queue's maxReceiveCount); 0: never.",
        default=4,
        low=0,
        high=1000,
    ),
    Setting(
        "AIRTABLE_TYPECAST",
        "bool",
        "tuning",
        "Let Airtable convert values (and create select options) instead of the mapping.",
        default=False,
    ),
    Setting(
        "WIRE_DEBUG",
        "bool",
        "tuning",
        "Let the HTTP libraries log at DEBUG, bodies included (the token stays masked).",
        default=False,
    ),
    # -- deprecated: still read, with one warning ---------------------------------------
    Setting(
        "AIRTABLE_TOKEN_MAX_RPS",
        "float",
        "deprecated",
        "The token's 50 requests/s across every base is Airtable's limit, a fact; to give "
        "each of several functions on one token its share, set `AIRTABLE_MAX_RPS` to that "
        "share divided by the function's bases.",
        low=1.0,
        high=50.0,
    ),
)

BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}

#: Variables that are no longer read, and why: setting one logs a warning, nothing more.
RETIRED: Mapping[str, str] = {
    "AIRTABLE_LOCKOUT_SECONDS": "Airtable's lockout is a fact (30 s), not a setting",
    "STOP_MARGIN_SECONDS": "the stop margin is derived from WAIT_TIME_SECONDS and "
    "AIRTABLE_TIMEOUT_SECONDS",
    "BATCH_LINGER_SECONDS": "how long a partial request waits is internal (1 s)",
    "MAX_BUFFERED_MESSAGES": "the receive budget follows each base's pace and the deadline",
    "SCHEMA_CHECK": "the token, the base and the schema are checked before every run",
    "SYSTEMIC_RETRY_SECONDS": "a systemic failure is checked again before every run",
}


@dataclass
class Values:
    """What `read` found: each setting's value (its default when unset), the problems,
    the warnings, and for each setting that was set, the variable it was read from (its
    name, or an alias), so that a problem found later names what the user wrote."""

    values: dict[str, Any]
    errors: list[ConfigError]
    warnings: list[str]
    given: dict[str, str]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def read(env: Mapping[str, str]) -> Values:
    """Every setting from `env`; never raises (the problems are collected)."""
    found = Values({}, [], [], {})
    for setting in SETTINGS:
        name = setting.name
        set_as = [(n, env.get(n, "").strip()) for n in (name, *setting.aliases)]
        set_as = [(n, v) for n, v in set_as if v]
        found.values[name] = setting.default
        if not set_as:
            continue
        if len(set_as) > 1:
            names = " and ".join(n for n, _ in set_as)
            found.errors.append(ConfigError(name, f"is set twice ({names}); keep {name}"))
        source, raw = set_as[0]
        if source != name:
            found.warnings.append(f"{source} is deprecated: set {name} (it takes the same value)")
        found.given[name] = source
        if setting.importance == "deprecated":
            found.warnings.append(f"{source} is deprecated: {setting.doc}")
        try:
            found.values[name] = setting.parse(raw)
        except ConfigError as exc:
            found.errors.append(ConfigError(source, exc.problem))
    for retired, why in RETIRED.items():
        if env.get(retired, "").strip():
            found.warnings.append(f"{retired} is no longer read: {why}")
    return found
