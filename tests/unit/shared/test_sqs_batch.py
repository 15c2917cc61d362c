"""FifoBatch: which records fail, when they come back, and where hopeless ones go."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from local_stack.sqs_poller import sqs_event
from wa_assistant.aws.batch import FifoBatch, ParkInDeadLetterQueue, RetryLater, backoff_seconds
from wa_assistant.aws.queue import MessageQueue

REGION = "us-east-1"


@given(
    attempt=st.integers(min_value=1, max_value=50),
    retry_after=st.none() | st.floats(min_value=0, max_value=600),
    jitter=st.floats(min_value=0, max_value=1),
)
def test_backoff_grows_stays_capped_and_respects_retry_after(
    attempt: int, retry_after: float | None, jitter: float
) -> None:
    delay = backoff_seconds(attempt, retry_after, base=10, cap=900, rng=lambda: jitter)
    exponential = min(900, 10 * 2 ** (attempt - 1))
    assert exponential / 2 - 1 <= delay <= 900
    if retry_after is not None:
        assert delay >= min(int(retry_after), 900)


def test_backoff_doubles_per_attempt_without_jitter() -> None:
    delays = [backoff_seconds(n, base=10, rng=lambda: 1.0) for n in range(1, 6)]
    assert delays == [10, 20, 40, 80, 160]


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
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
                "RedrivePolicy": f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "5"}}',
            },
        )["QueueUrl"]
        yield {"source": source, "dlq": dlq}


def _receive_event(url: str, messages: list[tuple[str, str]]) -> dict[str, Any]:
    """Send (group, body) pairs, receive them, and shape them as Lambda's SQS event."""
    sqs = boto3.client("sqs", region_name=REGION)
    for index, (group, body) in enumerate(messages):
        sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=str(index)
        )
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    received = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    assert len(received) == len(messages)
    return sqs_event(received, arn)


def _visible_bodies(url: str) -> list[str]:
    sqs = boto3.client("sqs", region_name=REGION)
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in found]


def test_failure_skips_the_rest_of_its_conversation_only(queues: dict[str, str]) -> None:
    event = _receive_event(queues["source"], [("alice", "a1"), ("alice", "a2"), ("bob", "b1")])
    handled: list[str] = []

    def handler(record: SQSRecord) -> None:
        if record.body == "a1":
            raise RetryLater("rate limited", retry_after=0)
        handled.append(record.body)

    batch = FifoBatch(queues["source"], MessageQueue(queues["dlq"]), base_delay=0)
    response = batch.process(event, None, handler)

    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    ids = {r["body"]: r["messageId"] for r in event["Records"]}
    assert failed == {ids["a1"], ids["a2"]}
    assert handled == ["b1"]


def test_retry_later_shortens_visibility_for_the_whole_conversation(queues: dict[str, str]) -> None:
    event = _receive_event(queues["source"], [("alice", "a1"), ("alice", "a2")])

    def handler(record: SQSRecord) -> None:
        raise RetryLater("server error", retry_after=1)

    batch = FifoBatch(queues["source"], MessageQueue(queues["dlq"]), base_delay=0)
    batch.process(event, None, handler)

    # Without the shortened visibility (360 s) nothing would come back this soon.
    deadline = time.monotonic() + 10
    bodies: list[str] = []
    while not bodies and time.monotonic() < deadline:
        time.sleep(0.5)
        bodies = _visible_bodies(queues["source"])
    assert bodies == ["a1", "a2"]


def test_park_moves_the_record_to_the_dead_letter_queue_and_acknowledges_it(queues: dict[str, str]) -> None:
    event = _receive_event(queues["source"], [("alice", "poison"), ("alice", "fine")])

    def handler(record: SQSRecord) -> None:
        if record.body == "poison":
            raise ParkInDeadLetterQueue("bad key")

    batch = FifoBatch(queues["source"], MessageQueue(queues["dlq"]), base_delay=0)
    response = batch.process(event, None, handler)

    assert response["batchItemFailures"] == []
    assert _visible_bodies(queues["dlq"]) == ["poison"]


def test_every_record_failing_is_reported_not_raised(queues: dict[str, str]) -> None:
    event = _receive_event(queues["source"], [("alice", "a1"), ("bob", "b1")])

    def handler(record: SQSRecord) -> None:
        raise ValueError("unexpected")

    batch = FifoBatch(queues["source"], MessageQueue(queues["dlq"]), base_delay=0)
    response = batch.process(event, None, handler)

    assert len(response["batchItemFailures"]) == 2
