"""Bursts: messages of one conversation that arrive together are answered by one model call.

The AI function on moto queues and tables, the model API in respx; each test
enqueues a conversation's messages and invokes the handler with what SQS
delivers together, as Lambda's event source does.
"""

from __future__ import annotations

import json
import threading
import time
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from tests.support import load_function
from tests.unit.ai_reply.helpers import BASE_ENV, Captured, Stack, inbound, ok
from tests.unit.ai_reply.test_handler import counted_attempts, failed_ids, question_of, replies
from wa_assistant.records import TypingIndicator


@pytest.fixture(autouse=True)
def _metrics_namespace(captured: Captured) -> None:
    """The handler flushes metrics: every test needs the namespace `captured` sets."""


def test_a_burst_gets_one_model_call_one_reply_quoting_the_last(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    burst = [inbound("hi"), inbound("I ordered yesterday"), inbound("it hasn't arrived")]
    mistral.return_value = ok("Sorry to hear that! What is your order number?")
    stack.enqueue(*burst)

    response = stack.invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}
    assert mistral.call_count == 1
    assert question_of(json.loads(mistral.calls.last.request.content)) == (
        "hi\n\nI ordered yesterday\n\nit hasn't arrived"
    )
    actions = stack.outbound_actions()
    assert [type(action) for action in actions] == [TypingIndicator, type(replies(actions)[0])]
    assert actions[0].inbound_message_id == burst[-1].message_id  # read receipt: the last marks all
    assert [(reply.inbound_message_id, reply.text) for reply in replies(actions)] == [
        (burst[-1].message_id, "Sorry to hear that! What is your order number?")
    ]
    assert {"BurstsCoalesced", "MessagesCoalesced"} <= set(captured.metric_names())


def test_memory_keeps_the_burst_as_one_user_turn(app: ModuleType, stack: Stack, mistral: respx.Route) -> None:
    mistral.return_value = ok("What is your order number?")
    stack.enqueue(inbound("hi"), inbound("my parcel is late"))
    stack.invoke(app, stack.receive_event())
    mistral.return_value = ok("Thanks, checking.")
    stack.enqueue(inbound("A-1234"))
    stack.invoke(app, stack.receive_event())

    sent = json.loads(mistral.calls.last.request.content)["messages"]
    assert [(m["role"], m["content"].split("\n\n")[-1]) for m in sent[1:]] == [
        ("user", "my parcel is late"),
        ("assistant", "What is your order number?"),
        ("user", "A-1234"),
    ]
    assert "hi\n\nmy parcel is late" in sent[1]["content"]


