"""Conversation memory: the last turns of a conversation, trimmed to the prompt budget.

A turn is one user text (as the model saw it) plus the assistant's reply. Either
side may be empty: a user message remembered while a person handles the
conversation has no reply yet, and what the owner wrote from the WhatsApp
Business app is an assistant side without a question of its own (items stored
before this existed always have both sides and read the same way). The
trimming functions are plain domain logic; `ConversationMemory` is the
DynamoDB adapter (one GetItem + one PutItem per answered message).

Read-modify-write without a condition is safe here: the inbound queue is FIFO
with MessageGroupId = conversation_id, so Lambda never processes two messages
of one conversation at the same time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import BaseModel, ConfigDict

from wa_assistant.aws.clients import aws_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MIN_QUESTION_CHARS = 200
"""A long system prompt never shrinks the user's question below this (the budget yields instead)."""
ELLIPSIS = "…"


class Turn(BaseModel):
    """One exchange: what the user said (as sent to the model) and what the assistant answered.

    An empty side means "nothing" (see the module docstring); both keys are always stored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    user: str = ""
    assistant: str = ""

    @property
    def chars(self) -> int:
        return len(self.user) + len(self.assistant)


def truncate(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[: max(limit, 0)]
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def remember(turns: Sequence[Turn], new_turn: Turn, max_turns: int) -> list[Turn]:
    """The turns to store after an answer: the newest `max_turns`, oldest first."""
    if max_turns <= 0:
        return []
    return [*turns, new_turn][-max_turns:]


def remember_user_only(turns: Sequence[Turn], text: str, max_turns: int) -> list[Turn]:
    """A user message nobody answered (yet): a turn with an empty assistant side."""
    return remember(turns, Turn(user=text), max_turns)


def remember_assistant_only(turns: Sequence[Turn], text: str, max_turns: int) -> list[Turn]:
    """What the business said on its own: it answers the last unanswered user message, if any."""
    if turns and not turns[-1].assistant:
        return [*turns[:-1], Turn(user=turns[-1].user, assistant=text)][-max_turns:] if max_turns > 0 else []
    return remember(turns, Turn(assistant=text), max_turns)


def fit_to_budget(
    *, system_prompt: str, turns: Sequence[Turn], question: str, budget_chars: int
) -> tuple[list[Turn], str]:
    """Drop the oldest turns (and cut the question if needed) so all message content fits the budget.

    The system prompt and the current question are always sent: the question is
    cut to the room the system prompt leaves (never below MIN_QUESTION_CHARS);
    memory then gets whatever room remains, newest turns first.
    """
    question_room = max(budget_chars - len(system_prompt), min(MIN_QUESTION_CHARS, budget_chars))
    question = truncate(question, question_room)
    room = budget_chars - len(system_prompt) - len(question)
    kept: list[Turn] = []
    for turn in reversed(turns):
        if turn.chars > room:
            break  # keep a contiguous recent history: an older turn without its successor misleads
        kept.append(turn)
        room -= turn.chars
    kept.reverse()
    return kept, question


class ConversationMemory:
    """DynamoDB adapter: item {conversation_id, turns: [{user, assistant}], expires_at}."""

    def __init__(self, table_name: str, *, max_turns: int, ttl_hours: float, client: Any = None) -> None:
        self.table_name = table_name
        self.max_turns = max_turns
        self.ttl_seconds = int(ttl_hours * 3600)
        self._client = client
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    @property
    def enabled(self) -> bool:
        return self.max_turns > 0

    @property
    def client(self) -> DynamoDBClient:
        # Created on first use so that importing a handler stays cheap.
        if self._client is None:
            self._client = aws_client("dynamodb")
        return self._client  # type: ignore[no-any-return]

    def load(self, conversation_id: str, now: float | None = None) -> list[Turn]:
        """The stored turns, newest last; none when memory is off or the item has expired.

        DynamoDB deletes expired items up to days late, so `expires_at` is checked here too.
        """
        if not self.enabled:
            return []
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"conversation_id": {"S": conversation_id}},
            ConsistentRead=True,
        )
        raw = response.get("Item")
        if not raw:
            return []
        item = {key: self._deserializer.deserialize(value) for key, value in raw.items()}
        now = time.time() if now is None else now
        if int(item.get("expires_at", 0)) <= now:
            return []
        turns = [Turn.model_validate(turn) for turn in item.get("turns", [])]
        return turns[-self.max_turns :]

    def save(self, conversation_id: str, turns: Sequence[Turn], now: float | None = None) -> None:
        """Replace the conversation's turns and push its expiry MEMORY_TTL_HOURS ahead."""
        if not self.enabled:
            return
        now = time.time() if now is None else now
        item = {
            "conversation_id": conversation_id,
            "turns": [turn.model_dump() for turn in turns[-self.max_turns :]],
            "expires_at": int(now) + self.ttl_seconds,
        }
        self.client.put_item(
            TableName=self.table_name,
            Item={key: self._serializer.serialize(value) for key, value in item.items()},
        )
