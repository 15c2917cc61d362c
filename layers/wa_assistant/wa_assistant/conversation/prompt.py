"""How the assistant reads one inbound message: what to ask the model, or why not to.

What each WhatsApp message type gets (never a crash, whatever Meta sends):

=====================================================  ==================================================
message                                                outcome
=====================================================  ==================================================
text, button, interactive                              its text goes to the model
image, video, document *with* a caption                caption + "(sent an image)" note goes to the model
location                                               "📍 shared a location: name, address (lat, lon)"
                                                       goes to the model
audio, voice, sticker, contacts, order, unsupported,   FALLBACK_REPLY, no model call
any unknown type, media without caption, a text-like
message without text
reaction, system                                       no reply at all (logged, MessagesIgnored metric)
=====================================================  ==================================================

Then the request is: the system prompt (SYSTEM_PROMPT with {business_name} and
{user_name}), the remembered turns as alternating user/assistant messages, and
the user's text, all within PROMPT_BUDGET_CHARS (see `memory.fit_to_budget`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from wa_assistant.conversation.memory import Turn, fit_to_budget
from wa_assistant.model.content import ContentPart
from wa_assistant.records import InboundMessage, Location

TEXT_TYPES = frozenset({"text", "button", "interactive"})
CAPTIONED_MEDIA_NOTES = {
    "image": "(sent an image)",
    "video": "(sent a video)",
    "document": "(sent a document)",
}
IGNORED_TYPES = frozenset({"reaction", "system"})
DEFAULT_USER_NAME = "there"


@dataclass(frozen=True, slots=True)
class AskModel:
    """Answer with the model; `question` is the user's message as the model reads it."""

    question: str


@dataclass(frozen=True, slots=True)
class SendFallback:
    """Answer with FALLBACK_REPLY: the assistant cannot read this message."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Send nothing: the message expects no answer."""

    reason: str


ReplyPlan = AskModel | SendFallback | Ignore


class ChatMessage(BaseModel):
    """One chat-completions message; a user message may be a list of parts (text, images)."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str | tuple[ContentPart, ...]


def plan_reply(message: InboundMessage) -> ReplyPlan:
    """Decide how to answer a message from its type (the table in the module docstring)."""
    kind = message.type
    if kind in IGNORED_TYPES:
        return Ignore(f"{kind} messages get no reply")
    if kind in TEXT_TYPES:
        text = (message.text or "").strip()
        return AskModel(text) if text else SendFallback(f"{kind} message without text")
    if kind in CAPTIONED_MEDIA_NOTES:
        return _plan_media(message)
    if kind == "location" and message.location is not None:
        return AskModel(describe_location(message.location))
    return SendFallback(f"{kind} messages cannot be read")


def _plan_media(message: InboundMessage) -> ReplyPlan:
    caption = ((message.media.caption if message.media else None) or message.text or "").strip()
    if not caption:
        return SendFallback(f"{message.type} without caption")
    return AskModel(f"{caption}\n\n{CAPTIONED_MEDIA_NOTES[message.type]}")


def describe_location(location: Location) -> str:
    """A shared location as a sentence the model can read."""
    place = ", ".join(part for part in (location.name, location.address) if part)
    coordinates = f"({location.latitude}, {location.longitude})"
    return f"📍 shared a location: {place} {coordinates}" if place else f"📍 shared a location: {coordinates}"


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
