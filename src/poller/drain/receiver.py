"""The receiver: long-polls the queue while writes are in flight, maps each message,
dead-letters poison at once, and hands the records to the assembler.

It holds at most `max_buffered` messages (received and not yet settled), not counting those
parked for a base that waits out a lockout nor a route's backlog beyond its share
(`Assembler.uncounted`), and never more than `MAX_HELD_FACTOR` times that (nor
`MAX_HELD_BYTES` of bodies) in all. It stops on an empty receive, on the deadline, or
when the run halts. A message mapped to a route that is
closed (broken, or out of time) is set aside for release at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Container

from ..errors import MappingError, UnknownRouteError
from ..model import DeadLetter, Message, Record
from ..policies import Clock, Deadline
from ..ports import QueuePort
from .assembler import Assembler
from .settler import Settler
from .state import SQS_BATCH, RunState, Settings

log = logging.getLogger(__name__)

#: While a base waits out a lockout, its messages keep arriving mixed with the others'; they
#: are parked (not counted against `max_buffered`) so the other bases keep their pace, up to
#: this many times `max_buffered` messages in all (2,000 at the default 100: a 30 s lockout
#: of one of two bases parks about 48 x 30 = 1,440 messages at full pace; past the bound the
#: others slow down rather than the memory grow)...
MAX_HELD_FACTOR = 20
#: ...and up to this many bytes of message bodies held in all (a body may be 1 MiB).
MAX_HELD_BYTES = 64 * 1024 * 1024
#: The most one receive can add (10 messages of up to 1 MiB each).
BATCH_BYTES = SQS_BATCH * 1024 * 1024


class Receiver:
    def __init__(
        self,
        queue: QueuePort,
        mapper: Callable[[Message], Record],
        routes: Container[str],
        state: RunState,
        assembler: Assembler,
        settler: Settler,
        settings: Settings,
        deadline: Deadline,
        clock: Clock,
    ) -> None:
        self.queue = queue
        self.mapper = mapper
        self.routes = routes
        self.state = state
        self.assembler = assembler
        self.settler = settler
        self.settings = settings
        self.deadline = deadline
        self.clock = clock

    def run(self) -> None:
        """The receiving thread's body. Any failure stops the run (with its error)."""
        state = self.state
        try:
            while not state.halted.is_set():
                with state.cond:
                    while self._full() and not state.halted.is_set():
                        state.cond.wait(timeout=0.05)
                    held_at_receive = state.held
                if state.halted.is_set() or self.deadline.expired():
                    break
                messages = self.queue.receive(
                    max_messages=SQS_BATCH,
                    wait_seconds=self.settings.wait_time_seconds,
                    visibility_seconds=self.deadline.visibility_seconds(),
                )
                if not messages:
                    if self.settings.fifo and self._held_groups_may_settle(held_at_receive):
                        continue
                    break
                self.accept(messages)
        except Exception as exc:
            log.exception("receiving failed; stopping the run")
            state.stop_with("error", exc)
        finally:
            with state.cond:
                state.receiver_done = True
                state.cond.notify_all()

    def _full(self) -> bool:
        """No room for another receive (under the run's lock)."""
        state, limit = self.state, self.settings.max_buffered
        if state.held + SQS_BATCH > limit * MAX_HELD_FACTOR:
            return True
        if state.held_bytes + BATCH_BYTES > MAX_HELD_BYTES:
            return True
        return state.held - self.assembler.uncounted() + SQS_BATCH > limit

    def accept(self, messages: list[Message]) -> None:
        """Map each message; buffer the records, dead-letter the poison."""
        poison: list[DeadLetter] = []
        unrouted: list[tuple[Message, str]] = []
        now = self.clock()
        state = self.state
        with state.cond:
            state.summary.received += len(messages)
            state.held += len(messages)
            state.held_bytes += sum(len(m.body) for m in messages)
        for message in messages:
            try:
                record = self.mapper(message)
                check_sendable(record)
            except MappingError as exc:
                poison.append(DeadLetter(message, exc.reason, "MAPPING_ERROR"))
                continue
            except Exception as exc:
                # One message must never stop the run: a body that crashes the mapper (JSON
                # nested 100,000 deep raises RecursionError) is that message's poison. Logged
                # with its traceback, in case it is a bug of the mapping instead.
                log.exception("mapping crashed on message %s; dead-lettering it", message.id)
                reason = f"mapping failed: {type(exc).__name__}: {exc}"
                poison.append(DeadLetter(message, reason, "MAPPING_ERROR"))
                continue
            if record.route not in self.routes:
                unrouted.append((message, record.route))
                continue
            with state.cond:
                if state.closed(record.route):
                    state.set_aside([message])
                else:
                    self.assembler.add(record, message, now)
        if poison:
            self.settler.dead_letter(poison)
        if unrouted:
            state.set_aside(m for m, _ in unrouted)
            raise UnknownRouteError(sorted({route for _, route in unrouted}))

    def _held_groups_may_settle(self, held_at_receive: int) -> bool:
        """FIFO only. SQS returns nothing from a group while this run holds any of its
        messages, so an empty receive proves the queue empty only if the run held nothing
        when it asked. Otherwise receive again once something held has settled (its group
        may be unlocked now; it may have settled during the long poll already), or stop
        receiving when nothing held can settle any more (only blocked groups are left)."""
        state = self.state
        with state.cond:
            while state.held and state.held == held_at_receive and not state.halted.is_set():
                if self.assembler.in_flight == 0 and not self.assembler.takeable():
                    return False
                state.cond.wait(timeout=0.05)
            return bool(held_at_receive) and not state.halted.is_set()


def check_sendable(record: Record) -> None:
    """A record travels as strict JSON in UTF-8. A lone surrogate ("\\ud800" is a legal JSON
    escape, so SQS and the parser let it through) or a NaN cannot: caught here it is one
    message's poison; caught by the sink it would fail the whole request of ten, every time."""
    try:
        json.dumps(record.fields, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise MappingError(
            f"a value is not valid Unicode ({exc.reason}: {bad!r}) and cannot be sent as UTF-8"
        ) from None
    except ValueError as exc:
        raise MappingError(f"a value cannot be sent as JSON: {exc}") from None
    except TypeError:
        return  # not JSON-serialisable at all: the sink's concern (a bug, not poison)
