"""SQS operations behind the operator CLI: counts, age, peeking without consuming, redrive, send.

Every function takes a boto3 SQS client (real SQS, or moto's server), so the same code runs
against AWS and the local stack. Releases and deletes go through the function's own SQS
adapter (`poller.sqs.SqsQueue`), which reads every batch call's `Failed` entries. Nothing
here deletes a message unless its copy was confirmed sent first.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from poller.letters import LARGEST_ERROR_TYPE_BYTES, MAX_MESSAGE_BYTES, REASON_ATTRIBUTES
from poller.model import Message
from poller.settler import chunks
from poller.sqs import SqsQueue

#: SQS batch limits: 10 entries, and (since August 2025) 1 MiB per request.
BATCH_ENTRIES = 10
BATCH_BYTES = 1024 * 1024 - 16 * 1024
PEEK_VISIBILITY_SECONDS = 30
NO_REASON = "no poller reason: moved by SQS after maxReceiveCount receives"
#: A dead letter with neither `poller.error_type` nor `poller.reason` and less room than
#: this left of the 1 MiB had no room for them (the poller fits the type first, and a
#: reason only beside it: `poller.letters.dead_letter_request`).
_NO_ROOM_BYTES = LARGEST_ERROR_TYPE_BYTES


@dataclass(frozen=True)
class QueueStatus:
    """One queue's counts (approximate on real SQS: they lag by about a minute)."""

    url: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None = None
    max_receive_count: int | None = None
    dead_letter_queue_url: str | None = None


@dataclass(frozen=True)
class Letter:
    """A dead-lettered message and why it is there."""

    message_id: str
    reason: str
    error_type: str
    source_message_id: str | None
    receive_count: int
    sent_at: str | None
    body: str = field(repr=False)


@dataclass
class RedriveResult:
    method: str  # "move-task" or "copy"
    moved: int = 0
    task_handle: str | None = None
    fallback_because: str | None = None
    send_failures: int = 0
    delete_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def status(sqs: Any, url: str) -> QueueStatus:
    """Counts, and the DLQ and maxReceiveCount from the queue's RedrivePolicy."""
    facts = SqsQueue(sqs, url).facts()
    arn = facts.dead_letter_target_arn
    return QueueStatus(
        url=url,
        visible=facts.visible,
        in_flight=facts.in_flight,
        delayed=facts.delayed,
        max_receive_count=facts.max_receive_count,
        dead_letter_queue_url=url_of_arn(sqs, arn) if arn else None,
    )


def url_of_arn(sqs: Any, arn: str) -> str | None:
    """arn:aws:sqs:REGION:ACCOUNT:NAME -> the queue URL (None if it cannot be resolved)."""
    parts = arn.split(":")
    if len(parts) < 6:
        return None
    with contextlib.suppress(Exception):
        return str(
            sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
        )
    return None


def arn_of(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def oldest_age_seconds(cloudwatch: Any, url: str, now: datetime | None = None) -> float | None:
    """ApproximateAgeOfOldestMessage from CloudWatch (SQS has no API for it), or None when
    CloudWatch has no recent data point. Reading messages would raise their receive count
    and could push them to the DLQ, so the source queue is never peeked for this."""
    end = now or datetime.now(UTC)
    response = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name(url)}],
        StartTime=end - timedelta(minutes=15),
        EndTime=end + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def _messages(raws: Sequence[dict[str, Any]]) -> list[Message]:
    """Received messages as the SQS adapter takes them (only their id and receipt matter)."""
    return [Message(id=r["MessageId"], receipt=r["ReceiptHandle"], body="") for r in raws]


@contextlib.contextmanager
def _hidden(sqs: Any, url: str) -> Iterator[list[dict[str, Any]]]:
    """Collect received messages; on exit, make them visible again at once."""
    held: list[dict[str, Any]] = []
    try:
        yield held
    finally:
        _release(sqs, url, held)


def _receive(sqs: Any, url: str, wait_seconds: int, visibility: int) -> list[dict[str, Any]]:
    return list(
        sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=BATCH_ENTRIES,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
    )


def peek(sqs: Any, url: str, limit: int = 50, wait_seconds: int = 1) -> list[Letter]:
    """Up to `limit` dead letters with their reasons, not consumed (see `peek_raw`)."""
    return [_letter(raw) for raw in peek_raw(sqs, url, limit, wait_seconds)]


