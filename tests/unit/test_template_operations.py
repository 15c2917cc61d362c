"""template.yaml deploys on a new account, notifies on every alarm, never overwrites an operator's secrets.

Each rule is a function returning its violations, tried on the real template and on a
broken copy (a rule that cannot fail proves nothing).
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
from typing import Any

import pytest

from local_stack.cfn import NO_VALUE, Resolver, load_template, resolve_parameters
from ops.stack import REQUIRED_OUTPUTS
from tests.support import ROOT

Template = dict[str, Any]

RESERVED_CONCURRENCY_PARAMETERS = {
    "WebhookFunction": "WebhookReservedConcurrency",
    "AiReplyFunction": "AiReservedConcurrency",
    "SendReplyFunction": "SendReservedConcurrency",
}
PINNED_SECRET_VALUES: dict[str, dict[str, Any]] = {
    "WebhookSecret": {
        "GenerateSecretString": {
            "SecretStringTemplate": '{"app_secret": "SET-ME-FROM-META-APP-SETTINGS"}',
            "GenerateStringKey": "verify_token",
            "PasswordLength": 32,
            "ExcludePunctuation": True,
        }
    },
    "MistralApiKeySecret": {"SecretString": "SET-ME"},
    "GraphAccessTokenSecret": {"SecretString": "SET-ME"},
}
"""What CloudFormation writes into each secret. CloudFormation writes a secret's value again only
when SecretString or GenerateSecretString changes (any key of GenerateSecretString, the template
included, regenerates it): editing these literals would overwrite, on every deployer's next
`sam deploy`, the values they put in. Name is absent: a new Name replaces the secret."""
VALUE_PROPERTIES = ("SecretString", "GenerateSecretString", "Name")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def resolver(template: Template, **overrides: str) -> Resolver:
    return Resolver(
        parameters=resolve_parameters(template, overrides),
        conditions_source=template["Conditions"],
        refs={"AlarmTopic": "arn:aws:sns:us-east-1:123456789012:alarms"},
    )


# ----------------------------------------------------------------- reserved concurrency
def reserved_concurrency(template: Template, **overrides: str) -> dict[str, Any]:
    """Each function's ReservedConcurrentExecutions once parameters are applied (None: not set)."""
    values = {}
    for name, function in resources(template, "AWS::Serverless::Function").items():
        raw = function["Properties"].get("ReservedConcurrentExecutions")
        value = None if raw is None else resolver(template, **overrides).resolve(raw)
        values[name] = None if value is NO_VALUE else value
    return values


def test_no_function_reserves_concurrency_with_default_parameters(template: Template) -> None:
    assert reserved_concurrency(template) == dict.fromkeys(RESERVED_CONCURRENCY_PARAMETERS)


def test_each_function_can_reserve_concurrency_through_its_parameter(template: Template) -> None:
    overrides = {
        parameter: str(10 + i) for i, parameter in enumerate(RESERVED_CONCURRENCY_PARAMETERS.values())
    }
    assert reserved_concurrency(template, **overrides) == {
        function: overrides[parameter] for function, parameter in RESERVED_CONCURRENCY_PARAMETERS.items()
    }


def test_the_transformed_template_check_catches_a_reservation() -> None:
    spec = importlib.util.spec_from_file_location("check", ROOT / "scripts" / "check_transformed_template.py")
    assert spec is not None
    assert spec.loader is not None
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    transformed = {
        "Conditions": {"Reserve": {"Fn::Not": [{"Fn::Equals": [{"Ref": "R"}, ""]}]}},
        "Resources": {
            "Fixed": {"Type": "AWS::Lambda::Function", "Properties": {"ReservedConcurrentExecutions": 50}},
            "Optional": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "ReservedConcurrentExecutions": {
                        "Fn::If": ["Reserve", {"Ref": "R"}, {"Ref": "AWS::NoValue"}]
                    }
                },
            },
            "Unset": {"Type": "AWS::Lambda::Function", "Properties": {}},
        },
    }
    assert check.reserved_concurrency_problems(transformed, {"R": ""}) == [
        "Fixed: ReservedConcurrentExecutions=50 with default parameters"
    ]
    assert len(check.reserved_concurrency_problems(transformed, {"R": "5"})) == 2


# ----------------------------------------------------------------- alarm notifications
def alarms_not_notifying(template: Template) -> list[str]:
    """Alarms whose actions are not exactly AlarmActionArn and/or the AlarmEmail topic, as set."""
    problems = []
    topic = "arn:aws:sns:us-east-1:123456789012:alarms"
    for action_arn, email in itertools.product(
        ["", "arn:aws:sns:us-east-1:123456789012:ops"], ["", "a@b.co"]
    ):
        expected = [a for a in (action_arn, topic if email else "") if a]
        evaluate = resolver(template, AlarmActionArn=action_arn, AlarmEmail=email)
        for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
            actions = evaluate.resolve(alarm["Properties"].get("AlarmActions", []))
            actions = [] if actions is NO_VALUE else actions
            if actions != expected:
                problems.append(f"{name} with AlarmActionArn={action_arn!r} AlarmEmail={email!r}: {actions}")
    return problems


def test_every_alarm_notifies_the_action_arn_and_the_email_topic(template: Template) -> None:
    assert len(resources(template, "AWS::CloudWatch::Alarm")) >= 4
    assert alarms_not_notifying(template) == []


