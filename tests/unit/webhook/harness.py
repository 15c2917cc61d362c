"""Webhook test harness: moto FIFO queue and secret as template.yaml creates them, logs captured."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support import FakeLambdaContext, load_function
from wa_assistant.observability import logger, metrics
from wa_assistant.webhook.signature import expected_signature

REGION = "us-east-1"
APP_SECRET = "local-app-secret"
VERIFY_TOKEN = "local-verify-token"
SECRET_NAME = "webhook-secret"
INBOUND_QUEUE_ATTRIBUTES: dict[Any, str] = {
    # template.yaml InboundQueue
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "messageGroup",
    "FifoThroughputLimit": "perMessageGroupId",
    "MessageRetentionPeriod": "345600",
    "VisibilityTimeout": "360",
}


@dataclass
class Queued:
    body: dict[str, Any]
    group_id: str
    deduplication_id: str


@dataclass
class WebhookHarness:
    """Invokes the handler with HTTP API v2 events and reads what reached the queue and the logs."""

    app: ModuleType
    queue_url: str
    sqs: Any
    logs: io.StringIO

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.app.lambda_handler(event, FakeLambdaContext())
        return response

    def post(
        self,
        body: bytes,
        *,
        signature: str | None = "valid",
        headers: dict[str, str] | None = None,
        base64_encoded: bool = False,
    ) -> dict[str, Any]:
        all_headers = {"content-type": "application/json", **(headers or {})}
        if signature == "valid":
            all_headers["x-hub-signature-256"] = expected_signature(APP_SECRET, body)
        elif signature is not None:
            all_headers["x-hub-signature-256"] = signature
        text = base64.b64encode(body).decode() if base64_encoded else body.decode()
        return self.invoke(http_event("POST", body=text, headers=all_headers, base64_encoded=base64_encoded))

    def get(self, query: dict[str, str] | None) -> dict[str, Any]:
        return self.invoke(http_event("GET", query=query))

    def queued(self) -> list[Queued]:
        """Drain the queue (receive + delete), in FIFO order."""
        drained: list[Queued] = []
        while True:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not received:
                return drained
            for message in received:
                attributes = message["Attributes"]
                drained.append(
                    Queued(
                        json.loads(message["Body"]),
                        attributes["MessageGroupId"],
                        attributes["MessageDeduplicationId"],
                    )
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]


def http_event(
    method: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as `sam local generate-event` shapes it."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} /webhook",
        "rawPath": "/webhook",
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "http": {"method": method, "path": "/webhook", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1"},
            "requestId": "request-1",
            "routeKey": f"{method} /webhook",
            "stage": "$default",
        },
        "isBase64Encoded": base64_encoded,
    }
    if query is not None:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = body
    return event


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", SECRET_NAME)
    monkeypatch.setattr(metrics, "namespace", "WhatsAppAssistant")
    with mock_aws():
        yield


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every Powertools log line of the test (the handler writes to a stream bound at import)."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def make_harness(monkeypatch: pytest.MonkeyPatch, logs: io.StringIO, **env: str) -> WebhookHarness:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="inbound.fifo", Attributes=INBOUND_QUEUE_ATTRIBUTES)["QueueUrl"]
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=SECRET_NAME, SecretString=json.dumps({"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN})
    )
    monkeypatch.setenv("INBOUND_QUEUE_URL", queue_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return WebhookHarness(load_function("webhook"), queue_url, sqs, logs)


@pytest.fixture
def webhook(aws_env: None, monkeypatch: pytest.MonkeyPatch, captured_logs: io.StringIO) -> WebhookHarness:
    return make_harness(monkeypatch, captured_logs)
