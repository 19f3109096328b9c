"""The drain loop's core, written against `QueuePort`, `SinkPort` and `Pacer` only.

* `loop.Drain`: the run loop that wires the parts (start here);
* `receiver.Receiver`: long-polls, maps, dead-letters poison, buffers (bounded);
* `assembler.Assembler`: per-route buffers, merge keys and FIFO groups, request readiness;
* `writer.Writer`: one request: retry, bisection, lockout, systemic failures;
* `settler.Settler`: delete the confirmed, dead-letter the rejected, release the rest;
* `state`: the settings, the run summary and the state the parts share; `batch`: what
  travels between them.
"""

from ..ports import Destination
from .loop import Drain
from .state import RunSummary, Settings, StopReason

__all__ = ["Destination", "Drain", "RunSummary", "Settings", "StopReason"]
