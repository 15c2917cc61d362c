"""Retries that outlast an outage: only real attempts count, followers wait without being counted,
and only a message that keeps failing is parked.

The session stack retries with a 0.1 s base delay and parks after RetryMaxAttempts=10 real
attempts (tests/e2e/conftest.py), with AiBatchSize=10 so that a user's later messages are
received with the failing one. On the AI side they join it as one burst (answered together when
the model is back); on the send side they wait behind it, skipped and never counted.
"""

from __future__ import annotations

import json

import pytest

from local_stack import LocalStack
from tests.e2e.helpers import (
    all_answered,
    calls_about,
    emf_metrics,
    function_records,
    new_user,
    parked_logged,
    replies_in_order,
    retries_logged,
    said_in_order,
    send_text,
    settle,
    skips_logged,
    texts_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FAILURES = 8


def _dead_letter_queues_empty(stack: LocalStack) -> bool:
    depths = stack.queue_depths()
    return depths["InboundDeadLetterQueue"] == depths["OutboundDeadLetterQueue"] == 0


def test_model_failing_8_times_in_a_row_while_the_user_writes_3_more(stack: LocalStack) -> None:
    marker = f"modeldown{new_user()}"
    user = new_user()
    since = len(stack.log_lines())
    stack.mistral.script(status=500, times=FAILURES)

    head, _ = send_text(stack, user, f"{marker} 0")
    stack.wait_until(lambda: retries_logged(stack, "AiReplyFunction", [head], since) != [])
    followers = [send_text(stack, user, f"{marker} {n}")[0] for n in (1, 2, 3)]
    sent = {user: [head, *followers]}
    stack.wait_until(lambda: all_answered(stack, sent), timeout=180, interval=0.5)
    settle(stack)

    replies_in_order(stack, sent)
    # Each message read by the model once, in order: the followers that arrived during the outage
    # were answered together with the head once the model was back.
    assert said_in_order(stack, user) == [f"{marker} {n}" for n in range(4)]
    assert stack.mistral.pending_script() == 0
    statuses = [c["status"] for c in calls_about(stack, marker)]
    assert statuses == [500] * FAILURES + [200] * len(texts_to(stack, user))
    assert retries_logged(stack, "AiReplyFunction", [head], since) == list(range(1, FAILURES + 1))
    assert parked_logged(stack, "AiReplyFunction", since) == []
    assert _dead_letter_queues_empty(stack)


def test_graph_failing_8_times_in_a_row_while_the_user_writes_3_more(stack: LocalStack) -> None:
    marker = f"graphdown{new_user()}"
    user = new_user()
    since = len(stack.log_lines())
    stack.sink.script(status=500, times=FAILURES, to=user)  # the replies to this user; typing passes

    head, _ = send_text(stack, user, f"{marker} 0")
    stack.wait_until(lambda: retries_logged(stack, "SendReplyFunction", [head], since) != [])
    followers = [send_text(stack, user, f"{marker} {n}")[0] for n in (1, 2, 3)]
    sent = {user: [head, *followers]}
    stack.wait_until(lambda: all_answered(stack, sent), timeout=180, interval=0.5)
    settle(stack)

    replies_in_order(stack, sent)
    assert said_in_order(stack, user) == [f"{marker} {n}" for n in range(4)]
    replies = texts_to(stack, user)
    assert stack.sink.pending_script() == 0
    attempts = [
        a for a in stack.sink.attempts() if isinstance(a["body"], dict) and a["body"].get("to") == user
    ]
    assert [a["status"] for a in attempts] == [500] * FAILURES + [200] * len(replies)
    assert len(calls_about(stack, marker)) == len(replies)  # Graph failures never cost a second model call
    assert retries_logged(stack, "SendReplyFunction", [head], since) == list(range(1, FAILURES + 1))
    assert retries_logged(stack, "SendReplyFunction", followers, since) == []
    # The followers' typing indicators and replies (one per burst, quoting its last message) waited
    # behind the head's reply, uncounted.
    quoted_followers = {r["context_message_id"] for r in replies} - {head}
    assert set(skips_logged(stack, "SendReplyFunction", followers, since)) == quoted_followers
    assert parked_logged(stack, "SendReplyFunction", since) == []
    assert _dead_letter_queues_empty(stack)


def test_a_message_that_keeps_failing_is_parked_after_max_attempts_and_the_rest_answered(
    stack: LocalStack,
) -> None:
    max_attempts = int(stack.parameter_overrides["RetryMaxAttempts"])
    marker = f"poison{new_user()}"
    user = new_user()
    since = len(stack.log_lines())
    stack.mistral.script(status=500, times=max_attempts)

    head, _ = send_text(stack, user, f"{marker} 0")
    stack.wait_until(lambda: retries_logged(stack, "AiReplyFunction", [head], since) != [])
    followers = [send_text(stack, user, f"{marker} {n}")[0] for n in (1, 2)]
    try:
        stack.wait_until(lambda: all_answered(stack, {user: followers}), timeout=180, interval=0.5)
        settle(stack)

        # The followers joined the failing head as one burst; once the head is parked they are
        # answered without it: read once each, in order, and the head has no reply.
        replies_in_order(stack, {user: followers})
        assert said_in_order(stack, user) == [f"{marker} {n}" for n in (1, 2)]
        parked = stack.queue_messages("InboundDeadLetterQueue")
        assert [json.loads(m["Body"])["message_id"] for m in parked] == [head]
        calls = calls_about(stack, marker)
        assert [c["status"] for c in calls] == [500] * max_attempts + [200] * len(texts_to(stack, user))
        assert all(f"{marker} 0" not in c["last_user_text"] for c in calls if c["status"] == 200)
        assert retries_logged(stack, "AiReplyFunction", [head], since) == list(range(1, max_attempts))
        [line] = parked_logged(stack, "AiReplyFunction", since)
        assert (line["correlation_id"], line["attempts"]) == (head, max_attempts)
        assert f"RetryMaxAttempts {max_attempts}" in line["reason"]
        # Joined later, the followers have fewer real attempts than the head: none reached the limit.
        assert all(n < max_attempts for n in retries_logged(stack, "AiReplyFunction", followers, since))
        parked_metrics = [
            m
            for m in emf_metrics(function_records(stack, "AiReplyFunction", since))
            if m[1] == "MessagesParked"
        ]
        assert parked_metrics == [("WhatsAppAssistant", "MessagesParked", {"service": "ai-reply"}, 1.0)]
        assert stack.queue_depths()["OutboundDeadLetterQueue"] == 0
    finally:
        stack.purge("InboundDeadLetterQueue")
