"""The stand-ins fail on purpose: retries, parking, and no retry storm."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from local_stack import LocalStack
from tests.e2e.helpers import answered_once, calls_about, new_user, quoted_text, send_text, settle, texts_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_mistral_429_500_and_timeouts_still_answer_every_message_once(stack: LocalStack) -> None:
    marker = f"flaky{new_user()}"
    stack.mistral.script(status=429, times=3, retry_after=1)
    stack.mistral.script(status=500, times=3)
    stack.mistral.script(delay=3.5, times=2)  # beyond MistralTimeoutSeconds=2
    users = [new_user() for _ in range(4)]
    wamids = [send_text(stack, user, f"{marker} {user} question {n}")[0] for n in range(2) for user in users]

    stack.wait_until(lambda: len(texts_to(stack, *users)) >= len(wamids), timeout=180, interval=0.5)
    settle(stack, timeout=120)

    replies = texts_to(stack, *users)
    assert answered_once(replies, wamids)
    for user in users:
        assert [quoted_text(r) for r in replies if r["to"] == user] == [
            f"{marker} {user} question 0",
            f"{marker} {user} question 1",
        ]
    assert stack.mistral.pending_script() == 0
    statuses = Counter(c["status"] for c in calls_about(stack, marker))
    # 8 scripted failures (the 2 slow calls end in a 200 nobody reads) + one success per message.
    assert statuses == Counter({200: len(wamids) + 2, 429: 3, 500: 3})
    assert stack.queue_depths()["InboundDeadLetterQueue"] == 0


def test_permanent_401_parks_each_message_after_one_call(stack: LocalStack) -> None:
    marker = f"badkey{new_user()}"
    stack.mistral.api_key = "a-key-the-function-does-not-have"
    users = [new_user() for _ in range(3)]
    wamids = [send_text(stack, user, f"{marker} {user}")[0] for user in users]
    try:
        stack.wait_until(lambda: stack.queue_depths()["InboundDeadLetterQueue"] == len(wamids), timeout=60)
        time.sleep(3)  # a retry storm would show up as more calls now
        settle(stack)
        calls = calls_about(stack, marker)
        assert len(calls) == len(wamids)
        assert {c["status"] for c in calls} == {401}
        parked = stack.queue_messages("InboundDeadLetterQueue")
        assert sorted(json.loads(m["Body"])["message_id"] for m in parked) == sorted(wamids)
        assert texts_to(stack, *users) == []
    finally:
        stack.purge("InboundDeadLetterQueue")


def test_graph_5xx_then_recovery_delivers_each_reply_once(stack: LocalStack) -> None:
    marker = f"graph{new_user()}"
    stack.sink.script(status=500, times=4)
    stack.sink.script(code=130429, times=1)
    users = [new_user() for _ in range(3)]
    wamids = [send_text(stack, user, f"{marker} {user}")[0] for user in users]

    stack.wait_until(lambda: len(texts_to(stack, *users)) >= len(wamids), timeout=120, interval=0.5)
    settle(stack)

    assert answered_once(texts_to(stack, *users), wamids)
    assert stack.sink.pending_script() == 0
    assert Counter(a["status"] for a in stack.sink.attempts() if a["status"] >= 400) >= Counter(
        {500: 4, 429: 1}
    )
    assert len(calls_about(stack, marker)) == len(wamids)  # Graph failures never cost a second model call
    assert stack.queue_depths()["OutboundDeadLetterQueue"] == 0
