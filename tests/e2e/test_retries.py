"""Retries that outlast an outage: only real attempts count, followers wait without being counted,
and only a message that keeps failing is parked.

The session stack retries with a 0.1 s base delay and parks after RetryMaxAttempts=10 real
attempts (tests/e2e/conftest.py), with AiBatchSize=10 so that a user's later messages are
received with the failing one and skipped.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from local_stack import LocalStack
from tests.e2e.helpers import (
    calls_about,
    emf_metrics,
    function_records,
    new_user,
    parked_logged,
    replies_in_order,
    retries_logged,
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
    stack.wait_until(lambda: len(texts_to(stack, user)) >= 4, timeout=180, interval=0.5)
    settle(stack)

    replies_in_order(stack, {user: [head, *followers]})  # each answered once, in order
    assert stack.mistral.pending_script() == 0
    asked = Counter((c["last_user_text"], c["status"]) for c in calls_about(stack, marker))
    assert asked == Counter({(f"{marker} 0", 500): FAILURES, **{(f"{marker} {n}", 200): 1 for n in range(4)}})
    assert retries_logged(stack, "AiReplyFunction", [head], since) == list(range(1, FAILURES + 1))
    assert retries_logged(stack, "AiReplyFunction", followers, since) == []
    skipped = skips_logged(stack, "AiReplyFunction", followers, since)
    assert set(skipped) == set(followers)  # each waited behind the head at least once, uncounted
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
    stack.wait_until(lambda: len(texts_to(stack, user)) >= 4, timeout=180, interval=0.5)
    settle(stack)

    replies_in_order(stack, {user: [head, *followers]})
    assert stack.sink.pending_script() == 0
    attempts = [
        a for a in stack.sink.attempts() if isinstance(a["body"], dict) and a["body"].get("to") == user
    ]
    assert [a["status"] for a in attempts] == [500] * FAILURES + [200] * 4
    assert len(calls_about(stack, marker)) == 4  # Graph failures never cost a second model call
    assert retries_logged(stack, "SendReplyFunction", [head], since) == list(range(1, FAILURES + 1))
    assert retries_logged(stack, "SendReplyFunction", followers, since) == []
    # The followers' typing indicators and replies waited behind the head's reply, uncounted.
    assert set(skips_logged(stack, "SendReplyFunction", followers, since)) == set(followers)
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
        stack.wait_until(lambda: len(texts_to(stack, user)) >= 2, timeout=180, interval=0.5)
        settle(stack)

        replies_in_order(stack, {user: followers})  # answered, not parked; the head has no reply
        parked = stack.queue_messages("InboundDeadLetterQueue")
        assert [json.loads(m["Body"])["message_id"] for m in parked] == [head]
        assert [(c["last_user_text"], c["status"]) for c in calls_about(stack, marker)] == [
            (f"{marker} 0", 500)
        ] * max_attempts + [(f"{marker} {n}", 200) for n in (1, 2)]
        assert retries_logged(stack, "AiReplyFunction", [head], since) == list(range(1, max_attempts))
        [line] = parked_logged(stack, "AiReplyFunction", since)
        assert (line["correlation_id"], line["attempts"]) == (head, max_attempts)
        assert f"RetryMaxAttempts {max_attempts}" in line["reason"]
        assert retries_logged(stack, "AiReplyFunction", followers, since) == []
        parked_metrics = [
            m
            for m in emf_metrics(function_records(stack, "AiReplyFunction", since))
            if m[1] == "MessagesParked"
        ]
        assert parked_metrics == [("WhatsAppAssistant", "MessagesParked", {"service": "ai-reply"}, 1.0)]
        assert stack.queue_depths()["OutboundDeadLetterQueue"] == 0
    finally:
        stack.purge("InboundDeadLetterQueue")