def peek_raw(sqs: Any, url: str, limit: int = 50, wait_seconds: int = 1) -> list[dict[str, Any]]:
    """Read up to `limit` messages without consuming them: each is hidden while it is read
    (so it is read once) and made visible again before returning, even on Ctrl-C.
    Reading raises each message's receive count by one (harmless on a DLQ)."""
    seen: dict[str, dict[str, Any]] = {}
    with _hidden(sqs, url) as handles:
        while len(seen) < limit:
            messages = _receive(sqs, url, wait_seconds, PEEK_VISIBILITY_SECONDS)
            if not messages:
                break
            for raw in messages:
                handles.append(raw)
                if len(seen) < limit:
                    seen.setdefault(raw["MessageId"], raw)
    return list(seen.values())


def _letter(raw: dict[str, Any]) -> Letter:
    attributes = {k: v.get("StringValue", "") for k, v in raw.get("MessageAttributes", {}).items()}
    system = raw.get("Attributes", {})
    sent = system.get("SentTimestamp")
    reason = attributes.get("poller.reason")
    error_type = attributes.get("poller.error_type")
    if not reason:
        size = message_bytes(raw)
        if error_type or MAX_MESSAGE_BYTES - size < _NO_ROOM_BYTES:
            reason = no_room_reason(size)
            error_type = error_type or "NO_ROOM_FOR_REASON"
    return Letter(
        message_id=raw["MessageId"],
        reason=reason or NO_REASON,
        error_type=error_type or "SQS_REDRIVE",
        source_message_id=attributes.get("poller.source_message_id"),
        receive_count=int(attributes.get("poller.receive_count") or 0),
        sent_at=_iso(int(sent)) if sent else None,
        body=raw.get("Body", ""),
    )


def no_room_reason(size: int) -> str:
    """Why a dead letter has no reason when SQS's 1 MiB limit left no room for one.

    The poller fits its reason into what the body leaves of SQS's 1 MiB
    (`poller.letters.dead_letter_request`) and logs it when none fits. It fits the error type
    first, so such a letter carries `poller.error_type` without `poller.reason`, or, when
    not even the type fitted, neither (then it is known by its size: less than
    `letters.LARGEST_ERROR_TYPE_BYTES` left of the 1 MiB)."""
    return (
        f"no poller reason: the {size}-byte message left no room for one within SQS's "
        f'{MAX_MESSAGE_BYTES}-byte limit; the poller logged it ("no room for a reason next '
        'to the ...-byte body of message ...")'
    )


def message_bytes(raw: dict[str, Any]) -> int:
    """What SQS counts towards a message's 1 MiB: the body, and each attribute's name, type
    and value."""
    size = len(raw.get("Body", "").encode("utf-8"))
    for name, value in raw.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        if "StringValue" in value:
            size += len(str(value["StringValue"]).encode("utf-8"))
        elif "BinaryValue" in value:
            size += len(value["BinaryValue"])
    return size


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")


def reasons(letters: Sequence[Letter]) -> list[tuple[int, str, str]]:
    """(count, error type, reason), most frequent first: what is stuck and why."""
    counted = Counter((letter.error_type, letter.reason) for letter in letters)
    return [(n, kind, reason) for (kind, reason), n in counted.most_common()]


def redrive(
    sqs: Any,
    dlq_url: str,
    source_url: str,
    *,
    method: str = "auto",
    limit: int | None = None,
    rate: int | None = None,
) -> RedriveResult:
    """Move dead letters back to the source queue: StartMessageMoveTask (asynchronous, at
    most 500 msgs/s) when SQS offers it, else a copy loop (moto has no move task)."""
    if method in ("auto", "move-task") and limit is None:
        from botocore.exceptions import BotoCoreError, ClientError

        request: dict[str, Any] = {
            "SourceArn": arn_of(sqs, dlq_url),
            "DestinationArn": arn_of(sqs, source_url),
        }
        if rate:
            request["MaxNumberOfMessagesPerSecond"] = rate
        try:
            task = sqs.start_message_move_task(**request)
            return RedriveResult(method="move-task", task_handle=task.get("TaskHandle"))
        except (ClientError, BotoCoreError) as exc:
            if method == "move-task":
                raise
            fallback = f"StartMessageMoveTask failed ({_short(exc)}); copied instead"
    else:
        fallback = "--limit needs the copy loop" if method != "copy" else None
    result = copy_back(sqs, dlq_url, source_url, limit=limit)
    result.fallback_because = fallback
    return result


