"""The local stack's topology comes from the SAM-transformed template, in moto's in-process mock.

Functions, layers, event source mappings and HTTP routes are read from the CloudFormation
resources SAM generates; resources the stack does not emulate are skipped without breaking
the references to them, so the template can grow (SNS topics, dashboards, conditional
resources) and still run locally.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local_stack.cfn import TemplateError, load_template
from local_stack.topology import Route
from tests.iam_support import build_in_moto
from tests.support import ROOT


def sam_template() -> dict[str, Any]:
    return copy.deepcopy(load_template(ROOT / "template.yaml"))


def test_functions_as_lambda_runs_them() -> None:
    topology = build_in_moto(parameters={"AiBatchSize": "3", "WebhookReservedConcurrency": "50"}).topology
    webhook, ai, send = (
        topology.functions[f] for f in ("WebhookFunction", "AiReplyFunction", "SendReplyFunction")
    )
    assert webhook.code_uri == ROOT / "functions" / "webhook"
    assert webhook.layer_paths == [ROOT / "layers" / "wa_assistant"]
    assert (webhook.handler, webhook.timeout_seconds, webhook.memory_mb, webhook.reserved_concurrency) == (
        "app.lambda_handler",
        10,
        512,
        50,
    )
    assert sorted(webhook.routes, key=lambda r: r.method) == [
        Route("GET", "/webhook"),
        Route("POST", "/webhook"),
    ]
    assert webhook.sqs_sources == []
    [inbound] = ai.sqs_sources
    assert (inbound.queue_logical_id, inbound.batch_size, inbound.maximum_concurrency) == (
        "InboundQueue",
        3,
        5,
    )
    assert inbound.report_batch_item_failures
    assert send.sqs_sources[0].queue_logical_id == "OutboundQueue"
    assert (ai.role_logical_id, ai.function_name) == ("AiReplyFunctionRole", "wa-local-AiReplyFunction")
    # Globals are merged by the transform; !Ref of a queue is its URL, of a secret its ARN (as in AWS).
    assert ai.environment["POWERTOOLS_METRICS_NAMESPACE"] == "WhatsAppAssistant"
    assert ai.environment["SOURCE_QUEUE_URL"] == topology.queue("InboundQueue").url
    assert ai.environment["MISTRAL_SECRET_NAME"] == topology.arns["MistralApiKeySecret"]
    assert ai.environment["MISTRAL_SECRET_NAME"].startswith(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    )
    assert topology.secrets["MistralApiKeySecret"] == "wa-local-MistralApiKeySecret"


def test_resources_the_stack_does_not_emulate_are_skipped_but_resolve() -> None:
    template = sam_template()
    resources = template["Resources"]
    template["Conditions"]["WantsArchive"] = {"Fn::Equals": [{"Ref": "LogLevel"}, "DEBUG"]}
    resources["AlertsTopic"] = {"Type": "AWS::SNS::Topic", "Properties": {}}
    resources["AlertsByEmail"] = {
        "Type": "AWS::SNS::Subscription",
        "Properties": {
            "Protocol": "email",
            "Endpoint": "ops@example.com",
            "TopicArn": {"Ref": "AlertsTopic"},
        },
    }
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardBody": {
                "Fn::Sub": '{"widgets":[{"q":"${InboundQueue.QueueName}","r":"${AWS::Region}"}]}'
            }
        },
    }
    resources["ArchiveQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Condition": "WantsArchive",
        "Properties": {"FifoQueue": True},
    }
    resources["InboundDeadLetterAlarm"]["Properties"]["AlarmActions"] = [{"Ref": "AlertsTopic"}]
    ai = resources["AiReplyFunction"]["Properties"]["Environment"]["Variables"]
    ai["ALERTS_TOPIC_ARN"] = {"Ref": "AlertsTopic"}
    ai["DASHBOARD"] = {"Fn::GetAtt": ["Dashboard", "DashboardArn"]}
    ai["ARCHIVE_QUEUE_URL"] = {"Fn::If": ["WantsArchive", {"Ref": "ArchiveQueue"}, {"Ref": "AWS::NoValue"}]}
    statements = resources["AiReplyFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements.append({"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "AlertsTopic"}})

    built = build_in_moto(template)
    topology = built.topology
    assert topology.arns["AlertsTopic"] == "arn:aws:sns:us-east-1:123456789012:wa-local-AlertsTopic"
    environment = topology.functions["AiReplyFunction"].environment
    assert environment["ALERTS_TOPIC_ARN"] == topology.arns["AlertsTopic"]
    assert environment["DASHBOARD"] == "wa-local-Dashboard.DashboardArn"
    assert "ARCHIVE_QUEUE_URL" not in environment
    assert "ArchiveQueue" not in topology.queues
    assert "ArchiveQueue" in build_in_moto(template, {"LogLevel": "DEBUG"}).topology.queues
    assert any(
        s.get("Action") == "sns:Publish" and s.get("Resource") == topology.arns["AlertsTopic"]
        for p in built.policies["AiReplyFunction"]
        for s in p.document["Statement"]
    )


def test_a_role_lambda_cannot_assume_is_refused() -> None:
    template = sam_template()
    trust = template["Resources"]["SendReplyFunctionRole"]["Properties"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Principal"]["Service"] = "ec2.amazonaws.com"
    with pytest.raises(TemplateError, match="cannot be assumed by Lambda"):
        build_in_moto(template)


def test_a_role_from_outside_the_template_is_refused() -> None:
    template = sam_template()
    template["Resources"]["WebhookFunction"]["Properties"]["Role"] = (
        "arn:aws:iam::123456789012:role/elsewhere"
    )
    with pytest.raises(TemplateError, match="not a role of this template"):
        build_in_moto(template)
