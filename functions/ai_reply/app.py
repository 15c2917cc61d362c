"""AiReplyFunction: answers each inbound WhatsApp message with the chat-completions model.

Inbound FIFO queue -> (typing indicator, model reply) on the outbound FIFO queue.
A batch's conversations are answered at the same time (threads, wa_assistant.aws.batch);
a conversation's consecutive user messages in the batch are answered together as one
burst (`split_into_runs`; one model call, one reply quoting the last), after the
oldest of them has waited COALESCE_WINDOW_SECONDS in the queue (handed back, not
counted). Voice notes, photos and documents are read first (Graph media download with the
WhatsApp token, Mistral transcription / vision / OCR; see
wa_assistant.conversation.understanding). Each wamid is answered at most once
(Powertools idempotency, 7 days, longer than Meta redelivers; a burst claims all of
its wamids, wa_assistant.aws.once), and a voice note or document is transcribed /
read at most once per wamid. Conversation
control (opt-out, pause, handoff, daily limits: wa_assistant.conversation.conductor)
decides before any model call; an `OwnerEcho` record (the owner wrote from the
WhatsApp Business app) pauses the conversation. Outcomes map to the queue as follows:

- answered / honest reply / controlled / ignored / group / outside the 24-hour
  window: acknowledged;
- model rejected the key or request (401/403/400/422): parked in the dead-letter
  queue at once + MistralRequestRejected metric (alarmed), see wa_assistant.model.chat;
- WhatsApp token refused while fetching media: parked + GraphAuthFailed (alarmed);
- transient model or Graph failure: RetryLater (backoff, a counted attempt);
- another worker still answering, or no time left for the next call
  (wa_assistant.deadline), or waiting for the rest of a burst: handed back, not
  counted as an attempt (nothing was tried);
- DynamoDB or SNS failing (control state, handoff notice): retried like any unexpected error;
- undecodable record: parked in the dead-letter queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
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

from wa_assistant.aws.batch import (
    AttemptCounter,
    FifoBatch,
    HandBack,
    ParkInDeadLetterQueue,
    RetryLater,
    body_field,
)
from wa_assistant.aws.notify import Notifier
from wa_assistant.aws.once import OncePerMessage, Overtaken
from wa_assistant.aws.queue import MessageQueue
from wa_assistant.aws.secrets import secret_text
from wa_assistant.conversation.answering import Answerer, AnswerSettings, Run
from wa_assistant.conversation.bursts import coalesce_wait
from wa_assistant.conversation.conductor import Conductor
from wa_assistant.conversation.control import ControlSettings
from wa_assistant.conversation.control_store import ControlStore
from wa_assistant.conversation.memory import ConversationMemory
from wa_assistant.conversation.prompt import within_service_window
from wa_assistant.conversation.understanding import Ignore, LazyMediaReader, MediaReader, Read, Reply, plan
from wa_assistant.deadline import ensure_time, time_left_for
from wa_assistant.model.chat import MistralClient, MistralError, MistralSettings
from wa_assistant.observability import logger, metrics, set_correlation_id, tracer
from wa_assistant.records import InboundMessage, OwnerEcho, inbound_record_adapter
from wa_assistant.whatsapp.graph import FailureKind, GraphRequestFailed

IDEMPOTENCY_SECONDS = 7 * 24 * 3600
"""Longer than Meta keeps redelivering an unacknowledged webhook."""

SERVICE_WINDOW_HOURS = float(os.environ.get("SERVICE_WINDOW_HOURS") or "24")
COALESCE_WINDOW_SECONDS = float(os.environ.get("COALESCE_WINDOW_SECONDS") or "0")
"""CoalesceWindowSeconds: how long a new message may wait for the rest of a burst (0 = off)."""
CONVERSATIONS_AT_ONCE = 10
"""Conversations of one batch answered concurrently: all of them (AiBatchSize is at most 10)."""
MISTRAL_SECRET_NAME = os.environ["MISTRAL_SECRET_NAME"]
GRAPH_SECRET_NAME = os.environ["GRAPH_SECRET_NAME"]

model_settings = MistralSettings.from_env()
MODEL_CALL_SECONDS = model_settings.connect_timeout_seconds + model_settings.read_timeout_seconds
"""The longest one Mistral call (chat, transcription, OCR) can take before its timeout fires."""


class InvocationClock:
    """The current invocation, for the adapters built at import: `has_time_for` is the HasTime
    every outside call asks (the rule is wa_assistant.deadline.time_left_for)."""

    def __init__(self) -> None:
        self.context: LambdaContext | None = None

    def has_time_for(self, seconds: float) -> bool:
        return time_left_for(self.context, seconds)


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
    attempts=AttemptCounter(os.environ["IDEMPOTENCY_TABLE_NAME"]),
    correlation_id_of=body_field("message_id"),
    max_workers=CONVERSATIONS_AT_ONCE,
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
conductor = Conductor(
    settings=ControlSettings.from_env(),
    store=ControlStore(os.environ["CONVERSATION_TABLE_NAME"]),
    answerer=answerer,
    notifier=Notifier(os.environ["HANDOFF_TOPIC_ARN"]),
)
answerer.hooks = conductor


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


def _take_echo(*, echo: OwnerEcho) -> dict[str, str]:
    return {"outcome": conductor.handle_echo(echo)}


# The key prefix stays stable across module names and function renames (stored records keep it).
answered_once = OncePerMessage(persistence, idempotency, key_prefix="ai-reply.answer")
# Powertools' decorator is untyped; the wrapped function keeps _take_echo's signature. Its own
# persistence layer (sharing the client): Powertools configures a layer with the key prefix of the
# call in progress, and conversations are handled in threads.
take_echo_once: Callable[..., dict[str, str]] = idempotent_function(
    _take_echo,
    data_keyword_argument="echo",
    persistence_store=DynamoDBPersistenceLayer(
        table_name=os.environ["IDEMPOTENCY_TABLE_NAME"], boto3_client=persistence.client
    ),
    config=idempotency,
    key_prefix="ai-reply.owner-echo",
)


def _parse(record: SQSRecord) -> InboundMessage | OwnerEcho:
    try:
        return inbound_record_adapter.validate_json(record.body)
    except ValidationError as error:
        raise ParkInDeadLetterQueue(
            f"not an InboundMessage or OwnerEcho v1: {error.error_count()} errors"
        ) from error


def _burst_member(record: SQSRecord) -> bool:
    """A user message that may be answered together with its neighbours: one the model (or an
    honest reply) answers, in the service window, not a keyword (STOP, START, a handoff keyword)."""
    try:
        message = _parse(record)
    except ParkInDeadLetterQueue:
        return False
    if isinstance(message, OwnerEcho) or message.group_id is not None or _late(message):
        return False
    return not isinstance(plan(message, answer_settings.understanding), Ignore) and not conductor.is_keyword(
        message
    )


def split_into_runs(records: Sequence[SQSRecord]) -> list[list[SQSRecord]]:
    """One conversation's records, in order, as units: consecutive burst members together, the rest alone."""
    return [
        unit
        for member, records_in_row in groupby(records, _burst_member)
        for unit in _units(member, records_in_row)
    ]


