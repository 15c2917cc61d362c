"""Conversation control on the local stack: opt-out, the owner's replies, handoffs, groups, BSUID-only users.

Every webhook is signed as Meta signs it (the owner's echoes too); notices reach the
stack's log through a real SNS subscription in moto. HandoffPauseHours is a few
seconds in the e2e parameters (tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from local_stack import LocalStack
from local_stack.webhooks import echo_webhook, message_webhook, sticker_message, text_message, wamid_of
from tests.e2e.conftest import E2E_PARAMETERS
from tests.e2e.helpers import calls_about, function_records, new_user, send_text, settle, texts_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PAUSE_SECONDS = float(E2E_PARAMETERS["HandoffPauseHours"]) * 3600


def defaults(stack: LocalStack) -> dict[str, str]:
    assert stack.topology is not None
    return stack.topology.parameters


def post(stack: LocalStack, body: bytes) -> str:
    status, answer = stack.post_webhook(body)
    assert status == 200, answer
    return wamid_of(body) if b'"messages"' in body else ""


def receipts_for(stack: LocalStack, wamids: list[str]) -> list[str]:
    return [r["message_id"] for r in stack.sink.receipts() if r["message_id"] in wamids]


def sent_texts(stack: LocalStack, user: str) -> list[str]:
    return [m["text"] for m in texts_to(stack, user)]


def notices_about(stack: LocalStack, user: str) -> list[Any]:
    return [n for n in stack.notices() if user in n.message]


def control_verdicts(stack: LocalStack, wamids: list[str], since: int) -> list[str]:
    return [
        r["verdict"]
        for r in function_records(stack, "AiReplyFunction", since)
        if r.get("message") == "Conversation control" and r.get("correlation_id") in wamids
    ]


def test_stop_confirms_once_then_nothing_at_all_until_start(stack: LocalStack) -> None:
    user = new_user()
    stop, _ = send_text(stack, user, "Stop!")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)
    silenced = [send_text(stack, user, text)[0] for text in (f"hello? {user}", "STOP", "human")]
    silenced.append(post(stack, message_webhook(user, sticker_message())))
    settle(stack)

    assert sent_texts(stack, user) == [defaults(stack)["OptOutReply"]]
    assert receipts_for(stack, [stop, *silenced]) == []  # not even a read receipt or typing indicator
    assert calls_about(stack, user) == []

    send_text(stack, user, "start")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 2)
    back, _ = send_text(stack, user, f"What are your hours, {user}?")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 3)
    settle(stack)
    assert sent_texts(stack, user)[1] == defaults(stack)["OptInReply"]
    assert len(calls_about(stack, user)) == 1
    assert receipts_for(stack, [back]) == [back]


def test_the_owners_reply_pauses_the_bot_until_the_pause_runs_out(stack: LocalStack) -> None:
    user = new_user()
    question = f"Can I pay on delivery? {user}"
    send_text(stack, user, question)
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)
    first_answer = sent_texts(stack, user)[0]

    since = len(stack.log_lines())
    owner_said = f"Yes, cash or card. I'll handle it myself, {user}."
    echoed_at = int(time.time())
    post(stack, echo_webhook(user, owner_said))
    waiting, _ = send_text(stack, user, f"Great, tomorrow at 10? {user}")
    settle(stack)
    [echo_handled] = [
        r
        for r in function_records(stack, "AiReplyFunction", since)
        if r.get("message", "").startswith("The owner")
    ]
    paused_until = echo_handled["paused_until"]
    assert echoed_at + PAUSE_SECONDS - 1 <= paused_until <= echoed_at + PAUSE_SECONDS + 1
    assert control_verdicts(stack, [waiting], since) == ["remember_paused"]
    assert len(calls_about(stack, user)) == 1  # no model call for the message after the echo
    assert len(texts_to(stack, user)) == 1
    assert receipts_for(stack, [waiting]) == []

    time.sleep(max(0.0, paused_until - time.time()) + 1)
    send_text(stack, user, f"Hello? {user}")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 2, timeout=60)
    settle(stack)
    [resumed] = [c for c in calls_about(stack, user) if c["last_user_text"].endswith(f"Hello? {user}")]
    assert [(m["role"], m["content"]) for m in resumed["messages"][1:]] == [
        ("user", question),
        ("assistant", f"{first_answer}\n\n{owner_said}"),  # what the owner said is remembered
        ("user", f"Great, tomorrow at 10? {user}\n\nHello? {user}"),
    ]


def test_a_handoff_keyword_confirms_notifies_the_operator_and_pauses(stack: LocalStack) -> None:
    user = new_user()
    send_text(stack, user, f"Where is my order {user}?")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    since = len(stack.log_lines())
    send_text(stack, user, "Talk to a human")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 2)
    stack.wait_until(lambda: len(notices_about(stack, user)) == 1, timeout=30)
    later, _ = send_text(stack, user, f"still there {user}?")
    settle(stack)

    assert sent_texts(stack, user)[1] == defaults(stack)["HandoffReply"]
    [notice] = notices_about(stack, user)
    assert notice.topic == "HandoffTopic"
    assert notice.subject == "WhatsApp: Local User needs a person"
    assert f"Local User (+{user}) needs a person" in notice.message
    assert f"  User: Where is my order {user}?" in notice.message
    assert notice.message.endswith("  User: Talk to a human")
    assert len(calls_about(stack, user)) == 1  # the keyword and the paused message made no call
    assert control_verdicts(stack, [later], since) == ["remember_paused"]
    logged = [json.loads(line["line"]) for line in stack.log_lines()[since:] if line["source"] == "sns"]
    assert [entry["subject"] for entry in logged if user in entry["message"]] == [notice.subject]


def test_the_model_hands_off_through_its_tool_call(stack: LocalStack) -> None:
    user = new_user()
    send_text(stack, user, f"[tool:handoff_to_human] my parcel {user} arrived broken, refund please")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    stack.wait_until(lambda: len(notices_about(stack, user)) == 1, timeout=30)
    send_text(stack, user, f"hello {user}")
    settle(stack)

    assert sent_texts(stack, user) == [defaults(stack)["HandoffReply"]]
    [call] = calls_about(stack, user)
    assert call["body"]["tool_choice"] == "auto"
    assert [tool["function"]["name"] for tool in call["body"]["tools"]] == ["handoff_to_human"]
    [notice] = notices_about(stack, user)
    assert f"Reason: my parcel {user} arrived broken, refund please" in notice.message
    assert "The assistant handed off." in notice.message


def test_a_bsuid_only_user_can_opt_out_and_be_paused_by_the_owner(stack: LocalStack) -> None:
    marker = new_user()
    bsuid = f"US.{marker}"
    post(stack, message_webhook(None, text_message(f"hello {marker}"), user_id=bsuid, name="Hidden"))
    stack.wait_until(lambda: len(texts_to(stack, bsuid)) == 1)
    post(stack, echo_webhook(None, "It's Ana from the shop, I'll help you.", to_user_id=bsuid))
    post(stack, message_webhook(None, text_message(f"thanks {marker}"), user_id=bsuid, name="Hidden"))
    settle(stack)
    assert len(calls_about(stack, marker)) == 1  # the echo paused the BSUID conversation

    post(stack, message_webhook(None, text_message("STOP"), user_id=bsuid, name="Hidden"))
    stack.wait_until(lambda: len(texts_to(stack, bsuid)) == 2)
    settle(stack)
    assert sent_texts(stack, bsuid)[1] == defaults(stack)["OptOutReply"]


def test_group_messages_are_not_answered(stack: LocalStack) -> None:
    user = new_user()
    since = len(stack.log_lines())
    group = {
        **text_message(f"hi all {user}"),
        "group_id": "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD",
    }
    wamid = post(stack, message_webhook(user, group))
    settle(stack)
    assert texts_to(stack, user) == []
    assert calls_about(stack, user) == []
    ignored = [
        r for r in function_records(stack, "AiReplyFunction", since) if r.get("correlation_id") == wamid
    ]
    assert [r["message"] for r in ignored] == ["Group message; not answered"]
