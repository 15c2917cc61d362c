"""FIFO batch processing shared by the two queue consumers: retries, order, and when a message is dead.

The records of one SQS event are grouped by MessageGroupId (one conversation),
in arrival order. Within a group they are handled in order; a record that fails
makes the rest of its group *skipped* (not attempted, so nothing is answered out
of order). Each record ends in one outcome:

- done: the handler returned; the record is acknowledged.
- `RetryLater` (rate limit, 5xx, timeout) or an unexpected error: a *counted*
  attempt. The record is reported in `batchItemFailures` and comes back after an
  exponential backoff with equal jitter on its count of real attempts (at least
  the server's Retry-After, at most MAX_BACKOFF_SECONDS).
- `RetryLater(..., counts_as_attempt=False)` (another invocation is on it) and
  `NoTimeLeft` (no time left in this invocation for the next call): nothing was
  tried, so nothing is counted; the record comes back after a short delay.
- skipped: never counted; it comes back with its group.
- parked: copied to the dead-letter queue (with its group and deduplication id)
  and acknowledged, with an error log line and the MessagesParked metric (the
  DLQ depth alarm fires). That happens when the handler raises
  `ParkInDeadLetterQueue` (bad key, expired token, undecodable record: retrying
  cannot help), when a record's real attempts reach RETRY_MAX_ATTEMPTS, or when
  it fails or is skipped while older than RETRY_BUDGET_HOURS (counted from its
  SentTimestamp). The rest of its group then goes on.

A conversation waits as one: every returning record of a group gets the group's
longest delay, so order is kept. The project, not SQS, decides when a message is
dead: SQS's ApproximateReceiveCount also counts skipped and uncounted receives,
so an innocent follower of a failing message would reach the queue's
maxReceiveCount without ever being tried. The real attempts are counted in the
idempotency table, written only on a counted failure (the happy path writes
nothing); if DynamoDB fails, ApproximateReceiveCount stands in for that decision.
The queue's maxReceiveCount stays as a safety net for what this code never sees
(a crash at import, an invocation that times out every time).

A handler gets a *unit*: one record (`process`), or several consecutive records
of one group that the caller's `split` puts together (`process_units`: the AI
function answers a burst of messages with one model call). A unit succeeds,
fails, is handed back or is parked as one; each of its records gets that outcome.
`HandBack(delay)` is the one outcome that is not a failure: nothing was tried,
the unit returns after exactly `delay` seconds (a burst's first message waiting
for the rest of it).

Different groups are independent: with `max_workers` > 1 they run in threads
(the AI function's model calls wait together, so a batch costs about one model
wait, not the sum). Everything the handlers share is safe for that: log keys
(the correlation id) are per thread (`observability.set_correlation_id`),
metrics are added under a lock, and AWS clients are created under a lock
(`aws.clients`).

Powertools' SqsFifoPartialProcessor is not used: it hands the handler one record
at a time, processes groups one after another, and reports a skipped record
exactly like a failed one, so the retry logic could not tell a real attempt from
a skip. The response keeps Powertools' shape (`batchItemFailures`).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from wa_assistant.aws.clients import aws_client
from wa_assistant.aws.queue import MessageQueue, QueueItem, sqs_client
from wa_assistant.deadline import NoTimeLeft
from wa_assistant.observability import correlation_id, logger, metrics, set_correlation_id

MAX_BACKOFF_SECONDS = 900
"""Upper bound of one backoff; SQS allows up to 12 hours, but a chat should not wait that long."""
ATTEMPT_RECORD_GRACE_SECONDS = 24 * 3600
"""An attempt count outlives the retry budget by this much (DynamoDB TTL), then expires."""

RecordHandler = Callable[[SQSRecord], None]
UnitHandler = Callable[[Sequence[SQSRecord]], None]
"""Handles consecutive records of one group as one piece of work."""
Split = Callable[[Sequence[SQSRecord]], Sequence[Sequence[SQSRecord]]]
"""Cuts a group's records (in order) into units, in order; every record in exactly one unit."""


