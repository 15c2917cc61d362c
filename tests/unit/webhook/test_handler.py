"""WebhookFunction end to end on moto: handshake, signature, parsing, enqueueing, failures, logs."""

from __future__ import annotations

import io
import json
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from tests.support import ROOT
from tests.unit.webhook.harness import (
    APP_SECRET,
    VERIFY_TOKEN,
    WebhookHarness,
    make_harness,
)
from wa_assistant.records import InboundMessage

FIXTURES = ROOT / "tests" / "fixtures" / "webhook"
EVENTS = ROOT / "events"


def text_webhook(*wamids: str, sender: str = "16505551234", body: str = "Hello") -> bytes:
    """A Meta-style (compact, ASCII-escaped) webhook with one text message per wamid."""
    messages = [
        {"from": sender, "id": wamid, "timestamp": "1760000000", "type": "text", "text": {"body": body}}
        for wamid in wamids
    ]
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "880000000000001",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001111",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": "Ana"}, "wa_id": sender}],
                            "messages": messages,
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


# ----------------------------------------------------------------- GET handshake
def test_handshake_echoes_the_challenge_as_plain_text(webhook: WebhookHarness) -> None:
    response = webhook.get(
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )
    assert response["statusCode"] == 200
    assert response["body"] == "1158201444"
    assert response["headers"]["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (None, "missing hub.mode"),
        ({"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}, "missing hub.mode"),
        (
            {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
            "not 'subscribe'",
        ),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, "missing hub.verify_token"),
        (
            {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
            "wrong hub.verify_token",
        ),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN + "x", "hub.challenge": "1"}, "wrong"),
        ({"hub.mode": "subscribe", "hub.verify_token": "é", "hub.challenge": "1"}, "wrong hub.verify_token"),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, "missing hub.challenge"),
    ],
)
def test_handshake_refusals_are_403_with_the_reason(
    webhook: WebhookHarness, query: dict[str, str] | None, reason: str
) -> None:
    response = webhook.get(query)
    assert response["statusCode"] == 403
    assert reason in response["body"]
    assert "\n" not in response["body"]


def test_the_get_event_file_verifies(webhook: WebhookHarness) -> None:
    event = json.loads((EVENTS / "webhook_get_verify.json").read_text())
    response = webhook.invoke(event)
    assert (response["statusCode"], response["body"]) == (
        200,
        event["queryStringParameters"]["hub.challenge"],
    )


# ----------------------------------------------------------------- POST happy paths
def test_a_signed_webhook_enqueues_each_message_with_its_group_and_dedup_id(webhook: WebhookHarness) -> None:
    response = webhook.post(text_webhook("wamid.A1", "wamid.A2", body="Zürich? 🙂 a/b @c"))
    assert response["statusCode"] == 200
    assert body_of(response) == {"received": 2}
    queued = webhook.queued()
    assert [q.deduplication_id for q in queued] == ["wamid.A1", "wamid.A2"]
    assert {q.group_id for q in queued} == {"106540352242922:16505551234"}
    records = [InboundMessage.model_validate(q.body) for q in queued]
    assert [r.text for r in records] == ["Zürich? 🙂 a/b @c"] * 2
    assert records[0].sender.profile_name == "Ana"
    assert records[0].conversation_id == queued[0].group_id


def test_every_message_type_fixture_is_enqueued_as_the_domain_builds_it(webhook: WebhookHarness) -> None:
    raw = (FIXTURES / "every_message_type.json").read_bytes()
    response = webhook.post(raw)
    assert body_of(response) == {"received": 21}
    queued = webhook.queued()
    assert len(queued) == 21
    by_id = {q.body["message_id"]: InboundMessage.model_validate(q.body) for q in queued}
    assert by_id["wamid.FIXTURE019"].type == "hologram"
    assert by_id["wamid.FIXTURE014"].reaction_emoji == ""
    assert by_id["wamid.FIXTURE003"].media is not None
    assert by_id["wamid.FIXTURE003"].media.voice


def test_the_post_event_file_is_signed_with_the_local_secret(webhook: WebhookHarness) -> None:
    event = json.loads((EVENTS / "webhook_post_text.json").read_text())
    assert event["headers"]["x-hub-signature-256"].startswith("sha256=")
    response = webhook.invoke(event)
    assert (response["statusCode"], body_of(response)) == (200, {"received": 1})
    [queued] = webhook.queued()
    assert queued.body["sender"]["wa_id"] == "16505551234"
    assert queued.body["phone_number_id"] == "106540352242922"


def test_the_status_event_file_is_acknowledged_and_nothing_enqueued(webhook: WebhookHarness) -> None:
    event = json.loads((EVENTS / "webhook_post_status.json").read_text())
    response = webhook.invoke(event)
    assert (response["statusCode"], body_of(response)) == (200, {"received": 0})
    assert webhook.queued() == []


