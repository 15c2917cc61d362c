"""Deliver outbound queue records through WhatsApp, each part exactly once.

The one place that turns a Graph failure (its `FailureKind`, decided by
`graph.GRAPH_ERROR_KINDS`) into a queue outcome:

- reply part, transient → `RetryLater` (the record comes back; parts already
  sent are remembered in the idempotency table and not sent again);
- reply part, permanent → logged, `GraphSendRejected` counted, acknowledged
  (no retry can help this message);
- reply part, auth (token expired or invalid, permission missing) →
  `GraphAuthFailed`, account blocked (locked, payment, number not registered,
  policy block) → `GraphAccountBlocked`: both alarmed, and the reply goes to
  the dead-letter queue (`ParkInDeadLetterQueue`) so that an operator can
  redrive it once the cause is fixed;
- typing indicator, any failure → logged, counted and acknowledged: it is
  best-effort and a retry would only delay the reply queued behind it; an auth
  or account failure still raises its alarmed metric, but never parks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from wa_assistant.aws.batch import ParkInDeadLetterQueue, RetryLater
from wa_assistant.deadline import ensure_time, for_context
from wa_assistant.observability import logger, metrics
from wa_assistant.records import TextReply, TypingIndicator
from wa_assistant.whatsapp.graph import (
    FailureKind,
    GraphClient,
    GraphFailure,
    GraphRequestFailed,
    text_message_body,
    typing_indicator_body,
)
from wa_assistant.whatsapp.text_split import WHATSAPP_TEXT_LIMIT, split_text

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

IDEMPOTENCY_EXPIRY_SECONDS = 14 * 24 * 3600
"""As long as the outbound dead-letter queue keeps a message: a redriven reply must not resend sent parts."""
IDEMPOTENCY_KEY_PREFIX = "send-reply"
"""Fixed, so that renaming a function does not change the keys of parts already sent."""


def idempotency_config() -> IdempotencyConfig:
    """Keys are whole strings (`{wamid}:{part}`); a replayed part is logged, not sent."""
    return IdempotencyConfig(
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
        response_hook=_log_replayed,
    )


def _log_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    logger.info("Already sent earlier; not sending again", extra={"graph_message_id": response})
    return response


ALARMED_FAILURES: dict[FailureKind, str] = {
    FailureKind.AUTH: "WhatsApp refused the access token or its permissions; fix the Graph secret",
    FailureKind.ACCOUNT_BLOCKED: (
        "WhatsApp blocks sending from this business account or number; fix it in WhatsApp Manager"
    ),
}
"""Failures no reply can get past until an operator acts: kind -> log message (metrics in `_alarm`)."""


def _alarm(failure: GraphFailure, **fields: str) -> None:
    # Metric names stay literal at their call: the alarms, the dashboard and a grep find them here.
    if failure.kind is FailureKind.AUTH:
        metrics.add_metric(name="GraphAuthFailed", unit="Count", value=1)
    else:
        metrics.add_metric(name="GraphAccountBlocked", unit="Count", value=1)
    logger.error(ALARMED_FAILURES[failure.kind], extra={**failure.log_fields(), **fields})


def _count_rejection(code: int | None) -> None:
    metrics.add_metric(name="GraphSendRejected", unit="Count", value=1)
    # One metric per Graph code, in its own EMF blob so the code dimension does not
    # apply to the function's other metrics.
    with single_metric(
        name="GraphSendRejectedByCode",
        unit=MetricUnit.Count,
        value=1,
        default_dimensions={**metrics.default_dimensions, "code": str(code)},  # service is added too
    ):
        pass


class OutboundDelivery:
    """Sends `TypingIndicator` and `TextReply` records; one instance per container."""

    def __init__(
        self,
        *,
        graph: GraphClient,
        persistence_store: BasePersistenceLayer,
        config: IdempotencyConfig,
        quote_inbound_message: bool,
        seconds_per_call: float,
        part_limit: int = WHATSAPP_TEXT_LIMIT,
    ) -> None:
        self._graph = graph
        self._config = config
        self._quote = quote_inbound_message
        self._seconds_per_call = seconds_per_call
        self._part_limit = part_limit
        self._context: LambdaContext | None = None
        once = idempotent_function(
            data_keyword_argument="idempotency_key",
            persistence_store=persistence_store,
            config=config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )
        self._send_part_once: Callable[..., str | None] = once(self._send_part)
        self._send_typing_once: Callable[..., str | None] = once(self._send_typing)

    def begin_invocation(self, context: LambdaContext) -> None:
        """Lets in-progress idempotency records expire with this invocation, and time calls."""
        self._config.register_lambda_context(context)
        self._context = context

    def deliver(self, action: TypingIndicator | TextReply) -> None:
        if isinstance(action, TypingIndicator):
            self.send_typing_indicator(action)
        else:
            self.send_reply(action)

    # ------------------------------------------------------------ typing indicator
    def send_typing_indicator(self, indicator: TypingIndicator) -> None:
        """Best-effort: every failure is logged and counted, never retried."""
        try:
            self._send_typing_once(
                idempotency_key=f"{indicator.inbound_message_id}:typing",
                phone_number_id=indicator.phone_number_id,
                inbound_message_id=indicator.inbound_message_id,
            )
        except GraphRequestFailed as failed:
            failure = failed.failure
            metrics.add_metric(name="TypingIndicatorFailed", unit="Count", value=1)
            if failure.kind in ALARMED_FAILURES:
                _alarm(failure)
            else:
                logger.warning("Typing indicator not sent; going on", extra=failure.log_fields())
        except (IdempotencyAlreadyInProgressError, IdempotencyPersistenceLayerError) as error:
            metrics.add_metric(name="TypingIndicatorFailed", unit="Count", value=1)
            logger.warning("Typing indicator skipped", extra={"reason": type(error).__name__})

    def _send_typing(self, *, idempotency_key: str, phone_number_id: str, inbound_message_id: str) -> None:
        self._graph.post_message(phone_number_id, typing_indicator_body(inbound_message_id))
        metrics.add_metric(name="TypingIndicatorsSent", unit="Count", value=1)
        logger.info("Marked read, typing indicator shown")

    # ------------------------------------------------------------ reply
    def send_reply(self, reply: TextReply) -> None:
        """Send every part in order; a part already sent (by an earlier delivery) is skipped."""
        parts = split_text(reply.text, self._part_limit)
        if not parts:
            logger.warning("Reply has no visible text; nothing sent")
            metrics.add_metric(name="BlankRepliesSkipped", unit="Count", value=1)
            return
        for index, part in enumerate(parts):
            ensure_time(for_context(self._context), self._seconds_per_call, "a Graph call")
            quoted = reply.inbound_message_id if self._quote and index == 0 else None
            try:
                self._send_part_once(
                    idempotency_key=f"{reply.inbound_message_id}:{index}",
                    phone_number_id=reply.phone_number_id,
                    body=text_message_body(reply.recipient, part, quoted),
                    part=f"{index + 1}/{len(parts)}",
                )
            except IdempotencyAlreadyInProgressError as error:
                raise RetryLater(
                    f"part {index + 1}/{len(parts)} is being sent by another invocation",
                    counts_as_attempt=False,
                ) from error
            except GraphRequestFailed as failed:
                self._reply_failed(failed.failure, part=f"{index + 1}/{len(parts)}")
                return
        metrics.add_metric(name="RepliesSent", unit="Count", value=1)

    def _send_part(
        self, *, idempotency_key: str, phone_number_id: str, body: dict[str, Any], part: str
    ) -> str | None:
        message_id = self._graph.post_message(phone_number_id, body)
        metrics.add_metric(name="PartsSent", unit="Count", value=1)
        # Accepted, not delivered: a later "failed" status webhook carries this id.
        logger.info("Reply part accepted by WhatsApp", extra={"part": part, "graph_message_id": message_id})
        return message_id

    def _reply_failed(self, failure: GraphFailure, part: str) -> None:
        fields = {**failure.log_fields(), "part": part}
        if failure.kind is FailureKind.TRANSIENT:
            metrics.add_metric(name="GraphTransientError", unit="Count", value=1)
            raise RetryLater(
                f"Graph transient failure (status {failure.status}, code {failure.code})", failure.retry_after
            )
        if failure.kind in ALARMED_FAILURES:
            _alarm(failure, part=part)
            raise ParkInDeadLetterQueue(
                f"Graph refused to send: {failure.kind} (status {failure.status}, code {failure.code})"
            )
        logger.error("WhatsApp rejected the reply; not retrying", extra=fields)
        _count_rejection(failure.code)
