"""WebhookFunction: Meta's webhook in, one inbound queue record per user message out.

GET  /webhook  subscription handshake: 200 + hub.challenge (text/plain), else 403.
POST /webhook  413 over the size cap; 401 without a valid X-Hub-Signature-256
               (missing and wrong are both 401: Meta retries any non-2xx); 400 when
               the signed body is not JSON; 200 once every message (and every echo
               of the owner's own messages, `smb_message_echoes`) is enqueued
               (payloads that are not WhatsApp messages, and malformed items, are
               logged and acknowledged: a retry cannot fix them; statuses, errors
               and skipped items are logged and counted only then, so that a
               redelivery after a 503 counts them once); 503 when SQS or
               Secrets Manager fails, so Meta redelivers (FIFO deduplication on the
               wamid makes a redelivery within 5 minutes harmless); 500 when the
               webhook secret lacks app_secret/verify_token (an operator must fix it).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from wa_assistant.aws.queue import EnqueueError, MessageQueue, QueueItem
from wa_assistant.observability import logger, metrics, set_correlation_id, tracer
from wa_assistant.records import InboundMessage, OwnerEcho, sqs_safe_id
from wa_assistant.webhook.body import (
    DEFAULT_MAX_BODY_BYTES,
    BodyTooLargeError,
    UndecodableBodyError,
    raw_body,
)
from wa_assistant.webhook.credentials import WebhookSecretInvalid, load_webhook_credentials
from wa_assistant.webhook.digest import digest_webhook
from wa_assistant.webhook.payload import InvalidJsonError, parse_webhook
from wa_assistant.webhook.report import report_digest
from wa_assistant.webhook.signature import SignatureVerdict, check_signature
from wa_assistant.webhook.subscription import SubscriptionRefused, subscription_challenge

SECRET_NAME = os.environ["WEBHOOK_SECRET_NAME"]
MAX_BODY_BYTES = int(os.environ.get("MAX_WEBHOOK_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)
SIGNATURE_HEADER = "x-hub-signature-256"

app = APIGatewayHttpResolver()
inbound_queue = MessageQueue(os.environ["INBOUND_QUEUE_URL"])


def _plain(status_code: int, text: str) -> Response[str]:
    return Response(status_code=status_code, content_type=content_types.TEXT_PLAIN, body=text)


@app.get("/webhook")
def verify_subscription() -> Response[str]:
    credentials = load_webhook_credentials(SECRET_NAME)
    query = app.current_event.query_string_parameters
    try:
        challenge = subscription_challenge(query, credentials.verify_token)
    except SubscriptionRefused as refused:
        logger.warning("Subscription handshake refused", extra={"reason": str(refused)})
        return _plain(403, f"Forbidden: {refused}")
    logger.info("Subscription handshake accepted")
    return _plain(200, challenge)


@app.post("/webhook")
def receive_notification() -> Response[Any]:
    event = app.current_event
    try:
        body = raw_body(event.body, bool(event.is_base64_encoded), MAX_BODY_BYTES)
    except BodyTooLargeError as error:
        logger.warning("Webhook refused: body too large", extra={"reason": str(error)})
        metrics.add_metric(name="WebhookBodyTooLarge", unit=MetricUnit.Count, value=1)
        return _plain(413, f"Payload Too Large: {error}")
    except UndecodableBodyError as error:
        logger.warning("Webhook refused: undecodable body", extra={"reason": str(error)})
        return _plain(400, f"Bad Request: {error}")

    credentials = load_webhook_credentials(SECRET_NAME)
    verdict = check_signature(credentials.app_secret, body, event.headers.get(SIGNATURE_HEADER))
    if verdict is not SignatureVerdict.VALID:
        logger.warning("Webhook refused: bad signature", extra={"reason": verdict.value})
        metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
        return _plain(401, f"Unauthorized: {verdict.value}")

    try:
        parsed = parse_webhook(body)
    except InvalidJsonError as error:
        logger.warning("Webhook refused: signed body is not JSON", extra={"reason": str(error)})
        metrics.add_metric(name="WebhookInvalidJson", unit=MetricUnit.Count, value=1)
        return _plain(400, "Bad Request: body is not JSON")

    digest = digest_webhook(parsed)
    records: list[InboundMessage | OwnerEcho] = [*digest.messages, *digest.echoes]
    inbound_queue.send(
        [
            QueueItem(
                # ASCII-escaped: SQS refuses some characters JSON allows (U+FFFE, U+FFFF),
                # and a refused record would make Meta redeliver the webhook forever.
                body=record.model_dump_json(ensure_ascii=True),
                group_id=record.conversation_id,
                deduplication_id=sqs_safe_id(record.message_id),
            )
            for record in records
        ]
    )
    for message in digest.messages:
        set_correlation_id(message.message_id)
        logger.info("Inbound message enqueued", extra={"message_type": message.type})
    for echo in digest.echoes:
        set_correlation_id(echo.message_id)
        logger.info("Owner's message (WhatsApp Business app) enqueued", extra={"message_type": echo.type})
    set_correlation_id(None)
    if digest.messages:
        metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=len(digest.messages))
    if digest.echoes:
        metrics.add_metric(name="OwnerEchoesReceived", unit=MetricUnit.Count, value=len(digest.echoes))
    # Only now, with the answer 200 certain: a 503 above makes Meta redeliver the whole webhook,
    # statuses and errors included, and reporting them before it would count them twice.
    report_digest(digest)
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body={"received": len(digest.messages)}
    )


@app.exception_handler([EnqueueError, ClientError, BotoCoreError, GetParameterError])  # type: ignore[untyped-decorator]
def dependency_failed(error: Exception) -> Response[str]:
    """SQS or Secrets Manager failed: 503 so that Meta redelivers; nothing is acknowledged."""
    set_correlation_id(None)
    logger.exception("Dependency failed; Meta will redeliver", extra={"error_type": type(error).__name__})
    metrics.add_metric(name="WebhookDependencyFailed", unit=MetricUnit.Count, value=1)
    return _plain(503, "Service Unavailable: try again")


@app.exception_handler([WebhookSecretInvalid, TransformParameterError])  # type: ignore[untyped-decorator]
def misconfigured(error: Exception) -> Response[str]:
    """The webhook secret is not the expected JSON object: an operator must fix it (Meta keeps retrying)."""
    set_correlation_id(None)
    logger.error("Webhook secret is misconfigured", extra={"reason": str(error)})
    metrics.add_metric(name="WebhookMisconfigured", unit=MetricUnit.Count, value=1)
    return _plain(500, "Internal Server Error: webhook secret misconfigured")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