def _short(exc: Exception) -> str:
    """A ClientError's code and status, not its body (moto answers with an HTML page)."""
    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    parts = [f"HTTP {status}" if status else "", "" if code == str(status) else str(code or "")]
    return " ".join(p for p in parts if p) or type(exc).__name__


def copy_back(
    sqs: Any, dlq_url: str, source_url: str, *, limit: int | None = None
) -> RedriveResult:
    """Receive from the DLQ, send each message to the source (its poller.* attributes
    dropped, so it looks as it did), and delete it from the DLQ only after the send was
    confirmed. A message whose send fails stays hidden until the end (so it is tried once),
    then is made visible in the DLQ again."""
    result = RedriveResult(method="copy")
    fifo = source_url.endswith(".fifo")
    with _hidden(sqs, dlq_url) as failed:
        while limit is None or result.moved < limit:
            messages = _receive(sqs, dlq_url, 1, 60)
            if not messages:
                break
            if limit is not None:
                keep, extra = messages[: limit - result.moved], messages[limit - result.moved :]
                _release(sqs, dlq_url, extra)
                messages = keep
            sent = []
            for raw in messages:
                try:
                    sqs.send_message(**_resend_request(raw, source_url, fifo))
                    sent.append(raw)
                except Exception:
                    failed.append(raw)
                    result.send_failures += 1
            result.moved += len(sent)
            result.delete_failures += _delete(sqs, dlq_url, sent)
    return result


def _resend_request(raw: dict[str, Any], url: str, fifo: bool) -> dict[str, Any]:
    attributes = {
        name: value
        for name, value in raw.get("MessageAttributes", {}).items()
        if name not in REASON_ATTRIBUTES
    }
    request: dict[str, Any] = {"QueueUrl": url, "MessageBody": raw.get("Body", "")}
    if attributes:
        request["MessageAttributes"] = {
            name: {
                k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")
            }
            for name, value in attributes.items()
        }
    if fifo:
        system = raw.get("Attributes", {})
        request["MessageGroupId"] = system.get("MessageGroupId") or "redriven"
        request["MessageDeduplicationId"] = raw["MessageId"]
    return request


def _release(sqs: Any, url: str, messages: Sequence[dict[str, Any]]) -> int:
    """Make received messages visible again at once; return how many SQS confirmed."""
    queue = SqsQueue(sqs, url)
    return sum(len(queue.release(chunk)) for chunk in chunks(_messages(messages)))


def _delete(sqs: Any, url: str, messages: Sequence[dict[str, Any]]) -> int:
    """Delete; return how many the queue did not confirm."""
    queue = SqsQueue(sqs, url)
    deleted = sum(len(queue.delete(chunk)) for chunk in chunks(_messages(messages)))
    return len(messages) - deleted


def send(sqs: Any, url: str, bodies: Sequence[str], *, group_id: str | None = None) -> list[str]:
    """Send in batches of up to 10 entries and ~1 MiB; return the message ids, in order.
    Raise RuntimeError naming the failed entries (the ones before them were sent)."""
    fifo = url.endswith(".fifo")
    ids: list[str] = []
    for batch in _batches(bodies):
        entries = []
        for i, body in enumerate(batch):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": body}
            if fifo:
                entry["MessageGroupId"] = group_id or "default"
                entry["MessageDeduplicationId"] = uuid.uuid4().hex
            entries.append(entry)
        response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            failures = [
                f"{f['Id']}: {f.get('Code')} {f.get('Message', '')}" for f in response["Failed"]
            ]
            raise RuntimeError(f"{len(ids)} sent, then SendMessageBatch failed for {failures}")
        by_id = {s["Id"]: s["MessageId"] for s in response.get("Successful", [])}
        ids += [by_id[e["Id"]] for e in entries]
    return ids


def _batches(bodies: Sequence[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if batch and (len(batch) == BATCH_ENTRIES or size + length > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch
