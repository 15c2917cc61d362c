"""An AI worker dies in the middle of a batch, its model call in flight (as a Lambda timeout would).

Everything the worker held comes back after the inbound visibility timeout. The
message whose call was in flight stays locked by its INPROGRESS idempotency record
until the killed invocation's deadline (the function's 60 s Timeout, through
`register_lambda_context`), so this test takes about a minute by design.
"""

from __future__ import annotations

import pytest

from local_stack import LocalStack
from local_stack.webhooks import text_message
from tests.e2e.helpers import (
    BURST_JOINER,
    all_answered,
    calls_about,
    function_records,
    messages_webhook,
    new_user,
    replies_in_order,
    said_in_order,
    settle,
    texts_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

USERS = 1
"""One conversation: FIFO lets one worker at a time hold it, so exactly one model call is in flight
when the worker dies (with several, another worker's call could be the one in flight)."""
MESSAGES_PER_USER = 6


def test_killed_ai_worker_redelivers_its_batch_and_answers_each_message_once(stack: LocalStack) -> None:
    marker = f"crash{new_user()}"
    users = [new_user() for _ in range(USERS)]
    sent: dict[str, list[str]] = {user: [] for user in users}
    messages = []
    for number in range(MESSAGES_PER_USER):
        for user in users:
            message = text_message(f"{marker} {user} {number}")
            sent[user].append(message["id"])
            messages.append((user, message))
    since = len(stack.log_lines())
    # Slow enough to be caught in flight, well below MistralTimeoutSeconds (2 s).
    stack.mistral.latency_seconds = 1.5

    body = messages_webhook(messages)  # one webhook: the records arrive together
    assert stack.post_webhook(body)[0] == 200
    stack.wait_until(lambda: len(calls_about(stack, marker)) >= 1, interval=0.02)
    stack.kill_worker("AiReplyFunction", wait=5)
    in_flight = calls_about(stack, marker)
    assert len(in_flight) == 1  # the worker died during its first model call
    killed_call = in_flight[0]
    stack.mistral.latency_seconds = 0.0

    stack.wait_until(lambda: all_answered(stack, sent), timeout=180, interval=0.5)
    settle(stack)

    # The six messages arrived together: one burst. Each read once, in order, in one reply per run.
    replies_in_order(stack, sent)
    for user in users:
        assert said_in_order(stack, user) == [f"{marker} {user} {n}" for n in range(MESSAGES_PER_USER)]
    calls = calls_about(stack, marker)
    assert calls[0]["last_user_text"] == killed_call["last_user_text"]
    # After the kill, every message is asked exactly once, in order: the killed call's messages
    # again (with whatever else of the burst the redelivered batch held), nothing twice.
    asked_after = [part for c in calls[1:] for part in c["last_user_text"].split(BURST_JOINER)]
    assert asked_after == [f"{marker} {user} {n}" for user in users for n in range(MESSAGES_PER_USER)]
    assert set(killed_call["last_user_text"].split(BURST_JOINER)) <= set(asked_after)
    assert len(calls) - 1 == len(texts_to(stack, *users))  # one model call per reply
    died = [
        line
        for line in stack.log_lines()[since:]
        if line["source"] == "event-source" and "AiReplyFunction failed a batch" in line["line"]
    ]
    assert len(died) == 1
    assert "WorkerDied" in died[0]["line"]
    in_progress = [
        r
        for r in function_records(stack, "AiReplyFunction", since)
        if r.get("message") == "Will retry" and "another invocation" in str(r.get("reason"))
    ]
    assert in_progress, "the redelivered message should have waited for the dead invocation's lock"
    assert {r["counted_attempt"] for r in in_progress} == {False}  # waiting for a lock is not an attempt
    assert {r["correlation_id"] for r in in_progress} <= set(wamid_of_each(sent))
    depths = stack.queue_depths()
    assert depths["InboundDeadLetterQueue"] == depths["OutboundDeadLetterQueue"] == 0


def wamid_of_each(sent: dict[str, list[str]]) -> list[str]:
    return [wamid for wamids in sent.values() for wamid in wamids]
