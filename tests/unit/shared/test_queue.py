"""MessageQueue.send: every item sent, in order per conversation, whatever SQS accepts or refuses."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_assistant.aws.queue import EnqueueError, MessageQueue, QueueItem


class StubSqs:
    """A FIFO queue's SendMessageBatch that fails the entries a test picks (by body, per attempt).

    Unlike a cautious reading of SQS, it accepts every other entry of the call, the later
    entries of a failed one's group included: the worst case for ordering.
    """

    def __init__(self, fail: Counter[str] | None = None, sender_fault: frozenset[str] = frozenset()) -> None:
        self.fail = fail or Counter()
        self.sender_fault = sender_fault
        self.calls: list[list[dict[str, Any]]] = []
        self.accepted: list[QueueItem] = []
        self._seen: set[str] = set()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's names
        assert 1 <= len(Entries) <= 10
        self.calls.append(Entries)
        failed = []
        for entry in Entries:
            body = entry["MessageBody"]
            if body in self.sender_fault:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidMessageContents"})
            elif self.fail[body] > 0:
                self.fail[body] -= 1
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            elif entry["MessageDeduplicationId"] not in self._seen:  # FIFO deduplication
                self._seen.add(entry["MessageDeduplicationId"])
                self.accepted.append(
                    QueueItem(body, entry["MessageGroupId"], entry["MessageDeduplicationId"])
                )
        return {"Successful": [], "Failed": failed}

    def order_of(self, group: str) -> list[str]:
        return [item.body for item in self.accepted if item.group_id == group]


def items(*specs: str) -> list[QueueItem]:
    """'a1' -> body a1 in group a."""
    return [QueueItem(body=spec, group_id=spec[0], deduplication_id=f"dedup-{spec}") for spec in specs]


def test_a_failed_entry_is_resent_before_the_later_entries_of_its_conversation() -> None:
    sqs = StubSqs(fail=Counter({"a1": 1}))

    MessageQueue("url", client=sqs).send(items("a1", "a2", "b1", "a3"))

    assert sqs.order_of("a") == ["a1", "a2", "a3"]
    assert sqs.order_of("b") == ["b1"]
    # a2 never went out before a1 was accepted (in the same call it could have been accepted alone).
    first_sent: dict[str, int] = {}
    for number, call in enumerate(sqs.calls):
        for entry in call:
            first_sent.setdefault(entry["MessageBody"], number)
    assert first_sent["a2"] > 1  # a1 failed in call 0 and was accepted in call 1


def test_no_call_carries_two_entries_of_one_conversation() -> None:
    sqs = StubSqs()

    MessageQueue("url", client=sqs).send(items(*(f"{g}{n}" for n in range(5) for g in "abcdefghijkl")))

    for call in sqs.calls:
        groups = [entry["MessageGroupId"] for entry in call]
        assert len(groups) == len(set(groups))
    assert [len(call) for call in sqs.calls] == [10] * 6  # 60 items of 12 conversations: still full calls
    for group in "abcdefghijkl":
        assert sqs.order_of(group) == [f"{group}{n}" for n in range(5)]


def test_items_of_many_conversations_share_calls_of_ten() -> None:
    sqs = StubSqs()

    MessageQueue("url", client=sqs).send(items(*"abcdefghijklmnopqrstuvwxy"))  # 25 conversations

    assert [len(call) for call in sqs.calls] == [10, 10, 5]


def test_an_entry_failing_twice_raises() -> None:
    sqs = StubSqs(fail=Counter({"a2": 2}))

    with pytest.raises(EnqueueError, match="twice"):
        MessageQueue("url", client=sqs).send(items("a1", "a2", "a3"))

    assert sqs.order_of("a") == ["a1"]  # a3 never overtook a2


def test_a_sender_fault_raises_at_once() -> None:
    sqs = StubSqs(sender_fault=frozenset({"b1"}))

    with pytest.raises(EnqueueError, match="rejected"):
        MessageQueue("url", client=sqs).send(items("a1", "b1"))

    assert len(sqs.calls) == 1


@given(
    specs=st.lists(st.sampled_from([f"{g}" for g in "abcd"]), min_size=1, max_size=40),
    failures=st.lists(st.integers(min_value=0, max_value=39), max_size=10, unique=True),
)
def test_whatever_fails_once_each_conversation_arrives_whole_and_in_order(
    specs: list[str], failures: list[int]
) -> None:
    numbered = [f"{group}{index:02d}" for index, group in enumerate(specs)]
    sqs = StubSqs(fail=Counter({numbered[i]: 1 for i in failures if i < len(numbered)}))

    MessageQueue("url", client=sqs).send(items(*numbered))

    for group in set(specs):
        assert sqs.order_of(group) == [body for body in numbered if body[0] == group]
