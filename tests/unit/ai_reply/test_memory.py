"""Memory: trimming to the prompt budget (domain) and the DynamoDB adapter (moto)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from wa_assistant.conversation.memory import (
    MIN_QUESTION_CHARS,
    ConversationMemory,
    Turn,
    fit_to_budget,
    remember,
    remember_assistant_only,
    remember_user_only,
    truncate,
)

TABLE = "memory-test"


def turn(n: int, size: int = 10) -> Turn:
    return Turn(user=f"u{n}".ljust(size, "."), assistant=f"a{n}".ljust(size, "."))


def test_everything_fits_within_a_large_budget() -> None:
    turns = [turn(1), turn(2), turn(3)]
    assert fit_to_budget(system_prompt="S" * 10, turns=turns, question="Q?", budget_chars=1000) == (
        turns,
        "Q?",
    )


def test_oldest_turns_are_dropped_first() -> None:
    turns = [turn(1), turn(2), turn(3)]  # 20 chars each
    kept, question = fit_to_budget(system_prompt="S" * 10, turns=turns, question="Q" * 10, budget_chars=65)
    assert kept == [turn(2), turn(3)]
    assert question == "Q" * 10


def test_history_stays_contiguous_even_if_an_older_short_turn_would_fit() -> None:
    turns = [Turn(user="a", assistant="b"), turn(2, size=50)]
    kept, _ = fit_to_budget(system_prompt="", turns=turns, question="Q", budget_chars=50)
    assert kept == []


def test_the_question_is_kept_and_cut_when_it_alone_exceeds_the_budget() -> None:
    kept, question = fit_to_budget(
        system_prompt="S" * 100, turns=[turn(1)], question="x" * 5000, budget_chars=600
    )
    assert kept == []
    assert len(question) == 500
    assert question.endswith("…")


def test_a_huge_system_prompt_does_not_starve_the_question() -> None:
    _, question = fit_to_budget(system_prompt="S" * 1000, turns=[], question="x" * 5000, budget_chars=600)
    assert len(question) == MIN_QUESTION_CHARS


@given(
    system=st.text(max_size=300),
    turns=st.lists(st.builds(Turn, user=st.text(max_size=200), assistant=st.text(max_size=200)), max_size=12),
    question=st.text(min_size=1, max_size=3000),
    budget=st.integers(min_value=500, max_value=4000),
)
def test_budget_properties(system: str, turns: list[Turn], question: str, budget: int) -> None:
    kept, sent_question = fit_to_budget(
        system_prompt=system, turns=turns, question=question, budget_chars=budget
    )
    total = len(system) + len(sent_question) + sum(t.chars for t in kept)
    assert total <= budget  # the system prompt (<= 300) always leaves room here
    assert sent_question  # the question is always sent
    assert kept == turns[len(turns) - len(kept) :]  # the newest turns, in order
    if len(question) + len(system) <= budget:
        assert sent_question == question


def test_truncate() -> None:
    assert truncate("hello", 5) == "hello"
    assert truncate("hello world", 6) == "hello…"
    assert truncate("hello", 1) == "h"
    assert truncate("hello", 0) == ""


def test_remember_keeps_the_newest_turns() -> None:
    assert remember([turn(1), turn(2)], turn(3), max_turns=2) == [turn(2), turn(3)]
    assert remember([], turn(1), max_turns=10) == [turn(1)]
    assert remember([turn(1)], turn(2), max_turns=0) == []


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "conversation_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "conversation_id", "KeyType": "HASH"}],
        )
        yield client


def test_memory_round_trip_with_ttl(dynamodb: object) -> None:
    memory = ConversationMemory(TABLE, max_turns=2, ttl_hours=24)
    memory.save("conv-1", [turn(1), turn(2), turn(3)], now=1_000)

    assert memory.load("conv-1", now=1_001) == [turn(2), turn(3)]
    assert memory.load("conv-2", now=1_001) == []
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"conversation_id": {"S": "conv-1"}})[
        "Item"
    ]
    assert item["expires_at"] == {"N": str(1_000 + 24 * 3600)}


def test_expired_memory_is_not_used_even_before_dynamodb_deletes_it(dynamodb: object) -> None:
    memory = ConversationMemory(TABLE, max_turns=5, ttl_hours=1)
    memory.save("conv-1", [turn(1)], now=1_000)
    assert memory.load("conv-1", now=1_000 + 3600) == []


def test_disabled_memory_makes_no_calls() -> None:
    class NoCalls:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"unexpected DynamoDB call {name}")

    memory = ConversationMemory(TABLE, max_turns=0, ttl_hours=24, client=NoCalls())
    assert not memory.enabled
    assert memory.load("conv-1") == []
    memory.save("conv-1", [turn(1)])


# ------------------------------------------------------------------ one-sided turns (conversation control)


def test_a_user_message_nobody_answered_is_a_turn_without_assistant() -> None:
    assert remember_user_only([turn(1)], "are you there?", 5) == [turn(1), Turn(user="are you there?")]


def test_the_owners_message_answers_the_last_unanswered_user_message() -> None:
    waiting = [turn(1), Turn(user="refund?"), Turn(user="hello??")]
    assert remember_assistant_only(waiting, "Sure, done.", 5) == [
        turn(1),
        Turn(user="refund?"),
        Turn(user="hello??", assistant="Sure, done."),
    ]
    assert remember_assistant_only([turn(1)], "By the way...", 5) == [
        turn(1),
        Turn(assistant="By the way..."),
    ]
    assert remember_assistant_only([Turn(user="x")], "y", 0) == []


def test_items_stored_before_one_sided_turns_existed_read_the_same(dynamodb: object) -> None:
    boto3.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "conversation_id": {"S": "old"},
            "turns": {"L": [{"M": {"user": {"S": "hi"}, "assistant": {"S": "hello"}}}]},
            "expires_at": {"N": "9999999999"},
        },
    )
    memory = ConversationMemory(TABLE, max_turns=5, ttl_hours=24)
    assert memory.load("old") == [Turn(user="hi", assistant="hello")]
    memory.save("new", [Turn(user="waiting"), Turn(assistant="the owner")])
    assert memory.load("new") == [Turn(user="waiting"), Turn(assistant="the owner")]