def test_a_redelivery_of_any_burst_message_changes_nothing(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    burst = [inbound("hi"), inbound("where is my order?"), inbound("it's A-1234")]
    mistral.return_value = ok()
    stack.enqueue(*burst)
    stack.invoke(app, stack.receive_event())
    stack.outbound_actions()

    # Meta redelivers the second message's webhook hours later (a new SQS message, the same wamid),
    # alone, then together with a new message.
    stack.enqueue(burst[1])
    assert stack.invoke(load_function("ai_reply"), stack.receive_event()) == {"batchItemFailures": []}
    assert mistral.call_count == 1
    assert stack.outbound_actions() == []

    later = inbound("any news?")
    stack.enqueue(burst[0], later)
    stack.invoke(app, stack.receive_event())
    assert question_of(json.loads(mistral.calls.last.request.content)) == "any news?"
    assert [reply.inbound_message_id for reply in replies(stack.outbound_actions())] == [later.message_id]
    assert "DuplicateDeliveries" in captured.metric_names()


def test_a_failed_burst_comes_back_whole_and_is_answered_once(
    app: ModuleType, stack: Stack, mistral: respx.Route
) -> None:
    burst = [inbound("hi"), inbound("is the shop open?")]
    mistral.side_effect = [httpx.Response(503, text="overloaded"), ok("Yes, until 18:00.")]
    stack.enqueue(*burst)
    event = stack.receive_event()

    assert len(failed_ids(stack.invoke(app, event))) == 2
    stack.make_visible_again(event)
    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    asked = [question_of(json.loads(call.request.content)) for call in mistral.calls]
    assert asked == ["hi\n\nis the shop open?"] * 2
    assert [reply.text for reply in replies(stack.outbound_actions())] == ["Yes, until 18:00."]


def test_a_keyword_is_never_part_of_a_burst_and_stop_silences_what_follows(
    app: ModuleType, stack: Stack, mistral: respx.Route
) -> None:
    mistral.return_value = ok("Hello!")
    first, stop, after = inbound("hi"), inbound("STOP"), inbound("are you there?")
    stack.enqueue(first, stop, after)

    stack.invoke(app, stack.receive_event())

    assert [question_of(json.loads(call.request.content)) for call in mistral.calls] == ["hi"]
    sent = replies(stack.outbound_actions())
    assert [reply.inbound_message_id for reply in sent] == [first.message_id, stop.message_id]
    assert sent[1].text == BASE_ENV["OPT_OUT_REPLY"]


def test_each_message_of_a_burst_counts_against_the_daily_limit(
    stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER_DAILY_MESSAGE_LIMIT", "3")
    app = load_function("ai_reply")
    mistral.return_value = ok()
    stack.enqueue(inbound("one"), inbound("two"), inbound("three"))
    stack.invoke(app, stack.receive_event())
    stack.outbound_actions()

    over = inbound("four")
    stack.enqueue(over)
    stack.invoke(app, stack.receive_event())

    assert mistral.call_count == 1
    assert [(r.inbound_message_id, r.text) for r in replies(stack.outbound_actions())] == [
        (over.message_id, BASE_ENV["USER_LIMIT_REPLY"])
    ]


# ------------------------------------------------------------------ the coalesce window
def test_a_new_message_waits_in_the_queue_for_the_rest_of_its_burst(
    stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch, aws_calls: list[tuple[str, Any]]
) -> None:
    monkeypatch.setenv("COALESCE_WINDOW_SECONDS", "3")
    app = load_function("ai_reply")
    mistral.return_value = ok()
    stack.enqueue(inbound("hi"))
    event = stack.receive_event()

    response = stack.invoke(app, event)

    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    assert mistral.call_count == 0
    (change,) = [params for name, params in aws_calls if name == "ChangeMessageVisibilityBatch"]
    assert change["Entries"][0]["VisibilityTimeout"] in (2, 3)  # the rest of the window, not a backoff
    assert [item for item in stack.dynamodb.scan(TableName=BASE_ENV["IDEMPOTENCY_TABLE_NAME"])["Items"]] == []


def test_a_message_older_than_the_window_is_answered_at_once(
    stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COALESCE_WINDOW_SECONDS", "0.5")
    app = load_function("ai_reply")
    mistral.return_value = ok()
    stack.enqueue(inbound("hi"))
    time.sleep(0.6)  # SentTimestamp is set by the queue: the message must really be that old

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}
    assert mistral.call_count == 1


def test_keywords_do_not_wait_for_a_burst(
    stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COALESCE_WINDOW_SECONDS", "30")
    app = load_function("ai_reply")
    stop = inbound("stop")
    stack.enqueue(stop)

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}
    assert [reply.inbound_message_id for reply in replies(stack.outbound_actions())] == [stop.message_id]


# ------------------------------------------------------------------ conversations at once
def test_conversations_of_one_batch_wait_for_the_model_together(
    app: ModuleType, stack: Stack, mistral: respx.Route
) -> None:
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()

    def slow_model(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most_in_flight
        with lock:
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
        time.sleep(0.3)
        with lock:
            in_flight -= 1
        return ok(f"answer to {question_of(json.loads(request.content))}")

    mistral.side_effect = slow_model
    users = [f"1650555{index:04d}" for index in range(4)]
    stack.enqueue(*(inbound(f"question of {user}", wa_id=user) for user in users))

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    assert most_in_flight == 4
    sent = {(reply.recipient.wa_id, reply.text) for reply in replies(stack.outbound_actions())}
    assert sent == {(user, f"answer to question of {user}") for user in users}


def test_a_burst_overtaken_by_another_worker_releases_its_claims_and_comes_back(
    app: ModuleType, stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another invocation answers one of the burst's messages between the check and the claims."""
    first, second, third = inbound("hi"), inbound("where is my order?"), inbound("A-1234")
    mistral.return_value = ok()
    stack.enqueue(second)
    stack.invoke(app, stack.receive_event())  # the other invocation's answer to `second`
    stack.outbound_actions()
    stack.enqueue(first, second, third)
    event = stack.receive_event()
    with monkeypatch.context() as patch:
        patch.setattr(app.answered_once, "pending", list)  # the stale check: none answered

        response = stack.invoke(app, event)

    assert len(failed_ids(response)) == 3
    assert mistral.call_count == 1  # nothing was asked, nothing was sent
    assert stack.outbound_actions() == []
    assert counted_attempts(stack) == {}  # not an attempt: nothing was tried
    stack.make_visible_again(event)
    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}
    assert question_of(json.loads(mistral.calls.last.request.content)) == "hi\n\nA-1234"
    assert [reply.inbound_message_id for reply in replies(stack.outbound_actions())] == [third.message_id]


def test_control_metrics_count_each_message_of_a_burst(
    stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch, captured: Captured
) -> None:
    monkeypatch.setenv("USER_DAILY_MESSAGE_LIMIT", "1")
    app = load_function("ai_reply")
    mistral.return_value = ok()
    stack.enqueue(inbound("one"))
    stack.invoke(app, stack.receive_event())
    stack.enqueue(inbound("two"), inbound("three"))

    stack.invoke(app, stack.receive_event())

    assert mistral.call_count == 1
    assert len(replies(stack.outbound_actions())) == 2  # the answer, then one UserLimitReply for the burst
    limited = [
        json.loads(line)["UserLimitReached"]
        for line in captured.stdout().splitlines()
        if '"UserLimitReached"' in line and line.startswith("{")
    ]
    assert limited == [[2.0]]  # one verdict, two messages
