"""Domain: the system prompt, the service window, the chat messages (message types: test_understanding)."""

from __future__ import annotations

import pytest

from wa_assistant.conversation.memory import Turn
from wa_assistant.conversation.prompt import (
    ChatMessage,
    build_chat_messages,
    render_system_prompt,
    within_service_window,
)


def test_system_prompt_placeholders() -> None:
    template = "Assistant of {business_name}. Say hi to {user_name}."
    assert render_system_prompt(template, business_name="Acme", user_name="Lucía") == (
        "Assistant of Acme. Say hi to Lucía."
    )
    assert render_system_prompt(template, business_name="Acme", user_name=None) == (
        "Assistant of Acme. Say hi to there."
    )
    assert render_system_prompt(template, business_name="Acme", user_name="  ") == (
        "Assistant of Acme. Say hi to there."
    )


@pytest.mark.parametrize(
    "template",
    [
        "{unknown} {business_name}",
        "{",
        "}",
        "{0}",
        "{business_name.upper}",
        'Reply as JSON: {"a": 1}',
        "{{x}}",
    ],
)
def test_unknown_placeholders_and_stray_braces_do_not_crash(template: str) -> None:
    rendered = render_system_prompt(template, business_name="Acme", user_name="Ann")
    assert rendered == template.replace("{business_name}", "Acme")


def test_service_window() -> None:
    sent = 1_700_000_000
    assert within_service_window(sent, sent + 24 * 3600, 24)
    assert not within_service_window(sent, sent + 24 * 3600 + 1, 24)
    assert within_service_window(sent, sent + 10 * 24 * 3600, 0)  # 0 disables the check
    assert within_service_window(sent, sent - 60, 24)  # clock skew: a message "from the future"


def test_chat_messages_are_system_then_memory_then_question() -> None:
    turns = [Turn(user="When do you open?", assistant="At 9."), Turn(user="Sundays?", assistant="Closed.")]
    messages, question = build_chat_messages(
        system_prompt="Be brief.", turns=turns, question="Holidays?", budget_chars=1000
    )
    assert question == "Holidays?"
    assert messages == [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="When do you open?"),
        ChatMessage(role="assistant", content="At 9."),
        ChatMessage(role="user", content="Sundays?"),
        ChatMessage(role="assistant", content="Closed."),
        ChatMessage(role="user", content="Holidays?"),
    ]


def test_an_empty_system_prompt_is_not_sent() -> None:
    messages, _ = build_chat_messages(system_prompt=" ", turns=[], question="Hi", budget_chars=1000)
    assert messages == [ChatMessage(role="user", content="Hi")]
