"""template.yaml's conversation control: contract parameter names, the durable table, the topic, the alarm.

Each rule returns its violations, and a test shows it catches a broken copy (as in
test_template_security).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local_stack.cfn import load_template
from tests.support import ROOT
from tests.unit.ai_reply.helpers import CONTROL_PARAMETERS

Template = dict[str, Any]

CONTRACT_PARAMETERS = {
    "HandoffKeywords",
    "HandoffReply",
    "HandoffEmail",
    "HandoffPauseHours",
    "OptOutKeywords",
    "OptOutReply",
    "OptInKeywords",
    "UserDailyMessageLimit",
    "UserDailyTokenLimit",
    "UserLimitReply",
    "DailyTokenBudget",
    "BusyReply",
}
"""Issue 13's names: operators and tests use them."""


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def ai_environment(template: Template) -> dict[str, Any]:
    variables: dict[str, Any] = template["Resources"]["AiReplyFunction"]["Properties"]["Environment"][
        "Variables"
    ]
    return variables


def control_wiring_problems(template: Template) -> list[str]:
    """Every control variable of the AI function is set from the parameter of its contract name."""
    problems = [
        f"parameter {name} is missing" for name in sorted(CONTRACT_PARAMETERS - set(template["Parameters"]))
    ]
    variables = ai_environment(template)
    for variable, parameter in CONTROL_PARAMETERS.items():
        if variables.get(variable) != {"Ref": parameter}:
            problems.append(f"{variable} is not !Ref {parameter}")
    if variables.get("CONVERSATION_TABLE_NAME") != {"Ref": "ConversationTable"}:
        problems.append("CONVERSATION_TABLE_NAME is not !Ref ConversationTable")
    if variables.get("HANDOFF_TOPIC_ARN") != {"Ref": "HandoffTopic"}:
        problems.append("HANDOFF_TOPIC_ARN is not !Ref HandoffTopic")
    return problems


def durable_table_problems(template: Template) -> list[str]:
    """Opt-outs survive `sam delete` and replacements; only day counters expire."""
    table = template["Resources"]["ConversationTable"]
    properties = table["Properties"]
    problems = [
        f"{policy} is not Retain"
        for policy in ("DeletionPolicy", "UpdateReplacePolicy")
        if table.get(policy) != "Retain"
    ]
    if properties.get("TimeToLiveSpecification") != {"AttributeName": "expires_at", "Enabled": True}:
        problems.append("TTL is not on expires_at (the day counters' attribute)")
    if properties.get("PointInTimeRecoverySpecification") != {"PointInTimeRecoveryEnabled": True}:
        problems.append("no point-in-time recovery")
    if properties.get("SSESpecification") != {"SSEEnabled": True}:
        problems.append("not encrypted")
    if properties.get("BillingMode") != "PAY_PER_REQUEST":
        problems.append("not on demand")
    return problems


def budget_alarms(template: Template) -> list[str]:
    """Alarms on DailyTokenBudgetReached as the AI function emits it."""
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    expected = [{"Name": "service", "Value": ai_environment(template)["POWERTOOLS_SERVICE_NAME"]}]
    return [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == namespace
        and resource["Properties"].get("MetricName") == "DailyTokenBudgetReached"
        and resource["Properties"].get("Dimensions") == expected
        and resource["Properties"].get("Threshold") == 0
        and resource["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
    ]


def test_every_contract_parameter_reaches_the_ai_function(template: Template) -> None:
    assert control_wiring_problems(template) == []


def test_the_conversation_table_keeps_opt_outs(template: Template) -> None:
    assert durable_table_problems(template) == []


def test_the_budget_alarm_watches_what_the_ai_function_emits(template: Template) -> None:
    assert budget_alarms(template) == ["DailyTokenBudgetAlarm"]


def test_the_handoff_topic_is_encrypted_and_the_email_subscription_optional(template: Template) -> None:
    resources = template["Resources"]
    assert resources["HandoffTopic"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"
    subscription = resources["HandoffEmailSubscription"]
    assert subscription["Condition"] == "HasHandoffEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "HandoffTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "HandoffEmail"},
    }
    assert template["Conditions"]["HasHandoffEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "HandoffEmail"}, ""]}]
    }


def test_the_rules_catch_broken_copies(template: Template) -> None:
    broken = copy.deepcopy(template)
    del broken["Parameters"]["BusyReply"]
    ai_environment(broken)["OPT_OUT_KEYWORDS"] = "STOP"
    del broken["Resources"]["ConversationTable"]["DeletionPolicy"]
    broken["Resources"]["ConversationTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] = "ttl"
    broken["Resources"]["DailyTokenBudgetAlarm"]["Properties"]["Dimensions"][0]["Value"] = "webhook"
    assert control_wiring_problems(broken) == [
        "parameter BusyReply is missing",
        "OPT_OUT_KEYWORDS is not !Ref OptOutKeywords",
    ]
    assert durable_table_problems(broken) == [
        "DeletionPolicy is not Retain",
        "TTL is not on expires_at (the day counters' attribute)",
    ]
    assert budget_alarms(broken) == []


def test_the_readme_documents_every_control_parameter_with_its_default(template: Template) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in sorted(set(CONTROL_PARAMETERS.values()) | CONTRACT_PARAMETERS):
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"README's configuration table has no row for {name}"
        default = str(template["Parameters"][name]["Default"])
        shown = row.split("|")[2].strip().strip('`"')
        # Keyword lists are shown with a space after each comma.
        assert shown.replace(", ", ",") == (default or "empty").replace(", ", ","), (name, shown, default)
