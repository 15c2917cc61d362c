"""IAM is enforced on the local stack: a role without a permission its code uses gets AccessDenied.

This test starts its own small stack from a copy of template.yaml whose AiReplyFunction
role lacks sqs:ChangeMessageVisibility (the backoff of a failed record), as a deploy
with that role would be in AWS. One transient model failure must then show every
consequence AWS would: the function's ChangeMessageVisibilityBatch fails with
AccessDenied (logged by the stack and by the function), the record still comes back,
but only after the queue's own visibility timeout instead of its backoff, and the
message is answered once.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local_stack import LocalStack
from local_stack.cfn import load_template
from local_stack.config import TEMPLATE
from tests.e2e.helpers import (
    answered_once,
    calls_about,
    function_records,
    new_user,
    send_text,
    settle,
    texts_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

VISIBILITY_SECONDS = 8
"""The inbound queue's visibility timeout here; the backoff of the first failure is ~1 s."""


def template_without(role: str, action: str) -> dict[str, Any]:
    """template.yaml with `action` taken out of every statement of the role's policies."""
    template = copy.deepcopy(load_template(TEMPLATE))
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        kept = []
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement.get("Action") if isinstance(statement, dict) else None
            if actions is None:
                kept.append(statement)
                continue
            remaining = [a for a in (actions if isinstance(actions, list) else [actions]) if a != action]
            if remaining:
                kept.append({**statement, "Action": remaining})
        policy["PolicyDocument"]["Statement"] = kept
    return template


@pytest.mark.expect_access_denied
def test_a_consumer_without_change_visibility_gets_access_denied_and_the_message_waits_for_sqs() -> None:
    template = template_without("AiReplyFunctionRole", "sqs:ChangeMessageVisibility")
    parameters = {
        "InboundVisibilityTimeout": str(VISIBILITY_SECONDS),
        "OutboundVisibilityTimeout": str(VISIBILITY_SECONDS),
        "RetryBaseDelaySeconds": "1",
        # One visibility change to deny, the backoff's (the coalesce window would need one too).
        "CoalesceWindowSeconds": "0",
    }
    with LocalStack(
        parameters=parameters, env={"MISTRAL_BASE_URL": "stand-in"}, port=0, template=template
    ) as stack:
        assert stack.topology is not None
        queue_arn = stack.topology.queue("InboundQueue").arn
        user = new_user()
        marker = f"denied{user}"
        stack.mistral.script(status=500)  # one transient failure: the record is to come back after a backoff
        wamid, _ = send_text(stack, user, f"{marker} hello")

        stack.wait_until(lambda: len(texts_to(stack, user)) == 1, timeout=120, interval=0.5)
        settle(stack)

        # AWS's answer, as the function got it and as the stack recorded it.
        [denial] = stack.access_denials()
        assert (denial["function"], denial["action"], denial["resource"], denial["code"]) == (
            "AiReplyFunction",
            "sqs:ChangeMessageVisibility",
            queue_arn,
            "AccessDenied",
        )
        assert denial["operation"] == "sqs:ChangeMessageVisibilityBatch"
        assert denial["message"].endswith(
            "because no identity-based policy allows the sqs:ChangeMessageVisibility action"
        )
        stack_lines = [line["line"] for line in stack.log_lines() if line["source"] == "iam"]
        assert len(stack_lines) == 1
        assert stack_lines[0].startswith("AccessDenied: AiReplyFunction (role wa-local-AiReplyFunctionRole) ")
        assert f"sqs:ChangeMessageVisibility on {queue_arn}" in stack_lines[0]
        failures = [
            r
            for r in function_records(stack, "AiReplyFunction")
            if r.get("message") == "Could not shorten the visibility of failed records"
        ]
        assert len(failures) == 1
        assert "AccessDenied" in failures[0]["exception"]
        assert "sqs:ChangeMessageVisibility" in failures[0]["exception"]

        # The record came back after the queue's visibility timeout, not after its ~1 s backoff...
        calls = calls_about(stack, marker)
        assert [c["status"] for c in calls] == [500, 200]
        assert calls[1]["time"] - calls[0]["time"] >= VISIBILITY_SECONDS - 2
        # ...and the message was answered once, nothing parked.
        assert answered_once(texts_to(stack, user), [wamid])
        assert stack.queue_depths()["InboundDeadLetterQueue"] == 0
