"""Handing a conversation over to a person: the model's tool, and the operator's notice.

The model may decide by itself that a person is needed: every chat request offers
it one function, `handoff_to_human(reason)` (Mistral function calling, tool_choice
auto). A reply that calls it hands the conversation off exactly like a
HandoffKeywords message: the user gets HandoffReply, the operator a notice, and
the bot pauses for HandoffPauseHours.

The notice (an SNS message, e-mailed when HandoffEmail is set) holds what an
operator needs to pick the conversation up: who (name, number or BSUID), why,
the last few messages, until when the bot stays quiet, and how to resume it.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wa_assistant.conversation.memory import Turn, truncate
from wa_assistant.model.chat import ChatCompletion
from wa_assistant.records import InboundMessage

HANDOFF_TOOL_NAME = "handoff_to_human"
HANDOFF_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": HANDOFF_TOOL_NAME,
        "description": (
            "Hand this conversation over to a person from the business. Call it when the user asks "
            "to talk to a person, or when their request needs one (a complaint, a refund, a decision "
            "or an action you cannot take). A person then answers in this chat."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why a person is needed, in one short sentence."}
            },
            "required": ["reason"],
        },
    },
}
"""Mistral's `Tool` shape (type function, function name/description/parameters as JSON Schema)."""

NOTICE_TURNS = 6
"""How many remembered exchanges the notice shows."""
NOTICE_TEXT_CHARS = 600
"""Each remembered text is cut to this length in the notice."""
SUBJECT_CHARS = 99
"""SNS e-mail subjects: ASCII, no line breaks, under 100 characters."""
REASON_CHARS = 300


def handoff_reason(completion: ChatCompletion) -> str | None:
    """The reason given when the reply calls `handoff_to_human`, else None ("" is a reason too)."""
    for call in completion.tool_calls:
        if call.name == HANDOFF_TOOL_NAME:
            reason = call.arguments.get("reason")
            return truncate(" ".join(str(reason).split()), REASON_CHARS) if reason is not None else ""
    return None


@dataclass(frozen=True, slots=True)
class HandoffNotice:
    subject: str
    text: str


def user_label(message: InboundMessage) -> str:
    """The user as an operator finds them in the WhatsApp Business app: name and number (or BSUID)."""
    sender = message.sender
    name = sender.profile_name or sender.username or "A customer"
    if sender.wa_id:
        contact = f"+{sender.wa_id}"
    else:
        contact = f"BSUID {sender.user_id}" + (f", username {sender.username}" if sender.username else "")
    return f"{name} ({contact})"


def handoff_notice(
    *,
    message: InboundMessage,
    reason: str,
    source: str,
    turns: Sequence[Turn],
    question: str,
    paused_until: float,
    business_name: str,
) -> HandoffNotice:
    """The operator's notice; `source` is "keyword" or "model"."""
    who = user_label(message)
    why = reason or ("the user asked for a person" if source == "keyword" else "the assistant decided")
    how = "They asked with a handoff keyword." if source == "keyword" else "The assistant handed off."
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(paused_until))
    lines = [
        f"{who} needs a person from {business_name or 'the business'}.",
        "",
        f"Reason: {why}",
        how,
        f"Business phone number id: {message.phone_number_id}",
        f"Conversation: {message.conversation_id}",
        "",
        f"The assistant stays quiet in this conversation until {until}, longer while you keep",
        "answering from the WhatsApp Business app. To let it answer again now:",
        f"  python -m ops.conversations resume {message.conversation_id} --stack <your stack name>",
        "",
        "Last messages:",
    ]
    for turn in [*turns[-NOTICE_TURNS:], Turn(user=question)]:
        if turn.user:
            lines.append(f"  User: {truncate(turn.user, NOTICE_TEXT_CHARS)}")
        if turn.assistant:
            lines.append(f"  Assistant: {truncate(turn.assistant, NOTICE_TEXT_CHARS)}")
    name = message.sender.profile_name or message.sender.username or "a customer"
    return HandoffNotice(subject=ascii_subject(f"WhatsApp: {name} needs a person"), text="\n".join(lines))


def ascii_subject(text: str) -> str:
    """An SNS subject: accents folded to ASCII, other characters dropped, one line, < 100 characters."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    printable = "".join(char for char in folded if char.isprintable())
    return " ".join(printable.split())[:SUBJECT_CHARS] or "WhatsApp: a customer needs a person"
