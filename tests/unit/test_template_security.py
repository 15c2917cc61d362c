"""template.yaml's security and operability rules, checked on the template *after* the SAM transform.

What CloudFormation deploys is the transformed template: SAM adds roles, managed
policies (AWSLambdaSQSQueueExecutionRole...) and policy templates expanded to their
statements. So the IAM rules read each function's role as IAM holds it once the
transformed template is created (in moto's in-process mock: intrinsics resolved,
conditions decided, managed policies' real documents), with the default parameters
and with TracingEnabled=true; the queue and alarm rules read the transformed
resources. Each rule is a function returning its violations, so a test can also show
that it catches a broken copy of the template (a check that cannot fail proves nothing).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local_stack.cfn import load_template
from local_stack.iam_policy import action_matches, evaluate, resource_matches, statements
from local_stack.sam_transform import sam_transform
from tests.iam_support import BuiltStack, build_in_moto
from tests.support import ROOT

Template = dict[str, Any]

GUARDED_SERVICES = {
    "sqs": "arn:aws:sqs:us-east-1:123456789012:someone-elses-queue",
    "dynamodb": "arn:aws:dynamodb:us-east-1:123456789012:table/someone-elses-table",
    "secretsmanager": "arn:aws:secretsmanager:us-east-1:123456789012:secret:someone-elses-secret-AbCdEf",
    "kms": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
}
"""Services whose actions must name their resources; each with a resource of someone else's."""
FORBIDDEN_ACTIONS = ("dynamodb:Scan", "dynamodb:BatchWriteItem")
"""The code never scans nor batch-writes; a role that may do so is wider than it needs."""
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
TRACING_ON = {"TracingEnabled": "true"}


@pytest.fixture(scope="module")
def sam_template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def template(sam_template: Template) -> Template:
    """The transformed template (CloudFormation resources, intrinsics unresolved)."""
    return sam_transform(sam_template, root=ROOT).template


@pytest.fixture(scope="module")
def built() -> BuiltStack:
    return build_in_moto()


@pytest.fixture(scope="module")
def built_with_tracing() -> BuiltStack:
    return build_in_moto(parameters=TRACING_ON)


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


# ----------------------------------------------------------------- IAM rules (roles as IAM holds them)
def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def unscoped_grants(built: BuiltStack) -> list[str]:
    """Allow statements granting a guarded service's actions on resources beyond the stack's own."""
    found = []
    for function, policies in built.policies.items():
        for policy in policies:
            for index, statement in enumerate(statements(policy.document)):
                if statement.get("Effect") != "Allow":
                    continue
                actions = _listed(statement.get("Action", statement.get("NotAction", "*")))
                for service, foreign in GUARDED_SERVICES.items():
                    if "NotAction" not in statement and not any(
                        action_matches(a.split(":", 1)[0], service) for a in actions
                    ):
                        continue
                    wide = "NotResource" in statement or any(
                        resource_matches(r, foreign) for r in _listed(statement.get("Resource"))
                    )
                    if wide:
                        found.append(
                            f"{function}: {policy.name} statement {index} grants {service} on {foreign}"
                        )
    return found


def forbidden_grants(built: BuiltStack) -> list[str]:
    """Functions whose role allows an action the code never calls (Scan, BatchWriteItem) on anything."""
    return [
        f"{function}: {action}"
        for function, policies in built.policies.items()
        for action in FORBIDDEN_ACTIONS
        if any(
            action_matches(pattern, action)
            for policy in policies
            for statement in statements(policy.document)
            if statement.get("Effect") == "Allow"
            for pattern in _listed(statement.get("Action", "*"))
        )
    ]


def xray_writers(built: BuiltStack) -> list[str]:
    """Functions whose role may send traces."""
    return sorted(
        function
        for function, policies in built.policies.items()
        if any(evaluate(policies, action, "*").allowed for action in XRAY_ACTIONS)
    )


def ignored_policies(sam_template: Template) -> list[str]:
    """Functions with both Role and Policies: SAM silently drops the Policies (the role is used as is)."""
    globals_policies = "Policies" in sam_template.get("Globals", {}).get("Function", {})
    return sorted(
        name
        for name, function in resources(sam_template, "AWS::Serverless::Function").items()
        if "Role" in function["Properties"] and (globals_policies or "Policies" in function["Properties"])
    )


