"""local_stack.moto_fixes: a FIFO group is never delivered out of order, even while the clock moves.

Found by the worker-crash e2e test: moto reads the clock many times in one ReceiveMessage. A
message of a group whose visibility ran out *during* the scan was delivered alone, ahead of the
earlier messages of its group that the same scan had already passed over as locked. Real SQS
delivers a group's messages in order or not at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.sqs import models

from local_stack import moto_fixes

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


@pytest.fixture
def sqs() -> Iterator[object]:
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def test_a_group_whose_last_message_becomes_visible_mid_scan_is_not_delivered_out_of_order(
    sqs: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sqs  # boto3's SQS client (moto in-process)
    url = client.create_queue(  # type: ignore[attr-defined]
        QueueName="group.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"}
    )["QueueUrl"]
    for number in range(3):
        client.send_message(  # type: ignore[attr-defined]
            QueueUrl=url, MessageBody=f"m{number}", MessageGroupId="g", MessageDeduplicationId=f"d{number}"
        )
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]  # type: ignore[attr-defined]
    assert [m["Body"] for m in received] == ["m0", "m1", "m2"]

    # The first two come back now, the last one a moment later: moto's own clock reads during the
    # next receive straddle that moment (each read is 10 ms later than the one before).
    queue = models.sqs_backends[ACCOUNT_ID][REGION].get_queue("group.fifo")
    messages = sorted(queue._messages, key=lambda m: m.body)
    start = moto_fixes.wall_clock_ms()
    for message, due in zip(messages, (start - 1000, start - 1000, start + 25), strict=True):
        message.visible_at = due
    ticks = itertools.count()
    monkeypatch.setattr(moto_fixes, "wall_clock_ms", lambda: start + 10 * next(ticks))
    delivered = [
        m["Body"]
        for m in client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])  # type: ignore[attr-defined]
    ]
    assert delivered in ([], ["m0", "m1", "m2"])  # in order, or not yet: never "m2" alone
