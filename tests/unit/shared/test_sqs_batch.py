"""FifoBatch: which records fail, when they come back, what counts as an attempt, and when one is dead."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from local_stack.sqs_poller import sqs_event
from wa_assistant.aws.batch import (
    MAX_BACKOFF_SECONDS,
    AttemptCounter,
    FifoBatch,
    HandBack,
    ParkInDeadLetterQueue,
    RetryLater,
    RetryPolicy,
    backoff_seconds,
    body_field,
)
from wa_assistant.aws.queue import MessageQueue
from wa_assistant.observability import logger

REGION = "us-east-1"
TABLE = "idempotency"
HOUR = 3600.0


# ------------------------------------------------------------------ backoff
@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    retry_after=st.none() | st.floats(min_value=0, max_value=600),
    jitter=st.floats(min_value=0, max_value=1),
)
def test_backoff_grows_stays_capped_and_respects_retry_after(
    attempt: int, retry_after: float | None, jitter: float
) -> None:
    delay = backoff_seconds(attempt, retry_after, base=10, cap=900, rng=lambda: jitter)
    exponential = min(900, 10 * 2 ** min(attempt - 1, 64))
    assert exponential / 2 - 1 <= delay <= 900
    if retry_after is not None:
        assert delay >= min(int(retry_after), 900)


def test_backoff_doubles_per_attempt_without_jitter() -> None:
    delays = [backoff_seconds(n, base=10, rng=lambda: 1.0) for n in range(1, 6)]
    assert delays == [10, 20, 40, 80, 160]


@pytest.mark.parametrize("retry_after", [math.inf, float("1e309"), math.nan, -math.inf, -5.0, 1e300])
def test_absurd_retry_after_never_crashes_and_stays_within_the_cap(retry_after: float) -> None:
    delay = backoff_seconds(3, retry_after, base=10, cap=MAX_BACKOFF_SECONDS)
    assert 0 <= delay <= MAX_BACKOFF_SECONDS


def test_uncounted_retries_come_back_after_the_base_delay_at_least_one_second() -> None:
    assert RetryPolicy(base_delay=10, max_attempts=5, budget_seconds=HOUR).uncounted_delay(None) == 10
    assert RetryPolicy(base_delay=0, max_attempts=5, budget_seconds=HOUR).uncounted_delay(None) == 1
    assert RetryPolicy(base_delay=0, max_attempts=5, budget_seconds=HOUR).uncounted_delay(30) == 30


# ------------------------------------------------------------------ a FIFO queue and table in moto
@dataclass
class Queues:
    sqs: Any
    dynamodb: Any
    source: str
    source_arn: str
    dlq: str
    visibility_changes: list[dict[str, Any]] = field(default_factory=list)
    _dedup: int = 0

    def send(self, *messages: tuple[str, str]) -> None:
        """(group, body) pairs, in order."""
        for group, body in messages:
            self._dedup += 1
            self.sqs.send_message(
                QueueUrl=self.source,
                MessageBody=body,
                MessageGroupId=group,
                MessageDeduplicationId=str(self._dedup),
            )

    def receive(self) -> dict[str, Any]:
        """What is visible, shaped as Lambda's SQS event."""
        received = self.sqs.receive_message(
            QueueUrl=self.source, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        return sqs_event(received, self.source_arn)

    def acknowledge(self, event: dict[str, Any], response: Any) -> None:
        """Delete what the batch did not report, as Lambda's event source mapping does."""
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.source, ReceiptHandle=record["receiptHandle"])

    def show_again(self, event: dict[str, Any]) -> None:
        """The backoff elapsing, without sleeping."""
        for record in event["Records"]:
            self.sqs.change_message_visibility(
                QueueUrl=self.source, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )

    def parked(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(  # type: ignore[no-any-return]
            QueueUrl=self.dlq, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])

    def attempt_items(self) -> dict[str, int]:
        """message id -> counted attempts, from the table."""
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return {
            item["id"]["S"].rsplit("#", 1)[-1]: int(item["attempts"]["N"])
            for item in items
            if item["id"]["S"].startswith("retry#")
        }


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[Queues]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        dlq = sqs.create_queue(QueueName="in-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        source = sqs.create_queue(
            QueueName="in.fifo",
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": "360",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1000"}),
            },
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        yield Queues(sqs=sqs, dynamodb=dynamodb, source=source, source_arn=arn, dlq=dlq)


