"""The local IAM evaluator decides as IAM does: wildcards, deny beats allow, Not*, case rules, conditions."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.iam_policy import NamedPolicy, allow_pairs, evaluate

QUEUE = "arn:aws:sqs:us-east-1:123456789012:wa-local-InboundQueue.fifo"
OTHER_QUEUE = "arn:aws:sqs:us-east-1:123456789012:wa-local-OutboundQueue.fifo"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/wa-local-IdempotencyTable"


def policy(*statements: dict[str, Any]) -> list[NamedPolicy]:
    return [NamedPolicy("role/policy", {"Version": "2012-10-17", "Statement": list(statements)})]


def allow(action: Any, resource: Any = QUEUE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = QUEUE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_nothing_allows_by_default() -> None:
    decision = evaluate([], "sqs:SendMessage", QUEUE)
    assert not decision.allowed
    assert not decision.explicit_deny
    assert decision.aws_reason == "because no identity-based policy allows the sqs:SendMessage action"


def test_an_allow_for_the_action_and_resource_allows_and_says_which_statement() -> None:
    decision = evaluate(policy(allow("sqs:SendMessage", Sid="Send")), "sqs:SendMessage", QUEUE)
    assert decision.allowed
    assert decision.detail == "allowed by role/policy statement 0 (Send)"


@pytest.mark.parametrize(
    ("action", "resource"),
    [("sqs:SendMessage", OTHER_QUEUE), ("sqs:SendMessageBatch", QUEUE), ("sqs:ReceiveMessage", QUEUE)],
)
def test_another_action_or_resource_is_not_allowed(action: str, resource: str) -> None:
    assert not evaluate(policy(allow("sqs:SendMessage")), action, resource).allowed


def test_a_single_statement_without_a_list_counts() -> None:
    document = {"Statement": allow(["sqs:SendMessage"], [QUEUE])}
    assert evaluate([NamedPolicy("p", document)], "sqs:SendMessage", QUEUE).allowed


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("sqs:*", "sqs:ChangeMessageVisibility", True),
        ("sqs:Send*", "sqs:SendMessage", True),
        ("sqs:*Message", "sqs:DeleteMessage", True),
        ("sqs:?etQueueUrl", "sqs:GetQueueUrl", True),
        ("sqs:?etQueueUrl", "sqs:GetQueueAttributes", False),
        ("*", "dynamodb:Scan", True),
        ("s?s:SendMessage", "sqs:SendMessage", True),
        ("sqs:Send*", "sns:SendMessage", False),
        ("sqs:Send.*", "sqs:SendMessage", False),  # a dot is a dot, not a regex
    ],
)
def test_action_wildcards(pattern: str, action: str, allowed: bool) -> None:
    assert evaluate(policy(allow(pattern)), action, QUEUE).allowed is allowed


@pytest.mark.parametrize("written", ["SQS:SENDMESSAGE", "sqs:sendmessage", "Sqs:Send*"])
def test_actions_match_case_insensitively(written: str) -> None:
    assert evaluate(policy(allow(written)), "sqs:SendMessage", QUEUE).allowed


def test_resources_match_case_sensitively() -> None:
    assert not evaluate(policy(allow("sqs:SendMessage", QUEUE.upper())), "sqs:SendMessage", QUEUE).allowed
    assert not evaluate(
        policy(allow("sqs:SendMessage", QUEUE.replace("Inbound", "inbound"))), "sqs:SendMessage", QUEUE
    ).allowed


@pytest.mark.parametrize(
    ("pattern", "resource", "allowed"),
    [
        ("*", QUEUE, True),
        ("arn:aws:sqs:us-east-1:123456789012:*", QUEUE, True),
        ("arn:aws:sqs:*:123456789012:wa-local-InboundQueue.fifo", QUEUE, True),
        ("arn:aws:sqs:us-east-1:123456789012:wa-local-*Queue.fifo", OTHER_QUEUE, True),
        ("arn:aws:sqs:us-east-1:123456789012:wa-local-?nboundQueue.fifo", QUEUE, True),
        ("arn:aws:sqs:us-east-1:123456789012:wa-local-?nboundQueue.fifo", OTHER_QUEUE, False),
        ("arn:aws:sqs:us-east-1:123456789012:wa-local-InboundQueue.fif?", QUEUE, True),
        ("arn:aws:sqs:us-east-1:123456789012:wa-local-InboundQueue", QUEUE, False),
        ("arn:aws:sqs:us-east-1:123456789012:wa-local-InboundQueue.fifo", QUEUE + "x", False),
        # A dot in an ARN is literal (moto's matcher treats it as a regex).
        (
            "arn:aws:sqs:us-east-1:123456789012:wa-local-InboundQueue.fifo",
            QUEUE.replace(".fifo", "xfifo"),
            False,
        ),
        # A trailing * of a segment runs past colons (every stream of a log group)...
        (
            "arn:aws:logs:us-east-1:123456789012:log-group:g:*",
            "arn:aws:logs:us-east-1:123456789012:log-group:g:log-stream:2026/01/01/[$LATEST]ab",
            True,
        ),
        # ...a * inside a segment does not.
        ("arn:aws:sqs:us-east-1:123456789012:a*b", "arn:aws:sqs:us-east-1:123456789012:a:b", False),
        ("arn:aws:sqs:us-east-1:123456789012:a*b", "arn:aws:sqs:us-east-1:123456789012:axxb", True),
        ("arn:aws:sqs:us-east-1:123456789012:a?b", "arn:aws:sqs:us-east-1:123456789012:a:b", False),
        (TABLE + "/index/*", TABLE, False),
        (TABLE + "*", TABLE + "/index/byUser", True),
    ],
)
def test_resource_wildcards(pattern: str, resource: str, allowed: bool) -> None:
    assert evaluate(policy(allow("sqs:SendMessage", pattern)), "sqs:SendMessage", resource).allowed is allowed


def test_an_explicit_deny_beats_any_allow_in_any_order() -> None:
    for statements in (
        [allow("sqs:*", "*"), deny("sqs:SendMessage")],
        [deny("sqs:SendMessage"), allow("sqs:*", "*")],
    ):
        decision = evaluate(policy(*statements), "sqs:SendMessage", QUEUE)
        assert not decision.allowed
        assert decision.explicit_deny
        assert decision.aws_reason == "with an explicit deny in an identity-based policy"
    split = [
        NamedPolicy("a", {"Statement": [allow("*", "*")]}),
        NamedPolicy("b", {"Statement": [deny("sqs:*")]}),
    ]
    assert evaluate(split, "sqs:SendMessage", QUEUE).explicit_deny
    assert evaluate(split, "sqs:SendMessage", OTHER_QUEUE).allowed  # the deny names one queue only


def test_not_action_applies_to_every_other_action() -> None:
    statements = policy({"Effect": "Allow", "NotAction": ["sqs:Delete*", "sqs:Purge*"], "Resource": QUEUE})
    assert evaluate(statements, "sqs:SendMessage", QUEUE).allowed
    assert not evaluate(statements, "sqs:DeleteMessage", QUEUE).allowed
    assert not evaluate(statements, "SQS:PURGEQUEUE", QUEUE).allowed
    deny_all_but = policy(
        allow("sqs:*", "*"), {"Effect": "Deny", "NotAction": "sqs:ReceiveMessage", "Resource": "*"}
    )
    assert evaluate(deny_all_but, "sqs:ReceiveMessage", QUEUE).allowed
    assert evaluate(deny_all_but, "sqs:SendMessage", QUEUE).explicit_deny


def test_not_resource_applies_to_every_other_resource() -> None:
    statements = policy({"Effect": "Allow", "Action": "sqs:SendMessage", "NotResource": [OTHER_QUEUE]})
    assert evaluate(statements, "sqs:SendMessage", QUEUE).allowed
    assert not evaluate(statements, "sqs:SendMessage", OTHER_QUEUE).allowed
    guarded = policy(allow("sqs:*", "*"), {"Effect": "Deny", "Action": "sqs:*", "NotResource": QUEUE})
    assert evaluate(guarded, "sqs:SendMessage", QUEUE).allowed
    assert evaluate(guarded, "sqs:SendMessage", OTHER_QUEUE).explicit_deny


def test_a_statement_without_resource_or_action_applies_to_nothing() -> None:
    assert not evaluate(policy({"Effect": "Allow", "Action": "sqs:*"}), "sqs:SendMessage", QUEUE).allowed
    assert not evaluate(policy({"Effect": "Allow", "Resource": "*"}), "sqs:SendMessage", QUEUE).allowed


def test_an_allow_with_a_condition_never_allows_and_says_why() -> None:
    conditional = allow("sqs:SendMessage", Condition={"Bool": {"aws:SecureTransport": "true"}}, Sid="Tls")
    decision = evaluate(policy(conditional), "sqs:SendMessage", QUEUE)
    assert not decision.allowed
    assert "role/policy statement 0 (Tls)" in decision.detail
    assert "not evaluated locally" in decision.detail
    assert evaluate(policy(conditional, allow("sqs:SendMessage")), "sqs:SendMessage", QUEUE).allowed


def test_a_deny_with_a_condition_always_denies() -> None:
    conditional = deny("sqs:*", "*", Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1"}})
    decision = evaluate(policy(allow("sqs:*", "*"), conditional), "sqs:SendMessage", QUEUE)
    assert decision.explicit_deny
    assert "not evaluated locally" in decision.detail


def test_allow_pairs_lists_what_allow_statements_name_and_flags_not_elements() -> None:
    pairs = allow_pairs(
        policy(
            allow(["sqs:SendMessage", "sqs:ReceiveMessage"], [QUEUE, OTHER_QUEUE]),
            deny("*", "*"),
            {"Effect": "Allow", "NotAction": "iam:*", "NotResource": QUEUE},
        )
    )
    assert pairs == {
        ("sqs:SendMessage", QUEUE),
        ("sqs:SendMessage", OTHER_QUEUE),
        ("sqs:ReceiveMessage", QUEUE),
        ("sqs:ReceiveMessage", OTHER_QUEUE),
        ("NotAction", "NotResource"),
    }
