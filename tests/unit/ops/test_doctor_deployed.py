"""`make doctor STACK_NAME=...` against a deployed stack: AWS in moto, Meta and Mistral through respx.

CloudFormation's answers come from botocore's Stubber (moto's CloudFormation cannot create
this template's secrets and alarms); the stubbed describe_stacks/list_stack_resources name
the resources created in moto, as CloudFormation would. The webhook is a respx route that
applies the deployed function's contract (the verify token, the X-Hub-Signature-256).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import respx
from botocore.stub import Stubber
from moto import mock_aws

from ops.doctor import Redactor, close_models, parse_args, run
from ops.meta import graph_problem
from ops.stack import DeployedStack, default_region
from tests.support import CORPUS

REGION = "eu-west-1"
STACK = "wa-prod"
WEBHOOK_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/webhook"
GRAPH = "https://graph.facebook.com/v23.0"
MISTRAL = "https://api.mistral.ai/v1"
PHONE = "106540352242922"
WABA = "102290129340398"
APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "GeneratedVerifyTokenXYZ0123456789"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBAFakeSystemUserToken1234567890"
MISTRAL_KEY = "mistral-key-abcdefghijklmnop"


@dataclass
class Deployment:
    """A deployed stack's resources in moto, and what CloudFormation says about them."""

    session: Any
    outputs: dict[str, str]
    resources: list[tuple[str, str, str]]
    status: str = "UPDATE_COMPLETE"
    secret_values: dict[str, str] = field(default_factory=dict)
    sns_stub: Any = None

    def put_secret(self, output: str, value: str) -> None:
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.put_secret_value(SecretId=self.outputs[output], SecretString=value)


