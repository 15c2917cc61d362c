"""Conversation control's DynamoDB adapter, on moto: one read per message, atomic counters, durable state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from wa_assistant.conversation.control import ConversationState, DayUsage, NumberUsage
from wa_assistant.conversation.control_store import ControlStore, ControlStoreError, Identity

TABLE = "conversation-test"
NOW = 1_780_000_000.0
DAY = "2026-05-28"
ALICE = Identity(phone_number_id="106540352242922", wa_id="16505551234", name="Alice")


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlStore]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        yield ControlStore(TABLE)


def snapshot(store: ControlStore, conversation_id: str = "conv", phone_key_id: str | None = None) -> Any:
    return store.snapshot(
        conversation_id=conversation_id, phone_key_id=phone_key_id, phone_number_id="106540352242922", day=DAY
    )


def raw_item(pk: str) -> dict[str, Any]:
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": pk}})["Item"]
    return item


def test_a_new_conversation_reads_as_nothing_recorded(store: ControlStore) -> None:
    read = snapshot(store)
    assert (read.state, read.usage, read.number, read.alias_missing) == (
        ConversationState(),
        DayUsage(),
        NumberUsage(),
        False,
    )


def test_usage_is_added_atomically_per_user_and_per_number(store: ControlStore) -> None:
    for conversation, tokens in (("conv", 120), ("conv", 80), ("other", 5)):
        store.add_usage(
            conversation_id=conversation,
            phone_number_id="106540352242922",
            day=DAY,
            tokens=tokens,
            expires_at=1_780_200_000,
        )
    read = snapshot(store)
    assert (read.usage.messages, read.usage.tokens, read.number.tokens) == (2, 200, 205)
    assert raw_item(f"day#{DAY}#user#conv")["expires_at"] == {"N": "1780200000"}
    assert snapshot(store).usage == snapshot(store).usage  # reads change nothing
    other_day = store.snapshot(
        conversation_id="conv", phone_key_id=None, phone_number_id="106540352242922", day="x"
    )
    assert (other_day.usage, other_day.number) == (DayUsage(), NumberUsage())


def test_notification_flags_remember_the_message_that_got_the_reply(store: ControlStore) -> None:
    store.mark_notified(
        conversation_id="conv", day=DAY, flag="limit_notified", message_id="wamid.4", expires_at=1
    )
    store.mark_notified(
        conversation_id="conv", day=DAY, flag="busy_notified", message_id="wamid.9", expires_at=1
    )
    usage = snapshot(store).usage
    assert (usage.limit_notified, usage.busy_notified) == ("wamid.4", "wamid.9")
    with pytest.raises(ValueError, match="not a notification flag"):
        store.mark_notified(conversation_id="conv", day=DAY, flag="messages", message_id="x", expires_at=1)


def test_opt_out_is_stored_without_ttl_under_every_key_and_opt_in_clears_it(store: ControlStore) -> None:
    store.set_opted_out(
        ["conv", "phone-conv"], opted_out=True, message_id="wamid.STOP", identity=ALICE, now=NOW
    )
    assert snapshot(store).state.opted_out
    assert snapshot(store, "phone-conv").state.opted_out
    item = raw_item("conversation#conv")
    assert "expires_at" not in item  # durable: never expires
    assert (item["wa_id"], item["name"], item["opted_out_message_id"]) == (
        {"S": "16505551234"},
        {"S": "Alice"},
        {"S": "wamid.STOP"},
    )

    store.set_opted_out(
        ["conv", "phone-conv"], opted_out=False, message_id="wamid.GO", identity=ALICE, now=NOW
    )
    state = snapshot(store).state
    assert (state.opted_out, state.opted_in_message_id) == (False, "wamid.GO")
    assert not snapshot(store, "phone-conv").state.opted_out


def test_pause_and_resume(store: ControlStore) -> None:
    store.pause("conv", until=NOW + 3600, reason="wants a refund", by="model", now=NOW, message_id="wamid.1")
    state = store.conversation("conv")
    assert (state.paused_until, state.pause_reason, state.paused_by, state.pause_message_id) == (
        NOW + 3600,
        "wants a refund",
        "model",
        "wamid.1",
    )
    assert state.paused(NOW)
    store.resume("conv", by="operator", now=NOW + 1)
    assert not store.conversation("conv").paused(NOW + 1)
    assert store.conversation("never-seen") == ConversationState()


def test_a_bsuid_conversation_reads_the_users_phone_number_key_too(store: ControlStore) -> None:
    # Opted out before Meta sent the user's BSUID: the old key still counts.
    store.set_opted_out(["phone-conv"], opted_out=True, message_id="wamid.OLD", identity=ALICE, now=NOW)
    read = snapshot(store, "bsuid-conv", phone_key_id="phone-conv")
    assert read.state.opted_out
    assert read.alias_missing
    store.set_alias("phone-conv", "bsuid-conv", ALICE, NOW)
    assert not snapshot(store, "bsuid-conv", phone_key_id="phone-conv").alias_missing
    assert store.conversation("phone-conv").alias_of == "bsuid-conv"


def test_the_operator_listing_has_conversations_only(store: ControlStore) -> None:
    store.pause("conv", until=NOW + 60, reason="r", by="owner", now=NOW, identity=ALICE)
    store.add_usage(conversation_id="conv", phone_number_id="1", day=DAY, tokens=1, expires_at=1)
    listed = list(store.conversations())
    assert [(item["conversation_id"], item["paused_until"], item["wa_id"]) for item in listed] == [
        ("conv", int(NOW + 60), "16505551234")
    ]


def test_keys_dynamodb_leaves_unprocessed_are_asked_again_then_fail(store: ControlStore) -> None:
    class Throttled:
        """BatchGetItem that leaves every key unprocessed for the first `rounds` calls."""

        def __init__(self, rounds: int) -> None:
            self.rounds, self.calls = rounds, 0
            self.real = boto3.client("dynamodb")

        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
            self.calls += 1
            if self.calls <= self.rounds:
                return {"Responses": {TABLE: []}, "UnprocessedKeys": RequestItems}
            return dict(self.real.batch_get_item(RequestItems=RequestItems))

    store.add_usage(
        conversation_id="conv", phone_number_id="106540352242922", day=DAY, tokens=7, expires_at=1
    )
    once = Throttled(rounds=1)
    assert ControlStore(TABLE, client=once).snapshot(
        conversation_id="conv", phone_key_id=None, phone_number_id="106540352242922", day=DAY
    ).usage == DayUsage(messages=1, tokens=7)
    assert once.calls == 2
    with pytest.raises(ControlStoreError, match="unprocessed"):
        ControlStore(TABLE, client=Throttled(rounds=3)).snapshot(
            conversation_id="conv", phone_key_id=None, phone_number_id="1", day=DAY
        )