def test_base64_bodies_are_verified_over_the_decoded_bytes(webhook: WebhookHarness) -> None:
    response = webhook.post(text_webhook("wamid.B64", body="äöå"), base64_encoded=True)
    assert body_of(response) == {"received": 1}
    assert [q.body["text"] for q in webhook.queued()] == ["äöå"]


def test_header_name_is_case_insensitive(webhook: WebhookHarness) -> None:
    raw = text_webhook("wamid.CASE")
    from wa_assistant.webhook.signature import expected_signature  # noqa: PLC0415

    response = webhook.post(
        raw, signature=None, headers={"X-Hub-Signature-256": expected_signature(APP_SECRET, raw)}
    )
    assert response["statusCode"] == 200
    assert len(webhook.queued()) == 1


def test_a_redelivered_webhook_is_enqueued_once(webhook: WebhookHarness) -> None:
    raw = text_webhook("wamid.DUP")
    assert webhook.post(raw)["statusCode"] == 200
    assert webhook.post(raw)["statusCode"] == 200
    assert [q.deduplication_id for q in webhook.queued()] == ["wamid.DUP"]


def test_a_thousand_messages_are_all_enqueued_in_batches_of_ten(webhook: WebhookHarness) -> None:
    """At the SQS client boundary: moto's SQS rescans the whole queue per message (quadratic), so
    1,000 real sends take minutes; the moto-backed tests above cover what SQS does with a batch.
    100 users x 10 messages: each call carries ten conversations, at most one entry of each
    (see MessageQueue.send), so each user's messages reach the queue in order."""
    senders = [f"1650555{n:04d}" for n in range(100)]
    wamids = {sender: [f"wamid.BULK{sender}{n:02d}" for n in range(10)] for sender in senders}
    payload = json.loads(text_webhook())
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "Ana"}, "wa_id": sender} for sender in senders]
    value["messages"] = [
        {
            "from": sender,
            "id": wamids[sender][n],
            "timestamp": "1760000000",
            "type": "text",
            "text": {"body": "Hi"},
        }
        for n in range(10)
        for sender in senders
    ]
    batches: list[list[dict[str, str]]] = []

    def accept(**kwargs: Any) -> dict[str, Any]:
        assert kwargs["QueueUrl"] == webhook.queue_url
        batches.append(kwargs["Entries"])
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}

    with mock.patch.object(webhook.app.inbound_queue.client, "send_message_batch", side_effect=accept):
        response = webhook.post(json.dumps(payload, separators=(",", ":")).encode())
    assert body_of(response) == {"received": 1000}
    assert [len(batch) for batch in batches] == [10] * 100
    entries = [entry for batch in batches for entry in batch]
    for sender in senders:
        group = f"106540352242922:{sender}"
        mine = [e for e in entries if e["MessageGroupId"] == group]
        assert [e["MessageDeduplicationId"] for e in mine] == wamids[sender]
        assert [json.loads(e["MessageBody"])["message_id"] for e in mine] == wamids[sender]
    assert len(entries) == 1000


def test_batches_of_ten_reach_the_fifo_queue(webhook: WebhookHarness) -> None:
    wamids = [f"wamid.REAL{n:02d}" for n in range(35)]
    assert body_of(webhook.post(text_webhook(*wamids))) == {"received": 35}
    assert [q.deduplication_id for q in webhook.queued()] == wamids


# ----------------------------------------------------------------- POST refusals
@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha1=abc", "garbage", "sha256=zz"],
)
def test_unsigned_or_wrongly_signed_webhooks_are_401_and_never_enqueued(
    webhook: WebhookHarness, signature: str | None
) -> None:
    response = webhook.post(text_webhook("wamid.EVIL"), signature=signature)
    assert response["statusCode"] == 401
    assert webhook.queued() == []


def test_a_signature_made_with_another_secret_is_401(webhook: WebhookHarness) -> None:
    from wa_assistant.webhook.signature import expected_signature  # noqa: PLC0415

    raw = text_webhook("wamid.EVIL")
    response = webhook.post(raw, signature=expected_signature("not-the-secret", raw))
    assert response["statusCode"] == 401
    assert webhook.queued() == []


def test_a_body_over_the_cap_is_413_before_any_work(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, captured_logs: io.StringIO
) -> None:
    harness = make_harness(monkeypatch, captured_logs, MAX_WEBHOOK_BODY_BYTES="2048")
    small = text_webhook("wamid.SMALL")
    big = text_webhook("wamid.BIG", body="x" * 2048)
    with mock.patch.object(
        harness.app, "load_webhook_credentials", wraps=harness.app.load_webhook_credentials
    ) as load:
        assert harness.post(big)["statusCode"] == 413
        assert harness.post(big, base64_encoded=True)["statusCode"] == 413
        assert load.call_count == 0  # no secret read, no HMAC, no parse
    assert harness.post(small)["statusCode"] == 200
    assert [q.deduplication_id for q in harness.queued()] == ["wamid.SMALL"]