def test_email_topic_exists_only_with_an_address_and_needs_no_key(template: Template) -> None:
    email_resources = ["AlarmTopic", "AlarmEmailSubscription"]
    assert all(template["Resources"][name].get("Condition") == "HasAlarmEmail" for name in email_resources)
    assert template["Outputs"]["AlarmTopicArn"]["Condition"] == "HasAlarmEmail"
    assert resolver(template).condition("HasAlarmEmail") is False
    assert resolver(template, AlarmEmail="owner@example.com").condition("HasAlarmEmail") is True
    # CloudWatch alarms cannot publish to a topic under aws/sns; alarm notices hold no user data,
    # so no customer-managed key (whose policy would grant kms:* on "*") is worth it.
    assert "KmsMasterKeyId" not in template["Resources"]["AlarmTopic"]["Properties"]
    assert resources(template, "AWS::KMS::Key") == {}
    subscription = template["Resources"]["AlarmEmailSubscription"]["Properties"]
    assert subscription == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


def test_rule_catches_an_alarm_that_notifies_only_the_old_way(template: Template) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["GraphAuthFailureAlarm"]["Properties"]["AlarmActions"] = {
        "Fn::If": ["HasAlarmAction", [{"Ref": "AlarmActionArn"}], {"Ref": "AWS::NoValue"}]
    }
    problems = alarms_not_notifying(broken)
    assert len(problems) == 2  # the two combinations with an AlarmEmail
    assert all(p.startswith("GraphAuthFailureAlarm with") and "a@b.co" in p for p in problems)


# ----------------------------------------------------------------- secrets survive updates
def _intrinsics(node: Any, path: str) -> list[str]:
    if isinstance(node, dict):
        found = [f"{path}: {key}" for key in node if key == "Ref" or key.startswith("Fn::")]
        return found + [p for key, value in node.items() for p in _intrinsics(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [p for index, item in enumerate(node) for p in _intrinsics(item, f"{path}[{index}]")]
    return []


def secret_update_hazards(template: Template) -> list[str]:
    """What could make a stack update rewrite, replace or delete a secret an operator filled in."""
    hazards = []
    secrets = resources(template, "AWS::SecretsManager::Secret")
    if set(secrets) != set(PINNED_SECRET_VALUES):
        hazards.append(f"secrets {sorted(secrets)} are not the pinned {sorted(PINNED_SECRET_VALUES)}")
    for name, secret in secrets.items():
        properties = secret.get("Properties", {})
        hazards += [f"{name} depends on {p}" for p in _intrinsics(properties, f"{name}.Properties")]
        if "Condition" in secret:
            hazards.append(f"{name} has a Condition: flipping it deletes the secret")
        values = {key: properties[key] for key in VALUE_PROPERTIES if key in properties}
        if name in PINNED_SECRET_VALUES and values != PINNED_SECRET_VALUES[name]:
            hazards.append(f"{name}: {values} is not the pinned value (a change rewrites deployed secrets)")
    return hazards


def test_no_stack_update_can_rewrite_a_secret(template: Template) -> None:
    assert secret_update_hazards(template) == []


@pytest.mark.parametrize(
    ("secret", "change", "hazard"),
    [
        (
            "WebhookSecret",
            lambda p: p["GenerateSecretString"].update(
                SecretStringTemplate={"Fn::Sub": '{"app_secret": "${BusinessName}"}'}
            ),
            "WebhookSecret depends on WebhookSecret.Properties.GenerateSecretString.SecretStringTemplate",
        ),
        (
            "MistralApiKeySecret",
            lambda p: p.update(SecretString="SET-ME-PLEASE"),
            "MistralApiKeySecret: {'SecretString': 'SET-ME-PLEASE'} is not the pinned value",
        ),
        (
            "GraphAccessTokenSecret",
            lambda p: p.update(Description={"Ref": "GraphApiVersion"}),
            "GraphAccessTokenSecret depends on GraphAccessTokenSecret.Properties.Description: Ref",
        ),
        (
            "GraphAccessTokenSecret",
            lambda p: p.update(Name="whatsapp-token"),
            "GraphAccessTokenSecret: {'SecretString': 'SET-ME', 'Name': 'whatsapp-token'} is not the pinned",
        ),
    ],
)
def test_secret_rule_catches_a_value_that_can_change(
    template: Template, secret: str, change: Any, hazard: str
) -> None:
    broken = copy.deepcopy(template)
    change(broken["Resources"][secret]["Properties"])
    problems = secret_update_hazards(broken)
    assert problems
    assert any(problem.startswith(hazard) for problem in problems), problems


def test_secret_rule_catches_a_condition(template: Template) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["WebhookSecret"]["Condition"] = "HasAlarmEmail"
    assert secret_update_hazards(broken) == ["WebhookSecret has a Condition: flipping it deletes the secret"]


# ----------------------------------------------------------------- what `make doctor` relies on
def test_each_function_logs_to_the_log_group_named_after_it(template: Template) -> None:
    """ops.stack finds a function's log group among the stack's resources as <Function>Logs."""
    for name, function in resources(template, "AWS::Serverless::Function").items():
        assert function["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": f"{name}Logs"}
        assert template["Resources"][f"{name}Logs"]["Type"] == "AWS::Logs::LogGroup"


def test_the_stack_has_every_output_the_operator_tools_read(template: Template) -> None:
    assert set(REQUIRED_OUTPUTS) <= set(template["Outputs"])
    assert all("Condition" not in template["Outputs"][name] for name in REQUIRED_OUTPUTS)
