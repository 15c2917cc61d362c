"""The request to the model: system prompt, memory turns, the user's message, within the budget.

The request is: the system prompt (SYSTEM_PROMPT with {business_name} filled in),
the remembered turns as alternating user/assistant messages, and the user's
message, all within PROMPT_BUDGET_CHARS (see `memory.fit_to_budget`). What the
user's message becomes for each WhatsApp message type (a transcript, an image, a
document's text...) is decided in `conversation.understanding`.

The system message never holds text a WhatsApp user controls: the profile name
is chosen by the user ("Ignore all previous instructions" is a valid name), and
the system role is where the model gives text the most authority. So
{user_name} in SYSTEM_PROMPT becomes the neutral "the customer", and when the
operator's prompt uses it, the name goes to the model inside the user's own
message, as a one-line note before the question (`profile_name_note`), with
the same authority as anything else the user types. Memory keeps the question
without the note.

Roles always alternate, starting with a user message (`alternate_roles`): many
chat templates (Mistral's own open models served by vLLM among them) refuse
anything else, and memory may hold turns with one side only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from wa_assistant.conversation.memory import Turn, fit_to_budget
from wa_assistant.model.content import ContentPart, ImagePart, TextPart

NEUTRAL_USER_NAME = "the customer"
"""What {user_name} becomes in the system prompt (the real name goes in the user's message)."""
MAX_PROFILE_NAME_CHARS = 64
"""WhatsApp profile names are short (25 characters in the app); anything longer is cut."""

Content = str | tuple[ContentPart, ...]


class ChatMessage(BaseModel):
    """One chat-completions message; a user message may be a list of parts (text, images)."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: Content


def within_service_window(sent_at: int, now: float, window_hours: float) -> bool:
    """True if a free-form reply is still allowed; a window of 0 or less disables the check."""
    if window_hours <= 0:
        return True
    return now - sent_at <= window_hours * 3600


_PLACEHOLDER = re.compile(r"\{(business_name|user_name)\}")


def render_system_prompt(template: str, *, business_name: str) -> str:
    """Fill {business_name} and put the neutral NEUTRAL_USER_NAME for {user_name}; leave other braces alone.

    str.format would raise on an unknown placeholder, a stray brace or a JSON
    example in an operator's prompt, so only the two documented names are replaced.
    """
    values = {"business_name": business_name, "user_name": NEUTRAL_USER_NAME}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def profile_name_note(template: str, profile_name: str | None) -> str | None:
    """The user's profile name as a one-line note for the user's message, if the prompt asks for it.

    Only when the operator's SYSTEM_PROMPT uses {user_name}: otherwise the name is
    not needed and not sent. Whitespace (line breaks included) collapses to single
    spaces, so a name cannot pose as lines of its own.
    """
    if "{user_name}" not in template:
        return None
    name = " ".join((profile_name or "").split())[:MAX_PROFILE_NAME_CHARS]
    return f"(The customer's WhatsApp profile name is: {name})" if name else None


def build_chat_messages(
    *,
    system_prompt: str,
    turns: Sequence[Turn],
    question: str,
    budget_chars: int,
    user_note: str | None = None,
    images: Sequence[ImagePart] = (),
) -> tuple[list[ChatMessage], str]:
    """The messages to send (system, memory as user/assistant pairs, question) and the question as sent.

    `user_note` (see `profile_name_note`) opens the last user message (after remembered user-only
    turns are joined into it) and counts against the budget; the question returned (what memory
    keeps) does not carry it. `images` go after the (cut) text of the last user message.
    """
    prefix = f"{user_note}\n\n" if user_note else ""
    kept, question = fit_to_budget(
        system_prompt=system_prompt, turns=turns, question=question, budget_chars=budget_chars - len(prefix)
    )
    messages = [ChatMessage(role="system", content=system_prompt)] if system_prompt.strip() else []
    history: list[ChatMessage] = []
    for turn in kept:
        if turn.user:
            history.append(ChatMessage(role="user", content=turn.user))
        if turn.assistant:
            history.append(ChatMessage(role="assistant", content=turn.assistant))
    history.append(
        ChatMessage(role="user", content=(TextPart(text=question), *images) if images else question)
    )
    conversation = alternate_roles(history)
    if prefix:
        last = conversation[-1]
        conversation[-1] = ChatMessage(role=last.role, content=_joined(prefix.rstrip("\n"), last.content))
    return messages + conversation, question


EARLIER_MESSAGES_NOT_SHOWN = "(earlier messages are not shown)"
"""The user message put before a history that starts with the assistant (e.g. the owner wrote first)."""


def alternate_roles(history: Sequence[ChatMessage]) -> list[ChatMessage]:
    """user/assistant/user/...: consecutive messages of one role are joined, and an assistant first gets a
    short user message before it, so that every chat template accepts the conversation."""
    merged: list[ChatMessage] = []
    for message in history:
        if merged and merged[-1].role == message.role:
            merged[-1] = ChatMessage(role=message.role, content=_joined(merged[-1].content, message.content))
        else:
            merged.append(message)
    if merged and merged[0].role == "assistant":
        merged.insert(0, ChatMessage(role="user", content=EARLIER_MESSAGES_NOT_SHOWN))
    return merged


def _joined(first: Content, second: Content) -> Content:
    """Two contents of one role as one: text joined by a blank line; parts kept in order."""
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"
    return (*_parts(first), *_parts(second))


def _parts(content: Content) -> tuple[ContentPart, ...]:
    return (TextPart(text=content),) if isinstance(content, str) else content