@pytest.mark.parametrize(
    "raw", [b"not json", b'{"object": "whatsapp_business_account"', b'{"a": "\xff"}', b""]
)
def test_signed_bytes_that_are_not_json_are_400(webhook: WebhookHarness, raw: bytes) -> None:
    response = webhook.post(raw, base64_encoded=True)
    assert response["statusCode"] == 400
    assert webhook.queued() == []
    assert any(line["message"] == "Webhook refused: signed body is not JSON" for line in webhook.log_lines())


def test_invalid_base64_is_400(webhook: WebhookHarness) -> None:
    from tests.unit.webhook.harness import http_event  # noqa: PLC0415

    response = webhook.invoke(http_event("POST", body="@@not-base64@@", base64_encoded=True))
    assert response["statusCode"] == 400


@pytest.mark.parametrize(
    "fixture", ["statuses.json", "value_errors.json", "username_only_sender.json", "partly_malformed.json"]
)
def test_fixtures_are_acknowledged(webhook: WebhookHarness, fixture: str) -> None:
    expected = {
        "statuses.json": 0,
        "value_errors.json": 0,
        "username_only_sender.json": 1,
        "partly_malformed.json": 2,
    }
    response = webhook.post((FIXTURES / fixture).read_bytes())
    assert (response["statusCode"], body_of(response)) == (200, {"received": expected[fixture]})
    assert len(webhook.queued()) == expected[fixture]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"object":"page","entry":[]}',
        b'{"object":"whatsapp_business_account"}',
        b'{"object":"whatsapp_business_account","entry":[]}',
        b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"account_update","value":{}}]}]}',
        b"[1,2,3]",
        b"null",
    ],
)
def test_json_that_is_not_a_messages_webhook_is_acknowledged_and_ignored(
    webhook: WebhookHarness, raw: bytes
) -> None:
    response = webhook.post(raw)
    assert (response["statusCode"], body_of(response)) == (200, {"received": 0})
    assert webhook.queued() == []
    assert any(line["message"] == "Webhook part ignored" for line in webhook.log_lines())


# ----------------------------------------------------------------- dependency failures
def test_enqueue_failure_is_503_and_a_redelivery_completes_without_duplicates(
    webhook: WebhookHarness,
) -> None:
    wamids = [f"wamid.FAIL{n:02d}" for n in range(25)]
    raw = text_webhook(*wamids)
    client = webhook.app.inbound_queue.client
    original = client.send_message_batch
    calls = 0

    def fail_second_batch(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch"
            )
        return original(**kwargs)

    with mock.patch.object(client, "send_message_batch", side_effect=fail_second_batch):
        response = webhook.post(raw)
    assert response["statusCode"] == 503
    # Meta redelivers the same bytes; FIFO deduplication drops the ten that made it the first time.
    assert body_of(webhook.post(raw)) == {"received": 25}
    assert [q.deduplication_id for q in webhook.queued()] == wamids


def emf_values(stdout: str) -> dict[str, list[float]]:
    """Every EMF metric value printed, by metric name."""
    emitted: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        if line.startswith("{") and "_aws" in line:
            record = json.loads(line)
            for definition in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = record[definition["Name"]]
                emitted.setdefault(definition["Name"], []).extend(
                    value if isinstance(value, list) else [value]
                )
    return emitted


