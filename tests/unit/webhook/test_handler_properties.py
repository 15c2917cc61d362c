"""Property-based tests of the handler: no input makes it fail with 5xx or enqueue unsigned data."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.unit.webhook.harness import (
    APP_SECRET,
    REGION,
    SECRET_NAME,
    WebhookHarness,
    http_event,
    make_harness,
)
from wa_assistant.observability import logger, metrics
from wa_assistant.records import InboundMessage
from wa_assistant.webhook.signature import expected_signature

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class RecordingSqs:
    """Stands in for SendMessageBatch so that every enqueued entry can be inspected cheaply."""

    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.entries.extend(kwargs["Entries"])
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[WebhookHarness, RecordingSqs]]:
    """One function instance for all examples (a warm container), on moto, SQS sends recorded."""
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        for name, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "WEBHOOK_SECRET_NAME": SECRET_NAME,
            "MAX_WEBHOOK_BODY_BYTES": "4096",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.setattr(metrics, "namespace", "WhatsAppAssistant")
        handler = logger.registered_handler
        previous_level = logger.log_level
        logger.setLevel("ERROR")
        previous_stream = handler.setStream(io.StringIO())  # type: ignore[attr-defined]
        try:
            webhook = make_harness(monkeypatch, io.StringIO())
            recorder = RecordingSqs()
            with mock.patch.object(
                webhook.app.inbound_queue.client, "send_message_batch", side_effect=recorder
            ):
                yield webhook, recorder
        finally:
            handler.setStream(previous_stream)  # type: ignore[attr-defined]
            logger.setLevel(previous_level)


headers_strategy = st.dictionaries(
    st.sampled_from(["x-hub-signature-256", "X-Hub-Signature-256", "content-type", "x-other"])
    | st.text(max_size=20),
    st.text(max_size=80) | st.just("sha256=" + "a" * 64),
    max_size=4,
)


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=5000), headers=headers_strategy, base64_encoded=st.booleans())
def test_random_requests_never_fail_and_never_enqueue(
    harness: tuple[WebhookHarness, RecordingSqs], body: bytes, headers: dict[str, str], base64_encoded: bool
) -> None:
    webhook, recorder = harness
    before = len(recorder.entries)
    text = base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8", "replace")
    response = webhook.invoke(http_event("POST", body=text, headers=headers, base64_encoded=base64_encoded))
    assert response["statusCode"] in {400, 401, 413}
    assert len(recorder.entries) == before


@PROPERTY_SETTINGS
@given(body=st.text(max_size=300), garbage_signature=st.text(max_size=100))
def test_random_text_bodies_with_wrong_signatures_are_401(
    harness: tuple[WebhookHarness, RecordingSqs], body: str, garbage_signature: str
) -> None:
    webhook, recorder = harness
    before = len(recorder.entries)
    raw = body.encode("utf-8", "surrogatepass")
    response = webhook.post(raw, signature=garbage_signature, base64_encoded=True)
    assert response["statusCode"] == 401
    assert len(recorder.entries) == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def base_webhook() -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001111",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [
                                {"profile": {"name": "A", "username": "@a"}, "wa_id": "1", "user_id": "US.1"}
                            ],
                            "messages": [
                                {
                                    "from": "1",
                                    "from_user_id": "US.1",
                                    "id": "wamid.P1",
                                    "timestamp": "1760000000",
                                    "type": "text",
                                    "text": {"body": "hi"},
                                    "context": {"id": "wamid.Q", "forwarded": False},
                                },
                                {
                                    "from": "1",
                                    "id": "wamid.P2",
                                    "timestamp": "1760000001",
                                    "type": "image",
                                    "image": {"id": "9", "caption": "c", "mime_type": "image/png"},
                                },
                                {
                                    "from": "1",
                                    "id": "wamid.P3",
                                    "timestamp": "1760000002",
                                    "type": "location",
                                    "location": {"latitude": 1.5, "longitude": 2.5},
                                },
                                {
                                    "from": "1",
                                    "id": "wamid.P4",
                                    "timestamp": "1760000003",
                                    "type": "interactive",
                                    "interactive": {
                                        "type": "nfm_reply",
                                        "nfm_reply": {"response_json": "{}"},
                                    },
                                },
                            ],
                            "statuses": [{"id": "wamid.S", "status": "failed", "errors": [{"code": 1}]}],
                            "errors": [{"code": 131000, "error_data": {"details": "x"}}],
                        },
                    }
                ],
            }
        ],
    }


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*prefix, index))


ALL_PATHS = list(_paths(base_webhook()))


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


@PROPERTY_SETTINGS
@given(
    mutations=st.lists(st.tuples(st.sampled_from(ALL_PATHS), json_values), max_size=4),
    ensure_ascii=st.booleans(),
)
def test_signed_json_with_wrong_types_and_nulls_never_fails(
    harness: tuple[WebhookHarness, RecordingSqs],
    mutations: list[tuple[tuple[Any, ...], Any]],
    ensure_ascii: bool,
) -> None:
    webhook, recorder = harness
    document = base_webhook()
    for path, value in mutations:
        try:
            document = _replace(document, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    raw = json.dumps(document, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    before = len(recorder.entries)
    response = webhook.post(raw, signature=expected_signature(APP_SECRET, raw))
    assert response["statusCode"] in {200, 400}, response
    new_entries = recorder.entries[before:]
    event(f"status {response['statusCode']}, enqueued {len(new_entries)}")
    if response["statusCode"] == 200:
        assert json.loads(response["body"]) == {"received": len(new_entries)}
    else:
        assert new_entries == []
    for entry in new_entries:
        assert entry["MessageBody"].isascii()
        record = InboundMessage.model_validate_json(entry["MessageBody"])
        assert entry["MessageGroupId"] == record.conversation_id
        assert len(entry["MessageDeduplicationId"]) <= 128


def test_the_unmutated_base_webhook_enqueues_all_four(harness: tuple[WebhookHarness, RecordingSqs]) -> None:
    webhook, recorder = harness
    before = len(recorder.entries)
    response = webhook.post(json.dumps(base_webhook()).encode())
    assert json.loads(response["body"]) == {"received": 4}
    assert [json.loads(e["MessageBody"])["message_id"] for e in recorder.entries[before:]] == [
        "wamid.P1",
        "wamid.P2",
        "wamid.P3",
        "wamid.P4",
    ]


def test_base64_flag_with_signed_body_is_accepted(harness: tuple[WebhookHarness, RecordingSqs]) -> None:
    webhook, _ = harness
    raw = json.dumps(base_webhook()).encode()
    assert webhook.post(raw, base64_encoded=True)["statusCode"] == 200
