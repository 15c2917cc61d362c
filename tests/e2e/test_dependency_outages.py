"""AWS itself fails: SQS, Secrets Manager or DynamoDB unreachable for one function, then back.

The outage is real for the unchanged function code (its connections to that service
are reset, see local_stack.fault_proxy); every other part of the stack keeps working.
"""

from __future__ import annotations

import time

import pytest

from local_stack import LocalStack
from local_stack.fault_proxy import FaultProxies
from local_stack.webhooks import message_webhook, text_message, wamid_of
from tests.e2e.helpers import (
    all_answered,
    calls_about,
    function_records,
    new_user,
    replies_in_order,
    retries_logged,
    said_in_order,
    send_text,
    settle,
    texts_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_webhook_answers_503_while_sqs_is_down_and_the_redelivery_is_answered_once(
    stack: LocalStack, outages: FaultProxies
) -> None:
    marker = f"sqsdown{new_user()}"
    user = new_user()
    bodies = [message_webhook(user, text_message(f"{marker} {n}")) for n in range(2)]
    wamids = [wamid_of(body) for body in bodies]
    since = len(stack.log_lines())

    with outages.outage("WebhookFunction", "sqs") as sqs:
        statuses = [stack.post_webhook(body)[0] for body in bodies]
    assert statuses == [503, 503]  # Meta will redeliver
    assert sqs.refused > 0  # the webhook really tried to reach SQS
    enqueued = [
        r for r in function_records(stack, "WebhookFunction", since) if r.get("correlation_id") in wamids
    ]
    assert enqueued == []  # nothing acknowledged, nothing logged as enqueued

    # Meta redelivers the same bytes once SQS is back.
    assert [stack.post_webhook(body)[0] for body in bodies] == [200, 200]
    stack.wait_until(lambda: all_answered(stack, {user: wamids}))
    settle(stack)

    replies_in_order(stack, {user: wamids})
    assert said_in_order(stack, user) == [f"{marker} 0", f"{marker} 1"]
    assert len(calls_about(stack, marker)) == len(texts_to(stack, user))


OUTAGES = [
    ("AiReplyFunction", "secretsmanager"),
    ("AiReplyFunction", "dynamodb"),
    ("SendReplyFunction", "secretsmanager"),
    ("SendReplyFunction", "dynamodb"),
]


@pytest.mark.parametrize(("function", "service"), OUTAGES, ids=[f"{f}-{s}" for f, s in OUTAGES])
def test_outage_is_retried_through_sqs_and_every_message_answered_once(
    stack: LocalStack, outages: FaultProxies, function: str, service: str
) -> None:
    marker = f"{service}down{new_user()}"
    users = [new_user() for _ in range(3)]
    since = len(stack.log_lines())
    sent: dict[str, list[str]] = {user: [] for user in users}

    with outages.outage(function, service) as proxy:
        if service == "secretsmanager":
            # A secret read before the outage stays cached this long; after it, every read fails.
            time.sleep(float(stack.parameter_overrides["SecretsMaxAgeSeconds"]) + 0.5)
        for number in range(2):
            for user in users:
                sent[user].append(send_text(stack, user, f"{marker} {user} {number}")[0])

        def every_conversation_failed_twice() -> bool:
            """A record of each user came back from SQS and failed again (attempt 2): on the send
            side that is the typing indicator of whichever message was answered first (a user's
            two messages may have been answered together)."""
            retried = {
                r["correlation_id"]
                for r in function_records(stack, function, since)
                if r.get("message") == "Will retry" and int(r.get("attempt", 0)) >= 2
            }
            return all(retried & set(wamids) for wamids in sent.values())

        stack.wait_until(every_conversation_failed_twice, timeout=90)
        assert texts_to(stack, *users) == []  # nothing got through while the service was down
    assert proxy.refused > 0

    stack.wait_until(lambda: all_answered(stack, sent), timeout=90)
    settle(stack)

    replies_in_order(stack, sent)  # none lost, none duplicated, order kept
    for user in users:  # a user's two messages may have come back together: one burst, one reply
        assert said_in_order(stack, user) == [f"{marker} {user} {number}" for number in range(2)]
    # The outage never cost a second model call: one successful call per reply, and none failed
    # unless the model itself was refused (it never is here).
    assert len(calls_about(stack, marker)) == len(texts_to(stack, *users))
    assert max(retries_logged(stack, function, [w for ws in sent.values() for w in ws], since)) >= 2
    depths = stack.queue_depths()
    assert depths["InboundDeadLetterQueue"] == depths["OutboundDeadLetterQueue"] == 0
