"""The deterministic fault campaign: a few hundred messages drained by several
scheduled runs of the real poller, each in its own process, through real HTTP to moto's
SQS server and the Airtable emulator, while things go wrong on purpose:

* the emulator answers 10% of writes with 503 and applies 5% without answering (lost
  responses), with 200-600 ms latency (so that requests overlap: 5 req/s, 4 writers);
* producer duplicates (5%): some right behind the original (same request), some further on
  (a concurrent request, or a later run);
* poison of every shape we could think of (see `poison`), and odd-but-valid messages that
  must be written (see `valid_variants`);
* a 1.5 s lockout triggered mid-run (waited out), and an 8 s one the run has no time for
  (it stops cleanly and releases what it holds); the poller's pacers wait as long as the
  emulator locks them out (`Poller(lockout_seconds=...)`), not Airtable's 30 s;
* three runs killed with SIGKILL at seeded random moments after their first receive:
  what they held comes back when its visibility ends, and later runs finish it.

Everything random is drawn from one seed (printed; FAULT_SEED=... replays it). Thread
timing is not seeded, so assertions are about guarantees, never about exact counts.

The verdict never depends on the machine's speed (CI shares 2 busy cores): every wait is a
guard against a hang, far longer than the work needs, and each property is checked on what
the runs did, whatever their number or how each one ended. Where a scenario needs a moment
(a lockout, a kill), it is placed by the run's progress (its first receive), and its timing
holds by pacing, a floor no machine can beat: a run cannot write 40 messages in 0.8 s at
5 requests/s. Runs never overlap, and each starts at least a second after the last one
ended, as scheduled runs do (the schedule's period is minutes): a run's check before it
receives never shares Airtable's 1 s window with the requests of the run before.

Which assertion catches which behaviour:
  A1 rows: exactly once, right values ........ bisection, retries, idempotent upsert, killed runs
  A2 DLQ holds exactly the poison, with reasons  per-record isolation, dead-letter reasons
  A3 source queue empty ........................ delete-after-write, release, dead-lettering
  A4 no delete before a confirmed write ........ delete only what Airtable confirmed
  A5 no 422 for a request of valid records ..... collapse duplicates (emulator refuses a key twice)
  A6 no key in two concurrent requests ......... one write per merge key at a time
  A7 faults retried in the run that met them ... retries with backoff absorb 5xx / lost responses
  A8 <= one 429 per writer per lockout ......... wait out the lockout, never hammer
  A9 lockout with no time: stop + release ...... stop cleanly; every message it held settled
  A10 no message received twice in one run ..... visibility = remaining time + 10 s
  A11 every DLQ copy fits SQS's 1 MiB .......... reason fitted next to a near-1 MiB body
  A12 no run stops on an error ................. any poison (even one that crashes the parser)
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airtable_emulator import Faults
from devstack.factories import DONATION_FIELD_MAP, donation
from devstack.stack import BASE_ID, LocalStack, default_emulator_config
from faultkit import Access, AccessLog, Poller, PollerRun, attribute

SEED = int(os.environ.get("FAULT_SEED", "20261124"))
VALID = 300
DUPLICATES = 15  # 5% of the valid messages, sent twice
WAVES = 5
MAX_IN_FLIGHT = 4
LOCKOUT = 1.5  # seconds: the emulator's lockout, and what the poller's pacers wait out
#: Lambda timeout of a scheduled run: ten times what a wave needs, so that a run ends on an
#: empty queue on a busy machine too (every property is checked however it ended).
RUN_TIMEOUT = 60
#: Run 5's Lambda timeout and the lockout it meets (on both sides): 12 s less the 5 s stop
#: margin (WAIT_TIME_SECONDS + AIRTABLE_TIMEOUT_SECONDS + 2) leaves at most 7 s, never the
#: 9 s the lockout (+1 s) needs, however fast the machine.
SHORT_TIMEOUT = 12
LONG_LOCKOUT = 8.0
#: Killed runs' Lambda timeout: 10 s of usable time, far more than their first receive and
#: the kill need, so the kill finds them alive; they hide what they hold for ~25 s.
KILLED_TIMEOUT = 15
#: A run starts no sooner than this after the last one ended (Airtable's window).
BETWEEN_RUNS = 1.0
#: The kill comes this long after the run's first receive (seeded): less than a run needs to
#: write the 40+ messages it is given at 5 requests/s, whatever the machine's speed.
KILL_DELAY = (0.1, 0.6)
#: Guards against a hang, not speed limits: a process that has not started receiving, and
#: the drive loop that waits for the queue to drain (each fails the test after this long).
STARTUP_GUARD = 60
HANG_GUARD = 600
ONE_MIB = 1_048_576

POLLER_ENV = {
    "WAIT_TIME_SECONDS": "1",
    "AIRTABLE_TIMEOUT_SECONDS": "2",
    "WRITE_MAX_ATTEMPTS": "6",
    "DEAD_LETTER_AFTER_RECEIVES": "6",
    "MAX_IN_FLIGHT_WRITES": str(MAX_IN_FLIGHT),
}


# --------------------------------------------------------------------------- the messages
@dataclass
class Item:
    body: str
    shape: str
    #: expected row fields for a valid message; None for poison
    expect: dict[str, Any] | None = None
    #: what the DLQ reason must mention (any of), for poison
    hints: tuple[str, ...] = ()

    @property
    def poison(self) -> bool:
        return self.expect is None

    @property
    def key(self) -> str:
        """json.dumps of the "Id" the poller would send (as AccessLog records it)."""
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):
            return "null"
        return json.dumps(data.get("Id")) if isinstance(data, dict) else "null"


def expected_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What the Donations mapping writes: mapped keys only, nulls left out."""
    return {
        target: body[source]
        for source, target in DONATION_FIELD_MAP.items()
        if body.get(source) is not None
    }


