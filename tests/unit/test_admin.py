"""The CLI's SQS operations against a fake client: what is deleted, released and sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from poller_ops import admin
from poller_ops.cli import UsageError, age_text, read_bodies, read_env_file

DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/donations-dlq"
SOURCE = "https://sqs.us-east-1.amazonaws.com/123456789012/donations"


class FakeSqs:
    """Just enough of a boto3 SQS client: a DLQ holding messages, and a call log."""

    def __init__(self, bodies: list[str], fail_sends: set[str] = frozenset()) -> None:
        self.dlq = [
            {
                "MessageId": f"m{i}",
                "ReceiptHandle": f"r{i}",
                "Body": body,
                "MessageAttributes": {
                    "poller.reason": {"DataType": "String", "StringValue": "bad"},
                    "Channel": {"DataType": "String", "StringValue": "web"},
                },
                "Attributes": {"SentTimestamp": "1525176000000"},
            }
            for i, body in enumerate(bodies)
        ]
        self.hidden: set[str] = set()
        self.fail_sends = fail_sends
        self.sent: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.released: list[str] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {
            "Attributes": {
                "QueueArn": "arn:aws:sqs:us-east-1:123456789012:" + QueueUrl.rsplit("/", 1)[1]
            }
        }

    def start_message_move_task(self, **request: Any) -> dict[str, Any]:
        raise ClientError(
            {"Error": {"Code": "500"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
            "StartMessageMoveTask",
        )

    def receive_message(self, **request: Any) -> dict[str, Any]:
        visible = [m for m in self.dlq if m["ReceiptHandle"] not in self.hidden]
        batch = visible[: request["MaxNumberOfMessages"]]
        self.hidden |= {m["ReceiptHandle"] for m in batch}
        return {"Messages": batch}

    def send_message(self, **request: Any) -> dict[str, Any]:
        if request["MessageBody"] in self.fail_sends:
            raise ClientError({"Error": {"Code": "InternalError"}}, "SendMessage")
        self.sent.append(request)
        return {"MessageId": "new"}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        handles = {e["ReceiptHandle"] for e in Entries}
        self.deleted += sorted(handles)
        self.hidden -= handles
        self.dlq = [m for m in self.dlq if m["ReceiptHandle"] not in handles]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def change_message_visibility_batch(
        self, QueueUrl: str, Entries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        for entry in Entries:
            self.hidden.discard(entry["ReceiptHandle"])
            self.released.append(entry["ReceiptHandle"])
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_redrive_copies_and_deletes_only_confirmed_sends():
    # GIVEN three dead letters, the second of which cannot be sent
    sqs = FakeSqs(["a", "b", "c"], fail_sends={"b"})
    # WHEN redriven (the move task fails, as on moto)
    result = admin.redrive(sqs, DLQ, SOURCE)
    # THEN "a" and "c" are in the source without the poller's reason attribute and deleted
    # from the DLQ; "b" is left in the DLQ, visible again
    assert result.method == "copy" and result.moved == 2 and result.send_failures == 1
    assert result.fallback_because == "StartMessageMoveTask failed (HTTP 500); copied instead"
    assert [s["MessageBody"] for s in sqs.sent] == ["a", "c"]
    assert all(set(s["MessageAttributes"]) == {"Channel"} for s in sqs.sent)
    assert sqs.deleted == ["r0", "r2"] and [m["Body"] for m in sqs.dlq] == ["b"]
    assert "r1" in sqs.released and "r1" not in sqs.hidden


def test_redrive_with_a_limit_gives_back_what_it_does_not_move():
    sqs = FakeSqs(["a", "b", "c"])
    result = admin.redrive(sqs, DLQ, SOURCE, limit=2)
    assert result.moved == 2 and result.fallback_because == "--limit needs the copy loop"
    assert [m["Body"] for m in sqs.dlq] == ["c"] and not sqs.hidden


def test_move_task_only_raises_instead_of_copying():
    sqs = FakeSqs(["a"])
    with pytest.raises(ClientError):
        admin.redrive(sqs, DLQ, SOURCE, method="move-task")
    assert sqs.sent == [] and sqs.deleted == []


def test_peek_makes_every_message_visible_again_and_reads_each_once():
    sqs = FakeSqs([f"body {i}" for i in range(13)])
    letters = admin.peek(sqs, DLQ, limit=50, wait_seconds=0)
    assert [letter.body for letter in letters] == [f"body {i}" for i in range(13)]
    assert letters[0].reason == "bad" and letters[0].sent_at == "2018-05-01T12:00:00+00:00"
    assert not sqs.hidden and sqs.deleted == []


class RefusingRelease(FakeSqs):
    """SQS answers HTTP 200 to a visibility batch, but refuses one entry in `Failed`."""

    def change_message_visibility_batch(
        self, QueueUrl: str, Entries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        refused = [e for e in Entries if e["ReceiptHandle"] == "r1"]
        answer = super().change_message_visibility_batch(
            QueueUrl, [e for e in Entries if e not in refused]
        )
        answer["Failed"] = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "later"}
            for e in refused
        ]
        return answer


def test_a_release_sqs_refuses_in_failed_is_reported_and_the_rest_released(caplog):
    # GIVEN three dead letters, the second of which SQS will not make visible again
    sqs = RefusingRelease(["a", "b", "c"])
    # WHEN they are peeked
    with caplog.at_level("WARNING", logger="poller.sqs"):
        letters = admin.peek(sqs, DLQ, wait_seconds=0)
    # THEN all three were read, the other two are visible again, and the refusal was
    # logged by the function's own adapter, naming the message
    assert len(letters) == 3 and sqs.hidden == {"r1"}
    assert any("m1" in r.getMessage() and "InternalError" in r.getMessage() for r in caplog.records)


def test_reasons_are_grouped_most_frequent_first():
    letter = admin.Letter("m", "r1", "MAPPING_ERROR", None, 1, None, "")
    other = admin.Letter("m", "r2", "REJECTED", None, 1, None, "")
    assert admin.reasons([other, letter, letter]) == [
        (2, "MAPPING_ERROR", "r1"),
        (1, "REJECTED", "r2"),
    ]


def test_send_batches_hold_at_most_ten_entries_and_about_one_mib():
    big = "x" * 400_000
    sizes = [len(batch) for batch in admin._batches(["s"] * 23)]
    assert sizes == [10, 10, 3]
    assert [len(batch) for batch in admin._batches([big] * 5)] == [2, 2, 1]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "unknown"), (5, "5s"), (754, "12m 34s"), (7_300, "2h 1m"), (90_000, "1d 1h")],
)
def test_age_text(seconds, text):
    assert age_text(seconds) == text


def test_env_files_are_json_or_key_value_lines(tmp_path):
    as_json = tmp_path / "env.json"
    as_json.write_text(json.dumps({"QUEUE_URL": "q", "WAIT_TIME_SECONDS": 1, "X": None}))
    dotenv = tmp_path / ".env"
    dotenv.write_text("# local\nexport QUEUE_URL='q'\nMERGE_ON=Id\n\n")
    assert read_env_file(as_json) == {"QUEUE_URL": "q", "WAIT_TIME_SECONDS": "1"}
    assert read_env_file(dotenv) == {"QUEUE_URL": "q", "MERGE_ON": "Id"}
    dotenv.write_text("QUEUE_URL\n")
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        read_env_file(dotenv)


def test_bodies_from_json_arrays_objects_and_jsonl(tmp_path):
    array, single, lines = tmp_path / "a.json", tmp_path / "o.json", tmp_path / "l.jsonl"
    array.write_text('[{"a": 1}, "raw"]')
    single.write_text('{"a": 1}')
    lines.write_text('{"a": 1}\nnot json\n')
    assert read_bodies(str(array)) == ['{"a": 1}', "raw"]
    assert read_bodies(str(single)) == ['{"a": 1}']
    assert read_bodies(str(lines)) == ['{"a": 1}', "not json"]
