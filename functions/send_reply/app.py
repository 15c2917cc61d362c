"""SendReplyFunction: outbound FIFO queue → WhatsApp Cloud API.

Parses each record into a `TypingIndicator` or `TextReply` and hands it to
`OutboundDelivery`, which decides retry / park / acknowledge per failure.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from wa_assistant.aws.batch import AttemptCounter, FifoBatch, ParkInDeadLetterQueue, body_field
from wa_assistant.aws.queue import MessageQueue
from wa_assistant.aws.secrets import secret_text
from wa_assistant.observability import logger, metrics, set_correlation_id, tracer
from wa_assistant.records import outbound_action_adapter
from wa_assistant.whatsapp.delivery import OutboundDelivery, idempotency_config
from wa_assistant.whatsapp.graph import GraphClient, http_client

GRAPH_TIMEOUT_SECONDS = float(os.environ.get("GRAPH_TIMEOUT_SECONDS", "10"))


def _access_token() -> str:
    """Read on first use, then from Powertools' cache (SECRETS_MAX_AGE_SECONDS)."""
    return secret_text(os.environ["GRAPH_SECRET_NAME"])


http = http_client(GRAPH_TIMEOUT_SECONDS)
delivery = OutboundDelivery(
    graph=GraphClient(
        base_url=os.environ.get("GRAPH_API_BASE_URL", "https://graph.facebook.com"),
        api_version=os.environ.get("GRAPH_API_VERSION", "v23.0"),
        access_token=_access_token,
        http=http,
    ),
    persistence_store=DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"]),
    config=idempotency_config(),
    quote_inbound_message=os.environ.get("QUOTE_INBOUND_MESSAGE", "true").lower() == "true",
    seconds_per_call=(http.timeout.connect or 0) + (http.timeout.read or 0),  # the longest one call takes
)
batch = FifoBatch(
    source_queue_url=os.environ["SOURCE_QUEUE_URL"],
    dead_letter_queue=MessageQueue(os.environ["DEAD_LETTER_QUEUE_URL"]),
    attempts=AttemptCounter(os.environ["IDEMPOTENCY_TABLE_NAME"]),
    correlation_id_of=body_field("inbound_message_id"),
)


def _loose_correlation_id(body: str) -> str | None:
    """The inbound wamid of a record that failed validation, if it can be read at all."""
    try:
        value = json.loads(body).get("inbound_message_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def handle_record(record: SQSRecord) -> None:
    try:
        action = outbound_action_adapter.validate_json(record.body)
    except ValidationError as error:
        set_correlation_id(_loose_correlation_id(record.body))
        problems = sorted({f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in error.errors()})
        raise ParkInDeadLetterQueue(f"undecodable outbound record ({'; '.join(problems)})") from error
    set_correlation_id(action.inbound_message_id)
    delivery.deliver(action)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    delivery.begin_invocation(context)
    return batch.process(event, context, handle_record)