def valid_variants(rng: random.Random, n: int) -> dict[str, Any]:
    """Messages that look odd but are valid, and must be written (minus unknown keys)."""
    body = donation(n)
    kind = n % 20
    if kind == 1:  # unknown extra keys are ignored, never sent
        body |= {"Currency": "EUR", "Tags": ["a", "b"], "Nested": {"x": 1}, "id": "lower"}
    elif kind == 2:  # mojibake, emoji, bidi and zero-width marks, replacement chars
        body["DonorDisplayName"] = rng.choice(
            ["JoÃ£o MÃ¼ller", "Zoë 🎉", "\u200b\u202eRTL", "\ufffd\ufffd", "tab\tand\u0085nel"]
        )
    elif kind == 3:  # an instant with an offset, and a date-only value, are valid dateTimes
        body["CreationDate"] = rng.choice(["2018-05-01T14:00:00+02:00", "2018-05-01"])
    elif kind == 4:  # an optional field set to null is left out
        body["DonorDisplayName"] = None
    elif kind == 5:
        body["DonationAmount"] = 25
    return body


def poison() -> list[Item]:
    """At least one message of every poison shape; each must end up in the DLQ with a reason."""
    not_json = ("not valid JSON",)
    not_object = ("object",)
    no_key = ('"Id"',)
    rejected = ("INVALID_VALUE_FOR_COLUMN",)
    huge = json.dumps(donation(0, Id="poison-huge-1", DonorDisplayName=""))
    huge_filler = ONE_MIB - 280 - len(huge)
    items = [
        Item("this is not json at all", "non-JSON", hints=not_json),
        Item('{"Id": "poison-truncated", "DonationAmount": 5', "truncated JSON", hints=not_json),
        Item("[1, 2, 3]", "JSON array", hints=not_object),
        Item("null", "JSON null", hints=not_object),
        Item('"{\\"Id\\": \\"double-encoded\\"}"', "double-encoded JSON string", hints=not_object),
        Item(
            json.dumps({k: v for k, v in donation(1).items() if k != "Id"}), "no Id", hints=no_key
        ),
        Item(json.dumps(donation(2, Id="")), "empty Id", hints=no_key),
        Item("   \n\t  ", "whitespace-only body", hints=("empty",)),
        Item(
            json.dumps(donation(3, Id="poison-amount-text", DonationAmount="twenty")),
            "amount as text",
            hints=rejected,
        ),
        Item(json.dumps(donation(4, Id=12345)), "Id as a number", hints=rejected),
        Item(
            json.dumps(donation(5, Id="poison-name-object", DonorDisplayName={"first": "A"})),
            "name as an object",
            hints=rejected,
        ),
        Item(
            json.dumps(donation(6, Id="poison-amount-bool", DonationAmount=True)),
            "amount as a boolean",
            hints=rejected,
        ),
        Item(
            json.dumps(donation(7, Id="poison-date-feb30", CreationDate="2018-02-30T12:00:00Z")),
            "impossible date",
            hints=rejected,
        ),
        Item(
            json.dumps(donation(8, Id="poison-date-words", CreationDate="yesterday-ish")),
            "date in words",
            hints=rejected,
        ),
        Item(
            json.dumps(donation(9, Id="poison-date-naive", CreationDate="2018-05-01T12:00:00")),
            "date without a zone",
            hints=rejected,
        ),
        Item(
            json.dumps(donation(10, Id="poison-date-epoch", CreationDate=1525176000)),
            "date as epoch seconds",
            hints=rejected,
        ),
        # near 1 MiB: the body alone; a 100,000+ character name Airtable refuses. Two of
        # them in one request exceed the emulator's body limit (413), also bisected.
        Item(
            huge.replace('"DonorDisplayName": ""', f'"DonorDisplayName": "{"n" * huge_filler}"'),
            "huge body near 1 MiB",
            hints=rejected,
        ),
        Item(
            huge.replace("poison-huge-1", "poison-huge-2").replace(
                '"DonorDisplayName": ""', f'"DonorDisplayName": "{"m" * huge_filler}"'
            ),
            "huge body near 1 MiB",
            hints=rejected,
        ),
        Item('{"Id": "poison-nan", "DonationAmount": NaN}', "NaN", hints=("NaN", "finite")),
        Item('{"Id": "poison-inf", "DonationAmount": 1e999}', "1e999", hints=("finite", "JSON")),
        # non-UTF-8-looking text
        Item(
            '{"Id": "poison-raw-newline", "DonorDisplayName": "line one\nline two"}',
            "raw control character in a string",
            hints=not_json,
        ),
        Item(
            "\ufeff" + json.dumps(donation(11, Id="poison-bom")), "byte-order mark", hints=not_json
        ),
        Item(
            '{"Id": "poison-surrogate", "DonorDisplayName": "Jos\\ud800"}',
            "lone surrogate (escaped)",
            hints=("not valid Unicode",),
        ),
        # (a body that starts with "[" so deep is test_fault_targeted's, for the SQS adapter)
        Item(
            '{"Id": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested 100,000 deep",
            hints=("nested too deeply",),
        ),
    ]
    return items