def test_statuses_and_other_reports_are_counted_once_when_a_503_makes_meta_redeliver(
    webhook: WebhookHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = json.loads(text_webhook("wamid.WITHSTATUS"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["statuses"] = [
        {
            "id": "wamid.OUTBOUND1",
            "status": "delivered",
            "timestamp": "1760000001",
            "recipient_id": "16505551234",
        }
    ]
    value["errors"] = [{"code": 131000, "title": "Something went wrong", "message": "Something went wrong"}]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    client = webhook.app.inbound_queue.client
    down = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch")

    with mock.patch.object(client, "send_message_batch", side_effect=down):
        assert webhook.post(raw)["statusCode"] == 503
    assert webhook.post(raw)["statusCode"] == 200  # Meta redelivers the same bytes

    lines = webhook.log_lines()
    assert [line["status"] for line in lines if line["message"] == "Outbound message status"] == ["delivered"]
    assert len([line for line in lines if line["message"] == "WhatsApp reported an error"]) == 1
    emitted = emf_values(capsys.readouterr().out)
    assert emitted["StatusDelivered"] == [1]
    assert emitted["WebhookErrors"] == [1]
    assert emitted["MessagesReceived"] == [1]
    assert emitted["WebhookDependencyFailed"] == [1]


def test_partially_failed_batch_is_503(webhook: WebhookHarness) -> None:
    client = webhook.app.inbound_queue.client
    failed = {"Successful": [], "Failed": [{"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue"}]}
    with mock.patch.object(client, "send_message_batch", return_value=failed):
        response = webhook.post(text_webhook("wamid.PARTIAL"))
    assert response["statusCode"] == 503


def test_a_deleted_queue_is_503(webhook: WebhookHarness) -> None:
    webhook.sqs.delete_queue(QueueUrl=webhook.queue_url)
    response = webhook.post(text_webhook("wamid.NOQUEUE"))
    assert response["statusCode"] == 503
    assert any(line["message"] == "Dependency failed; Meta will redeliver" for line in webhook.log_lines())


def test_an_unreadable_secret_is_503(webhook: WebhookHarness) -> None:
    import boto3  # noqa: PLC0415

    boto3.client("secretsmanager").delete_secret(SecretId="webhook-secret", ForceDeleteWithoutRecovery=True)
    response = webhook.post(text_webhook("wamid.NOSECRET"))
    assert response["statusCode"] == 503
    assert webhook.queued() == []


# ----------------------------------------------------------------- logs
def test_logs_carry_the_wamid_and_never_a_secret(webhook: WebhookHarness) -> None:
    webhook.get({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"})
    webhook.get({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"})
    webhook.post(text_webhook("wamid.LOG1"))
    webhook.post(text_webhook("wamid.LOG2"), signature="sha256=" + "0" * 64)
    webhook.post((FIXTURES / "statuses.json").read_bytes())
    webhook.post((FIXTURES / "partly_malformed.json").read_bytes())
    text = webhook.logs.getvalue()
    assert APP_SECRET not in text
    assert VERIFY_TOKEN not in text
    lines = webhook.log_lines()
    enqueued = [line for line in lines if line["message"] == "Inbound message enqueued"]
    assert [line["correlation_id"] for line in enqueued] == [
        "wamid.LOG1",
        "wamid.FIXTURE031",
        "wamid.FIXTURE038",
    ]
    statuses = [line for line in lines if line["message"] == "Outbound message status"]
    assert [(line["correlation_id"], line["status"]) for line in statuses] == [
        ("wamid.OUT001", "sent"),
        ("wamid.OUT001", "delivered"),
        ("wamid.OUT001", "read"),
        ("wamid.OUT002", "failed"),
        ("wamid.OUT003", "deleted"),
    ]
    assert statuses[3]["errors"][0]["code"] == 131047
    assert statuses[0]["pricing_category"] == "service"
    skipped = [line for line in lines if line["message"] == "Malformed webhook item skipped"]
    assert {line.get("correlation_id") for line in skipped if line["item_kind"] == "message"} >= {
        "wamid.FIXTURE033"
    }
    refused = [line for line in lines if line["message"] == "Webhook refused: bad signature"]
    assert [line["reason"] for line in refused] == ["X-Hub-Signature-256 does not match the body"]
    # A line about no message carries no stale wamid.
    assert all(line.get("correlation_id") is None for line in refused)


def test_metrics_count_statuses_and_errors(
    webhook: WebhookHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    webhook.post((FIXTURES / "statuses.json").read_bytes())
    webhook.post((FIXTURES / "value_errors.json").read_bytes())
    emitted: dict[str, Any] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and "_aws" in line:
            record = json.loads(line)
            for definition in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = record[definition["Name"]]
                emitted.setdefault(definition["Name"], []).extend(
                    value if isinstance(value, list) else [value]
                )
    assert emitted["StatusSent"] == [1]
    assert emitted["StatusDelivered"] == [1]
    assert emitted["StatusRead"] == [1]
    assert emitted["StatusFailed"] == [1]
    assert emitted["StatusOther"] == [1]
    assert emitted["WebhookErrors"] == [1]


@pytest.mark.parametrize("secret", ['{"app_secret": "only-one"}', "not json"])
def test_a_misconfigured_secret_is_500_with_a_clear_log_line(webhook: WebhookHarness, secret: str) -> None:
    import boto3  # noqa: PLC0415

    boto3.client("secretsmanager").put_secret_value(SecretId="webhook-secret", SecretString=secret)
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS  # noqa: PLC0415

    DEFAULT_PROVIDERS.clear()  # drop the cached value, as SECRETS_MAX_AGE_SECONDS would
    response = webhook.post(text_webhook("wamid.MISCONFIGURED"))
    assert response["statusCode"] == 500
    assert webhook.queued() == []
    lines = [line for line in webhook.log_lines() if line["message"] == "Webhook secret is misconfigured"]
    assert len(lines) == 1
    assert "only-one" not in webhook.logs.getvalue()
