"""The request to the model: system prompt, memory turns, the user's message, within the budget.

The request is: the system prompt (SYSTEM_PROMPT with {business_name} and
{user_name}), the remembered turns as alternating user/assistant messages, and
the user's message, all within PROMPT_BUDGET_CHARS (see `memory.fit_to_budget`).
What the user's message becomes for each WhatsApp message type (a transcript, an
image, a document's text...) is decided in `conversation.understanding`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from wa_assistant.conversation.memory import Turn, fit_to_budget
from wa_assistant.model.content import ContentPart

DEFAULT_USER_NAME = "there"


class ChatMessage(BaseModel):
    """One chat-completions message; a user message may be a list of parts (text, images)."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str | tuple[ContentPart, ...]


def within_service_window(sent_at: int, now: float, window_hours: float) -> bool:
    """True if a free-form reply is still allowed; a window of 0 or less disables the check."""
    if window_hours <= 0:
        return True
    return now - sent_at <= window_hours * 3600


_PLACEHOLDER = re.compile(r"\{(business_name|user_name)\}")


def render_system_prompt(template: str, *, business_name: str, user_name: str | None) -> str:
    """Fill {business_name} and {user_name}; leave every other brace alone.

    str.format would raise on an unknown placeholder, a stray brace or a JSON
    example in an operator's prompt, so only the two documented names are replaced.
    """
    values = {"business_name": business_name, "user_name": (user_name or "").strip() or DEFAULT_USER_NAME}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def build_chat_messages(
    *, system_prompt: str, turns: Sequence[Turn], question: str, budget_chars: int
) -> tuple[list[ChatMessage], str]:
    """The messages to send (system, memory as user/assistant pairs, question) and the question as sent."""
    kept, question = fit_to_budget(
        system_prompt=system_prompt, turns=turns, question=question, budget_chars=budget_chars
    )
    messages = [ChatMessage(role="system", content=system_prompt)] if system_prompt.strip() else []
    for turn in kept:
        messages.append(ChatMessage(role="user", content=turn.user))
        messages.append(ChatMessage(role="assistant", content=turn.assistant))
    messages.append(ChatMessage(role="user", content=question))
    return messages, question
