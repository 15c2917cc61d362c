"""Each function's role, after the SAM transform, allows exactly what its code calls.

`tests.iam_support.FUNCTION_CALLS` lists every (action, resource) a function calls; here
each role, as IAM holds it once the transformed template is created, is evaluated by
the same evaluator the local stack enforces with: every call is allowed (nothing
needed is missing) and every (action, resource) an Allow statement names is in the
table (nothing broad or unused is extra). The end-to-end suite checks the table against
the calls the functions really make.
"""

from __future__ import annotations

import copy

import pytest

from local_stack.cfn import load_template
from local_stack.iam_policy import allow_pairs, evaluate
from tests.iam_support import FUNCTION_CALLS, BuiltStack, build_in_moto, expected_calls
from tests.support import ROOT


@pytest.fixture(scope="module", params=[False, True], ids=["tracing-off", "tracing-on"])
def tracing(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture(scope="module")
def built(tracing: bool) -> BuiltStack:
    return build_in_moto(parameters={"TracingEnabled": "true" if tracing else "false"})


def missing_calls(built: BuiltStack, tracing: bool) -> list[str]:
    """Calls of the table the function's role does not allow."""
    return sorted(
        f"{function}: {action} on {resource}"
        for function in built.policies
        for action, resource in expected_calls(function, tracing)
        if not evaluate(built.policies[function], action, built.request_arn(resource)).allowed
    )


def extra_grants(built: BuiltStack, tracing: bool) -> list[str]:
    """(action, resource) pairs an Allow statement names that no call of the table needs."""
    extra: list[str] = []
    for function, policies in built.policies.items():
        needed = {(action, built.resource_pattern(r)) for action, r in expected_calls(function, tracing)}
        extra.extend(f"{function}: {a} on {r}" for a, r in sorted(allow_pairs(policies) - needed))
    return extra


def test_the_table_names_every_function_of_the_template(built: BuiltStack) -> None:
    assert sorted(built.topology.functions) == sorted(FUNCTION_CALLS)
    assert sorted(built.policies) == sorted(FUNCTION_CALLS)


def test_every_call_of_the_code_is_allowed(built: BuiltStack, tracing: bool) -> None:
    assert missing_calls(built, tracing) == []


def test_no_role_allows_more_than_its_code_calls(built: BuiltStack, tracing: bool) -> None:
    assert extra_grants(built, tracing) == []


def test_consumers_change_visibility_on_their_own_source_queue_only(built: BuiltStack) -> None:
    for function, own, other in (
        ("AiReplyFunction", "InboundQueue", "OutboundQueue"),
        ("SendReplyFunction", "OutboundQueue", "InboundQueue"),
    ):
        policies = built.policies[function]
        assert evaluate(policies, "sqs:ChangeMessageVisibility", built.request_arn(own)).allowed
        assert not evaluate(policies, "sqs:ChangeMessageVisibility", built.request_arn(other)).allowed
        assert not evaluate(policies, "sqs:GetQueueUrl", built.request_arn(own)).allowed


# ----------------------------------------------------------------- the checks catch broken roles
def _broken(change: str) -> BuiltStack:
    template = copy.deepcopy(load_template(ROOT / "template.yaml"))
    statements = template["Resources"]["AiReplyFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    if change == "missing":
        backoff = next(s for s in statements if s.get("Sid") == "BackOffOnInbound")
        statements.remove(backoff)
    else:
        statements.append(
            {
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": {"Fn::GetAtt": ["MemoryTable", "Arn"]},
            }
        )
    return build_in_moto(template)


def test_a_missing_permission_is_caught() -> None:
    stack = _broken("missing")
    assert missing_calls(stack, tracing=False) == [
        "AiReplyFunction: sqs:ChangeMessageVisibility on InboundQueue"
    ]


def test_an_extra_permission_is_caught() -> None:
    stack = _broken("extra")
    assert extra_grants(stack, tracing=False) == [
        f"AiReplyFunction: dynamodb:Query on {stack.topology.arns['MemoryTable']}"
    ]
