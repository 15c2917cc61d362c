"""Log lines and metrics for what a webhook carried besides queue records.

One structured line per status, error, skipped or ignored item, with the wamid
as correlation id when the line is about a message. No user text and no
secrets are logged. The handler reports a webhook only once it answers 200:
Meta redelivers a webhook answered 5xx whole, and each delivery that is
reported would count its statuses again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from wa_assistant.observability import logger, metrics, set_correlation_id
from wa_assistant.webhook.digest import StatusReport, WebhookDigest

STATUS_METRICS = {
    "sent": "StatusSent",
    "delivered": "StatusDelivered",
    "read": "StatusRead",
    "failed": "StatusFailed",
}
"""Known statuses get their own metric; others share StatusOther (bounded metric names)."""


def report_digest(digest: WebhookDigest) -> None:
    """Everything but the enqueued messages (those are logged once enqueued)."""
    for reason in digest.ignored:
        logger.info("Webhook part ignored", extra={"reason": reason})
        metrics.add_metric(name="WebhookIgnored", unit=MetricUnit.Count, value=1)
    for skipped in digest.skipped:
        _about_message(skipped.item_id if skipped.kind == "message" else None)
        logger.warning(
            "Malformed webhook item skipped",
            extra={
                "item_kind": skipped.kind,
                "item_index": skipped.index,
                "problems": list(skipped.problems),
            },
        )
        metrics.add_metric(name="WebhookItemsSkipped", unit=MetricUnit.Count, value=1)
    for status in digest.statuses:
        _report_status(status)
    for value_error in digest.errors:
        _about_message(None)
        logger.error(
            "WhatsApp reported an error",
            extra={"phone_number_id": value_error.phone_number_id, "error": asdict(value_error.error)},
        )
        metrics.add_metric(name="WebhookErrors", unit=MetricUnit.Count, value=1)
    for message_errors in digest.message_errors:
        _about_message(message_errors.message_id)
        logger.warning(
            "WhatsApp attached errors to a user message",
            extra={"errors": [asdict(error) for error in message_errors.errors]},
        )
    _about_message(None)


def _report_status(status: StatusReport) -> None:
    _about_message(status.message_id)
    fields: dict[str, Any] = {
        "status": status.status,
        "phone_number_id": status.phone_number_id,
        "recipient_id": status.recipient_id,
        "recipient_user_id": status.recipient_user_id,
        "status_timestamp": status.timestamp,
        "conversation_category": status.conversation_category,
        "pricing_category": status.pricing_category,
        "pricing_model": status.pricing_model,
        "billable": status.billable,
    }
    if status.errors:
        fields["errors"] = [asdict(error) for error in status.errors]
        logger.warning("Outbound message status", extra=fields)
    else:
        logger.info("Outbound message status", extra=fields)
    metrics.add_metric(name=STATUS_METRICS.get(status.status, "StatusOther"), unit=MetricUnit.Count, value=1)


def _about_message(wamid: str | None) -> None:
    set_correlation_id(wamid)
