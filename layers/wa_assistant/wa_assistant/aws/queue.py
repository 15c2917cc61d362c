"""SQS FIFO adapter: send records in batches of ten, fail loudly on any loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

SQS_BATCH_LIMIT = 10


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One FIFO message: body plus its ordering group and deduplication id."""

    body: str
    group_id: str
    deduplication_id: str


class EnqueueError(Exception):
    """Some records were not accepted by SQS; the caller must not acknowledge them."""


def sqs_client() -> SQSClient:
    """A client that honours AWS_ENDPOINT_URL (moto locally, AWS when deployed)."""
    return boto3.client("sqs")


class MessageQueue:
    """Sends to one FIFO queue."""

    def __init__(self, url: str, client: Any = None) -> None:
        self.url = url
        self._client = client

    @property
    def client(self) -> SQSClient:
        # Created on first use so that importing a handler stays cheap.
        if self._client is None:
            self._client = sqs_client()
        return self._client  # type: ignore[no-any-return]

    def send(self, items: Sequence[QueueItem]) -> None:
        """Send all items, ten per SendMessageBatch call; retry Failed entries once.

        SQS can accept part of a batch: entries it reports as Failed with
        SenderFault=false are retried once, anything still failed raises.
        """
        for start in range(0, len(items), SQS_BATCH_LIMIT):
            chunk = items[start : start + SQS_BATCH_LIMIT]
            failed = self._send_batch(chunk)
            if failed:
                retryable = [chunk[int(f["Id"])] for f in failed if not f.get("SenderFault")]
                if len(retryable) < len(failed):
                    raise EnqueueError(f"SQS rejected {len(failed) - len(retryable)} records: {failed}")
                still_failed = self._send_batch(retryable)
                if still_failed:
                    raise EnqueueError(f"SQS failed {len(still_failed)} records twice: {still_failed}")

    def _send_batch(self, chunk: Sequence[QueueItem]) -> list[Any]:
        response = self.client.send_message_batch(
            QueueUrl=self.url,
            Entries=[
                {
                    "Id": str(index),
                    "MessageBody": item.body,
                    "MessageGroupId": item.group_id,
                    "MessageDeduplicationId": item.deduplication_id,
                }
                for index, item in enumerate(chunk)
            ],
        )
        return list(response.get("Failed", []))