def one_by_one(records: Sequence[SQSRecord]) -> list[list[SQSRecord]]:
    return [[record] for record in records]


class RetryLater(Exception):  # noqa: N818 - it names the outcome, like Powertools' own errors
    """A transient failure: the record comes back after a backoff.

    `counts_as_attempt=False` when nothing was tried (no time left in this invocation,
    another invocation is on it): such a retry never brings a message closer to parking.
    """

    def __init__(
        self, reason: str, retry_after: float | None = None, *, counts_as_attempt: bool = True
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.counts_as_attempt = counts_as_attempt


class HandBack(Exception):  # noqa: N818
    """Not now, and nothing was tried: the unit comes back after exactly `delay` seconds, uncounted."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


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
    """Delay before the next delivery: exponential with equal jitter, never below Retry-After, capped.

    Whole seconds, as SQS takes them; a non-finite Retry-After or base cannot crash it.
    """
    exponent = min(max(0, attempt - 1), 64)  # 2**64 x base is far past any cap
    exponential = min(cap, base * 2**exponent)
    delay = exponential / 2 + rng() * exponential / 2
    if retry_after is not None and not math.isnan(retry_after):
        delay = max(delay, retry_after)
    if not math.isfinite(delay):
        delay = cap
    return max(0, min(int(delay + 0.5), int(cap)))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often a record is retried (template parameters; the defaults live there)."""

    base_delay: float
    """RetryBaseDelaySeconds: the first backoff (doubles per real attempt)."""
    max_attempts: int
    """RetryMaxAttempts: real attempts after which a record is parked."""
    budget_seconds: float
    """RetryBudgetHours: age after which a failing or waiting record is parked."""
    cap: float = MAX_BACKOFF_SECONDS

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            base_delay=float(os.environ["RETRY_BASE_SECONDS"]),
            max_attempts=int(os.environ["RETRY_MAX_ATTEMPTS"]),
            budget_seconds=float(os.environ["RETRY_BUDGET_HOURS"]) * 3600,
        )

    def backoff(self, attempt: int, retry_after: float | None) -> int:
        return backoff_seconds(attempt, retry_after, base=self.base_delay, cap=self.cap)

    def uncounted_delay(self, retry_after: float | None) -> int:
        """An uncounted retry comes back soon: after the base delay (at least 1 s, so that it
        never spins), or Retry-After when given."""
        return backoff_seconds(1, max(1.0, self.base_delay, retry_after or 0.0), base=0, cap=self.cap)


