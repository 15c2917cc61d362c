"""Every call the functions made during the e2e session is one the roles table lists.

Runs after the other end-to-end tests (file order), on the session's stack: the IAM
check in front of moto recorded every (function, action, resource) it allowed. Each
must be a row of `tests.iam_support.FUNCTION_CALLS`, the table the unit tests check the
transformed roles against, so the table (and with it the roles) cannot silently fall
behind what the code really calls.
"""

from __future__ import annotations

import pytest

from local_stack import LocalStack
from tests.e2e.helpers import new_user, send_text, settle, texts_to
from tests.iam_support import FUNCTION_CALLS

pytestmark = pytest.mark.e2e

POLL_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def test_every_allowed_call_of_the_session_is_in_the_roles_table(stack: LocalStack) -> None:
    assert stack.topology is not None
    # At least one whole conversation, so that every function has called AWS even when run alone.
    user = new_user()
    send_text(stack, user, "iam cross-check")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)

    seen = {
        (function, action, stack.topology.logical_id_of_arn(resource) or resource)
        for function, action, resource in stack.allowed_calls()
    }
    assert {function for function, _, _ in seen} == set(FUNCTION_CALLS)
    unlisted = sorted(call for call in seen if (call[1], call[2]) not in FUNCTION_CALLS[call[0]])
    assert unlisted == []
    # The event source mappings polled with their function's role, as in AWS.
    for function, queue in (("AiReplyFunction", "InboundQueue"), ("SendReplyFunction", "OutboundQueue")):
        assert {(function, action, queue) for action in POLL_ACTIONS} <= seen
