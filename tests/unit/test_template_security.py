"""template.yaml's security and operability rules, read from the template itself (CloudFormation tags kept).

Each rule is a function returning its violations, so a test can also show that the
rule catches a broken copy of the template (a check that cannot fail proves nothing).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.cfn import load_template
from tests.support import ROOT

Template = dict[str, Any]

SAM_POLICY_TEMPLATES = frozenset(
    {
        "SQSSendMessagePolicy",
        "SQSPollerPolicy",
        "AWSSecretsManagerGetSecretValuePolicy",
        "DynamoDBCrudPolicy",
        "DynamoDBReadPolicy",
        "DynamoDBWritePolicy",
        "CloudWatchPutMetricPolicy",
    }
)
"""The SAM policy templates a function may use; each one is scoped by its parameters."""


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def _statements(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement anywhere in the template, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement":
                for index, statement in enumerate(value if isinstance(value, list) else [value]):
                    yield f"{path}/Statement[{index}]", statement
            else:
                yield from _statements(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _statements(item, f"{path}[{index}]")


def _in_key_policy(template: Template, where: str) -> bool:
    """A statement of a KMS key policy, where Resource "*" means the key itself (not every resource)."""
    parts = where.split("/")
    return (
        len(parts) > 4
        and parts[1] == "Resources"
        and parts[3:5] == ["Properties", "KeyPolicy"]
        and template["Resources"].get(parts[2], {}).get("Type") == "AWS::KMS::Key"
    )


def wildcard_resources(template: Template) -> list[str]:
    found = []
    for where, statement in _statements(template):
        if _in_key_policy(template, where):
            continue
        resource = statement.get("Resource") if isinstance(statement, dict) else None
        targets = resource if isinstance(resource, list) else [resource]
        if "NotResource" in statement or any(isinstance(t, str) and t.strip() == "*" for t in targets):
            found.append(where)
    return found


def _own_reference(value: Any, own: set[str]) -> bool:
    """`!Ref X` or `!GetAtt X.Attr` where X is a resource of this template."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return value["Ref"] in own
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return value["Fn::GetAtt"][0] in own
    return False


def unscoped_function_policies(template: Template) -> list[str]:
    own = set(template["Resources"])
    problems = []
    for name, function in resources(template, "AWS::Serverless::Function").items():
        properties = function["Properties"]
        if "Role" in properties:
            problems.append(f"{name}: brings its own Role")
        policies = properties.get("Policies", [])
        for index, policy in enumerate(policies if isinstance(policies, list) else [policies]):
            where = f"{name}.Policies[{index}]"
            if not isinstance(policy, dict) or len(policy) != 1:
                problems.append(f"{where}: not a single SAM policy template ({policy!r})")
                continue
            [(kind, parameters)] = policy.items()
            if kind not in SAM_POLICY_TEMPLATES:
                problems.append(f"{where}: {kind} is not an allowed SAM policy template")
            elif not isinstance(parameters, dict) or not parameters:
                problems.append(f"{where}: {kind} has no scoping parameters")
            else:
                problems.extend(
                    f"{where}: {kind}.{key} is not a !Ref/!GetAtt of this template's resources"
                    for key, value in parameters.items()
                    if not _own_reference(value, own)
                )
    return problems


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


def graph_auth_alarms(template: Template) -> list[str]:
    """Alarms on GraphAuthFailed as the send function emits it (namespace and service from the template)."""
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    send = template["Resources"]["SendReplyFunction"]["Properties"]["Environment"]["Variables"]
    expected_dimensions = [{"Name": "service", "Value": send["POWERTOOLS_SERVICE_NAME"]}]
    return [
        name
        for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("Namespace") == namespace
        and alarm["Properties"].get("MetricName") == "GraphAuthFailed"
        and alarm["Properties"].get("Dimensions") == expected_dimensions
        and alarm["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
        and alarm["Properties"].get("Threshold") == 0
    ]


# ----------------------------------------------------------------- the real template
def test_no_iam_statement_grants_every_resource(template: Template) -> None:
    assert wildcard_resources(template) == []


def test_functions_use_only_sam_policy_templates_scoped_to_own_resources(template: Template) -> None:
    functions = resources(template, "AWS::Serverless::Function")
    assert len(functions) == 3
    assert all(f["Properties"].get("Policies") for f in functions.values())
    assert unscoped_function_policies(template) == []


def test_queues_are_encrypted_fifo_with_redrive_except_dead_letter_queues(template: Template) -> None:
    assert dead_letter_queues(template) == {"InboundDeadLetterQueue", "OutboundDeadLetterQueue"}
    assert queue_problems(template) == []


def test_each_dead_letter_queue_has_a_depth_alarm(template: Template) -> None:
    assert unalarmed_dead_letter_queues(template) == []


def test_graph_auth_failed_alarm_watches_what_the_send_function_emits(template: Template) -> None:
    assert graph_auth_alarms(template) == ["GraphAuthFailureAlarm"]


# ----------------------------------------------------------------- the rules catch broken copies
def test_rules_catch_a_wildcard_anywhere(template: Template) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["AiReplyFunction"]["Properties"]["Policies"].append(
        {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    )
    broken["Resources"]["Extra"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyDocument": {"Statement": {"Effect": "Allow", "Action": "*", "Resource": ["*"]}}
        },
    }
    assert len(wildcard_resources(broken)) == 2
    index = len(broken["Resources"]["AiReplyFunction"]["Properties"]["Policies"]) - 1
    assert unscoped_function_policies(broken) == [
        f"AiReplyFunction.Policies[{index}]: Statement is not an allowed SAM policy template"
    ]


def test_only_kms_key_policies_may_say_every_resource(template: Template) -> None:
    key_statements = template["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert any(statement["Resource"] == "*" for statement in key_statements)  # "*" = this key
    broken = copy.deepcopy(template)
    broken["Resources"]["Extra"] = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {"PolicyDocument": {"Statement": key_statements}},
    }
    assert wildcard_resources(broken) == [
        f"/Resources/Extra/Properties/PolicyDocument/Statement[{index}]"
        for index in range(len(key_statements))
    ]


@pytest.mark.parametrize(
    "policy",
    [
        "AmazonSQSFullAccess",
        {"DynamoDBCrudPolicy": {"TableName": "some-other-table"}},
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "MistralModel"}}},  # a parameter, not a resource
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Fn::Sub": "arn:aws:secretsmanager:*"}}},
        {"S3FullAccessPolicy": {"BucketName": {"Ref": "IdempotencyTable"}}},
    ],
)
def test_rules_catch_unscoped_policies(template: Template, policy: Any) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["SendReplyFunction"]["Properties"]["Policies"].append(policy)
    assert len(unscoped_function_policies(broken)) == 1


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
    assert graph_auth_alarms(broken) == []