# ----------------------------------------------------------------- queue and alarm rules
def dead_letter_queues(template: Template) -> set[str]:
    return {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in resources(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }


def queue_problems(template: Template) -> list[str]:
    dlqs = dead_letter_queues(template)
    problems = []
    for name, queue in resources(template, "AWS::SQS::Queue").items():
        properties = queue["Properties"]
        if properties.get("FifoQueue") is not True:
            problems.append(f"{name}: not FIFO")
        if properties.get("SqsManagedSseEnabled") is not True:
            problems.append(f"{name}: SqsManagedSseEnabled is not true")
        if name in dlqs:
            if "RedrivePolicy" in properties:
                problems.append(f"{name}: a dead-letter queue with its own redrive policy")
            continue
        redrive = properties.get("RedrivePolicy")
        if not redrive or "maxReceiveCount" not in redrive or "deadLetterTargetArn" not in redrive:
            problems.append(f"{name}: no complete redrive policy")
    return problems


def unalarmed_dead_letter_queues(template: Template) -> list[str]:
    watched = set()
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if (properties.get("Namespace"), properties.get("MetricName")) != (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
        ):
            continue
        if properties.get("ComparisonOperator") != "GreaterThanThreshold" or properties.get("Threshold") != 0:
            continue
        for dimension in properties.get("Dimensions", []):
            target = (
                dimension.get("Value", {}).get("Fn::GetAtt") if dimension.get("Name") == "QueueName" else None
            )
            if isinstance(target, list) and target[1:] == ["QueueName"]:
                watched.add(target[0])
    return sorted(dead_letter_queues(template) - watched)


def send_metric_alarms(template: Template, metric: str) -> list[str]:
    """Alarms on `metric` as the send function emits it (namespace and service from the template)."""
    send = template["Resources"]["SendReplyFunction"]["Properties"]["Environment"]["Variables"]
    namespace = send["POWERTOOLS_METRICS_NAMESPACE"]  # from Globals: the transform merged it in
    dimensions = [{"Name": "service", "Value": send["POWERTOOLS_SERVICE_NAME"]}]
    return [
        name
        for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("Namespace") == namespace
        and alarm["Properties"].get("MetricName") == metric
        and alarm["Properties"].get("Dimensions") == dimensions
        and alarm["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
        and alarm["Properties"].get("Threshold") == 0
    ]


def test_graph_account_blocked_alarm_watches_what_the_send_function_emits(template: Template) -> None:
    assert send_metric_alarms(template, "GraphAccountBlocked") == ["GraphAccountBlockedAlarm"]
    broken = copy.deepcopy(template)
    broken["Resources"]["GraphAccountBlockedAlarm"]["Properties"]["MetricName"] = "GraphAuthFailed"
    assert send_metric_alarms(broken, "GraphAccountBlocked") == []


# ----------------------------------------------------------------- the real template
@pytest.mark.parametrize("parameters", [{}, TRACING_ON], ids=["defaults", "tracing"])
def test_no_guarded_action_on_resources_beyond_the_stacks_own(
    parameters: dict[str, str], built: BuiltStack, built_with_tracing: BuiltStack
) -> None:
    stack = built_with_tracing if parameters else built
    assert sorted(stack.policies) == ["AiReplyFunction", "SendReplyFunction", "WebhookFunction"]
    assert unscoped_grants(stack) == []
    assert forbidden_grants(stack) == []


def test_no_function_has_policies_sam_would_ignore(sam_template: Template) -> None:
    assert ignored_policies(sam_template) == []


def test_xray_write_only_when_tracing_is_on(built: BuiltStack, built_with_tracing: BuiltStack) -> None:
    assert xray_writers(built) == []
    assert xray_writers(built_with_tracing) == ["AiReplyFunction", "SendReplyFunction", "WebhookFunction"]


def test_queues_are_encrypted_fifo_with_redrive_except_dead_letter_queues(template: Template) -> None:
    assert dead_letter_queues(template) == {"InboundDeadLetterQueue", "OutboundDeadLetterQueue"}
    assert queue_problems(template) == []


def test_each_dead_letter_queue_has_a_depth_alarm(template: Template) -> None:
    assert unalarmed_dead_letter_queues(template) == []


def test_graph_auth_failed_alarm_watches_what_the_send_function_emits(template: Template) -> None:
    assert send_metric_alarms(template, "GraphAuthFailed") == ["GraphAuthFailureAlarm"]


# ----------------------------------------------------------------- the rules catch broken copies
def _role_statements(template: Template, role: str) -> list[Any]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    statements_: list[Any] = policies[0]["PolicyDocument"]["Statement"]
    return statements_


def test_rules_catch_sams_default_policies(sam_template: Template) -> None:
    """SAM's own policies, as a function with `Policies:` gets them: the SQS poller role on every queue,
    DynamoDBCrudPolicy's Scan and BatchWriteItem, X-Ray on with tracing."""
    broken = copy.deepcopy(sam_template)
    function = broken["Resources"]["AiReplyFunction"]["Properties"]
    del function["Role"]
    del broken["Resources"]["AiReplyFunctionRole"]  # SAM creates a role of that name
    function["Policies"] = [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "MemoryTable"}}}]
    stack = build_in_moto(broken, TRACING_ON)
    assert any(
        "AWSLambdaSQSQueueExecutionRole" in problem and " sqs " in problem
        for problem in unscoped_grants(stack)
    )
    assert forbidden_grants(stack) == [
        "AiReplyFunction: dynamodb:Scan",
        "AiReplyFunction: dynamodb:BatchWriteItem",
    ]
    assert build_in_moto(broken).policies["AiReplyFunction"]  # SAM's role, built without tracing too


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("kms:Decrypt", "*"),
        ("secretsmanager:*", {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:*"}),
        ("*", "*"),
        ("sqs:SendMessage", {"Fn::Sub": "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:*"}),
        ("dynamodb:GetItem", {"Fn::Sub": "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"}),
    ],
)
def test_rules_catch_a_grant_beyond_the_stacks_own(
    sam_template: Template, action: str, resource: Any
) -> None:
    broken = copy.deepcopy(sam_template)
    _role_statements(broken, "SendReplyFunctionRole").append(
        {"Effect": "Allow", "Action": action, "Resource": resource}
    )
    assert len(unscoped_grants(build_in_moto(broken))) >= 1


