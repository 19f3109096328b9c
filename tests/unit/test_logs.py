"""The logging policy (`poller.logs`): library loggers pinned, secrets masked, bodies out."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from devstack.factories import DONATION_FIELD_MAP_JSON, Budget, donation
from devstack.memory import MemoryQueue, MemorySink

from poller import logs
from poller.capacity import Capacity
from poller.drain import Drain, Limits
from poller.fieldmap import FieldMap
from poller.model import DEFAULT_ROUTE
from poller.pacing import Deadline, Pacer
from poller.routing import Router, single_route
from poller.writer import Destination, Writer

#: Shaped like a real Airtable personal access token: pat + 14 + "." + 64 hex.
PAT = "patTestLogs0000001." + "0123456789abcdef" * 4
#: A secret with no recognisable shape: only registration can mask it.
PLAIN_SECRET = "hunter2-correct-horse-battery"


class Capture(logging.Handler):
    """Formats every record it gets with `formatter` into `lines`."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter or logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def policy_state() -> Iterator[None]:
    """Put back what `install` changes in the process-wide logging tree."""
    names = [*logs.LIBRARY_LOGGERS, *[f"{n}.child" for n in logs.LIBRARY_LOGGERS]]
    saved = {
        name: (lg.level, list(lg.handlers), lg.propagate)
        for name in names
        for lg in [logging.getLogger(name)]
    }
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    yield
    logs.install(Logger(service=f"restore-{uuid.uuid4().hex}"), wire_debug=False)
    for name, (level, handlers, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.handlers = handlers
        lg.propagate = propagate
    root.setLevel(root_level)
    root.handlers = root_handlers


def powertools_logger(stream: io.StringIO) -> Logger:
    """A fresh Powertools Logger (its own service) writing JSON lines to `stream`."""
    logger = Logger(service=f"test-{uuid.uuid4().hex[:8]}", level="DEBUG", stream=stream)
    return logger


def test_token_shapes_and_bearer_credentials_are_masked():
    redactor = logs.Redactor()
    # GIVEN a real-shaped token, a truncated one, and an Authorization header
    text = f"a {PAT} b {PAT[:40]} c Authorization: Bearer {PLAIN_SECRET}, d"
    # WHEN redacted
    masked = redactor.redact(text)
    # THEN none of them is left, and the text around them is
    assert PAT[:30] not in masked and PLAIN_SECRET not in masked
    assert masked == f"a {logs.MASK} b {logs.MASK} c Authorization: Bearer {logs.MASK}, d"
    # AND ordinary words that start with "pat" are kept
    assert redactor.redact("pattern.match patient.record") == "pattern.match patient.record"


def test_registered_secrets_are_masked_and_a_rotated_token_too():
    redactor = logs.Redactor()
    assert redactor.redact(PLAIN_SECRET) == PLAIN_SECRET  # no shape: unknown until registered
    # GIVEN the token read at cold start, then the one read after a rotation
    redactor.register(PLAIN_SECRET)
    redactor.register("rotated-" + PLAIN_SECRET)
    # WHEN either appears THEN both are masked (the old one may still be in a late error)
    assert redactor.redact(f"x {PLAIN_SECRET} y rotated-{PLAIN_SECRET}") == "x *** y ***"
    # AND an empty or very short secret is ignored rather than shredding every line
    redactor.register("")
    redactor.register("abc")
    assert redactor.redact("abc def") == "abc def"


def test_every_part_of_a_record_is_masked_for_a_stdlib_and_a_powertools_handler():
    # GIVEN a logger whose records reach a stdlib handler and a Powertools JSON handler
    redactor = logs.Redactor()
    redactor.register(PLAIN_SECRET)
    stream = io.StringIO()
    source = powertools_logger(stream)
    plain = Capture()
    for handler in (plain, source.registered_handler):
        handler.addFilter(redactor)
    log = logging.getLogger(f"poller.test{uuid.uuid4().hex[:6]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(plain)
    log.addHandler(source.registered_handler)
    # WHEN secrets are in the message, the args, nested extras and an exception with a cause
    try:
        try:
            raise ValueError(f"upstream said {PAT}")
        except ValueError as cause:
            raise RuntimeError(f"wrapping {PLAIN_SECRET}") from cause
    except RuntimeError:
        log.exception(
            "token %s in args",
            PAT,
            extra={"detail": {"headers": [f"Bearer {PLAIN_SECRET}"], "n": 3}, "raw": PAT.encode()},
        )
    log.warning("dict message", extra={"token": PLAIN_SECRET})
    log.info({"structured": PAT})
    # THEN neither secret is in any byte of either output
    out = plain.text + stream.getvalue()
    assert PAT[:25] not in out and PLAIN_SECRET not in out
    # AND the lines are still useful: masked, with the exception's type and traceback
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "token *** in args"
    assert lines[0]["detail"] == {"headers": ["Bearer ***"], "n": 3}
    assert lines[0]["exception_name"] == "RuntimeError"
    assert "wrapping ***" in lines[0]["exception"] and "upstream said ***" in lines[0]["exception"]
    assert "wrapping ***" in plain.lines[0] and "Traceback" in plain.lines[0]
    assert lines[1]["token"] == "***" and lines[2]["message"] == {"structured": "***"}


def test_an_exception_without_a_secret_keeps_its_structured_stack_trace():
    stream = io.StringIO()
    source = powertools_logger(stream)
    source.registered_handler.addFilter(logs.Redactor())
    try:
        raise KeyError("nothing secret")
    except KeyError:
        source.exception("failed")
    [line] = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["exception_name"] == "KeyError" and line["stack_trace"]["type"] == "KeyError"


def test_the_gate_drops_library_records_below_warning_only():
    gate = logs.LibraryGate()

    def passes(name: str, level: int) -> bool:
        return gate.filter(logging.makeLogRecord({"name": name, "levelno": level}))

    assert not passes("botocore.endpoint", logging.DEBUG)
    assert not passes("urllib3.connectionpool", logging.INFO)
    assert not passes("boto3", logging.DEBUG)
    assert passes("botocore.credentials", logging.WARNING)
    assert passes("poller.drain", logging.DEBUG)  # the poller's own loggers are not gated
    assert passes("botocorex", logging.DEBUG)  # a namespace, not a prefix
    gate.level = logs.WIRE_DEBUG_LEVEL
    assert passes("botocore.endpoint", logging.DEBUG)


@pytest.mark.usefixtures("policy_state")
def test_install_holds_library_loggers_at_warning_whatever_the_levels_say():
    # GIVEN the root logger at DEBUG with a handler (Lambda's AWS_LAMBDA_LOG_LEVEL=DEBUG), a
    # Powertools logger at DEBUG, and a library child logger someone set to DEBUG
    stream = io.StringIO()
    source = powertools_logger(stream)
    root_capture = Capture()
    logging.getLogger().addHandler(root_capture)
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("botocore.child").setLevel(logging.DEBUG)
    # WHEN the policy is installed, and then something copies the Powertools config onto the
    # library loggers (Powertools' recipe for JSON library logs: DEBUG, its handler on them)
    logs.install(source)
    assert logging.getLogger("botocore").level == logging.WARNING
    assert logging.getLogger("botocore.child").level == logging.NOTSET
    copy_config_to_registered_loggers(
        source_logger=source, log_level="DEBUG", include=set(logs.LIBRARY_LOGGERS)
    )
    assert logging.getLogger("botocore").level == logging.DEBUG  # the level alone is beaten
    for name in logs.LIBRARY_LOGGERS:
        logging.getLogger(f"{name}.child").debug("Response body: %s", PAT)
        logging.getLogger(f"{name}.child").info("body of message 1: hello")
    logging.getLogger("botocore.child").warning("a warning gets through, masked: %s", PAT)
    # THEN no library DEBUG or INFO record reaches either handler, and the warning does, masked
    out = stream.getvalue() + root_capture.text
    assert "Response body" not in out and "hello" not in out and PAT[:25] not in out
    assert "a warning gets through, masked: ***" in out


@pytest.mark.usefixtures("policy_state")
def test_install_is_idempotent_and_covers_root_handlers_added_later():
    stream = io.StringIO()
    source = powertools_logger(stream)
    logs.install(source)
    late = Capture()
    logging.getLogger().addHandler(late)
    logging.getLogger().setLevel(logging.DEBUG)
    # WHEN installed again (a warm invocation)
    logs.install(source)
    logs.install(source)
    # THEN each handler carries each filter once, the late root handler included
    for handler in (source.registered_handler, late):
        assert [type(f).__name__ for f in handler.filters].count("LibraryGate") == 1
        assert [type(f).__name__ for f in handler.filters].count("Redactor") == 1
    logging.getLogger("urllib3.child").debug("starting connection with %s", PAT)
    assert late.lines == []


@pytest.mark.usefixtures("policy_state")
def test_wire_debug_lets_library_debug_through_the_powertools_handler_still_masked():
    stream = io.StringIO()
    source = powertools_logger(stream)
    logs.install(source, secrets=[PLAIN_SECRET])
    # WHEN wire debugging is asked for
    logs.install(source, wire_debug=True)
    logging.getLogger("botocore.child").debug("Response body: %s %s", PAT, PLAIN_SECRET)
    # THEN the line is in the Powertools output, as JSON, with both secrets masked
    [line] = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["message"] == "Response body: *** ***" and line["name"] == "botocore.child"
    # AND without it again, the same line is dropped
    logs.install(source, wire_debug=False)
    logging.getLogger("botocore.child").debug("Response body again")
    assert "again" not in stream.getvalue()
    assert source.registered_handler not in logging.getLogger("botocore").handlers


def donations_drain(queue: MemoryQueue, sink: MemorySink) -> Drain:
    """The donations route over the fakes: no long polls, a pace that never waits."""
    route = single_route(
        "appDonations00001", "Donations", FieldMap.parse(DONATION_FIELD_MAP_JSON), ("Id",)
    )
    deadline = Deadline(Budget(30), 0.5)
    writer = Writer(deadline, max_attempts=3, suspect=lambda message, error: False)
    destination = Destination(DEFAULT_ROUTE, sink, Pacer(Capacity(1000.0)))
    limits = Limits(wait_time_seconds=0, linger_seconds=0.05, poll_seconds=0.005)
    return Drain(
        queue, Router([route]), {DEFAULT_ROUTE: destination}, deadline, writer, limits=limits
    )


def test_the_drain_never_logs_a_message_body_at_debug(caplog):
    # GIVEN valid messages, poison, and a rejected record, with every logger at DEBUG
    queue, sink = MemoryQueue(), MemorySink(merge_on=("Id",))
    sink.reject = lambda fields: (
        "INVALID_VALUE_FOR_COLUMN" if fields.get("Id") == str(uuid.UUID(int=3)) else None
    )
    bodies = [json.dumps(donation(n, DonorDisplayName=f"Secret Donor {n}")) for n in range(6)]
    bodies += ['{"Id": "x", "DonationAmount": "Secret Poison"', "Secret plain text"]
    for body in bodies:
        queue.send(body)
    caplog.set_level(logging.DEBUG)
    # WHEN the queue is drained
    summary = donations_drain(queue, sink).run()
    # THEN the run logged (dead letters, rejections) but no body, nor a value only a body holds
    assert summary.dead_lettered == 3 and caplog.records
    text = "\n".join(r.getMessage() + repr(vars(r)) for r in caplog.records)
    for body in bodies:
        assert body not in text
    assert "Secret" not in text
