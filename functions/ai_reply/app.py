"""AiReplyFunction: answers each inbound WhatsApp message with the chat-completions model.

Inbound FIFO queue -> (typing indicator, model reply) on the outbound FIFO queue.
Voice notes, photos and documents are read first (Graph media download with the
WhatsApp token, Mistral transcription / vision / OCR; see
wa_assistant.conversation.understanding). Each record is answered at most once per
wamid (Powertools idempotency, 7 days, longer than Meta redelivers), and a voice
note or document is transcribed / read at most once per wamid. Outcomes map to the
queue as follows:

- answered / honest reply / ignored / outside the 24-hour window: acknowledged;
- model rejected the key or request (401/403/400/422): parked in the dead-letter
  queue at once + MistralRequestRejected metric (alarmed), see wa_assistant.model.chat;
- WhatsApp token refused while fetching media (190/401): parked + GraphAuthFailed (alarmed);
- transient model or Graph failure, no time left for a call, or another worker
  still answering: RetryLater (backoff);
- undecodable record: parked in the dead-letter queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from wa_assistant.aws.batch import FifoBatch, ParkInDeadLetterQueue, RetryLater
from wa_assistant.aws.queue import MessageQueue
from wa_assistant.aws.secrets import secret_text
from wa_assistant.conversation.answering import Answerer, AnswerSettings
from wa_assistant.conversation.memory import ConversationMemory
from wa_assistant.conversation.prompt import within_service_window
from wa_assistant.conversation.understanding import Ignore, LazyMediaReader, MediaReader, Read, Reply, plan
from wa_assistant.deadline import NoTimeLeft
from wa_assistant.model.chat import MistralClient, MistralError, MistralSettings
from wa_assistant.observability import logger, metrics, tracer
from wa_assistant.records import InboundMessage
from wa_assistant.whatsapp.graph import FailureKind, GraphRequestFailed

IDEMPOTENCY_SECONDS = 7 * 24 * 3600
"""Longer than Meta keeps redelivering an unacknowledged webhook."""
SAFETY_SECONDS = 5.0
"""Kept free after the longest call: returning the batch response, and the worker's own overhead."""

SERVICE_WINDOW_HOURS = float(os.environ.get("SERVICE_WINDOW_HOURS") or "24")
MISTRAL_SECRET_NAME = os.environ["MISTRAL_SECRET_NAME"]
GRAPH_SECRET_NAME = os.environ["GRAPH_SECRET_NAME"]

model_settings = MistralSettings.from_env()
MODEL_CALL_SECONDS = model_settings.connect_timeout_seconds + model_settings.read_timeout_seconds
"""The longest one Mistral call (chat, transcription, OCR) can take before its timeout fires."""


class InvocationClock:
    """The one answer to "is there time left for a call of N seconds?" in this function."""

    def __init__(self) -> None:
        self.context: LambdaContext | None = None

    def has_time_for(self, seconds: float) -> bool:
        if self.context is None:
            return True
        return self.context.get_remaining_time_in_millis() >= (seconds + SAFETY_SECONDS) * 1000


clock = InvocationClock()


def _api_key() -> str:
    return secret_text(MISTRAL_SECRET_NAME)


def _access_token() -> str:
    """The WhatsApp token, read to fetch media (the send function holds the same secret)."""
    return secret_text(GRAPH_SECRET_NAME)


mistral_http = httpx.Client(
    timeout=httpx.Timeout(
        model_settings.read_timeout_seconds, connect=model_settings.connect_timeout_seconds
    ),
    headers={"Accept": "application/json"},
)
batch = FifoBatch(
    source_queue_url=os.environ["SOURCE_QUEUE_URL"],
    dead_letter_queue=MessageQueue(os.environ["DEAD_LETTER_QUEUE_URL"]),
)
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"])
answer_settings = AnswerSettings.from_env()


def _media_reader() -> MediaReader:
    """Built on the first media message: text-only containers never load the media adapters."""
    from wa_assistant.conversation.media_reading import MediaReading  # noqa: PLC0415 - cold start

    reading = MediaReading.from_env(
        access_token=_access_token,
        api_key=_api_key,
        mistral_http=mistral_http,
        model_call_seconds=MODEL_CALL_SECONDS,
        has_time=clock.has_time_for,
        max_text_chars=answer_settings.prompt_budget_chars,
    )
    # Its own persistence layer: Powertools configures a layer with the key prefix of the call
    # in progress, and the readings run inside the answer's idempotent call.
    return reading.once(
        DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"]), media_idempotency
    )


def _reading_reused(response: Any, idempotent_data: DataRecord) -> Any:
    """A transcript or document text stored by an earlier attempt at this wamid: reused, not made again."""
    logger.info("Media already read for this message; reusing the text, not reading again")
    metrics.add_metric(name="MediaReadingsReused", unit="Count", value=1)
    return response