def test_rules_catch_not_resource_and_scan(sam_template: Template) -> None:
    broken = copy.deepcopy(sam_template)
    _role_statements(broken, "WebhookFunctionRole").append(
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "NotResource": {"Fn::GetAtt": ["OutboundQueue", "Arn"]},
        }
    )
    _role_statements(broken, "AiReplyFunctionRole").append(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": ["MemoryTable", "Arn"]}}
    )
    stack = build_in_moto(broken)
    assert [p.split(":")[0] for p in unscoped_grants(stack)] == ["WebhookFunction"]
    assert forbidden_grants(stack) == [
        "AiReplyFunction: dynamodb:Scan",
        "AiReplyFunction: dynamodb:BatchWriteItem",
    ]


def test_rules_catch_policies_next_to_a_role(sam_template: Template) -> None:
    broken = copy.deepcopy(sam_template)
    broken["Resources"]["AiReplyFunction"]["Properties"]["Policies"] = [
        {"SNSPublishMessagePolicy": {"TopicName": "alerts"}}
    ]
    assert ignored_policies(broken) == ["AiReplyFunction"]


def test_rules_catch_xray_without_tracing(sam_template: Template) -> None:
    broken = copy.deepcopy(sam_template)
    _role_statements(broken, "SendReplyFunctionRole").append(
        {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"}
    )
    assert xray_writers(build_in_moto(broken)) == ["SendReplyFunction"]


def test_rules_catch_queue_and_alarm_gaps(template: Template) -> None:
    broken = copy.deepcopy(template)
    del broken["Resources"]["InboundQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    broken["Resources"]["OutboundQueue"]["Properties"]["SqsManagedSseEnabled"] = False
    del broken["Resources"]["OutboundDeadLetterAlarm"]
    broken["Resources"]["GraphAuthFailureAlarm"]["Properties"]["Dimensions"][0]["Value"] = "webhook"
    assert sorted(queue_problems(broken)) == [
        "InboundQueue: no complete redrive policy",
        "OutboundQueue: SqsManagedSseEnabled is not true",
    ]
    assert unalarmed_dead_letter_queues(broken) == ["OutboundDeadLetterQueue"]
    assert send_metric_alarms(broken, "GraphAuthFailed") == []
