"""A burst: 2,000 messages from 200 users at once, with Meta redelivering some webhooks.

(This replaces the earlier 50 users x 10 messages test: same checks, four times the traffic.)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from local_stack import LocalStack
from tests.e2e.helpers import (
    BURST_JOINER,
    all_answered,
    calls_about,
    new_user,
    quoted_text,
    replies_in_order,
    send_text,
    settle,
    texts_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

USERS = 200
MESSAGES_PER_USER = 10
REDELIVERY_RATE = 0.1
SENDERS = 16
"""Concurrent webhook deliveries; more only queue up behind the webhook's warm workers."""

log = logging.getLogger(__name__)


def test_burst_of_2000_messages_from_200_users_answered_once_each_in_order(stack: LocalStack) -> None:
    run = f"burst{random.randrange(10**6):06d}"
    users = [new_user() for _ in range(USERS)]
    rng = random.Random(20260101)
    rng_lock = threading.Lock()
    redeliver_later: list[bytes] = []
    sent: dict[str, list[str]] = {}

    def redelivered() -> bool:
        with rng_lock:
            return rng.random() < REDELIVERY_RATE

    def converse(user: str) -> None:
        """One user types ten messages, each after the previous webhook was accepted."""
        wamids = []
        for number in range(MESSAGES_PER_USER):
            wamid, body = send_text(stack, user, f"{run} {user} message {number}")
            wamids.append(wamid)
            if redelivered():
                assert stack.post_webhook(body)[0] == 200  # redelivered at once
            if redelivered():
                redeliver_later.append(body)
        sent[user] = wamids

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        list(pool.map(converse, users))
    accepted = time.monotonic() - started
    total = USERS * MESSAGES_PER_USER
    stack.wait_until(lambda: all_answered(stack, sent), timeout=540, interval=1)
    for body in redeliver_later:  # Meta retrying long after the answer went out
        assert stack.post_webhook(body)[0] == 200
    settle(stack, timeout=120)
    replies = texts_to(stack, *users)
    log.warning(
        "burst: %d messages accepted in %.0f s, answered by %d replies and settled in %.0f s",
        total,
        accepted,
        len(replies),
        time.monotonic() - started,
    )

    # A user's messages that waited together were answered together (one reply quoting the last):
    # zero lost, zero duplicated, order kept, each message read by the model exactly once.
    replies_in_order(stack, sent)
    per_user: dict[str, list[str]] = defaultdict(list)
    for reply in replies:
        per_user[reply["to"]].extend(quoted_text(reply).split(BURST_JOINER))
    for user in users:
        assert per_user[user] == [f"{run} {user} message {n}" for n in range(MESSAGES_PER_USER)]
    assert len(calls_about(stack, run)) == len(replies)  # no second model call for any message
    assert set(stack.queue_depths().values()) == {0}  # every queue and dead-letter queue empty