def corpus(rng: random.Random) -> list[Item]:
    """Valid messages with duplicates and poison mixed in, in sending order."""
    valid = [valid_variants(rng, n) for n in range(VALID)]
    items = [Item(json.dumps(b), "valid", expect=expected_fields(b)) for b in valid]
    # two valid messages near 1 MiB: the padding is an unknown key, dropped by the mapping
    for n in (VALID, VALID + 1):
        body = donation(n, Padding="p" * (ONE_MIB - 2000))
        items.append(Item(json.dumps(body), "valid near 1 MiB", expect=expected_fields(body)))
    originals = rng.sample(range(len(items)), DUPLICATES)
    placed: list[tuple[int, Item]] = []
    for rank, index in enumerate(originals):
        # a third right behind the original (same request: collapsed), two thirds 10-20
        # messages later: the next request or the one after, sent while the first is still
        # in flight (200-600 ms latency at 5 req/s), so the copy must wait for it
        offset = 0 if rank % 3 == 0 else rng.randint(10, 20)
        copy = Item(items[index].body, "producer duplicate", expect=items[index].expect)
        placed.append((index + 1 + offset, copy))
    for position, copy in sorted(placed, key=lambda p: p[0], reverse=True):
        items.insert(min(position, len(items)), copy)
    bad = poison()
    bad.append(Item(bad[8].body, "duplicate of a poison message", hints=bad[8].hints))
    for item in bad:
        items.insert(rng.randrange(len(items) + 1), item)
    # the two huge poison messages side by side, so that they meet in one request
    huge = [i for i in items if i.shape == "huge body near 1 MiB"]
    items = [i for i in items if i.shape != "huge body near 1 MiB"]
    at = rng.randrange(len(items))
    items[at:at] = huge
    return items


