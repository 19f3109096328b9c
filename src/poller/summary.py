"""What one run confirmed. Every count is of confirmed outcomes, never of attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StopReason = Literal["empty", "deadline", "error", "systemic", "not_configured"]


@dataclass
class RunSummary:
    """The run's result, as the handler returns it and logs it ("run finished").

    * `received`: messages received; `written`: records Airtable confirmed (`created` +
      `updated`); `superseded`: messages collapsed into a later one of the same merge key,
      counted once that one was written; `stale`: messages not written because their
      version was not newer than the row's, or than a newer message's that was written;
    * `deleted`, `dead_lettered`, `released`, `requeued`: what SQS confirmed for them;
      `failed`: poison that could not be dead-lettered (no DLQ, or the DLQ did not store
      it); `delete_failures`: deletes SQS did not confirm;
    * `requests`, `throttled` (429s), `retries`: Airtable requests of the drain;
      `airtable_requests`: every Airtable request of the run, the checks before it included;
    * `stopped_because`, `error`, and `stopped_routes` (route: why it was not written);
    * `pacing_rps`: the slowest base's pace at the end (requests/s)."""

    received: int = 0
    written: int = 0
    created: int = 0
    updated: int = 0
    superseded: int = 0
    stale: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    released: int = 0
    requeued: int = 0
    failed: int = 0
    delete_failures: int = 0
    batches: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    airtable_requests: int = 0
    elapsed_ms: int = 0
    stopped_because: StopReason = "empty"
    error: str | None = None
    stopped_routes: dict[str, str] = field(default_factory=dict)
    pacing_rps: float = 0.0
    batch_latency_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k != "batch_latency_ms"}
        data["stopped_routes"] = dict(self.stopped_routes)
        data["pacing_rps"] = round(self.pacing_rps, 2)
        data["records_per_request"] = (
            round(self.written / self.requests, 2) if self.requests else 0.0
        )
        return data
