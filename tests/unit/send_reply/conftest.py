"""Fixtures of the SendReplyFunction tests: moto queues, secret and table, respx for Graph, output capture."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import respx
from moto import mock_aws

from local_stack.sqs_poller import sqs_event
from tests.support import FakeLambdaContext, load_function
from wa_assistant.observability import logger, metrics

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "send_reply"
GRAPH_BASE = "https://graph.test"
GRAPH_VERSION = "v23.0"
PHONE_NUMBER_ID = "106540352242922"
MESSAGES_URL = f"{GRAPH_BASE}/{GRAPH_VERSION}/{PHONE_NUMBER_ID}/messages"
ACCESS_TOKEN = "EAAGtestTOKENvalue1234567890"
REGION = "us-east-1"


def graph_errors() -> dict[str, dict[str, Any]]:
    """The project's own Graph error bodies, keyed by code: {"status": int, "body": {...}}."""
    loaded: dict[str, dict[str, Any]] = json.loads((FIXTURES / "graph_errors.json").read_text())
    return loaded


@dataclass
class Output:
    """What the function printed: Powertools JSON log lines and EMF metric blobs."""

    capsys: pytest.CaptureFixture[str]
    text: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> Output:
        captured = self.capsys.readouterr()
        self.text += captured.out + captured.err
        for line in (captured.out + captured.err).splitlines():
            if line.startswith("{"):
                try:
                    self.lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return self

    def metrics(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for line in self.read().lines:
            for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
                for metric in directive["Metrics"]:
                    value = line[metric["Name"]]
                    counts[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
        return counts

    def logs(self, message: str | None = None) -> list[dict[str, Any]]:
        entries = [line for line in self.read().lines if "level" in line]
        return [e for e in entries if message is None or e.get("message") == message]


class _CurrentStdout:
    """Writes to whatever sys.stdout is now: pytest swaps its capture stream between test phases."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Iterator[Output]:
    """Send the shared Powertools logger's lines to the captured stdout for this test."""
    handler: Any = logger.registered_handler
    previous = handler.stream
    handler.stream = _CurrentStdout()
    yield Output(capsys)
    handler.stream = previous


@dataclass
class Stack:
    """The AWS side of one test: queue URLs and clients, all in moto."""

    sqs: Any
    outbound_url: str
    dead_letter_url: str
    visibility_changes: list[dict[str, Any]] = field(default_factory=list)

    def enqueue(self, *bodies: str, group: str = f"{PHONE_NUMBER_ID}:16505551234") -> None:
        for index, body in enumerate(bodies):
            self.sqs.send_message(
                QueueUrl=self.outbound_url,
                MessageBody=body,
                MessageGroupId=group,
                MessageDeduplicationId=f"{group}-{index}-{hash(body)}",
            )

    def receive_event(self, max_messages: int = 10) -> dict[str, Any]:
        """An SQS event as Lambda builds it from the messages now visible."""
        response = self.sqs.receive_message(
            QueueUrl=self.outbound_url,
            MaxNumberOfMessages=max_messages,
            MessageSystemAttributeNames=["All"],
        )
        arn = self.sqs.get_queue_attributes(QueueUrl=self.outbound_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return sqs_event(response.get("Messages", []), arn)

    def dead_letters(self) -> list[str]:
        response = self.sqs.receive_message(QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10)
        return [message["Body"] for message in response.get("Messages", [])]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "send-reply",
        "POWERTOOLS_METRICS_NAMESPACE": "WhatsAppAssistant",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "GRAPH_SECRET_NAME": "graph-access-token",
        "GRAPH_API_BASE_URL": GRAPH_BASE,
        "GRAPH_API_VERSION": GRAPH_VERSION,
        "GRAPH_TIMEOUT_SECONDS": "5",
        "QUOTE_INBOUND_MESSAGE": "true",
        "IDEMPOTENCY_TABLE_NAME": "idempotency",
        "RETRY_BASE_SECONDS": "0",
        "RETRY_MAX_ATTEMPTS": "200",
        "RETRY_BUDGET_HOURS": "24",
        "SECRETS_MAX_AGE_SECONDS": "300",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # The shared Metrics may have been created before this environment was set.
    monkeypatch.setattr(metrics.provider, "namespace", "WhatsAppAssistant")
    monkeypatch.setattr(metrics.provider, "service", "send-reply")
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        fifo: Any = {"FifoQueue": "true", "VisibilityTimeout": "180"}
        dead_letter_url = sqs.create_queue(QueueName="outbound-dlq.fifo", Attributes=fifo)["QueueUrl"]
        outbound_url = sqs.create_queue(QueueName="outbound.fifo", Attributes=fifo)["QueueUrl"]
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="graph-access-token", SecretString=ACCESS_TOKEN
        )
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="idempotency",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dead_letter_url)
        monkeypatch.setenv("SOURCE_QUEUE_URL", outbound_url)
        yield Stack(sqs=sqs, outbound_url=outbound_url, dead_letter_url=dead_letter_url)


@pytest.fixture
def app(stack: Stack) -> ModuleType:
    """A cold SendReplyFunction whose visibility changes are recorded on `stack.visibility_changes`."""
    module = load_function("send_reply")
    client = boto3.client("sqs", region_name=REGION)

    def record(params: dict[str, Any], **_: Any) -> None:
        stack.visibility_changes.extend(params["Entries"])

    client.meta.events.register("provide-client-params.sqs.ChangeMessageVisibilityBatch", record)
    module.batch._client = client
    return module


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def invoke(
    app: ModuleType, event: dict[str, Any], remaining_millis: int = 30_000, stack: Stack | None = None
) -> dict[str, Any]:
    """Call the handler; with `stack`, delete the records it acknowledged, as Lambda's poller does."""
    result: dict[str, Any] = app.lambda_handler(event, FakeLambdaContext(remaining_millis=remaining_millis))
    if stack is not None:
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                stack.sqs.delete_message(QueueUrl=stack.outbound_url, ReceiptHandle=record["receiptHandle"])
    return result
