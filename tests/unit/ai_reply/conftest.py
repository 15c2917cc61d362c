"""Fixtures of the AI reply tests: moto queues/tables/secret, respx for the model API, log and call spies."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import botocore.client
import pytest
import respx
from moto import mock_aws

from tests.support import load_function
from tests.unit.ai_reply.helpers import (
    ACCOUNT,
    API_KEY,
    BASE_ENV,
    GRAPH_TOKEN,
    MISTRAL_BASE_URL,
    REGION,
    Captured,
    Stack,
)
from wa_assistant.observability import logger, metrics


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(BASE_ENV)


@pytest.fixture
def stack(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName="ai-inbound-dlq.fifo", Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        inbound_url = sqs.create_queue(
            QueueName="ai-inbound.fifo",
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": "360",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            },
        )["QueueUrl"]
        outbound_url = sqs.create_queue(QueueName="ai-outbound.fifo", Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for name, key, ttl in (
            (env["IDEMPOTENCY_TABLE_NAME"], "id", "expiration"),
            (env["MEMORY_TABLE_NAME"], "conversation_id", "expires_at"),
            (env["CONVERSATION_TABLE_NAME"], "pk", "expires_at"),
        ):
            dynamodb.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            )
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True}
            )
        secretsmanager = boto3.client("secretsmanager", region_name=REGION)
        secretsmanager.create_secret(Name=env["MISTRAL_SECRET_NAME"], SecretString=API_KEY)
        secretsmanager.create_secret(Name=env["GRAPH_SECRET_NAME"], SecretString=GRAPH_TOKEN)
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name="ai-reply-handoffs")["TopicArn"]
        notices_url = sqs.create_queue(QueueName="ai-reply-handoff-notices")["QueueUrl"]
        notices_arn = sqs.get_queue_attributes(QueueUrl=notices_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=notices_arn)
        monkeypatch.setenv("HANDOFF_TOPIC_ARN", topic_arn)
        monkeypatch.setenv("OUTBOUND_QUEUE_URL", outbound_url)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        monkeypatch.setenv("SOURCE_QUEUE_URL", inbound_url)
        yield Stack(
            sqs=sqs,
            dynamodb=dynamodb,
            inbound_url=inbound_url,
            inbound_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-inbound.fifo",
            dlq_url=dlq_url,
            outbound_url=outbound_url,
            notices_url=notices_url,
        )


@pytest.fixture
def outside() -> Iterator[respx.MockRouter]:
    """Every outside HTTP API of the function (Mistral, Graph); a call to an unrouted URL fails the test."""
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def mistral(outside: respx.MockRouter) -> respx.Route:
    """The model API's chat endpoint: every test sets the route's return value or side effect."""
    return outside.post(f"{MISTRAL_BASE_URL}/chat/completions", name="chat")


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every AWS API call made by any boto3 client (Powertools' secrets provider included)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

    def spy(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append((operation_name, api_params))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    result = Captured()
    previous = handler.setStream(result.stream)
    out: list[str] = []

    def stdout() -> str:
        out.append(capsys.readouterr().out)
        return "".join(out)

    result.stdout = stdout
    metrics.clear_metrics()
    # Another test module may have imported wa_assistant.observability before any env was set.
    namespace, service = metrics.namespace, metrics.service
    metrics.namespace = BASE_ENV["POWERTOOLS_METRICS_NAMESPACE"]
    metrics.service = BASE_ENV["POWERTOOLS_SERVICE_NAME"]
    yield result
    handler.setStream(previous)
    metrics.clear_metrics()
    metrics.namespace, metrics.service = namespace, service


@pytest.fixture
def app(stack: Stack, mistral: respx.Route) -> ModuleType:
    """A cold AI reply function, wired to moto and respx."""
    return load_function("ai_reply")
