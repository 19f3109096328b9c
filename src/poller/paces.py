"""Each base's learned capacity kept in SSM Parameter Store, so that a new container starts
from it: one standard-tier parameter per base, `{PACE_PARAMETER_PREFIX}/{base id}`, holding
`capacity.Capacity.to_json()`. Overlapping invocations are safe: the last writer wins, and
each writes what it learned. Without PACE_PARAMETER_PREFIX nothing is kept."""

from __future__ import annotations

import json
import logging
from typing import Any

from .capacity import Capacity
from .errors import aws_error_code

log = logging.getLogger(__name__)


class PaceStore:
    """`client` is a boto3 SSM client, or None to keep nothing."""

    def __init__(self, client: Any, prefix: str | None) -> None:
        self.client = client if prefix else None
        self.prefix = prefix or ""

    def name(self, base_id: str) -> str:
        return f"{self.prefix}/{base_id}"

    def load(self, base_id: str, ceiling: float) -> Capacity:
        """The kept capacity, or a fresh one at the ceiling; an unreadable parameter falls
        back to the ceiling with one warning."""
        if self.client is None:
            return Capacity(ceiling)
        try:
            value = self.client.get_parameter(Name=self.name(base_id))["Parameter"]["Value"]
            return Capacity.from_json(json.loads(value), ceiling)
        except Exception as exc:
            code = aws_error_code(exc)
            if code != "ParameterNotFound":
                log.warning(
                    "the kept pace of base %s (%s) could not be read (%s); starting from %g requests/s",
                    base_id,
                    self.name(base_id),
                    code or f"{type(exc).__name__}: {exc}",
                    ceiling,
                )
            return Capacity(ceiling)

    def save(self, base_id: str, capacity: Capacity) -> None:
        if self.client is None or not capacity.changed:
            return
        try:
            self.client.put_parameter(
                Name=self.name(base_id),
                Value=json.dumps(capacity.to_json(), sort_keys=True),
                Type="String",
                Tier="Standard",
                Overwrite=True,
            )
            capacity.changed = False
        except Exception as exc:
            log.warning("the pace of base %s could not be kept (%s)", base_id, exc)
