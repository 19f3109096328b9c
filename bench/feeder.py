"""A feeder that keeps the queue's visible depth near a target while something drains it.

moto's SQS scans every message on each call, so a deep queue makes moto, not the poller,
the bottleneck (measured on a 2-core machine: 184 msgs/s at depth 50, 10 at depth 1,000;
`python -m bench.moto_inflight` shows the same for messages in flight). The feeder tops
the queue up with SendMessageBatch and records what depth the consumer actually saw, so
the report can show that the queue never ran dry while messages were left to send.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devstack.stack import sqs_client

POLL_SECONDS = 0.1
BATCH = 10


@dataclass
class FeederStats:
    sent: int = 0
    send_calls: int = 0
    depth_samples: int = 0
    #: Samples, while messages were still to be sent, with fewer than 10 visible: the
    #: consumer could have received a short batch because of the feeder, not itself.
    short_samples: int = 0
    #: When the first short samples were taken, seconds after the feeder started.
    short_at_s: list[float] = field(default_factory=list)
    min_visible: int | None = None
    max_visible: int = 0
    drained_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "send_calls": self.send_calls,
            "depth_samples": self.depth_samples,
            "short_samples": self.short_samples,
            "short_at_s": self.short_at_s,
            "min_visible": self.min_visible,
            "max_visible": self.max_visible,
        }


#: A message to send: its body, or SendMessageBatch entry fields (`MessageBody`, and
#: `MessageAttributes` when a route matches on them).
Item = str | dict[str, Any]


class Feeder:
    """Keep about `depth` messages visible until every item is sent, or until
    `close_supply` says that what was sent so far is all. Use as a context."""

    def __init__(self, endpoint: str, queue_url: str, bodies: list[Item], depth: int) -> None:
        if depth < BATCH:
            raise ValueError(f"depth must be at least {BATCH}")
        self.sqs = sqs_client(endpoint)
        self.queue_url = queue_url
        self.bodies = bodies
        self.depth = depth
        self.stats = FeederStats()
        self._next = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-feeder", daemon=True)
        self._error: BaseException | None = None
        self._started = time.monotonic()
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return len(self.bodies) - self._next

    def close_supply(self) -> int:
        """Send nothing more: what was sent so far is the workload. Returns how many."""
        with self._lock:
            self.bodies = self.bodies[: self._next]
            return self._next

    def __enter__(self) -> Feeder:
        self._started = time.monotonic()
        self._send(min(self.depth, len(self.bodies)))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error

    def _run(self) -> None:
        try:
            while self.remaining and not self._stopped.is_set():
                visible = self._visible()
                room = self.depth - visible
                if room >= BATCH or room >= self.remaining:
                    self._send(min(room, self.remaining))
                else:
                    self._stopped.wait(POLL_SECONDS)
            self.stats.drained_at = time.monotonic()
        except BaseException as exc:  # reported by __exit__ in the benchmark's thread
            self._error = exc

    def _visible(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        visible = int(attributes["ApproximateNumberOfMessages"])
        stats = self.stats
        stats.depth_samples += 1
        if visible < BATCH:
            stats.short_samples += 1
            if len(stats.short_at_s) < 10:
                stats.short_at_s.append(round(time.monotonic() - self._started, 2))
        stats.min_visible = (
            visible if stats.min_visible is None else min(stats.min_visible, visible)
        )
        stats.max_visible = max(stats.max_visible, visible)
        return visible

    def _send(self, count: int) -> None:
        end = self._next + count
        while True:
            with self._lock:
                if self._next >= min(end, len(self.bodies)):
                    return
                chunk = self.bodies[self._next : min(end, self._next + BATCH)]
                entries = [_entry(i, item) for i, item in enumerate(chunk)]
                response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                if response.get("Failed"):
                    raise RuntimeError(f"SendMessageBatch failed: {response['Failed']}")
                self._next += len(chunk)
                self.stats.sent += len(chunk)
                self.stats.send_calls += 1


def _entry(n: int, item: Item) -> dict[str, Any]:
    if isinstance(item, str):
        return {"Id": str(n), "MessageBody": item}
    return {"Id": str(n), **item}
