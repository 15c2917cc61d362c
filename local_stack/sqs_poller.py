"""An SQS event source mapping: long-polls a queue and invokes a function with batches.

As Lambda does: up to MaximumConcurrency batches in flight, messages of a
successful invocation deleted, `batchItemFailures` (ReportBatchItemFailures)
left to reappear after their visibility timeout, a failed or timed-out
invocation leaving the whole batch; the queue's redrive policy does the rest.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from local_stack.functions import FunctionRuntime, InvocationError
from local_stack.topology import REGION, QueueInfo, SqsEventSource, moto_client

POLL_WAIT_SECONDS = 2
"""Lambda long-polls for 20 s; 2 s lets the stack stop quickly."""

_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's MessageAttributeValue in the Lambda event's camelCase shape."""
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": binary.decode("latin-1") if isinstance(binary, bytes) else binary,
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType"),
    }


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda builds from one ReceiveMessage batch (also used by the handler tests)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: v for k, v in m.get("Attributes", {}).items() if k in _SYSTEM_ATTRIBUTES},
                "messageAttributes": {
                    name: _message_attribute(value) for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody")
                or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def failed_message_ids(result: Any, batch_ids: set[str], report_batch_item_failures: bool) -> set[str]:
    """Which records of a returned batch stay on the queue, by Lambda's rules.

    Without ReportBatchItemFailures a return means success. With it, an
    unparsable response or an unknown/empty itemIdentifier fails the whole batch.
    """
    if not report_batch_item_failures or result is None:
        return set()
    if not isinstance(result, dict):
        return set(batch_ids)
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(identifier)
    return failed


class EventSourceError(Exception):
    """The event source mapping could not be created (Lambda refuses it, and so the deploy fails)."""


class SqsPoller:
    """One event source mapping, `concurrency` pollers on one queue."""

    def __init__(
        self,
        *,
        source: SqsEventSource,
        queue: QueueInfo,
        runtime: FunctionRuntime,
        endpoint_url: str,
        log: Callable[[str], None],
        concurrency: int,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.source = source
        self.queue = queue
        self.runtime = runtime
        self.endpoint_url = endpoint_url
        self.log = log
        self.concurrency = concurrency
        self.credentials = credentials
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0
        self.failed_invocations = 0

    def start(self) -> SqsPoller:
        """Start polling, once the role can read the queue (as CreateEventSourceMapping checks)."""
        try:
            moto_client("sqs", self.endpoint_url, self.credentials).get_queue_attributes(
                QueueUrl=self.queue.url, AttributeNames=["VisibilityTimeout"]
            )
        except ClientError as error:
            raise EventSourceError(
                f"{self.runtime.spec.logical_id}: the event source mapping on {self.queue.name} cannot be "
                f"created: the function's role cannot read the queue ({error})"
            ) from error
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._run, name=f"poller-{self.runtime.spec.logical_id}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        sqs = moto_client("sqs", self.endpoint_url, self.credentials)
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue.url,
                    MaxNumberOfMessages=self.source.batch_size,
                    WaitTimeSeconds=POLL_WAIT_SECONDS,
                    AttributeNames=["All"],
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as error:  # moto stopping, a hiccup: poll again, as Lambda would
                if self._stop.is_set():
                    return
                self.log(f"poll of {self.queue.name} failed: {type(error).__name__}")
                self._stop.wait(1)
                continue
            if messages:
                self._process(sqs, messages)

    def _process(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        self.batches += 1
        batch_ids = {m["MessageId"] for m in messages}
        try:
            result = self.runtime.invoke(sqs_event(messages, self.queue.arn))
        except InvocationError as error:
            self.failed_invocations += 1
            self.log(
                f"{self.runtime.spec.logical_id} failed a batch of {len(messages)} from {self.queue.name} "
                f"({type(error).__name__}); it returns after the visibility timeout"
            )
            return
        failed = failed_message_ids(result, batch_ids, self.source.report_batch_item_failures)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            response = sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            if response.get("Failed"):
                self.log(f"could not delete {len(response['Failed'])} messages from {self.queue.name}")