def send(stack: LocalStack, items: list[Item]) -> dict[str, Item]:
    """Send in batches of 10 (a huge body alone); return message id -> item."""
    sent: dict[str, Item] = {}
    small = [i for i in items if len(i.body) < 200_000]
    for start in range(0, len(small), 10):
        chunk = small[start : start + 10]
        response = stack.sqs.send_message_batch(
            QueueUrl=stack.queue_url,
            Entries=[{"Id": str(k), "MessageBody": i.body} for k, i in enumerate(chunk)],
        )
        assert not response.get("Failed"), response.get("Failed")
        sent |= {s["MessageId"]: chunk[int(s["Id"])] for s in response["Successful"]}
    for item in items:
        if len(item.body) >= 200_000:
            response = stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=item.body)
            sent[response["MessageId"]] = item
    return sent


# --------------------------------------------------------------------------- the campaign
def instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # the field's zone is UTC


def same_fields(row: dict[str, Any], expect: dict[str, Any]) -> bool:
    if set(row) != set(expect):
        return False
    for name, value in expect.items():
        if name == "Creation Date":
            if instant(row[name]) != instant(value):
                return False
        elif row[name] != value:
            return False
    return True


def dlq_size(body: str, attributes: dict[str, str]) -> int:
    """Bytes SQS counts for a message: body, and every attribute's name, type and value."""
    types = {"poller.receive_count": "Number"}
    return len(body.encode()) + sum(
        len(k.encode()) + len(types.get(k, "String")) + len(v.encode())
        for k, v in attributes.items()
    )


@pytest.fixture
def campaign_stack(sqs_endpoint: str):
    config = default_emulator_config(
        rate_limit_rps=5,
        lockout_seconds=LOCKOUT,
        latency=(0.2, 0.6),
        faults=Faults(error_5xx_rate=0.10, lost_response_rate=0.05),
        seed=SEED,
        max_body_bytes=1_500_000,
    )
    with LocalStack.start(
        sqs_endpoint=sqs_endpoint,
        emulator_config=config,
        max_receive_count=10,
        visibility_timeout=2,  # what a receive gets if the poller forgot to set its own
    ) as stack:
        yield stack