class AttemptCounter:
    """The project's own count of real attempts of each SQS message, in the idempotency table.

    One UpdateItem per counted failure (ADD attempts 1; the TTL attribute `expiration`
    set on the first); nothing on the happy path. The key holds the queue name and the
    SQS message id, so a message redriven from its dead-letter queue (a new message id)
    starts again from zero.
    """

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            # Short timeouts and one retry: a slow table must not eat the invocation's time.
            self._client = aws_client(
                "dynamodb",
                config=Config(
                    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2}
                ),
            )
        return self._client

    @staticmethod
    def key(queue_name: str, message_id: str) -> str:
        return f"retry#{queue_name}#{message_id}"

    def add_failure(self, queue_name: str, message_id: str, expires_at: float) -> int:
        """Count one more real attempt; returns the count. Raises when DynamoDB fails."""
        response = self.client.update_item(
            TableName=self.table_name,
            Key={"id": {"S": self.key(queue_name, message_id)}},
            UpdateExpression="ADD attempts :one SET expiration = if_not_exists(expiration, :expiration)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":expiration": {"N": str(int(expires_at))}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["attempts"]["N"])


def body_field(name: str) -> Callable[[SQSRecord], str | None]:
    """Reads a correlation id from a JSON body without validating it (for records not handled)."""

    def read(record: SQSRecord) -> str | None:
        try:
            value = json.loads(record.body).get(name)
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    return read


# ------------------------------------------------------------------ outcomes
@dataclass(frozen=True, slots=True)
class _Done:
    pass


@dataclass(frozen=True, slots=True)
class _Retry:
    delay: int
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class _Skipped:
    blocked_by: _Retry


@dataclass(frozen=True, slots=True)
class _Parked:
    pass


_Outcome = _Done | _Retry | _Skipped | _Parked


@dataclass
class FifoBatch:
    """Processes one SQS FIFO event: order per conversation, backoff, and parking of dead records."""

    source_queue_url: str
    """The queue the event source mapping reads (from the environment: no sqs:GetQueueUrl needed)."""
    dead_letter_queue: MessageQueue
    attempts: AttemptCounter
    correlation_id_of: Callable[[SQSRecord], str | None] = lambda record: None
    """The correlation id (wamid) of a record the handler did not see (skipped), for log lines."""
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    max_workers: int = 1
    """Groups handled at once (threads); 1 = one after another."""
    clock: Callable[[], float] = time.time
    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = sqs_client()
        return self._client

    @property
    def queue_name(self) -> str:
        return self.source_queue_url.rstrip("/").rsplit("/", 1)[-1]

    def process(
        self,
        event: dict[str, Any],
        context: LambdaContext | None,
        record_handler: RecordHandler,
    ) -> PartialItemFailureResponse:
        """Handle every record on its own; report those that must come back (Powertools' response shape).

        `context` keeps the signature of Powertools' process_partial_response; it is not read
        here: the handlers check the time left before each call (wa_assistant.deadline) and
        raise NoTimeLeft, which comes back as an uncounted retry.
        """
        return self.process_units(event, context, lambda unit: record_handler(unit[0]), one_by_one)

    def process_units(
        self,
        event: dict[str, Any],
        context: LambdaContext | None,
        handler: UnitHandler,
        split: Split = one_by_one,
    ) -> PartialItemFailureResponse:
        """Handle every group's records unit by unit (`split`), groups concurrently up to `max_workers`."""
        records = [SQSRecord(raw) for raw in event["Records"]]
        groups: dict[str, list[SQSRecord]] = {}
        for record in records:
            groups.setdefault(record.attributes.message_group_id or "", []).append(record)
        outcomes: dict[str, _Outcome] = {}
        workers = min(self.max_workers, len(groups))
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix="group") as pool:
                for result in pool.map(
                    lambda group: self._process_group(group, handler, split), groups.values()
                ):
                    outcomes.update(result)
        else:
            for group in groups.values():
                outcomes.update(self._process_group(group, handler, split))
        set_correlation_id(None)
        returning = [r for r in records if isinstance(outcomes[r.message_id], _Retry | _Skipped)]
        if returning:
            self._schedule_retries(returning, outcomes)
        return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in returning]}

    # ------------------------------------------------------------ one conversation
    def _process_group(
        self, records: Sequence[SQSRecord], handler: UnitHandler, split: Split
    ) -> dict[str, _Outcome]:
        """The units of one group, in order: the first that must come back blocks the rest."""
        outcomes: dict[str, _Outcome] = {}
        blocked_by: _Retry | None = None
        try:
            units = split(records)
        except Exception:  # a bug in the split: each record on its own, still in order
            logger.exception("Could not group the records into units; handling them one by one")
            units = one_by_one(records)
        try:
            for unit in units:
                if blocked_by is None:
                    unit_outcomes = self._attempt(unit, handler)
                    blocked_by = next((o for o in unit_outcomes.values() if isinstance(o, _Retry)), None)
                else:
                    unit_outcomes = {record.message_id: self._skip(record, blocked_by) for record in unit}
                outcomes.update(unit_outcomes)
        finally:
            set_correlation_id(None)  # a pool thread serves the next group without this one's id
        return outcomes

    def _attempt(self, unit: Sequence[SQSRecord], handler: UnitHandler) -> dict[str, _Outcome]:
        set_correlation_id(self.correlation_id_of(unit[-1]))
        try:
            handler(unit)
        except ParkInDeadLetterQueue as parked:
            return {record.message_id: self._park(record, parked.reason) for record in unit}
        except HandBack as back:
            return {record.message_id: self._hand_back(record, back) for record in unit}
        except RetryLater as retry:
            return {
                record.message_id: self._failed(
                    record, retry.reason, retry.retry_after, counted=retry.counts_as_attempt
                )
                for record in unit
            }
        except NoTimeLeft as late:  # a call was not started: nothing was tried
            return {
                record.message_id: self._failed(record, str(late), None, counted=False) for record in unit
            }
        except Exception as error:  # a bug or an unclassified failure: a counted attempt, with its traceback
            reason = f"{type(error).__name__}: {error}"
            return {
                record.message_id: self._failed(record, reason, None, counted=True, error=error)
                for record in unit
            }
        return {record.message_id: _Done() for record in unit}

    def _hand_back(self, record: SQSRecord, back: HandBack) -> _Outcome:
        delay = max(0, min(math.ceil(back.delay), int(self.policy.cap)))
        id_ = self.correlation_id_of(record) or correlation_id()
        set_correlation_id(id_)
        logger.info(
            "Handed back",
            extra={
                "reason": back.reason,
                "counted_attempt": False,
                "sqs_message_id": record.message_id,
                "retry_in_seconds": delay,
            },
        )
        return _Retry(delay, id_)

    def _failed(
        self,
        record: SQSRecord,
        reason: str,
        retry_after: float | None,
        *,
        counted: bool,
        error: Exception | None = None,
    ) -> _Outcome:
        id_ = self.correlation_id_of(record) or correlation_id()
        set_correlation_id(id_)
        fields: dict[str, Any] = {
            "reason": reason,
            "counted_attempt": counted,
            "sqs_message_id": record.message_id,
        }
        if counted:
            attempt = self._count_attempt(record)
            fields["attempt"] = attempt
            if attempt >= self.policy.max_attempts:
                return self._park(
                    record,
                    f"failed {attempt} real attempts "
                    f"(RetryMaxAttempts {self.policy.max_attempts}); last: {reason}",
                    attempts=attempt,
                )
            delay = self.policy.backoff(attempt, retry_after)
        else:
            delay = self.policy.uncounted_delay(retry_after)
        age = self._age_seconds(record)
        if age is not None and age > self.policy.budget_seconds:
            return self._park(
                record,
                f"failed when {age / 3600:.1f} h old, past the retry budget "
                f"(RetryBudgetHours {self.policy.budget_seconds / 3600:g}); last: {reason}",
                attempts=fields.get("attempt"),
            )
        logger.warning("Will retry", extra={**fields, "retry_in_seconds": delay}, exc_info=error)
        return _Retry(delay, id_)

    def _skip(self, record: SQSRecord, blocked_by: _Retry) -> _Outcome:
        """Not attempted: an earlier record of its conversation must come back first. Never counted."""
        set_correlation_id(self.correlation_id_of(record))
        age = self._age_seconds(record)
        if age is not None and age > self.policy.budget_seconds:
            return self._park(
                record,
                f"waited {age / 3600:.1f} h behind a failing message of its conversation "
                f"({blocked_by.correlation_id}), past the retry budget "
                f"(RetryBudgetHours {self.policy.budget_seconds / 3600:g}); never attempted in that time",
            )
        logger.info(
            "Skipped: an earlier message of its conversation will be retried first",
            extra={
                "waits_for": blocked_by.correlation_id,
                "sqs_message_id": record.message_id,
                "retry_in_seconds": blocked_by.delay,
            },
        )
        return _Skipped(blocked_by)

    def _count_attempt(self, record: SQSRecord) -> int:
        """This failure's number among the record's real attempts (1 for the first)."""
        expires_at = self.clock() + self.policy.budget_seconds + ATTEMPT_RECORD_GRACE_SECONDS
        try:
            return self.attempts.add_failure(self.queue_name, record.message_id, expires_at)
        except Exception as error:  # the decision falls back on SQS's own count; nothing is lost
            receives = int(record.attributes.get("ApproximateReceiveCount") or "1")
            logger.warning(
                "Could not count the attempt in DynamoDB; using ApproximateReceiveCount instead",
                extra={"error": f"{type(error).__name__}: {error}", "approximate_receive_count": receives},
            )
            return receives

    def _age_seconds(self, record: SQSRecord) -> float | None:
        sent = record.attributes.get("SentTimestamp")
        try:
            return self.clock() - int(sent) / 1000 if sent else None
        except ValueError:
            return None

    def _park(self, record: SQSRecord, reason: str, attempts: int | None = None) -> _Outcome:
        """Copy the record to the dead-letter queue and acknowledge it; if that fails, it comes back."""
        attributes = record.attributes
        try:
            self.dead_letter_queue.send(
                [
                    QueueItem(
                        body=record.body,
                        group_id=attributes.message_group_id or "parked",
                        deduplication_id=attributes.message_deduplication_id or record.message_id,
                    )
                ]
            )
        except Exception as error:
            logger.exception("Could not park the record in the dead-letter queue; it will come back")
            delay = self.policy.uncounted_delay(None)
            logger.warning(
                "Will retry",
                extra={
                    "reason": f"parking failed ({type(error).__name__}); parking because: {reason}",
                    "counted_attempt": False,
                    "sqs_message_id": record.message_id,
                    "retry_in_seconds": delay,
                },
            )
            return _Retry(delay, correlation_id())
        fields: dict[str, Any] = {"reason": reason, "sqs_message_id": record.message_id}
        if attempts is not None:
            fields["attempts"] = attempts
        logger.error("Parked in the dead-letter queue", extra=fields)
        metrics.add_metric(name="MessagesParked", unit="Count", value=1)
        return _Parked()

    # ------------------------------------------------------------ visibility
    def _schedule_retries(self, returning: Sequence[SQSRecord], outcomes: dict[str, _Outcome]) -> None:
        """Shorten each returning record's visibility to its group's delay: a conversation waits as one."""
        group_delay: dict[str, int] = {}
        for record in returning:
            outcome = outcomes[record.message_id]
            if isinstance(outcome, _Skipped):
                outcome = outcome.blocked_by
            delay = outcome.delay if isinstance(outcome, _Retry) else 0
            group = record.attributes.message_group_id or ""
            group_delay[group] = max(group_delay.get(group, 0), delay)
        entries: list[dict[str, Any]] = []
        for record in returning:
            if record.event_source_arn.rsplit(":", 1)[-1] != self.queue_name:
                logger.error(
                    "Record from an unexpected queue; it returns after that queue's visibility timeout",
                    extra={"event_source_arn": record.event_source_arn},
                )
                continue
            delay = group_delay[record.attributes.message_group_id or ""]
            entries.append({"ReceiptHandle": record.receipt_handle, "VisibilityTimeout": delay})
        for start in range(0, len(entries), 10):
            chunk = [{**entry, "Id": str(i)} for i, entry in enumerate(entries[start : start + 10])]
            try:
                response = self.client.change_message_visibility_batch(
                    QueueUrl=self.source_queue_url, Entries=chunk
                )
            except Exception:  # the records still come back, after the queue's own visibility timeout
                logger.exception("Could not shorten the visibility of failed records")
                continue
            if response.get("Failed"):
                logger.error(
                    "Some failed records keep the queue's visibility timeout",
                    extra={"failed": response["Failed"]},
                )