class StubbedSession:
    """A boto3 session whose CloudFormation (and, when set, SNS) answers come from a Stubber."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.region_name = REGION
        self._session: Any = boto3.Session(region_name=REGION)

    def client(self, service: str) -> Any:
        if service == "sns" and self.deployment.sns_stub is not None:
            return self.deployment.sns_stub
        if service != "cloudformation":
            return self._session.client(service)
        client = self._session.client("cloudformation")
        stubber = Stubber(client)
        when = datetime(2026, 1, 1, tzinfo=UTC)
        stubber.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": STACK,
                        "CreationTime": when,
                        "StackStatus": self.deployment.status,
                        "Outputs": [
                            {"OutputKey": k, "OutputValue": v} for k, v in self.deployment.outputs.items()
                        ],
                        "Parameters": [
                            {
                                "ParameterKey": "GraphApiBaseUrl",
                                "ParameterValue": "https://graph.facebook.com",
                            },
                            {"ParameterKey": "GraphApiVersion", "ParameterValue": "v23.0"},
                            {"ParameterKey": "MistralBaseUrl", "ParameterValue": MISTRAL},
                            {"ParameterKey": "MistralModel", "ParameterValue": "mistral-small-latest"},
                            {"ParameterKey": "SecretsMaxAgeSeconds", "ParameterValue": "300"},
                        ],
                    }
                ]
            },
            {"StackName": STACK},
        )
        stubber.add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    {
                        "LogicalResourceId": logical,
                        "PhysicalResourceId": physical,
                        "ResourceType": kind,
                        "LastUpdatedTimestamp": when,
                        "ResourceStatus": "CREATE_COMPLETE",
                    }
                    for logical, kind, physical in self.deployment.resources
                ]
            },
            {"StackName": STACK},
        )
        stubber.activate()
        return client


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        secrets = session.client("secretsmanager")
        secret_values = {
            "WebhookSecretName": json.dumps({"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}),
            "MistralApiKeySecretName": MISTRAL_KEY,
            "GraphAccessTokenSecretName": ACCESS_TOKEN,
        }
        outputs = {"WebhookUrl": WEBHOOK_URL}
        resources = []
        for output, value in secret_values.items():
            arn = secrets.create_secret(Name=f"{STACK}-{output}", SecretString=value)["ARN"]
            outputs[output] = arn  # !Ref of a secret is its ARN in AWS
            resources.append((output.removesuffix("Name"), "AWS::SecretsManager::Secret", arn))
        sqs = session.client("sqs")
        for logical in ("InboundDeadLetterQueue", "OutboundDeadLetterQueue"):
            url = sqs.create_queue(QueueName=f"{STACK}-{logical}.fifo", Attributes={"FifoQueue": "true"})[
                "QueueUrl"
            ]
            outputs[f"{logical}Url"] = url
            resources.append((logical, "AWS::SQS::Queue", url))
        cloudwatch = session.client("cloudwatch")
        for logical in ("GraphAuthFailureAlarm", "InboundDeadLetterAlarm"):
            name = f"{STACK}-{logical}-1A2B3C"
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                AlarmDescription=f"{logical} description",
                Namespace="WhatsAppAssistant",
                MetricName="GraphAuthFailed",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=0,
                ComparisonOperator="GreaterThanThreshold",
            )
            resources.append((logical, "AWS::CloudWatch::Alarm", name))
        logs = session.client("logs")
        for function in ("WebhookFunction", "AiReplyFunction", "SendReplyFunction"):
            group = f"{STACK}-{function}Logs-XYZ"
            logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName="2026/01/01/[$LATEST]abc")
            resources.append((function, "AWS::Lambda::Function", f"{STACK}-{function}-XYZ"))
            resources.append((f"{function}Logs", "AWS::Logs::LogGroup", group))
        outputs["DashboardUrl"] = (
            f"https://{REGION}.console.aws.amazon.com/cloudwatch/home#dashboards/dashboard/d"
        )
        yield Deployment(session=None, outputs=outputs, resources=resources, secret_values=secret_values)


@pytest.fixture
def meta_and_mistral() -> Iterator[respx.MockRouter]:
    """Meta's Graph API and Mistral as the docs describe them, and the deployed webhook's contract."""

    def webhook(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            query = request.url.params
            if query.get("hub.mode") == "subscribe" and query.get("hub.verify_token") == VERIFY_TOKEN:
                return httpx.Response(200, text=query["hub.challenge"])
            return httpx.Response(403, text="Forbidden")
        expected = "sha256=" + hmac.new(APP_SECRET.encode(), request.content, hashlib.sha256).hexdigest()
        if request.headers.get("X-Hub-Signature-256") != expected:
            return httpx.Response(401, text="Unauthorized: missing")
        return httpx.Response(200, json={"received": 0})

    with respx.mock(assert_all_called=False) as router:
        router.route(url__startswith=WEBHOOK_URL, name="webhook").mock(side_effect=webhook)
        router.get(
            f"{GRAPH}/{PHONE}", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, name="phone"
        ).respond(
            200,
            json={
                "id": PHONE,
                "display_phone_number": "+1 555-078-3881",
                "verified_name": "Jaspers Market",
                "quality_rating": "GREEN",
                "platform_type": "CLOUD_API",
                "throughput": {"level": "STANDARD"},
                "messaging_limit_tier": "TIER_1K",
            },
        )
        router.get(f"{GRAPH}/{WABA}/subscribed_apps", name="apps").respond(
            200,
            json={"data": [{"whatsapp_business_api_data": {"id": "1234", "name": "My app", "link": "x"}}]},
        )
        router.get(
            f"{MISTRAL}/models", headers={"Authorization": f"Bearer {MISTRAL_KEY}"}, name="models"
        ).respond(
            200,
            json={
                "object": "list",
                "data": [
                    {"id": "mistral-small-2506", "capabilities": {"completion_chat": True}, "aliases": []},
                    {
                        "id": "mistral-small-latest",
                        "capabilities": {"completion_chat": True},
                        "aliases": ["mistral-small-2506"],
                    },
                ],
            },
        )
        yield router


def doctor(deployment: Deployment, *extra: str) -> tuple[int, str]:
    printed: list[str] = []
    deployment.session = StubbedSession(deployment)
    args = parse_args(["--stack-name", STACK, "--phone-number-id", PHONE, "--waba-id", WABA, *extra])
    status = run(args, printed.append, session=deployment.session)
    output = "\n".join(printed)
    for value in (APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN, MISTRAL_KEY):
        assert value not in output
    return status, output


def line(output: str, title: str) -> str:
    found = [text for text in output.splitlines() if text[2:].startswith(f"{title}:")]
    assert len(found) == 1, output
    return found[0]


# ----------------------------------------------------------------- a healthy stack
def test_a_healthy_deployed_stack_passes(deployment: Deployment, meta_and_mistral: respx.MockRouter) -> None:
    status, output = doctor(deployment)
    assert status == 0, output
    assert "✗" not in output
    assert "○" not in output
    assert line(output, "Stack").startswith(f"✔ Stack: {STACK} is UPDATE_COMPLETE; WebhookUrl {WEBHOOK_URL}")
    assert "dashboard https://" in line(output, "Stack")
    assert "verified name Jaspers Market" in line(output, "WhatsApp token and phone number")
    assert "My app (1234)" in line(output, "App subscribed to the WhatsApp Business Account")
    assert "offers mistral-small-latest" in line(output, "Model API key and model")
    assert line(output, "Alarms") == "✔ Alarms: none of 2 in ALARM (CloudWatch)"
    assert output.endswith("All 15 checks passed.")


def test_without_a_waba_id_the_subscription_is_not_checked_and_does_not_fail(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    printed: list[str] = []
    deployment.session = StubbedSession(deployment)
    status = run(
        parse_args(["--stack-name", STACK, "--phone-number-id", PHONE]), printed.append, deployment.session
    )
    assert status == 0
    assert any(p.startswith("○ App subscribed") and "WABA_ID=" in p for p in printed)


# ----------------------------------------------------------------- secrets
def test_placeholders_fail_and_what_needs_them_is_not_checked(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    deployment.session = StubbedSession(deployment)
    deployment.put_secret(
        "WebhookSecretName", '{"app_secret": "SET-ME-FROM-META-APP-SETTINGS", "verify_token": "abc"}'
    )
    deployment.put_secret("MistralApiKeySecretName", "SET-ME")
    deployment.put_secret("GraphAccessTokenSecretName", "SET-ME")

    status, output = doctor(deployment)

    assert status == 1
    assert line(output, "Webhook secret").startswith("✗ Webhook secret: app_secret is still the placeholder.")
    assert "App settings > Basic" in line(output, "Webhook secret")
    assert "console.mistral.ai" in line(output, "Model API key secret")
    assert "put-secret-value --secret-id arn:aws:secretsmanager:" in line(output, "Model API key secret")
    assert "--region eu-west-1" in line(output, "Model API key secret")
    assert "System User token" in line(output, "WhatsApp token secret")
    for skipped in (
        "Meta's verification (GET WebhookUrl)",
        "WhatsApp token and phone number",
        "Model API key and model",
    ):
        assert line(output, skipped).startswith("○ ")
    assert "3 of" in output.splitlines()[-1]


@pytest.mark.parametrize(
    ("output_name", "value", "problem"),
    [
        ("WebhookSecretName", "app-secret-as-plain-text", 'is not a JSON object {"app_secret"'),
        ("WebhookSecretName", '{"app_secret": "x"}', "lacks verify_token"),
        ("MistralApiKeySecretName", '{"api_key": "k"}', "holds JSON"),
        ("GraphAccessTokenSecretName", "Bearer EAAxyz", "starts with 'Bearer '"),
        ("GraphAccessTokenSecretName", "EAA part1\nEAA part2", "contains spaces or line breaks"),
        ("MistralApiKeySecretName", "   ", "is empty"),
    ],
)
def test_secret_shapes_the_functions_cannot_use_are_named(
    deployment: Deployment, meta_and_mistral: respx.MockRouter, output_name: str, value: str, problem: str
) -> None:
    deployment.put_secret(output_name, value)
    status, output = doctor(deployment)
    assert status == 1
    title = {
        "WebhookSecretName": "Webhook secret",
        "MistralApiKeySecretName": "Model API key secret",
        "GraphAccessTokenSecretName": "WhatsApp token secret",
    }[output_name]
    assert problem in line(output, title)
    assert line(output, title).startswith("✗ ")


# ----------------------------------------------------------------- the webhook
def test_a_function_still_on_the_old_secret_is_told_to_wait(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    deployment.put_secret(
        "WebhookSecretName", json.dumps({"app_secret": "a-new-app-secret", "verify_token": "new"})
    )
    status, output = doctor(deployment)
    assert status == 1
    for title in ("Meta's verification (GET WebhookUrl)", "Webhook signature (POST WebhookUrl)"):
        assert line(output, title).startswith("✗ ")
        assert "within 300 s (SecretsMaxAgeSeconds)" in line(output, title)


def test_a_webhook_that_enqueues_a_status_update_fails(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    meta_and_mistral["webhook"].side_effect = lambda request: (
        httpx.Response(200, text=request.url.params["hub.challenge"])
        if request.method == "GET"
        else httpx.Response(200, json={"received": 1})
    )
    status, output = doctor(deployment)
    assert status == 1
    assert "a status update was taken for 1 message(s) to answer" in line(
        output, "Webhook signature (POST WebhookUrl)"
    )


# ----------------------------------------------------------------- Meta
def test_an_unsubscribed_waba_gets_the_exact_subscribe_call(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    meta_and_mistral["apps"].respond(200, json={"data": []})
    status, output = doctor(deployment)
    assert status == 1
    text = line(output, "App subscribed to the WhatsApp Business Account")
    assert f"curl -X POST '{GRAPH}/{WABA}/subscribed_apps'" in text
    secret = deployment.outputs["GraphAccessTokenSecretName"]
    assert f"$(aws secretsmanager get-secret-value --secret-id {secret} --query SecretString" in text


def test_a_number_not_registered_for_the_cloud_api_fails(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    meta_and_mistral["phone"].respond(
        200, json={"id": PHONE, "verified_name": "Jaspers Market", "platform_type": "NOT_APPLICABLE"}
    )
    status, output = doctor(deployment)
    assert status == 1
    assert "register it: POST /106540352242922/register" in line(output, "WhatsApp token and phone number")


def test_a_graph_version_without_some_field_falls_back_to_the_defaults(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    route = meta_and_mistral["phone"]
    route.side_effect = [
        httpx.Response(
            400,
            json={"error": {"message": "(#100) Tried accessing nonexisting field (throughput)", "code": 100}},
        ),
        httpx.Response(200, json={"id": PHONE, "verified_name": "Jaspers Market", "quality_rating": "GREEN"}),
    ]
    status, output = doctor(deployment)
    assert status == 0, output
    assert "verified name Jaspers Market, quality GREEN" in line(output, "WhatsApp token and phone number")
    assert "fields" not in str(route.calls[1].request.url)


def _corpus_190() -> dict[str, Any]:
    path = CORPUS / "graph" / "error_190_token_expired.json"
    if path.exists():
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    return {
        "error": {
            "message": "Error validating access token: Session has expired",
            "code": 190,
            "error_subcode": 463,
        }
    }


@pytest.mark.parametrize(
    ("status", "body", "problem", "fix"),
    [
        (401, _corpus_190(), "the access token has expired", "System User token"),
        (401, {"error": {"message": "Invalid OAuth access token", "code": 190}}, "not valid", "System User"),
        (403, {"error": {"message": "(#10) Permission denied", "code": 10}}, "may not use", "assets"),
        (
            403,
            {
                "error": {
                    "message": "Your app is not linked to the WABA",
                    "code": 200,
                    "error_subcode": 1349175,
                }
            },
            "may not use",
            "whatsapp_business_management",
        ),
        (
            400,
            {"error": {"message": "Unsupported get request.", "code": 100, "error_subcode": 33}},
            "is not visible to this token",
            "API Setup",
        ),
        (404, {"error": {"message": "Phone number not found", "code": 803}}, "is not visible", "API Setup"),
        (429, {"error": {"message": "Application request limit reached", "code": 4}}, "rate limit", "again"),
        (403, {"error": {"message": "Account restricted", "code": 368}}, "restricted", "Account quality"),
        (500, {"error": {"message": "An unexpected error occurred", "code": 2}}, "unavailable", "later"),
        (400, {"error": {"message": "Odd", "code": 131009}}, "code 131009", "error codes reference"),
    ],
)
def test_graph_errors_say_which_permission_or_asset_is_missing(
    status: int, body: dict[str, Any], problem: str, fix: str
) -> None:
    said, advice = graph_problem(status, body, f"phone number id {PHONE}")
    assert problem in said
    assert fix in advice


def test_an_expired_token_fails_the_whatsapp_check_end_to_end(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    meta_and_mistral["phone"].respond(401, json=_corpus_190())
    status, output = doctor(deployment)
    assert status == 1
    assert "the access token has expired" in line(output, "WhatsApp token and phone number")


# ----------------------------------------------------------------- the model
def test_a_rejected_key_and_a_missing_model(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    meta_and_mistral["models"].respond(401, json={"message": "Unauthorized", "request_id": "r"})
    status, output = doctor(deployment)
    assert status == 1
    assert "key rejected by https://api.mistral.ai/v1 (401)" in line(output, "Model API key and model")

    meta_and_mistral["models"].respond(
        200, json={"object": "list", "data": [{"id": "mistral-small-2506", "capabilities": {}}]}
    )
    status, output = doctor(deployment)
    assert "offers no model 'mistral-small-latest'; close names: mistral-small-2506" in output


def test_close_models_puts_the_same_family_first() -> None:
    offered = ["mistral-large-latest", "mistral-small-2506", "ministral-8b-latest", "codestral-latest"]
    assert close_models("mistral-small-latest", offered)[0] == "mistral-small-2506"
    assert close_models("gpt-4o", ["gpt-4o-mini", "o3"]) == ["gpt-4o-mini"]


# ----------------------------------------------------------------- nothing stuck
def test_parked_messages_alarms_and_error_lines(
    deployment: Deployment, meta_and_mistral: respx.MockRouter
) -> None:
    session = boto3.Session(region_name=REGION)
    session.client("sqs").send_message(
        QueueUrl=deployment.outputs["OutboundDeadLetterQueueUrl"],
        MessageBody="{}",
        MessageGroupId="g",
        MessageDeduplicationId="d",
    )
    session.client("cloudwatch").set_alarm_state(
        AlarmName=f"{STACK}-GraphAuthFailureAlarm-1A2B3C", StateValue="ALARM", StateReason="threshold crossed"
    )
    now = int(time.time() * 1000)
    group = f"{STACK}-SendReplyFunctionLogs-XYZ"
    session.client("logs").put_log_events(
        logGroupName=group,
        logStreamName="2026/01/01/[$LATEST]abc",
        logEvents=[
            {"timestamp": now - 3000, "message": json.dumps({"level": "INFO", "message": "Reply sent"})},
            {
                "timestamp": now - 2000,
                "message": json.dumps(
                    {"level": "ERROR", "message": "Graph refused the token", "echo": f"Bearer {ACCESS_TOKEN}"}
                ),
            },
            {
                "timestamp": now - 1000,
                "message": "2026-01-01T00:00:00Z abc Task timed out after 30.00 seconds",
            },
        ],
    )

    status, output = doctor(deployment)

    assert status == 1
    assert line(output, "Outbound dead-letter queue").startswith(
        "✗ Outbound dead-letter queue: 1 message waits"
    )
    assert "aws sqs start-message-move-task --source-arn arn:aws:sqs:eu-west-1:" in output
    assert line(output, "Alarm GraphAuthFailureAlarm").startswith("✗ Alarm GraphAuthFailureAlarm: in ALARM")
    assert "replace the WhatsApp token" in line(output, "Alarm GraphAuthFailureAlarm")
    assert line(output, "SendReplyFunction log").startswith("! ")
    assert "Graph refused the token" in output
    assert "[secret]" in output  # the token a log line carried is not printed
    assert "Task timed out" in output
    assert "Reply sent" not in output
    assert line(output, "WebhookFunction log").startswith("✔ ")


def test_an_unconfirmed_alarm_email_fails(deployment: Deployment, meta_and_mistral: respx.MockRouter) -> None:
    topic = f"arn:aws:sns:{REGION}:123456789012:{STACK}-AlarmTopic-ABC"
    deployment.outputs["AlarmTopicArn"] = topic
    sns = boto3.client("sns", region_name=REGION)
    stubber = Stubber(sns)
    stubber.add_response(
        "list_subscriptions_by_topic",
        {"Subscriptions": [{"SubscriptionArn": "PendingConfirmation", "Endpoint": "owner@example.com"}]},
        {"TopicArn": topic},
    )
    stubber.activate()
    deployment.sns_stub = sns
    status, output = doctor(deployment)
    assert status == 1
    assert "owner@example.com has not confirmed the subscription" in line(output, "Alarm email")


# ----------------------------------------------------------------- the stack itself
def test_a_missing_stack_is_one_line_with_the_fix(deployment: Deployment) -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist", expected_params=None
    )
    stubber.activate()

    class Session:
        region_name = REGION

        def client(self, service: str) -> Any:
            return client

    printed: list[str] = []
    assert run(parse_args(["--stack-name", STACK]), printed.append, Session()) == 1
    assert printed == [
        f"✗ Stack: no stack {STACK} in {REGION}. Fix: check STACK_NAME and the region (samconfig.toml holds "
        "both after `sam deploy --guided`)."
    ]


@pytest.mark.parametrize(
    ("status", "expected", "continues"),
    [
        ("UPDATE_ROLLBACK_COMPLETE", "the last update failed and was rolled back", True),
        ("UPDATE_IN_PROGRESS", "is being changed", False),
        ("ROLLBACK_COMPLETE", "must be removed with sam delete", False),
    ],
)
def test_stack_states_that_need_attention(
    deployment: Deployment, meta_and_mistral: respx.MockRouter, status: str, expected: str, continues: bool
) -> None:
    deployment.status = status
    code, output = doctor(deployment)
    assert code == 1
    assert expected in line(output, "Stack")
    assert ("Webhook secret:" in output) is continues


def test_an_older_stack_without_the_outputs_stops_at_the_stack_line(deployment: Deployment) -> None:
    del deployment.outputs["OutboundDeadLetterQueueUrl"]
    status, output = doctor(deployment)
    assert status == 1
    assert output.splitlines()[1].startswith("✗ Stack: wa-prod lacks the outputs OutboundDeadLetterQueueUrl.")
    assert len(output.splitlines()) == 3


# ----------------------------------------------------------------- helpers
def test_operator_tools_find_a_resource_by_its_logical_id(deployment: Deployment) -> None:
    view = DeployedStack.open(STACK, session=StubbedSession(deployment))
    assert view.physical_id("InboundDeadLetterQueue") == deployment.outputs["InboundDeadLetterQueueUrl"]
    assert view.physical_id("NoSuchResource") is None
    assert view.functions == ["WebhookFunction", "AiReplyFunction", "SendReplyFunction"]


def test_region_comes_from_the_argument_then_the_environment_then_samconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text('version = 0.1\n[default.deploy.parameters]\nregion = "ap-south-1"\n')
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert default_region(None, samconfig) == "ap-south-1"
    assert default_region(None, tmp_path / "none.toml") is None
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert default_region(None, samconfig) == "us-west-2"
    assert default_region("eu-central-1", samconfig) == "eu-central-1"


def test_redactor_hides_every_form_of_a_secret_and_meta_tokens() -> None:
    redact = Redactor()
    redact.add('se"cret-value')
    text = redact('plain se"cret-value, escaped se\\"cret-value, token EAAB' + "x" * 30 + " end")
    assert text == "plain [secret], escaped [secret], token [token] end"
