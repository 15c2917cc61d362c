"""Daily limits on a stack of their own (a limit of 3 or a tiny budget would disturb every other test).

Two business numbers keep the two budgets apart: the per-user limit is played on the
template's number, the number-wide token budget on another one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from local_stack import LocalStack
from local_stack.webhooks import message_webhook, text_message
from tests.e2e.conftest import E2E_PARAMETERS
from tests.e2e.helpers import (
    calls_about,
    emf_metrics,
    function_records,
    new_user,
    send_text,
    settle,
    texts_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BUDGET_NUMBER = "106540352299999"
"""Another business phone number id: its token counter is its own."""
LIMITS = {"UserDailyMessageLimit": "3", "DailyTokenBudget": "300"}
"""300 tokens: the limit test's 3 short exchanges stay below it; one long message spends it."""


@pytest.fixture(scope="module")
def limited() -> Iterator[LocalStack]:
    env = {
        "WHATSAPP_APP_SECRET": "limits-app-secret-" + secrets.token_hex(8),
        "MISTRAL_API_KEY": "limits-key-" + secrets.token_hex(8),
        "MISTRAL_BASE_URL": "stand-in",
    }
    with LocalStack(parameters={**E2E_PARAMETERS, **LIMITS}, env=env, port=0) as running:
        yield running


def metric_total(stack: LocalStack, name: str, since: int) -> float:
    records = function_records(stack, "AiReplyFunction", since)
    return sum(value for _, metric, _, value in emf_metrics(records) if metric == name)


def test_the_fourth_message_gets_the_limit_reply_without_a_model_call_and_the_fifth_nothing(
    limited: LocalStack,
) -> None:
    user = new_user()
    since = len(limited.log_lines())
    for n in range(1, 4):
        send_text(limited, user, f"question {n} {user}")
        limited.wait_until(lambda n=n: len(texts_to(limited, user)) == n)  # type: ignore[misc]
    send_text(limited, user, f"question 4 {user}")
    limited.wait_until(lambda: len(texts_to(limited, user)) == 4)
    fifth, _ = send_text(limited, user, f"question 5 {user}")
    settle(limited)

    assert limited.topology is not None
    replies = [m["text"] for m in texts_to(limited, user)]
    assert replies[3] == limited.topology.parameters["UserLimitReply"]
    assert len(replies) == 4  # the fifth got nothing
    assert len(calls_about(limited, user)) == 3
    assert fifth not in [r["message_id"] for r in limited.sink.receipts()]
    assert metric_total(limited, "UserLimitReached", since) == 2


def test_a_spent_daily_budget_gets_busy_replies_and_the_alarm_metric(limited: LocalStack) -> None:
    first, second = new_user(), new_user()
    since = len(limited.log_lines())
    long_question = " ".join(["word"] * 200) + f" {first}"  # about 450 tokens with the stand-in's answer
    limited.post_webhook(message_webhook(first, text_message(long_question), phone_number_id=BUDGET_NUMBER))
    limited.wait_until(lambda: len(texts_to(limited, first)) == 1)
    settle(limited)
    for user in (first, second, second):
        status, _ = limited.post_webhook(
            message_webhook(user, text_message(f"anyone {user}?"), phone_number_id=BUDGET_NUMBER)
        )
        assert status == 200
    settle(limited)

    assert limited.topology is not None
    busy = limited.topology.parameters["BusyReply"]
    assert [m["text"] for m in texts_to(limited, first)][1:] == [busy]
    assert [m["text"] for m in texts_to(limited, second)] == [busy]  # once per user, then nothing
    assert len(calls_about(limited, first)) == 1
    assert calls_about(limited, second) == []
    assert metric_total(limited, "DailyTokenBudgetReached", since) == 3

    # The limit is per number: the template's number still answers.
    other = new_user()
    send_text(limited, other, f"hello {other}")
    limited.wait_until(lambda: len(texts_to(limited, other)) == 1)
    assert len(calls_about(limited, other)) == 1
