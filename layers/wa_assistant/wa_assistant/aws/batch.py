"""FIFO batch processing shared by the two queue consumers.

Powertools' SqsFifoPartialProcessor decides which records fail (a failed record
fails the rest of its conversation, other conversations go on). On top of it,
this module decides *when* a failed record comes back and *where* a hopeless
one goes, the same way for both consumers:

- `RetryLater` (rate limit, 5xx, timeout) and unexpected errors: the record is
  reported in `batchItemFailures` and its visibility timeout is shortened to an
  exponential backoff with jitter (at least the server's Retry-After); the rest
  of its conversation waits exactly as long, so order is kept. After the
  queue's maxReceiveCount, SQS's redrive policy moves it to the dead-letter queue.
- `ParkInDeadLetterQueue` (bad key, expired token, undecodable record): retrying
  cannot help, so the record is copied to the dead-letter queue at once (an
  operator can redrive it after fixing the cause) and deleted from the source.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wa_assistant.aws.queue import MessageQueue, QueueItem, sqs_client
from wa_assistant.observability import logger, metrics

MAX_BACKOFF_SECONDS = 900
"""Upper bound of one backoff; SQS allows up to 12 hours but a chat can't wait that long."""


class RetryLater(Exception):  # noqa: N818 - it names the outcome, like Powertools' own errors
    """A transient failure: the record comes back after a backoff."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ParkInDeadLetterQueue(Exception):  # noqa: N818
    """A permanent failure that an operator can fix (then redrive the record)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def backoff_seconds(
    attempt: int,
    retry_after: float | None = None,
    base: float = 10.0,
    cap: float = MAX_BACKOFF_SECONDS,
    rng: Callable[[], float] = random.random,
) -> int:
    """Delay before the next delivery: exponential with equal jitter, never below Retry-After."""
    exponential = min(cap, base * 2 ** max(0, attempt - 1))
    delay = exponential / 2 + rng() * exponential / 2
    if retry_after is not None:
        delay = max(delay, retry_after)
    return max(0, min(int(delay + 0.5), int(cap)))


@dataclass
class _Outcome:
    retry_after: float | None
    reason: str
    correlation_id: str | None
    """The record handler's correlation id (the wamid) when it failed."""


class _BackoffFifoProcessor(SqsFifoPartialProcessor):
    """Remembers why each record failed, so the batch can schedule its return."""

    def __init__(self) -> None:
        super().__init__(skip_group_on_error=True)
        # Report failures instead of raising when every record fails: the
        # visibility of each one is set by us, not by Lambda's error path.
        self.raise_on_entire_batch_failure = False
        self.outcomes: dict[str, _Outcome] = {}

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> Any:
        error = exception[1]
        if not isinstance(error, type(self.group_circuit_breaker_exc[1])):
            if isinstance(error, RetryLater):
                outcome = _Outcome(error.retry_after, error.reason, logger.get_correlation_id())
            else:
                outcome = _Outcome(None, f"{type(error).__name__}: {error}", logger.get_correlation_id())
            self.outcomes[record.message_id] = outcome
        return super().failure_handler(record, exception)


@dataclass
class FifoBatch:
    """Processes one SQS FIFO event with backoff on failure and parking of hopeless records."""

    source_queue_url: str
    """The queue the event source mapping reads (from the environment: no sqs:GetQueueUrl needed)."""
    dead_letter_queue: MessageQueue
    base_delay: float = field(default_factory=lambda: float(os.environ.get("RETRY_BASE_SECONDS", "10")))
    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = sqs_client()
        return self._client

    def process(
        self,
        event: dict[str, Any],
        context: LambdaContext | None,
        record_handler: Callable[[SQSRecord], None],
    ) -> PartialItemFailureResponse:
        processor = _BackoffFifoProcessor()

        def handle(record: SQSRecord) -> None:
            try:
                record_handler(record)
            except ParkInDeadLetterQueue as parked:
                self._park(record, parked.reason)

        response = process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )
        failed_ids = {str(item["itemIdentifier"]) for item in response.get("batchItemFailures", [])}
        if failed_ids:
            self._schedule_retries(event, processor, failed_ids)
        return response

    def _park(self, record: SQSRecord, reason: str) -> None:
        attributes = record.attributes
        self.dead_letter_queue.send(
            [
                QueueItem(
                    body=record.body,
                    group_id=attributes.message_group_id or "parked",
                    deduplication_id=attributes.message_deduplication_id or record.message_id,
                )
            ]
        )
        logger.error(
            "Parked in the dead-letter queue", extra={"reason": reason, "sqs_message_id": record.message_id}
        )
        metrics.add_metric(name="MessagesParked", unit="Count", value=1)

    def _schedule_retries(
        self, event: dict[str, Any], processor: _BackoffFifoProcessor, failed_ids: set[str]
    ) -> None:
        """Shorten each failed record's visibility to its backoff; a conversation waits as one."""
        group_delay: dict[str, int] = {}
        records = [SQSRecord(raw) for raw in event["Records"]]
        for record in records:
            outcome = processor.outcomes.get(record.message_id)
            if outcome is None:
                continue
            attempt = int(record.attributes.approximate_receive_count or "1")
            delay = backoff_seconds(attempt, outcome.retry_after, base=self.base_delay)
            group = record.attributes.message_group_id or ""
            group_delay[group] = max(group_delay.get(group, 0), delay)
            logger.set_correlation_id(outcome.correlation_id)
            logger.warning(
                "Will retry",
                extra={"reason": outcome.reason, "attempt": attempt, "retry_in_seconds": delay},
            )
        entries: list[dict[str, Any]] = []
        for record in records:
            if record.message_id not in failed_ids:
                continue
            if record.event_source_arn.rsplit(":", 1)[-1] != self.source_queue_url.rsplit("/", 1)[-1]:
                logger.error(
                    "Record from an unexpected queue; it returns after that queue's visibility timeout",
                    extra={"event_source_arn": record.event_source_arn},
                )
                continue
            delay = group_delay.get(record.attributes.message_group_id or "", int(self.base_delay))
            entries.append({"ReceiptHandle": record.receipt_handle, "VisibilityTimeout": delay})
        for start in range(0, len(entries), 10):
            chunk = [{**entry, "Id": str(i)} for i, entry in enumerate(entries[start : start + 10])]
            try:
                self.client.change_message_visibility_batch(QueueUrl=self.source_queue_url, Entries=chunk)
            except Exception:  # the records still come back, after the queue's own visibility timeout
                logger.exception("Could not shorten the visibility of failed records")
