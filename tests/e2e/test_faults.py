"""The stand-ins fail on purpose: retries, parking, and no retry storm."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from local_stack import LocalStack
from local_stack.cfn import load_template
from local_stack.config import TEMPLATE
from tests.e2e.helpers import (
    all_answered,
    answered_once,
    calls_about,
    emf_metrics,
    function_records,
    new_user,
    replies_in_order,
    said_in_order,
    send_text,
    settle,
    texts_to,
)
from wa_assistant.records import TextReply, outbound_action_adapter

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_mistral_429_500_and_timeouts_still_answer_every_message_once(stack: LocalStack) -> None:
    marker = f"flaky{new_user()}"
    stack.mistral.script(status=429, times=3, retry_after=1)
    stack.mistral.script(status=500, times=3)
    stack.mistral.script(delay=3.5, times=2)  # beyond MistralTimeoutSeconds=2
    users = [new_user() for _ in range(4)]
    since = len(stack.log_lines())
    sent: dict[str, list[str]] = {user: [] for user in users}
    for n in range(2):
        for user in users:
            sent[user].append(send_text(stack, user, f"{marker} {user} question {n}")[0])
    wamids = [wamid for user in users for wamid in sent[user]]

    stack.wait_until(lambda: all_answered(stack, sent), timeout=180, interval=0.5)
    settle(stack, timeout=120)

    # A user's second question may have waited behind the first one's retries: then both are
    # answered by one reply (a burst). Either way each is read once, in order.
    replies_in_order(stack, sent)
    for user in users:
        assert said_in_order(stack, user) == [f"{marker} {user} question 0", f"{marker} {user} question 1"]
    replies = texts_to(stack, *users)
    assert stack.mistral.pending_script() == 0
    # The client gave up on the two slow calls after 2 s; the stand-in may still be sleeping on
    # them (3.5 s) when fast retries have already answered everything.
    stack.wait_until(lambda: all("status" in c for c in calls_about(stack, marker)), timeout=10)
    statuses = Counter(c["status"] for c in calls_about(stack, marker))
    # 8 scripted failures (the 2 slow calls end in a 200 nobody reads) + one success per reply.
    assert statuses == Counter({200: len(replies) + 2, 429: 3, 500: 3})
    assert stack.queue_depths()["InboundDeadLetterQueue"] == 0
    # The two calls slower than MistralTimeoutSeconds were given up by the client and retried through SQS.
    transient = [
        r
        for r in function_records(stack, "AiReplyFunction", since)
        if r.get("message") == "The model API failed; will retry" and r.get("correlation_id") in wamids
    ]
    assert Counter(r.get("mistral_status", "no response") for r in transient) == Counter(
        {429: 3, 500: 3, "no response": 2}
    )


def test_permanent_401_parks_each_message_after_one_call(stack: LocalStack) -> None:
    marker = f"badkey{new_user()}"
    stack.mistral.api_key = "a-key-the-function-does-not-have"
    users = [new_user() for _ in range(3)]
    wamids = [send_text(stack, user, f"{marker} {user}")[0] for user in users]
    try:
        stack.wait_until(lambda: stack.queue_depths()["InboundDeadLetterQueue"] == len(wamids), timeout=60)
        time.sleep(3)  # a retry storm would show up as more calls now
        settle(stack)
        calls = calls_about(stack, marker)
        assert len(calls) == len(wamids)
        assert {c["status"] for c in calls} == {401}
        parked = stack.queue_messages("InboundDeadLetterQueue")
        assert sorted(json.loads(m["Body"])["message_id"] for m in parked) == sorted(wamids)
        assert texts_to(stack, *users) == []
    finally:
        stack.purge("InboundDeadLetterQueue")


def test_graph_5xx_then_recovery_delivers_each_reply_once(stack: LocalStack) -> None:
    marker = f"graph{new_user()}"
    stack.sink.script(status=500, times=4)
    stack.sink.script(code=130429, times=1)
    users = [new_user() for _ in range(3)]
    wamids = [send_text(stack, user, f"{marker} {user}")[0] for user in users]

    stack.wait_until(lambda: len(texts_to(stack, *users)) >= len(wamids), timeout=120, interval=0.5)
    settle(stack)

    assert answered_once(texts_to(stack, *users), wamids)
    assert stack.sink.pending_script() == 0
    assert Counter(a["status"] for a in stack.sink.attempts() if a["status"] >= 400) >= Counter(
        {500: 4, 429: 1}
    )
    assert len(calls_about(stack, marker)) == len(wamids)  # Graph failures never cost a second model call
    assert stack.queue_depths()["OutboundDeadLetterQueue"] == 0


def _alarm_metric(logical_id: str) -> tuple[str, str, dict[str, str]]:
    """(namespace, metric, dimensions) a CloudWatch alarm of template.yaml watches, read from the template."""
    properties = load_template(TEMPLATE)["Resources"][logical_id]["Properties"]
    dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
    return properties["Namespace"], properties["MetricName"], dimensions


def _text_attempts_to(stack: LocalStack, user: str) -> list[dict[str, Any]]:
    """Every Graph call that tried to send a text to `user`, accepted or not."""
    return [
        a
        for a in stack.sink.attempts()
        if isinstance(a["body"], dict) and a["body"].get("to") == user and a["body"].get("type") == "text"
    ]


def test_graph_131047_is_counted_and_never_retried(stack: LocalStack) -> None:
    user = new_user()
    stack.sink.script(code=131047, to=user)  # only the reply to this user; its typing indicator passes
    since = len(stack.log_lines())
    wamid, _ = send_text(stack, user, f"too late {user}")
    stack.wait_until(lambda: len(_text_attempts_to(stack, user)) == 1)
    settle(stack)

    attempts = _text_attempts_to(stack, user)
    assert [a["status"] for a in attempts] == [400]  # exactly one Graph attempt for that reply
    assert attempts[0]["body"]["context"]["message_id"] == wamid
    assert texts_to(stack, user) == []
    records = function_records(stack, "SendReplyFunction", since)
    assert [r["correlation_id"] for r in records if r.get("message") == "Will retry"] == []
    rejected = [m for m in emf_metrics(records) if m[1] == "GraphSendRejected"]
    assert rejected == [("WhatsAppAssistant", "GraphSendRejected", {"service": "send-reply"}, 1.0)]
    by_code = [m for m in emf_metrics(records) if m[1] == "GraphSendRejectedByCode"]
    assert [(m[2]["code"], m[3]) for m in by_code] == [("131047", 1.0)]
    assert set(stack.queue_depths().values()) == {0}


@pytest.mark.parametrize(
    ("code", "status", "alarm"),
    [
        (190, 401, "GraphAuthFailureAlarm"),  # expired token
        (10, 403, "GraphAuthFailureAlarm"),  # permission removed
        (131031, 403, "GraphAccountBlockedAlarm"),  # account locked
        (131042, 400, "GraphAccountBlockedAlarm"),  # payment issue
    ],
)
def test_graph_auth_and_account_errors_raise_the_alarm_metric_and_park_the_reply(
    stack: LocalStack, code: int, status: int, alarm: str
) -> None:
    namespace, metric, dimensions = _alarm_metric(alarm)
    user = new_user()
    stack.sink.script(code=code, to=user)
    since = len(stack.log_lines())
    wamid, _ = send_text(stack, user, f"cannot send {code} {user}")
    try:
        stack.wait_until(lambda: stack.queue_depths()["OutboundDeadLetterQueue"] == 1)
        settle(stack)

        assert [a["status"] for a in _text_attempts_to(stack, user)] == [status]  # no retry
        assert texts_to(stack, user) == []
        alarmed = [
            m for m in emf_metrics(function_records(stack, "SendReplyFunction", since)) if m[1] == metric
        ]
        # Exactly what the CloudWatch alarm watches: its namespace, metric name and dimensions.
        assert [(m[0], m[2], m[3]) for m in alarmed] == [(namespace, dimensions, 1.0)]
        parked = [
            outbound_action_adapter.validate_json(m["Body"])
            for m in stack.queue_messages("OutboundDeadLetterQueue")
        ]
        assert [(type(p), p.inbound_message_id) for p in parked] == [(TextReply, wamid)]
        assert stack.queue_depths()["InboundDeadLetterQueue"] == 0
    finally:
        stack.purge("OutboundDeadLetterQueue")
