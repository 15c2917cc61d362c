"""50 users x 10 messages at once, with Meta redelivering some webhooks."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from local_stack import LocalStack
from tests.e2e.helpers import calls_about, new_user, quoted_text, send_text, settle, texts_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

USERS = 50
MESSAGES_PER_USER = 10
REDELIVERY_RATE = 0.2


def test_every_message_answered_exactly_once_and_in_order(stack: LocalStack) -> None:
    run = f"load{random.randrange(10**6):06d}"
    users = [new_user() for _ in range(USERS)]
    rng = random.Random(20260101)
    redeliver_later: list[bytes] = []
    sent: dict[str, list[str]] = {}

    def converse(user: str) -> None:
        """One user types ten messages, each after the previous webhook was accepted."""
        wamids = []
        for number in range(MESSAGES_PER_USER):
            wamid, body = send_text(stack, user, f"{run} {user} message {number}")
            wamids.append(wamid)
            if rng.random() < REDELIVERY_RATE:
                assert stack.post_webhook(body)[0] == 200  # redelivered at once
            if rng.random() < REDELIVERY_RATE:
                redeliver_later.append(body)
        sent[user] = wamids

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(converse, users))
    total = USERS * MESSAGES_PER_USER
    stack.wait_until(lambda: len(texts_to(stack, *users)) >= total, timeout=300, interval=1)
    for body in redeliver_later:  # Meta retrying long after the answer went out
        assert stack.post_webhook(body)[0] == 200
    settle(stack, timeout=120)

    replies = texts_to(stack, *users)
    assert len(replies) == total
    answered = Counter(r["context_message_id"] for r in replies)
    assert answered == Counter(w for wamids in sent.values() for w in wamids)  # each exactly once
    per_user: dict[str, list[str]] = defaultdict(list)
    for reply in replies:
        per_user[reply["to"]].append(quoted_text(reply))
    for user in users:
        assert per_user[user] == [f"{run} {user} message {n}" for n in range(MESSAGES_PER_USER)]
    assert len(calls_about(stack, run)) == total  # no second model call for any message
    assert set(stack.queue_depths().values()) == {0}  # nothing left in any queue or dead-letter queue
