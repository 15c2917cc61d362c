"""The handoff tool and the operator's notice (domain, no AWS)."""

from __future__ import annotations

from tests.unit.ai_reply.helpers import inbound
from wa_assistant.conversation.handoff import (
    HANDOFF_TOOL,
    HANDOFF_TOOL_NAME,
    SUBJECT_CHARS,
    ascii_subject,
    handoff_notice,
    handoff_reason,
    user_label,
)
from wa_assistant.conversation.memory import Turn
from wa_assistant.model.chat import ChatCompletion, ToolCall
from wa_assistant.records import InboundMessage, Sender

PAUSED_UNTIL = 1_780_043_200.0  # 2026-05-29 08:26 UTC


def test_the_tool_is_one_function_with_a_required_reason() -> None:
    function = HANDOFF_TOOL["function"]
    assert (HANDOFF_TOOL["type"], function["name"]) == ("function", HANDOFF_TOOL_NAME)
    assert function["parameters"]["required"] == ["reason"]


def test_the_reason_comes_from_the_handoff_call_only() -> None:
    call = ToolCall(HANDOFF_TOOL_NAME, {"reason": "  wants\na refund  "})
    assert handoff_reason(ChatCompletion(text="", tool_calls=(call,))) == "wants a refund"
    assert handoff_reason(ChatCompletion(text="", tool_calls=(ToolCall(HANDOFF_TOOL_NAME, {}),))) == ""
    assert handoff_reason(ChatCompletion(text="Hi", tool_calls=(ToolCall("other", {"reason": "x"}),))) is None
    assert handoff_reason(ChatCompletion(text="Hi")) is None
    long = handoff_reason(
        ChatCompletion(text="", tool_calls=(ToolCall(HANDOFF_TOOL_NAME, {"reason": "x" * 999}),))
    )
    assert long is not None
    assert len(long) == 300


def test_the_user_is_shown_by_name_and_number_or_bsuid() -> None:
    assert user_label(inbound(profile_name="Sheena Nelson")) == "Sheena Nelson (+16505551234)"
    hidden = inbound().model_copy(
        update={"sender": Sender(user_id="US.13491208655302741918", username="@sheena", profile_name=None)}
    )
    assert user_label(hidden) == "@sheena (BSUID US.13491208655302741918, username @sheena)"


def test_the_notice_holds_who_why_the_last_messages_and_how_to_resume() -> None:
    message: InboundMessage = inbound("I want a refund now", profile_name="Zoë Müller")
    turns = [Turn(user=f"question {n}", assistant=f"answer {n}") for n in range(10)]
    notice = handoff_notice(
        message=message,
        reason="wants a refund",
        source="model",
        turns=turns,
        question="I want a refund now",
        paused_until=PAUSED_UNTIL,
        business_name="Acme Store",
    )
    assert notice.subject == "WhatsApp: Zoe Muller needs a person"
    text = notice.text
    assert text.startswith("Zoë Müller (+16505551234) needs a person from Acme Store.")
    assert "Reason: wants a refund" in text
    assert "The assistant handed off." in text
    assert f"Conversation: {message.conversation_id}" in text
    assert f"python -m ops.conversations resume {message.conversation_id}" in text
    assert "until 2026-05-29 08:26 UTC" in text
    assert "question 3" not in text  # only the last six exchanges
    assert text.endswith("  User: question 9\n  Assistant: answer 9\n  User: I want a refund now")


def test_subjects_are_ascii_one_line_and_short() -> None:
    assert ascii_subject("WhatsApp: 李小龙 needs a person\n") == "WhatsApp: needs a person"
    assert len(ascii_subject("WhatsApp: " + "é" * 300)) == SUBJECT_CHARS
    assert ascii_subject("日本") == "WhatsApp: a customer needs a person"
