"""Bursts on the local stack: "hi" / "I ordered yesterday" / "it hasn't arrived" get one answer.

The session stack has no coalesce window (CoalesceWindowSeconds=0): there, messages that arrive
while an earlier one is being answered come together. The window itself runs on a stack of its
own (`windowed`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from local_stack import LocalStack
from tests.e2e.conftest import E2E_PARAMETERS
from tests.e2e.helpers import (
    all_answered,
    calls_about,
    function_records,
    new_user,
    replies_in_order,
    said_in_order,
    send_text,
    settle,
    texts_to,
)
from wa_assistant.webhook.digest import digest_webhook
from wa_assistant.webhook.payload import parse_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WINDOW_SECONDS = 2


def send_burst(stack: LocalStack, user: str, texts: list[str], gap_s: float) -> tuple[list[str], list[bytes]]:
    wamids, bodies = [], []
    for index, text in enumerate(texts):
        if index:
            time.sleep(gap_s)
        wamid, body = send_text(stack, user, text)
        wamids.append(wamid)
        bodies.append(body)
    return wamids, bodies


def burst_to_a_slow_model(
    stack: LocalStack, user: str, texts: list[str], *, gap_s: float, model_seconds: float
) -> tuple[list[str], list[bytes]]:
    """Send a burst while every model call takes `model_seconds`; return once all are answered."""
    stack.mistral.latency_seconds = model_seconds
    try:
        wamids, bodies = send_burst(stack, user, texts, gap_s)
        stack.wait_until(lambda: all_answered(stack, {user: wamids}), timeout=60)
    finally:
        stack.mistral.latency_seconds = 0.0
    settle(stack)
    return wamids, bodies


def test_three_messages_300_ms_apart_while_the_model_is_slow_get_two_calls_at_most(stack: LocalStack) -> None:
    user = new_user()
    texts = [f"hi {user}", f"I ordered yesterday {user}", f"it hasn't arrived {user}"]
    wamids, _ = burst_to_a_slow_model(stack, user, texts, gap_s=0.3, model_seconds=1.5)

    calls = calls_about(stack, user)
    assert 1 <= len(calls) <= 2
    assert said_in_order(stack, user) == texts  # every message read exactly once, in order
    replies_in_order(stack, {user: wamids})
    assert len(texts_to(stack, user)) == len(calls)  # one reply per model call, quoting its last message


def test_a_burst_redelivered_after_the_dedup_window_gets_nothing(stack: LocalStack) -> None:
    user = new_user()
    texts = [f"where is my parcel {user}", f"order A-1234 {user}", f"thanks {user}"]
    _, bodies = burst_to_a_slow_model(stack, user, texts, gap_s=0.2, model_seconds=1.0)
    replies, calls = len(texts_to(stack, user)), len(calls_about(stack, user))
    assert replies < len(texts)  # a burst was answered together
    since = len(stack.log_lines())

    # Meta redelivers every one of them an hour later: SQS no longer deduplicates, so the records
    # reach the AI function again (the webhook function's own parsing turns the bodies into them).
    for body in bodies:
        [message] = digest_webhook(parse_webhook(body)).messages
        stack.send_to_queue(
            "InboundQueue",
            message.model_dump_json(),
            group_id=message.conversation_id,
            deduplication_id=secrets.token_hex(16),
        )
    settle(stack)  # the four records are handled (the queue is empty, no function runs)
    handled_before = [
        r
        for r in function_records(stack, "AiReplyFunction", since)
        if "handled" in str(r.get("message")) and "not answering" in str(r.get("message"))
    ]
    assert handled_before  # they reached the function, which recognised them

    assert len(texts_to(stack, user)) == replies
    assert len(calls_about(stack, user)) == calls


def test_stop_inside_a_burst_is_honoured_and_what_follows_gets_nothing(stack: LocalStack) -> None:
    user = new_user()
    stack.mistral.latency_seconds = 1.0
    try:
        wamids, _ = send_burst(stack, user, [f"hi {user}", "STOP", f"are you still there {user}"], gap_s=0.2)
        stack.wait_until(lambda: len(texts_to(stack, user)) >= 2, timeout=60)
    finally:
        stack.mistral.latency_seconds = 0.0
    settle(stack)

    sent = texts_to(stack, user)
    assert [r["context_message_id"] for r in sent] == wamids[:2]  # the answer to "hi", then the confirmation
    assert stack.topology is not None
    assert sent[1]["text"] == stack.topology.parameters["OptOutReply"]
    assert [c["last_user_text"] for c in calls_about(stack, user)] == [f"hi {user}"]
    # Opted out: the message after STOP got nothing, not even a read receipt.
    assert [r for r in stack.sink.receipts() if r["message_id"] == wamids[2]] == []


# ------------------------------------------------------------------ the coalesce window
@pytest.fixture(scope="module")
def windowed() -> Iterator[LocalStack]:
    env = {"WHATSAPP_APP_SECRET": "bursts-" + secrets.token_hex(8), "MISTRAL_BASE_URL": "stand-in"}
    parameters = {**E2E_PARAMETERS, "CoalesceWindowSeconds": str(WINDOW_SECONDS)}
    with LocalStack(parameters=parameters, env=env, port=0) as running:
        yield running


def test_a_burst_typed_faster_than_the_window_gets_one_call_and_one_reply(windowed: LocalStack) -> None:
    user = new_user()
    texts = [f"hi {user}", f"I ordered yesterday {user}", f"it hasn't arrived {user}"]

    wamids, _ = send_burst(windowed, user, texts, gap_s=0.5)  # the model answers at once: no help from it
    windowed.wait_until(lambda: all_answered(windowed, {user: wamids}), timeout=60)
    settle(windowed)

    assert [c["last_user_text"] for c in calls_about(windowed, user)] == ["\n\n".join(texts)]
    assert [r["context_message_id"] for r in texts_to(windowed, user)] == [wamids[-1]]
    handed_back = [
        r for r in function_records(windowed, "AiReplyFunction") if r.get("message") == "Handed back"
    ]
    assert handed_back  # the first message waited in the queue, not in a running function
    assert {r["counted_attempt"] for r in handed_back} <= {False}


def test_a_single_message_is_handed_back_once_for_at_most_the_window(windowed: LocalStack) -> None:
    user = new_user()
    wamid, _ = send_text(windowed, user, f"just one question {user}")
    windowed.wait_until(lambda: len(texts_to(windowed, user)) == 1, timeout=30)
    settle(windowed)

    assert [r["context_message_id"] for r in texts_to(windowed, user)] == [wamid]
    handed_back = [
        r
        for r in function_records(windowed, "AiReplyFunction")
        if r.get("message") == "Handed back" and r.get("correlation_id") == wamid
    ]
    # It waited in the queue for the rest of the window (SQS counts whole seconds), then was answered.
    assert [r["retry_in_seconds"] for r in handed_back] in ([WINDOW_SECONDS], [WINDOW_SECONDS - 1])