def _units(member: bool, records: Iterable[SQSRecord]) -> list[list[SQSRecord]]:
    together = list(records)
    return [together] if member else [[record] for record in together]


def _late(message: InboundMessage) -> bool:
    return not within_service_window(message.timestamp, time.time(), SERVICE_WINDOW_HOURS)


def handle_unit(unit: Sequence[SQSRecord]) -> None:
    """One record, or a burst of user messages; returning acknowledges them all."""
    if len(unit) == 1:
        handle_record(unit[0])
        return
    messages = [message for message in map(_parse, unit) if isinstance(message, InboundMessage)]
    _answer(unit, [(message, _planned(message)) for message in messages])


def _planned(message: InboundMessage) -> Read | Reply:
    planned = plan(message, answer_settings.understanding)
    assert not isinstance(planned, Ignore), "split_into_runs keeps ignored messages out of a burst"
    return planned


def handle_record(record: SQSRecord) -> None:
    """One inbound record; returning acknowledges it, RetryLater/ParkInDeadLetterQueue route it."""
    set_correlation_id(None)
    message = _parse(record)
    set_correlation_id(message.message_id)
    if isinstance(message, OwnerEcho):
        try:
            take_echo_once(echo=message)
        except IdempotencyAlreadyInProgressError as error:
            raise RetryLater("another invocation is handling this echo", counts_as_attempt=False) from error
        return
    if message.group_id is not None:
        # Group chats are not answered one-to-one (README, "What each message gets").
        logger.info("Group message; not answered", extra={"message_type": message.type})
        metrics.add_metric(name="GroupMessagesIgnored", unit="Count", value=1)
        return

    if _late(message) and not conductor.changes_consent(message):  # a late STOP is still recorded
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
    _answer([record], [(message, planned)])


def _answer(records: Sequence[SQSRecord], run: Run) -> None:
    """Answer a run once per wamid, after waiting for the rest of a burst; map failures to the queue."""
    if not conductor.is_keyword(run[-1][0]):
        _wait_for_the_rest_of_a_burst(records, run)
    pending = answered_once.pending([message for message, _ in run])
    if len(pending) < len(run):
        logger.info("Some messages of this burst were handled before; not answering them twice")
        metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=len(run) - len(pending))
        pending_ids = {message.message_id for message in pending}
        run = [(message, planned) for message, planned in run if message.message_id in pending_ids]
        if not run:
            return
    if any(isinstance(planned, Read) for _, planned in run):  # before any record is written
        ensure_time(clock.has_time_for, MODEL_CALL_SECONDS, "a model call")
    try:
        answered_once.run([message for message, _ in run], lambda: {"outcome": conductor.handle_run(run)})
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
    except IdempotencyAlreadyInProgressError as error:
        raise RetryLater("another invocation is answering this message", counts_as_attempt=False) from error
    except Overtaken as error:
        raise RetryLater(str(error), counts_as_attempt=False) from error


def _wait_for_the_rest_of_a_burst(records: Sequence[SQSRecord], run: Run) -> None:
    """A message the model answers waits until the oldest of its run is COALESCE_WINDOW_SECONDS
    old: handed back to the queue meanwhile (no idle invocation), it comes back with the rest."""
    if COALESCE_WINDOW_SECONDS <= 0 or not any(isinstance(planned, Read) for _, planned in run):
        return
    wait = coalesce_wait(
        [int(record.attributes.sent_timestamp) / 1000 for record in records],
        now=time.time(),
        window=COALESCE_WINDOW_SECONDS,
    )
    if wait > 0:
        raise HandBack(f"waiting up to {COALESCE_WINDOW_SECONDS:g} s for the rest of a burst", wait)


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
    return batch.process_units(event, context, handle_unit, split_into_runs)