@pytest.mark.timeout(HANG_GUARD + 300)
def test_fault_campaign(campaign_stack: LocalStack, tmp_path: Path):
    # GIVEN an Airtable that fails 15% of writes and answers slowly, and five waves of
    # valid messages, duplicates and poison (seeded)
    stack = campaign_stack
    rng = random.Random(SEED)
    print(f"\nfault campaign: FAULT_SEED={SEED}")
    began = time.monotonic()
    access = AccessLog(stack.emulator)
    poller = Poller(stack, tmp_path, lockout_seconds=LOCKOUT, **POLLER_ENV)
    items = corpus(rng)
    waves = [items[len(items) * k // WAVES : len(items) * (k + 1) // WAVES] for k in range(WAVES)]
    by_message: dict[str, Item] = {}
    runs: list[PollerRun] = []
    planned_lockouts: list[tuple[float, float]] = []

    def start(label: str, timeout: float, **options: Any) -> PollerRun:
        if runs:
            ended = max(r.ended or 0.0 for r in runs)
            time.sleep(max(0.0, ended + BETWEEN_RUNS - time.monotonic()))
        return poller.start(label, timeout, **options)

    def normal(label: str) -> PollerRun:
        run = start(label, RUN_TIMEOUT).wait(RUN_TIMEOUT + STARTUP_GUARD)
        runs.append(run)
        check_finished(run, poller)
        return run

    def first_receive(label: str) -> float:
        received = poller.log.wait_for(label, "ReceiveMessage", STARTUP_GUARD)
        assert received is not None, f"{label} received nothing"
        return received

    def killed(label: str) -> PollerRun:
        run = start(label, KILLED_TIMEOUT)
        received = first_receive(label)
        time.sleep(max(0.0, received + rng.uniform(*KILL_DELAY) - time.monotonic()))
        run.kill()
        runs.append(run)
        return run

    def lockout_after_first_receive(label: str, seconds: float, delay: float) -> None:
        # the run holds a wave it needs over a second to write (pacing): it meets the lockout
        received = first_receive(label)
        time.sleep(max(0.0, received + delay - time.monotonic()))
        stack.emulator.configure(lockout_seconds=seconds)
        stack.emulator.trigger_lockout(BASE_ID)
        planned_lockouts.append((time.monotonic(), seconds))

    # WHEN scheduled runs drain the waves, one after the other, while lockouts and kills
    # happen to them:
    # run 1: a clean run through 5xx, lost responses, duplicates and poison
    by_message |= send(stack, waves[0])
    normal("r1")
    # run 2: killed mid-run
    by_message |= send(stack, waves[1])
    killed("r2")
    # run 3: a 1.5 s lockout triggered mid-run, waited out
    by_message |= send(stack, waves[2])
    r3 = start("r3", RUN_TIMEOUT)
    lockout_after_first_receive("r3", LOCKOUT, rng.uniform(0.1, 0.4))
    r3.wait(RUN_TIMEOUT + STARTUP_GUARD)
    runs.append(r3)
    check_finished(r3, poller)
    # run 4: killed mid-run
    by_message |= send(stack, waves[3])
    killed("r4")
    # run 5: an 8 s lockout it has no time to wait out, so it stops and releases
    by_message |= send(stack, waves[4])
    r5 = start("r5", SHORT_TIMEOUT, lockout_seconds=LONG_LOCKOUT)
    lockout_after_first_receive("r5", LONG_LOCKOUT, 0.0)
    r5.wait(SHORT_TIMEOUT + STARTUP_GUARD)
    runs.append(r5)
    check_finished(r5, poller)
    # the long lockout must be over before anyone writes again (so 429s stay countable)
    time.sleep(max(0.0, planned_lockouts[-1][0] + LONG_LOCKOUT - time.monotonic()))
    stack.emulator.configure(lockout_seconds=LOCKOUT)
    # run 6: killed mid-run
    killed("r6")
    # then scheduled runs until the queue is empty; killed runs' messages come back when
    # their visibility (their remaining time + 10 s) ends
    finishing = 0
    while True:
        counts = stack.counts()
        if counts == {"visible": 0, "in_flight": 0, "delayed": 0}:
            break
        # A3 the source queue drains: nothing stays stuck in it (checked again below)
        assert time.monotonic() - began < HANG_GUARD, f"not drained, a hang? {counts}"
        if counts["visible"]:
            finishing += 1
            normal(f"r{6 + finishing}")
        else:
            time.sleep(0.5)
    elapsed = time.monotonic() - began
    print(f"drained in {elapsed:.1f} s by {len(runs)} runs")
    for run in runs:
        state = "KILLED" if run.killed_at else run.summary.get("stopped_because")
        print(f"  {run.label:4} {state:8} {json.dumps(run.summary)[:300]}")
    stats = stack.emulator.stats
    print(f"  emulator: {json.dumps(stats.to_json())[:600]}")

    # ------------------------------------------------------------------ the assertions
    # THEN every guarantee holds over everything the runs did, however each one ended
    log = poller.log
    receipts = log.receipts()
    # a message requeued on its last receive comes back as a fresh copy (a new SQS id that
    # names its first one): it stands for the same item
    copies = log.copies(stack.queue_url)
    by_message |= {copy: by_message[first] for copy, first in copies.items()}
    unknown = set(receipts.values()) - set(by_message)
    assert not unknown, f"received messages nobody sent: {unknown}"
    valid = {mid: item for mid, item in by_message.items() if not item.poison}
    bad = {mid: item for mid, item in by_message.items() if item.poison}

    # A4 no message was deleted before Airtable confirmed its record, the DLQ stored it, or
    # (on its last receive) its fresh copy was stored in the source queue
    accesses = access.snapshot()
    confirmed: dict[str, list[float]] = {}
    for a in accesses:
        if a.confirmed:
            for key in a.keys:
                confirmed.setdefault(key, []).append(a.answered)
    dead_lettered_at: dict[str, list[float]] = {}
    for line in log.dead_letters(stack.dlq_url):
        source = attribute(line, "poller.source_message_id")
        dead_lettered_at.setdefault(source, []).append(line["t1"])
    requeued_at: dict[str, list[float]] = {}
    for line in log.lines(op="SendMessage"):
        if line["params"]["QueueUrl"] == stack.queue_url:
            requeued_at.setdefault(attribute(line, "poller.source_message_id"), []).append(
                line["t1"]
            )
    early = []
    for message_id, deleted_at in log.confirmed_batch_entries("DeleteMessageBatch"):
        item, first = by_message[message_id], copies.get(message_id, message_id)
        proofs = requeued_at.get(first, []) + (
            dead_lettered_at.get(first, []) if item.poison else confirmed.get(item.key, [])
        )
        if not any(t <= deleted_at for t in proofs):
            early.append((item.shape, item.key))
    assert early == [], f"deleted before confirmed: {early[:5]}"
    # (a killed run may die between a delete's answer and its log line: such a delete is not
    # seen here, which is why the end state is checked by A1-A3, not by counting deletes)

    # A1 every valid record exactly once, with the values of its message
    rows = stack.rows()
    ids = Counter(json.dumps(r["fields"].get("Id")) for r in rows)
    expected = {item.key: item.expect for item in valid.values()}
    assert [k for k, n in ids.items() if n > 1] == [], "duplicated rows"
    assert set(ids) == set(expected), (
        f"missing {sorted(set(expected) - set(ids))[:5]}, extra {sorted(set(ids) - set(expected))[:5]}"
    )
    wrong = [
        r["fields"]
        for r in rows
        if not same_fields(r["fields"], expected[json.dumps(r["fields"]["Id"])])
    ]
    assert wrong == [], f"rows with wrong values: {wrong[:3]}"

    # A2 the DLQ holds every poison message (a killed run may have copied one twice) and
    # nothing else, each with a reason that says what is wrong
    letters = stack.dead_letters()
    dlq = Counter(body for body, _ in letters)
    poison_bodies = Counter(item.body for item in bad.values())
    assert set(dlq) == set(poison_bodies), (
        f"not dead-lettered: {[b[:60] for b in set(poison_bodies) - set(dlq)]}; "
        f"dead-lettered but valid: {[b[:60] for b in set(dlq) - set(poison_bodies)]}"
    )
    assert all(poison_bodies[b] <= dlq[b] <= poison_bodies[b] + 3 for b in dlq)
    hints = {item.body: item for item in bad.values()}
    for body, attributes in letters:
        item = hints[body]
        reason = attributes.get("poller.reason", "")
        assert any(h in reason for h in item.hints), f"{item.shape}: reason {reason[:200]!r}"
        # A11 what was sent to the DLQ fits SQS's limit (moto does not check attributes)
        assert dlq_size(body, attributes) <= ONE_MIB, f"{item.shape}: DLQ copy too large"

    # A3 the source queue is empty (the loop above ended on it)
    assert stack.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}

    # A5 Airtable never rejected a request made only of valid records: no merge key twice
    # in one request (the emulator refuses that), no request over 10 records
    poison_keys = {item.key for item in bad.values()}
    blameless = [a for a in accesses if a.status == 422 and not set(a.keys) & poison_keys]
    assert blameless == [], (
        f"valid records rejected: {[(a.error_type, a.keys) for a in blameless[:3]]}"
    )

    # A6 no merge key was in two requests in flight at the same time
    writes = sorted((a for a in accesses if a.keys), key=lambda a: a.arrived)
    overlapping = [
        (key, first.arrived, second.arrived)
        for i, first in enumerate(writes)
        for second in writes[i + 1 :]
        if second.arrived < first.answered
        for key in set(first.keys) & set(second.keys)
        if key != "null"
    ]
    assert overlapping == [], f"same key written concurrently: {overlapping[:3]}"

    # A7 the faults did happen, and retries absorbed them in the run that met them: the
    # records of every write answered 503 or never answered went out again in that run, and
    # got an answer (unless the run was killed, or stopped on its deadline: then they were
    # released, and A1-A3 show that later runs wrote them). `check_finished` adds: a run
    # that ended on an empty queue released nothing and failed nothing.
    assert stats.injected_5xx >= 5 and stats.lost_responses >= 3, stats
    absorbed, unretried = retried_in_run(runs, accesses)
    assert unretried == [], f"faults not retried by the run that met them: {unretried[:3]}"
    assert absorbed >= 1, "no fault was met by a run that could retry it"

    # A8 never hammered: at most one 429 per writer per lockout
    throttled = [a for a in accesses if a.status == 429]
    assert len(throttled) <= MAX_IN_FLIGHT * max(stats.lockouts, 1), (len(throttled), stats)
    for started, seconds in planned_lockouts:
        during = [a for a in throttled if started <= a.arrived < started + seconds]
        assert len(during) <= MAX_IN_FLIGHT, (started, seconds, len(during))
    # run 3 met its lockout, waited it out and wrote on: Airtable confirmed writes of run 3
    # that arrived after the lockout ended
    assert r3.summary["throttled"] >= 1, r3.summary
    r3_locked_until = planned_lockouts[0][0] + planned_lockouts[0][1]
    assert any(a.confirmed for a in during_run(r3, accesses) if a.arrived >= r3_locked_until)

    # A9 the lockout run 5 had no time for: it met it, stopped without an error, and settled
    # every message it held before it ended, by its own SQS calls: each one deleted (written,
    # dead-lettered or requeued) or released at once (visibility 0), none left hidden
    assert r5.summary["throttled"] >= 1, r5.summary
    assert r5.summary["stopped_because"] == "deadline" and r5.summary["released"] > 0, r5.summary
    assert r5.report.get("error") is None
    held_by_r5 = set(log.received("r5"))
    deleted_by_r5 = {m for m, _ in log.confirmed_batch_entries("DeleteMessageBatch", "r5")}
    released_by_r5 = released_at_once(log, "r5")
    assert held_by_r5 - deleted_by_r5 - released_by_r5 == set()
    assert len(released_by_r5) == r5.summary["released"]

    # A10 (killed runs too) visibility covered each run: no run received a message twice
    for run in runs:
        got = Counter(log.received(run.label))
        assert [m for m, n in got.items() if n > 1] == [], f"{run.label} received twice"

    # the kills hit live processes (a run that had already finished would prove nothing)
    assert [r.alive_when_killed for r in runs if r.killed_at] == [True, True, True]
    print(f"campaign passed in {elapsed:.1f} s (seed {SEED})")


def check_finished(run: PollerRun, poller: Poller) -> None:
    """What must hold after every run that was not killed (checked at once: fail fast)."""
    # A12 no run stops on an error: no poison message, whatever its shape, stops a run
    assert run.report.get("error") is None, (run.label, run.report.get("error"))
    # A10 visibility covered the run: it never received a message twice (the queue's own
    # visibility timeout is 2 s; the poller must ask for the rest of the run + 10 s)
    got = Counter(poller.log.received(run.label))
    assert [m for m, n in got.items() if n > 1] == [], f"{run.label} received a message twice"
    if run.summary.get("stopped_because") == "empty":
        # A7 a run that ended with an empty queue released nothing and failed nothing: every
        # 5xx and lost response was absorbed by retries, every poison message was stored
        assert run.summary["failed"] == 0 and run.summary["released"] == 0, (run.label, run.summary)
        assert poller.log.lines(run.label, "ChangeMessageVisibilityBatch") == []


def during_run(run: PollerRun, accesses: list[Access]) -> list[Access]:
    """The API requests that arrived while `run` was alive (runs never overlap)."""
    assert run.ended is not None
    return [a for a in accesses if run.started <= a.arrived <= run.ended]


def retried_in_run(runs: list[PollerRun], accesses: list[Access]) -> tuple[int, list[Any]]:
    """A7: for each write that met an injected fault (503, or a response never sent), were
    its records sent again later by the same run and answered (200, or 422 for poison)?
    Returns how many faults were absorbed so, and the ones that were not, of runs that were
    neither killed nor stopped on their deadline (those may leave a retry to the next run)."""
    absorbed, unretried = 0, []
    for run in runs:
        if run.killed_at or run.summary.get("stopped_because") == "deadline":
            continue
        writes = [a for a in during_run(run, accesses) if a.keys]
        for fault in writes:
            if not (fault.status == 503 or fault.dropped):
                continue
            answered = {
                key
                for a in writes
                if a.arrived > fault.arrived and not a.dropped and a.status in (200, 422)
                for key in a.keys
            }
            missing = set(fault.keys) - answered
            if missing:
                unretried.append((run.label, fault.status, sorted(missing)[:3]))
            else:
                absorbed += 1
    return absorbed, unretried


def released_at_once(log: Any, run: str) -> set[str]:
    """Message ids `run` made visible again at once (visibility 0), as SQS confirmed."""
    receipts = log.receipts()
    released = set()
    for line in log.lines(run, "ChangeMessageVisibilityBatch"):
        entries = {e["Id"]: e for e in line["params"]["Entries"]}
        for entry_id in line["result"]["ok"]:
            entry = entries[entry_id]
            if entry["VisibilityTimeout"] == 0:
                released.add(receipts[entry["ReceiptHandle"]])
    return released