media_idempotency = IdempotencyConfig(
    event_key_jmespath="message_id",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_SECONDS,
    response_hook=_reading_reused,
)
answerer = Answerer(
    settings=answer_settings,
    outbound=MessageQueue(os.environ["OUTBOUND_QUEUE_URL"]),
    model=MistralClient(model_settings, api_key=_api_key, http=mistral_http),
    memory=ConversationMemory(
        os.environ["MEMORY_TABLE_NAME"],
        max_turns=int(os.environ.get("MEMORY_TURNS") or "10"),
        ttl_hours=float(os.environ.get("MEMORY_TTL_HOURS") or "24"),
    ),
    reader=LazyMediaReader(_media_reader),
    model_call_seconds=MODEL_CALL_SECONDS,
    has_time=clock.has_time_for,
)


def _already_answered(response: Any, idempotent_data: DataRecord) -> Any:
    """Runs instead of the answer when this wamid was handled before (a redelivery)."""
    logger.info("Already handled this message; not answering twice", extra={"previous_outcome": response})
    metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=1)
    return response


idempotency = IdempotencyConfig(
    event_key_jmespath="message_id",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_SECONDS,
    response_hook=_already_answered,
)


def _answer(plan: Read | Reply, *, message: InboundMessage) -> dict[str, str]:
    return {"outcome": answerer.answer(message, plan)}


# Powertools' decorator is untyped; the wrapped function keeps _answer's signature.
answer_once: Callable[..., dict[str, str]] = idempotent_function(
    _answer,
    data_keyword_argument="message",
    persistence_store=persistence,
    config=idempotency,
    key_prefix="ai-reply.answer",  # stable across module names and function renames
)


def handle_record(record: SQSRecord) -> None:
    """One inbound record; returning acknowledges it, RetryLater/ParkInDeadLetterQueue route it."""
    logger.set_correlation_id(None)
    try:
        message = InboundMessage.model_validate_json(record.body)
    except ValidationError as error:
        raise ParkInDeadLetterQueue(f"not an InboundMessage v1: {error.error_count()} errors") from error
    logger.set_correlation_id(message.message_id)

    if not within_service_window(message.timestamp, time.time(), SERVICE_WINDOW_HOURS):
        logger.warning(
            "Outside the customer-service window; not answering",
            extra={"message_timestamp": message.timestamp, "window_hours": SERVICE_WINDOW_HOURS},
        )
        metrics.add_metric(name="OutsideServiceWindow", unit="Count", value=1)
        return
    planned = plan(message, answer_settings.understanding)
    if isinstance(planned, Ignore):
        logger.info("No reply needed", extra={"reason": planned.reason, "message_type": message.type})
        metrics.add_metric(name="MessagesIgnored", unit="Count", value=1)
        return

    if isinstance(planned, Read) and not clock.has_time_for(MODEL_CALL_SECONDS):
        # Lambda would kill the call half-way and the whole batch would wait for the
        # visibility timeout; handing the record back now costs only a short backoff.
        raise RetryLater("not enough time left in this invocation for a model call")
    try:
        answer_once(planned, message=message)
    except MistralError as error:
        if error.retryable:
            logger.warning("The model API failed; will retry", extra=error.log_fields())
            metrics.add_metric(name="MistralTransientError", unit="Count", value=1)
            raise RetryLater(str(error), retry_after=error.retry_after) from error
        logger.error(
            "The model API rejected the request; fix the key or model, then redrive", extra=error.log_fields()
        )
        metrics.add_metric(name="MistralRequestRejected", unit="Count", value=1)
        raise ParkInDeadLetterQueue(str(error)) from error
    except GraphRequestFailed as failed:
        _media_failed(failed)
    except NoTimeLeft as error:
        raise RetryLater(str(error)) from error
    except IdempotencyAlreadyInProgressError as error:
        raise RetryLater("another invocation is answering this message") from error


def _media_failed(failed: GraphRequestFailed) -> None:
    """A Graph failure while fetching media that the media reader left to the queue (never permanent)."""
    failure = failed.failure
    if failure.kind is FailureKind.AUTH:
        metrics.add_metric(name="GraphAuthFailed", unit="Count", value=1)
        logger.error(
            "WhatsApp access token expired or invalid (media); replace the Graph secret, then redrive",
            extra=failure.log_fields(),
        )
        raise ParkInDeadLetterQueue(
            f"Graph refused the access token (status {failure.status}, code {failure.code})"
        )
    logger.warning("Fetching the media failed; will retry", extra=failure.log_fields())
    metrics.add_metric(name="GraphTransientError", unit="Count", value=1)
    raise RetryLater(
        f"Graph transient failure (status {failure.status}, code {failure.code})", failure.retry_after
    ) from failed


@tracer.capture_lambda_handler
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A worker killed mid-batch leaves INPROGRESS records that expire with this invocation.
    idempotency.register_lambda_context(context)
    media_idempotency.register_lambda_context(context)
    clock.context = context
    return batch.process(event, context, handle_record)
