"""Keep a queue shallow while something drains it: moto's SQS slows down with depth."""

from __future__ import annotations

import json
import threading
from typing import Any

from .stack import LocalStack


class Feeder:
    """Keeps the queue shallow (moto slows with depth) by topping it up as the poller drains."""

    def __init__(self, stack: LocalStack, bodies: list[str], depth: int = 40) -> None:
        self.stack, self.bodies, self.depth = stack, list(bodies), depth
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.stopped = threading.Event()

    def _run(self) -> None:
        while self.bodies and not self.stopped.is_set():
            counts = self.stack.counts()
            room = self.depth - counts["visible"]
            if room >= 10:
                batch, self.bodies = self.bodies[:room], self.bodies[room:]
                self.stack.send_messages(batch)
            else:
                self.stopped.wait(0.02)

    def __enter__(self) -> Feeder:
        first, self.bodies = self.bodies[: self.depth], self.bodies[self.depth :]
        self.stack.send_messages(first)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    @property
    def remaining(self) -> int:
        return len(self.bodies)


def as_bodies(items: list[Any]) -> list[str]:
    return [i if isinstance(i, str) else json.dumps(i) for i in items]
