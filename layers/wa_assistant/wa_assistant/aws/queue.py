"""SQS FIFO adapter: send records in batches of ten, in order per group, fail loudly on any loss."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wa_assistant.aws.clients import aws_client

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
    return aws_client("sqs")  # type: ignore[no-any-return]


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
        """Send all items, in order per message group; retry Failed entries once.

        SQS can accept part of a SendMessageBatch, and nothing in its API says that an
        entry failing makes the later entries of its group fail too. Had a later entry of
        a group been accepted in the same call, re-sending the failed one would put it
        behind (and deduplication would drop the later one's re-send): the conversation
        would be reordered for good. So each call carries at most one entry per group,
        and a group's next entry goes only once the previous one is accepted. Items of
        different groups still share calls (ten per call), so the usual case of one item,
        or items of many users, costs what it did. An entry reported Failed with
        SenderFault=false is re-sent once (in the next call, before anything after it in
        its group); a sender fault, or a second failure, raises and the caller must not
        acknowledge what it was sending.
        """
        pending: dict[str, deque[tuple[int, QueueItem]]] = {}
        for position, item in enumerate(items):
            pending.setdefault(item.group_id, deque()).append((position, item))
        retried: set[int] = set()
        while pending:
            heads = [queue[0] for queue in itertools.islice(pending.values(), SQS_BATCH_LIMIT)]
            failed = {int(entry["Id"]): entry for entry in self._send_batch([item for _, item in heads])}
            rejected = [entry for entry in failed.values() if entry.get("SenderFault")]
            if rejected:
                raise EnqueueError(f"SQS rejected {len(rejected)} records: {rejected}")
            for index, (position, item) in enumerate(heads):
                if index in failed:
                    if position in retried:
                        raise EnqueueError(f"SQS failed a record twice: {failed[index]}")
                    retried.add(position)
                    continue
                pending[item.group_id].popleft()
            for _, item in heads:  # round robin: the groups just served go last, so calls stay full
                group = pending.pop(item.group_id)
                if group:
                    pending[item.group_id] = group

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