def make_batch(
    queues: Queues,
    *,
    base_delay: float = 0,
    max_attempts: int = 200,
    budget_hours: float = 24,
    clock: Callable[[], float] = time.time,
    attempts: AttemptCounter | None = None,
    max_workers: int = 1,
) -> FifoBatch:
    """A FifoBatch on the moto queues; its visibility changes are recorded on `queues`."""
    client = boto3.client("sqs", region_name=REGION)

    def record(params: dict[str, Any], **_: Any) -> None:
        queues.visibility_changes.extend(params["Entries"])

    client.meta.events.register("provide-client-params.sqs.ChangeMessageVisibilityBatch", record)
    return FifoBatch(
        source_queue_url=queues.source,
        dead_letter_queue=MessageQueue(queues.dlq),
        attempts=attempts or AttemptCounter(TABLE),
        correlation_id_of=lambda r: f"wamid-{r.body}",
        policy=RetryPolicy(
            base_delay=base_delay, max_attempts=max_attempts, budget_seconds=budget_hours * HOUR
        ),
        clock=clock,
        max_workers=max_workers,
        _client=client,
    )


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every record the shared logger emits, as the dict Powertools would print."""
    lines: list[dict[str, Any]] = []
    handler = logger.registered_handler
    formatter = handler.formatter
    assert formatter is not None

    def emit(record: Any) -> None:
        lines.append(json.loads(formatter.format(record)))

    monkeypatch.setattr(handler, "emit", emit)
    return lines


def ids_by_body(event: dict[str, Any]) -> dict[str, str]:
    return {r["body"]: r["messageId"] for r in event["Records"]}


def failed_bodies(event: dict[str, Any], response: Any) -> list[str]:
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    return [r["body"] for r in event["Records"] if r["messageId"] in failed]


# ------------------------------------------------------------------ order
def test_failure_skips_the_rest_of_its_conversation_only(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"), ("bob", "b1"))
    event = queues.receive()
    handled: list[str] = []

    def handler(record: SQSRecord) -> None:
        if record.body == "a1":
            raise RetryLater("rate limited", retry_after=0)
        handled.append(record.body)

    response = make_batch(queues).process(event, None, handler)

    assert failed_bodies(event, response) == ["a1", "a2"]
    assert handled == ["b1"]


def test_retry_later_shortens_visibility_for_the_whole_conversation(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"))
    event = queues.receive()

    def handler(record: SQSRecord) -> None:
        raise RetryLater("server error", retry_after=1)

    make_batch(queues).process(event, None, handler)

    # Without the shortened visibility (360 s) nothing would come back this soon.
    deadline = time.monotonic() + 10
    bodies: list[str] = []
    while not bodies and time.monotonic() < deadline:
        time.sleep(0.5)
        bodies = [r["body"] for r in queues.receive()["Records"]]
    assert bodies == ["a1", "a2"]


def test_a_conversation_waits_as_one_each_for_its_own_delay(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("bob", "b2"), ("carol", "c1"))
    event = queues.receive()
    ids = ids_by_body(event)

    def handler(record: SQSRecord) -> None:
        if record.body == "a1":
            raise RetryLater("rate limited", retry_after=30)
        if record.body == "b1":
            raise RetryLater("rate limited", retry_after=5)

    response = make_batch(queues).process(event, None, handler)

    assert failed_bodies(event, response) == ["a1", "a2", "b1", "b2"]
    by_handle = {r["receiptHandle"]: r["messageId"] for r in event["Records"]}
    delays = {by_handle[c["ReceiptHandle"]]: c["VisibilityTimeout"] for c in queues.visibility_changes}
    assert delays == {ids["a1"]: 30, ids["a2"]: 30, ids["b1"]: 5, ids["b2"]: 5}


def test_every_record_failing_is_reported_not_raised(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("bob", "b1"))
    event = queues.receive()

    def handler(record: SQSRecord) -> None:
        raise ValueError("unexpected")

    response = make_batch(queues).process(event, None, handler)

    assert failed_bodies(event, response) == ["a1", "b1"]


# ------------------------------------------------------------------ what counts as an attempt
def test_skipped_records_are_never_counted(queues: Queues, log_lines: list[dict[str, Any]]) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"), ("alice", "a3"))
    head_fails = True
    handled: list[str] = []

    def handler(record: SQSRecord) -> None:
        if record.body == "a1" and head_fails:
            raise RetryLater("model 500")
        handled.append(record.body)

    batch = make_batch(queues)
    for _ in range(4):
        event = queues.receive()
        response = batch.process(event, None, handler)
        assert failed_bodies(event, response) == ["a1", "a2", "a3"]
        queues.show_again(event)
    ids = ids_by_body(event)
    receives = {r["body"]: r["attributes"]["ApproximateReceiveCount"] for r in event["Records"]}
    assert receives == {"a1": "4", "a2": "4", "a3": "4"}  # SQS counts every receive...
    assert queues.attempt_items() == {ids["a1"]: 4}  # ...the project only the head's real attempts
    retries = [line for line in log_lines if line["message"] == "Will retry"]
    assert [(r["correlation_id"], r["attempt"], r["counted_attempt"]) for r in retries] == [
        ("wamid-a1", n, True) for n in (1, 2, 3, 4)
    ]
    skips = [line["correlation_id"] for line in log_lines if line["message"].startswith("Skipped")]
    assert skips == ["wamid-a2", "wamid-a3"] * 4

    head_fails = False
    event = queues.receive()
    assert batch.process(event, None, handler) == {"batchItemFailures": []}
    assert handled == ["a1", "a2", "a3"]


def test_the_backoff_follows_real_attempts_not_receives(queues: Queues) -> None:
    """A follower received many times behind a failing head gets the first backoff on its first failure."""
    queues.send(("alice", "a1"), ("alice", "a2"))
    batch = make_batch(queues, base_delay=10)
    for _ in range(6):
        event = queues.receive()
        batch.process(event, None, lambda record: _raise(RetryLater("500")) if record.body == "a1" else None)
        queues.show_again(event)
    queues.visibility_changes.clear()

    event = queues.receive()
    response = batch.process(
        event, None, lambda record: None if record.body == "a1" else _raise(RetryLater("500"))
    )

    assert failed_bodies(event, response) == ["a2"]
    follower = event["Records"][1]
    assert follower["attributes"]["ApproximateReceiveCount"] == "7"
    assert queues.attempt_items()[follower["messageId"]] == 1
    # Attempt 1 of a 10 s base: 5 to 10 s (receive 7 would have meant 320 to 640 s).
    assert [c["VisibilityTimeout"] for c in queues.visibility_changes] == [pytest.approx(7.5, abs=2.5)]


def test_uncounted_retries_write_nothing_and_come_back_soon(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"))
    event = queues.receive()

    def handler(record: SQSRecord) -> None:
        raise RetryLater("another invocation is answering this message", counts_as_attempt=False)

    response = make_batch(queues, base_delay=3).process(event, None, handler)

    assert failed_bodies(event, response) == ["a1", "a2"]
    assert queues.attempt_items() == {}
    assert [c["VisibilityTimeout"] for c in queues.visibility_changes] == [3, 3]
    retry = next(line for line in log_lines if line["message"] == "Will retry")
    assert retry["counted_attempt"] is False
    assert "attempt" not in retry


def test_an_unexpected_error_is_a_counted_attempt_with_its_traceback(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"))
    event = queues.receive()

    def handler(record: SQSRecord) -> None:
        raise KeyError("surprise")

    make_batch(queues).process(event, None, handler)

    assert list(queues.attempt_items().values()) == [1]
    retry = next(line for line in log_lines if line["message"] == "Will retry")
    assert retry["reason"] == "KeyError: 'surprise'"
    assert "KeyError" in retry["exception"]


def test_the_count_expires_with_a_ttl_set_once(queues: Queues) -> None:
    queues.send(("alice", "a1"))
    now = time.time()
    clock = [now]
    batch = make_batch(queues, budget_hours=24, clock=lambda: clock[0])
    for step in range(2):
        clock[0] = now + step * 100
        event = queues.receive()
        batch.process(event, None, lambda record: _raise(RetryLater("500")))
        queues.show_again(event)

    [item] = queues.dynamodb.scan(TableName=TABLE)["Items"]
    assert item["id"]["S"] == f"retry#in.fifo#{event['Records'][0]['messageId']}"
    assert item["attempts"]["N"] == "2"
    assert int(item["expiration"]["N"]) == int(now + 24 * HOUR + 24 * HOUR)  # from the first failure


@dataclass
class BrokenTable:
    calls: int = 0

    def update_item(self, **_: Any) -> Any:
        self.calls += 1
        raise ConnectionError("DynamoDB is unreachable")


def test_when_dynamodb_fails_the_receive_count_stands_in_and_nothing_is_lost(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"))
    table = BrokenTable()
    batch = make_batch(queues, max_attempts=3, attempts=AttemptCounter(TABLE, client=table))

    for _ in range(2):
        event = queues.receive()
        response = batch.process(event, None, lambda record: _raise(RetryLater("500")))
        assert failed_bodies(event, response) == ["a1"]
        queues.show_again(event)
    event = queues.receive()
    response = batch.process(event, None, lambda record: _raise(RetryLater("500")))

    assert response == {"batchItemFailures": []}  # receive 3 = RetryMaxAttempts: parked, not lost
    assert [m["Body"] for m in queues.parked()] == ["a1"]
    assert table.calls == 3
    warnings = [line for line in log_lines if line["message"].startswith("Could not count the attempt")]
    assert [w["approximate_receive_count"] for w in warnings] == [1, 2, 3]
    assert all(w["level"] == "WARNING" for w in warnings)


# ------------------------------------------------------------------ when a message is dead
def test_park_moves_the_record_to_the_dead_letter_queue_and_acknowledges_it(queues: Queues) -> None:
    queues.send(("alice", "poison"), ("alice", "fine"))
    event = queues.receive()
    handled: list[str] = []

    def handler(record: SQSRecord) -> None:
        if record.body == "poison":
            raise ParkInDeadLetterQueue("bad key")
        handled.append(record.body)

    response = make_batch(queues).process(event, None, handler)

    assert response["batchItemFailures"] == []
    assert handled == ["fine"]
    [parked] = queues.parked()
    assert parked["Body"] == "poison"
    assert parked["Attributes"]["MessageGroupId"] == "alice"
    assert parked["Attributes"]["MessageDeduplicationId"] == "1"


def test_after_max_attempts_the_record_is_parked_and_its_conversation_goes_on(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"))
    handled: list[str] = []

    def handler(record: SQSRecord) -> None:
        if record.body == "a1":
            raise RetryLater("model 500")
        handled.append(record.body)

    batch = make_batch(queues, max_attempts=3)
    for _ in range(2):
        event = queues.receive()
        assert failed_bodies(event, batch.process(event, None, handler)) == ["a1", "a2"]
        queues.show_again(event)
    event = queues.receive()
    response = batch.process(event, None, handler)

    assert response == {"batchItemFailures": []}
    assert handled == ["a2"]  # answered in the same invocation, right after a1 was parked
    assert [m["Body"] for m in queues.parked()] == ["a1"]
    [line] = [line for line in log_lines if line["message"] == "Parked in the dead-letter queue"]
    assert line["correlation_id"] == "wamid-a1"
    assert line["attempts"] == 3
    assert line["level"] == "ERROR"
    assert "RetryMaxAttempts 3" in line["reason"]


def test_a_failure_past_the_time_budget_parks_the_record(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"))
    event = queues.receive()
    handled: list[str] = []

    def handler(record: SQSRecord) -> None:
        if record.body == "a1":
            raise RetryLater("model 500", counts_as_attempt=False)  # even an uncounted retry
        handled.append(record.body)

    batch = make_batch(queues, budget_hours=2, clock=lambda: time.time() + 2 * HOUR + 60)
    response = batch.process(event, None, handler)

    assert response == {"batchItemFailures": []}
    assert handled == ["a2"]
    assert [m["Body"] for m in queues.parked()] == ["a1"]
    [line] = [line for line in log_lines if line["message"] == "Parked in the dead-letter queue"]
    assert "past the retry budget (RetryBudgetHours 2)" in line["reason"]


def test_a_record_that_waited_out_the_budget_behind_a_failing_one_is_parked_and_says_why(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"), ("alice", "a3"))
    event = queues.receive()
    now = time.time()
    # a2 was queued 3 h ago (the head's own SentTimestamp says 1 h: within the budget).
    ages = {"a1": 1 * HOUR, "a2": 3 * HOUR, "a3": 1 * HOUR}
    for record in event["Records"]:
        record["attributes"]["SentTimestamp"] = str(int((now - ages[record["body"]]) * 1000))

    def handler(record: SQSRecord) -> None:
        raise RetryLater("model 500")

    response = make_batch(queues, budget_hours=2, clock=lambda: now).process(event, None, handler)

    assert failed_bodies(event, response) == ["a1", "a3"]
    assert [m["Body"] for m in queues.parked()] == ["a2"]
    [line] = [line for line in log_lines if line["message"] == "Parked in the dead-letter queue"]
    assert line["correlation_id"] == "wamid-a2"
    assert "waited 3.0 h behind a failing message of its conversation (wamid-a1)" in line["reason"]
    assert "never attempted" in line["reason"]


def test_a_record_that_cannot_be_parked_comes_back(queues: Queues) -> None:
    queues.send(("alice", "poison"))
    event = queues.receive()
    batch = make_batch(queues)
    batch.dead_letter_queue = MessageQueue(queues.dlq.replace("in-dlq", "missing-dlq"))

    response = batch.process(event, None, lambda record: _raise(ParkInDeadLetterQueue("bad key")))

    assert failed_bodies(event, response) == ["poison"]
    assert queues.attempt_items() == {}


def test_body_field_reads_a_correlation_id_from_any_body() -> None:
    read = body_field("message_id")
    assert read(SQSRecord({"body": '{"message_id": "wamid.1"}'})) == "wamid.1"
    assert read(SQSRecord({"body": "not json"})) is None
    assert read(SQSRecord({"body": "[1, 2]"})) is None
    assert read(SQSRecord({"body": '{"message_id": 7}'})) is None


def _raise(error: Exception) -> None:
    raise error


# ------------------------------------------------------------------ units of several records
def pairs_of_two(records: Sequence[SQSRecord]) -> list[list[SQSRecord]]:
    return [list(records[i : i + 2]) for i in range(0, len(records), 2)]


def test_a_unit_is_handled_as_one_and_a_failed_unit_blocks_the_next(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"), ("alice", "a3"), ("alice", "a4"), ("alice", "a5"))
    event = queues.receive()
    ids = ids_by_body(event)
    units: list[list[str]] = []

    def handler(unit: Sequence[SQSRecord]) -> None:
        units.append([record.body for record in unit])
        if unit[0].body == "a3":
            raise RetryLater("model 500", retry_after=7)

    response = make_batch(queues).process_units(event, None, handler, pairs_of_two)

    assert units == [["a1", "a2"], ["a3", "a4"]]  # a5 is skipped behind the failed unit
    assert failed_bodies(event, response) == ["a3", "a4", "a5"]
    assert queues.attempt_items() == {ids["a3"]: 1, ids["a4"]: 1}  # both were really attempted
    by_handle = {r["receiptHandle"]: r["body"] for r in event["Records"]}
    assert {by_handle[c["ReceiptHandle"]]: c["VisibilityTimeout"] for c in queues.visibility_changes} == {
        "a3": 7,
        "a4": 7,
        "a5": 7,
    }


def test_a_parked_unit_parks_each_of_its_records(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"), ("alice", "a3"))
    event = queues.receive()

    def handler(unit: Sequence[SQSRecord]) -> None:
        if unit[0].body == "a1":
            raise ParkInDeadLetterQueue("the model refused the key")

    response = make_batch(queues).process_units(event, None, handler, pairs_of_two)

    assert response == {"batchItemFailures": []}
    parked = queues.sqs.receive_message(QueueUrl=queues.dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in parked] == ["a1", "a2"]


def test_a_handed_back_unit_returns_after_exactly_its_delay_uncounted(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"), ("bob", "b1"))
    event = queues.receive()

    def handler(unit: Sequence[SQSRecord]) -> None:
        if unit[0].body == "a1":
            raise HandBack("waiting for the rest of a burst", delay=1.2)

    response = make_batch(queues, base_delay=30).process_units(event, None, handler, pairs_of_two)

    assert failed_bodies(event, response) == ["a1", "a2"]
    assert queues.attempt_items() == {}
    # The exact delay (rounded up to SQS's whole seconds), not the 30 s base of uncounted retries.
    assert [c["VisibilityTimeout"] for c in queues.visibility_changes] == [2, 2]
    handed = [line for line in log_lines if line["message"] == "Handed back"]
    assert [line["correlation_id"] for line in handed] == ["wamid-a1", "wamid-a2"]


def test_a_split_that_raises_falls_back_to_one_record_at_a_time(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("alice", "a2"))
    event = queues.receive()
    units: list[list[str]] = []

    def split(records: Sequence[SQSRecord]) -> list[list[SQSRecord]]:
        raise ValueError("bug")

    make_batch(queues).process_units(event, None, lambda unit: units.append([r.body for r in unit]), split)

    assert units == [["a1"], ["a2"]]


# ------------------------------------------------------------------ groups in threads
def test_groups_run_at_the_same_time_each_with_its_own_correlation_id(
    queues: Queues, log_lines: list[dict[str, Any]]
) -> None:
    queues.send(("alice", "a1"), ("bob", "b1"), ("carol", "c1"))
    event = queues.receive()
    all_three_waiting = threading.Barrier(3, timeout=5)  # broken unless the three run at once

    def handler(record: SQSRecord) -> None:
        all_three_waiting.wait()
        logger.info("handling")
        time.sleep(0.05)  # the others log meanwhile
        logger.info("handled")

    response = make_batch(queues, max_workers=3).process(event, None, handler)

    assert response == {"batchItemFailures": []}
    handled = [line for line in log_lines if line["message"] in {"handling", "handled"}]
    by_thread: dict[str, set[str]] = {}
    for line in handled:
        by_thread.setdefault(line["correlation_id"], set()).add(line["message"])
    assert by_thread == {f"wamid-{body}": {"handling", "handled"} for body in ("a1", "b1", "c1")}


def test_one_worker_handles_groups_one_after_another(queues: Queues) -> None:
    queues.send(("alice", "a1"), ("bob", "b1"))
    event = queues.receive()
    running: list[int] = []
    at_once = 0
    lock = threading.Lock()

    def handler(record: SQSRecord) -> None:
        nonlocal at_once
        with lock:
            running.append(1)
            at_once = max(at_once, len(running))
        time.sleep(0.05)
        with lock:
            running.pop()

    make_batch(queues, max_workers=1).process(event, None, handler)

    assert at_once == 1
