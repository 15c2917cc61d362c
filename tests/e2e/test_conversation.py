"""A WhatsApp user talks to the assistant through all three functions."""

from __future__ import annotations

import time
import urllib.parse

import pytest

from local_stack import LocalStack
from local_stack.webhooks import message_webhook, new_wamid, text_message, wamid_of
from tests.e2e.helpers import calls_about, new_user, send_text, settle, texts_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_meta_verification_handshake(stack: LocalStack) -> None:
    query = urllib.parse.urlencode(
        {
            "hub.mode": "subscribe",
            "hub.verify_token": stack.config.verify_token,
            "hub.challenge": "1158201444",
        }
    )
    assert stack.get(f"/webhook?{query}") == (200, b"1158201444")
    wrong = urllib.parse.urlencode(
        {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    )
    assert stack.get(f"/webhook?{wrong}")[0] == 403


def test_two_turns_answered_in_order_with_memory(stack: LocalStack) -> None:
    user = new_user()
    first, _ = send_text(stack, user, f"Hello from {user}")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    second, _ = send_text(stack, user, f"What did I say first, {user}?")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 2)
    settle(stack)

    replies = texts_to(stack, user)
    assert [r["text"] for r in replies] == [
        f'[stand-in model] You said: "Hello from {user}" (turn 1)',
        f'[stand-in model] You said: "What did I say first, {user}?" (turn 2; I remember: Hello from {user})',
    ]
    assert [r["context_message_id"] for r in replies] == [first, second]  # each reply quotes its question
    assert all(r["phone_number_id"] == "106540352242922" for r in replies)
    assert len(calls_about(stack, user)) == 2
    read_receipts = [r["message_id"] for r in stack.sink.receipts() if r["message_id"] in (first, second)]
    assert sorted(read_receipts) == sorted([first, second])


def test_an_unreadable_message_is_marked_read_and_gets_the_fallback_reply_without_a_model_call(
    stack: LocalStack,
) -> None:
    assert stack.topology is not None
    user = new_user()
    # A message type WhatsApp itself does not support (Meta's `unsupported` with error 131051):
    # nothing in it can be read, so the FallbackReply is the honest answer.
    unsupported = {
        "id": new_wamid(),
        "type": "unsupported",
        "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}],
    }
    body = message_webhook(user, unsupported)
    wamid = wamid_of(body)
    model_calls = len(stack.mistral.calls())
    assert stack.post_webhook(body)[0] == 200
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)

    [reply] = texts_to(stack, user)
    assert reply["text"] == stack.topology.parameters["FallbackReply"]
    assert reply["context_message_id"] == wamid
    receipts = [r for r in stack.sink.receipts() if r["message_id"] == wamid]
    assert len(receipts) == 1  # it shows as read, as a text message does
    assert receipts[0]["time"] <= reply["time"]  # read (and "typing…") before the answer
    assert len(stack.mistral.calls()) == model_calls


def test_redelivered_webhook_is_answered_once(stack: LocalStack) -> None:
    user = new_user()
    wamid, body = send_text(stack, user, f"Only once please {user}")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    status, _ = stack.post_webhook(body)  # Meta redelivers the same bytes
    assert status == 200
    time.sleep(2)  # a duplicate would be enqueued by now
    settle(stack)
    assert [r["context_message_id"] for r in texts_to(stack, user)] == [wamid]
    assert len(calls_about(stack, user)) == 1


def test_unsigned_webhook_is_refused_and_goes_nowhere(stack: LocalStack) -> None:
    user = new_user()
    body = message_webhook(user, text_message(f"forged {user}"))
    status, _ = stack.post_webhook(body, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}, signed=False)
    assert status == 401
    time.sleep(1)
    settle(stack)
    assert texts_to(stack, user) == []
    assert calls_about(stack, user) == []
