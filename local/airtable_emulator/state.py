"""Everything an emulator holds, behind one lock.

The request pipeline and the control API both work on one :class:`State`. Its lock guards
every field; the helpers here expect the caller to hold it unless they say otherwise.
Each concern draws from its own RNG seeded from ``seed``, so turning one on changes no
other sequence.
"""

from __future__ import annotations

import random
import string
import threading
import time
from typing import Any

from .access import Grant
from .base import Base
from .conditions import Conditions
from .config import EmulatorConfig
from .limits import RateLimiter
from .listing import Iterators
from .schema import find_field, validate_schema
from .stats import Counters, WriteLogEntry
from .table import Table

_ID_ALPHABET = string.ascii_letters + string.digits


class State:
    """Bases, tokens, limits, conditions, counters and the seeded id sources."""

    def __init__(self, config: EmulatorConfig) -> None:
        for base_id, schema in config.bases.items():
            validate_schema(base_id, schema)
        self.config = config
        self.clock = config.clock
        self.lock = threading.Lock()
        self.bases = {base_id: Base(base_id, schema) for base_id, schema in config.bases.items()}
        self.grants = {token: Grant(frozenset(scopes)) for token, scopes in config.tokens.items()}
        self.jitter_ms = config.arrival_jitter_ms
        self.latency = config.latency
        self.faults = config.faults
        self.limiter = RateLimiter(
            config.rate_limit_rps, config.lockout_seconds, reorder_seconds=self.jitter_ms / 1000.0
        )
        self.conditions = Conditions(self.limiter, config.seed)
        seed = config.seed
        self.latency_rng = random.Random(f"{seed}:latency")
        self.fault_rng = random.Random(f"{seed}:faults")
        self.jitter_rng = random.Random(f"{seed}:jitter")
        self._id_rng = random.Random(f"{seed}:ids")
        self._schema_id_rng = random.Random(f"{seed}:schema-ids")
        self._attachment_rng = random.Random(f"{seed}:attachment-ids")
        self._issued: set[str] = set()
        self.counters = Counters()
        self.write_log: list[WriteLogEntry] = []
        self.iterators = Iterators()

    # ------------------------------------------------------------------ ids

    def _draw(self, rng: random.Random, prefix: str) -> str:
        while True:
            new_id = prefix + "".join(rng.choice(_ID_ALPHABET) for _ in range(14))
            if new_id not in self._issued:
                self._issued.add(new_id)
                return new_id

    def new_id(self) -> str:
        """A fresh ``rec`` + 14 alphanumerics, reproducible from the seed."""
        return self._draw(self._id_rng, "rec")

    def new_schema_id(self, prefix: str) -> str:
        """A fresh ``tbl``/``fld``/``viw``/``sel`` id from the seed."""
        return self._draw(self._schema_id_rng, prefix)

    def new_attachment_id(self) -> str:
        """A fresh ``att`` + 14 alphanumerics from the seed."""
        return self._draw(self._attachment_rng, "att")

    # -------------------------------------------------------------- lookups

    def base_or_key_error(self, base_id: str) -> Base:
        base = self.bases.get(base_id)
        if base is None:
            raise KeyError(base_id)
        return base

    def table_or_key_error(self, base_id: str, table: str) -> Table:
        found = self.base_or_key_error(base_id).table(table)
        if found is None:
            raise KeyError(f"{base_id}/{table}")
        return found

    def field_or_key_error(
        self, base_id: str, table: str, field: str
    ) -> tuple[Table, dict[str, Any]]:
        found = self.table_or_key_error(base_id, table)
        spec = find_field(found.schema, field)
        if spec is None:
            raise KeyError(f"{base_id}/{table}/{field}")
        return found, spec

    def grant_or_key_error(self, token: str) -> Grant:
        grant = self.grants.get(token)
        if grant is None:
            raise KeyError("unknown token")
        return grant

    # ----------------------------------------------------------- conditions

    def catch_up(self, base_id: str | None = None, until: float | None = None) -> None:
        """Admit neighbour requests due until ``until`` (default: now) for one base or all,
        counting the lockouts they start."""
        until = self.clock() if until is None else until
        if base_id is None:
            started = self.conditions.catch_up_all(until)
        else:
            started = {base_id: self.conditions.catch_up(base_id, until)}
        for key, count in started.items():
            if count:
                self.counters.lockout(key, count)

    # ------------------------------------------------------------------ log

    def log(self, base_id: str, table: Table, method: str, ids: list[str], kind: str) -> None:
        """Append an applied write to the write log (``time.monotonic()`` now)."""
        if ids:
            entry = WriteLogEntry(time.monotonic(), base_id, table.name, method, list(ids), kind)
            self.write_log.append(entry)
