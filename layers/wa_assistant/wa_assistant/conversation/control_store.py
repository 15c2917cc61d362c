"""DynamoDB adapter of conversation control: opt-out and pause state, day counters.

One table (`CONVERSATION_TABLE_NAME`), key `pk` (string), three kinds of item:

- `conversation#<conversation id>`: opt-out, pause, the user's identity (for the
  operator CLI) and, on a phone-number key, `alias_of` = the same user's
  conversation under their BSUID. No TTL: an opt-out is kept until opt-in.
- `day#<YYYY-MM-DD>#user#<conversation id>`: messages and tokens the model spent
  on the user that UTC day, and whether they got today's limit/busy reply.
- `day#<YYYY-MM-DD>#number#<phone number id>`: tokens spent for the whole number.
  Day items carry `expires_at` (TTL).

Calls, all on that table: BatchGetItem (one per user message: every item the
decision needs, strongly consistent), UpdateItem (counters with ADD, state with
SET), GetItem (an owner echo's conversation), Scan (the operator CLI only).

Read-modify-write is safe per conversation: the inbound queue is FIFO with the
conversation as message group, so one conversation is handled by one invocation
at a time. The number's token counter is shared by all conversations and only
ever ADDed to, so concurrent answers are all counted (the budget check itself
is a read: answers in flight when it is reached still complete).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from wa_assistant.aws.clients import aws_client
from wa_assistant.conversation.control import ConversationState, DayUsage, NumberUsage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

CONVERSATION_PREFIX = "conversation#"
MAX_BATCH_GET_ATTEMPTS = 3
"""BatchGetItem may leave keys unprocessed under throttling; after this many rounds the read fails."""


def conversation_key(conversation_id: str) -> str:
    return f"{CONVERSATION_PREFIX}{conversation_id}"


def user_day_key(day: str, conversation_id: str) -> str:
    return f"day#{day}#user#{conversation_id}"


def number_day_key(day: str, phone_number_id: str) -> str:
    return f"day#{day}#number#{phone_number_id}"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a conversation is with, stored on its item so that the operator CLI can show it."""

    phone_number_id: str
    wa_id: str | None = None
    user_id: str | None = None
    name: str | None = None

    def attributes(self) -> dict[str, str]:
        values = {
            "phone_number_id": self.phone_number_id,
            "wa_id": self.wa_id,
            "user_id": self.user_id,
            "name": self.name,
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the decision for one message needs, read in one call."""

    state: ConversationState
    usage: DayUsage
    number: NumberUsage
    alias_missing: bool = False
    """The user's phone-number key does not point at this conversation yet."""


class ControlStoreError(Exception):
    """DynamoDB did not return every item asked for (the message is retried)."""


class ControlStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    @property
    def client(self) -> DynamoDBClient:
        # Created on first use so that importing a handler stays cheap.
        if self._client is None:
            self._client = aws_client("dynamodb")
        return self._client  # type: ignore[no-any-return]

    # ------------------------------------------------------------ reads
    def snapshot(
        self,
        *,
        conversation_id: str,
        phone_key_id: str | None,
        phone_number_id: str,
        day: str,
    ) -> Snapshot:
        """The conversation's state (merged with the user's phone-number key if given) and today's usage."""
        keys = [conversation_key(conversation_id), user_day_key(day, conversation_id)]
        keys.append(number_day_key(day, phone_number_id))
        if phone_key_id is not None and phone_key_id != conversation_id:
            keys.append(conversation_key(phone_key_id))
        items = self._batch_get(keys)
        state = ConversationState.model_validate(items.get(keys[0], {}))
        alias_missing = False
        if len(keys) == 4:
            phone_item = items.get(keys[3], {})
            state = state.merged_with(ConversationState.model_validate(phone_item))
            alias_missing = phone_item.get("alias_of") != conversation_id
        return Snapshot(
            state=state,
            usage=DayUsage.model_validate(items.get(keys[1], {})),
            number=NumberUsage.model_validate(items.get(keys[2], {})),
            alias_missing=alias_missing,
        )

    def conversation(self, conversation_id: str) -> ConversationState:
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": conversation_key(conversation_id)}},
            ConsistentRead=True,
        )
        return ConversationState.model_validate(self._plain(response.get("Item", {})))

    def _batch_get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            self.table_name: {"Keys": [{"pk": {"S": key}} for key in keys], "ConsistentRead": True}
        }
        for _ in range(MAX_BATCH_GET_ATTEMPTS):
            response = self.client.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(self.table_name, []):
                item = self._plain(raw)
                found[str(item["pk"])] = item
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return found
        raise ControlStoreError(f"DynamoDB left {len(request[self.table_name]['Keys'])} keys unprocessed")

    # ------------------------------------------------------------ conversation state
    def set_opted_out(
        self,
        conversation_ids: Sequence[str],
        *,
        opted_out: bool,
        message_id: str,
        identity: Identity,
        now: float,
    ) -> None:
        """Opt out (or back in) under every key of the user, so that either key reads the same."""
        for conversation_id in dict.fromkeys(conversation_ids):
            if opted_out:
                changes = {"opted_out": True, "opted_out_message_id": message_id, "opted_out_at": int(now)}
            else:
                changes = {"opted_out": False, "opted_in_message_id": message_id, "opted_in_at": int(now)}
            self._set(conversation_id, {**identity.attributes(), **changes, "updated_at": int(now)})

    def pause(
        self,
        conversation_id: str,
        *,
        until: float,
        reason: str,
        by: str,
        now: float,
        identity: Identity | None = None,
        message_id: str | None = None,
    ) -> None:
        """Pause the bot for this conversation until `until` (Unix seconds)."""
        changes: dict[str, Any] = {
            "paused_until": int(until),
            "paused_at": int(now),
            "pause_reason": reason,
            "paused_by": by,
            "updated_at": int(now),
        }
        if message_id is not None:
            changes["pause_message_id"] = message_id
        self._set(conversation_id, {**(identity.attributes() if identity else {}), **changes})

    def resume(self, conversation_id: str, *, by: str, now: float) -> None:
        """End the pause now (the operator CLI)."""
        self._set(
            conversation_id,
            {"paused_until": 0, "resumed_at": int(now), "resumed_by": by, "updated_at": int(now)},
        )

    def set_alias(self, phone_key_id: str, conversation_id: str, identity: Identity, now: float) -> None:
        """Point the user's phone-number key at their BSUID conversation (echoes may name the number only)."""
        values = {**identity.attributes(), "alias_of": conversation_id, "updated_at": int(now)}
        self._set(phone_key_id, values)

    def _set(self, conversation_id: str, values: Mapping[str, Any]) -> None:
        names = {f"#a{index}": name for index, name in enumerate(values)}
        placeholders = {f":v{index}": value for index, value in enumerate(values.values())}
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": conversation_key(conversation_id)}},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={k: self._serializer.serialize(v) for k, v in placeholders.items()},
        )

    # ------------------------------------------------------------ day counters
    def add_usage(
        self,
        *,
        conversation_id: str,
        phone_number_id: str,
        day: str,
        tokens: int,
        expires_at: int,
        messages: int = 1,
    ) -> None:
        """Answered messages (a burst answered together counts each) and their tokens, for the
        user and for the number (atomic ADDs)."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": user_day_key(day, conversation_id)}},
            UpdateExpression="ADD messages :messages, tokens :tokens SET expires_at = :expires",
            ExpressionAttributeValues={
                ":messages": {"N": str(messages)},
                ":tokens": {"N": str(tokens)},
                ":expires": {"N": str(expires_at)},
            },
        )
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": number_day_key(day, phone_number_id)}},
            UpdateExpression="ADD tokens :tokens SET expires_at = :expires",
            ExpressionAttributeValues={":tokens": {"N": str(tokens)}, ":expires": {"N": str(expires_at)}},
        )

    def mark_notified(
        self, *, conversation_id: str, day: str, flag: str, message_id: str, expires_at: int
    ) -> None:
        """Remember which message got today's limit (`limit_notified`) or busy (`busy_notified`) reply."""
        if flag not in ("limit_notified", "busy_notified"):
            raise ValueError(f"not a notification flag: {flag}")
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": user_day_key(day, conversation_id)}},
            UpdateExpression="SET #flag = :message, expires_at = :expires",
            ExpressionAttributeNames={"#flag": flag},
            ExpressionAttributeValues={":message": {"S": message_id}, ":expires": {"N": str(expires_at)}},
        )

    # ------------------------------------------------------------ operator
    def conversations(self) -> Iterator[dict[str, Any]]:
        """Every conversation item (not the day counters), for the operator CLI: a Scan, paginated."""
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.table_name,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": CONVERSATION_PREFIX}},
            ConsistentRead=True,
        )
        for page in pages:
            for raw in page.get("Items", []):
                item = self._plain(raw)
                item["conversation_id"] = str(item["pk"])[len(CONVERSATION_PREFIX) :]
                yield item

    def _plain(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """An item as Python values; DynamoDB numbers (Decimal) become int or float."""
        item = {key: self._deserializer.deserialize(value) for key, value in raw.items()}
        for key, value in item.items():
            if type(value).__name__ == "Decimal":
                item[key] = int(value) if value == int(value) else float(value)
        return item
