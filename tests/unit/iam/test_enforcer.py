"""The IAM middleware understands the requests botocore sends, and botocore reads its denials as AWS's.

Each boto3 client here sends its real request (SigV4-signed, in the service's own
protocol) through `IamEnforcer`, via botocore's before-send hook, with no network:
the middleware must find the caller, the IAM action (a batch call needs the single
action) and the resource ARN, and a denial must make botocore raise ClientError with
the error code AWS uses, so that the functions' error handling is exercised locally.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from werkzeug.test import EnvironBuilder

from local_stack.cfn import ACCOUNT_ID, REGION
from local_stack.iam_enforcer import STATE_PATH, IamEnforcer, RoleSession
from local_stack.iam_policy import NamedPolicy
from local_stack.iam_requests import ADMIN_ACCESS_KEY_ID, AwsCall, access_denied

ROLE_KEY = "ASIAROLESESSION00001"
ROLE_SECRET = "role-secret"
ROLE_TOKEN = "role-session-token"
QUEUE_URL = f"http://127.0.0.1:5000/{ACCOUNT_ID}/wa-local-InboundQueue.fifo"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:wa-local-InboundQueue.fifo"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/wa-local-IdempotencyTable"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:wa-local-MistralApiKeySecret-AbCdEf"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:wa-local-Alerts"
PRINCIPAL = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/wa-local-AiReplyFunctionRole/wa-local-AiReplyFunction"


class FakeIdentities:
    """One role session, whose policies a test sets."""

    def __init__(self) -> None:
        self.statements: list[dict[str, Any]] = []

    def session(self, access_key_id: str, session_token: str | None) -> RoleSession | None:
        if access_key_id == ROLE_KEY and session_token == ROLE_TOKEN:
            return RoleSession("wa-local-AiReplyFunctionRole", "wa-local-AiReplyFunction", ACCOUNT_ID)
        return None

    def policies(self, role_name: str) -> list[NamedPolicy]:
        return [NamedPolicy(f"{role_name}/least-privilege", {"Statement": self.statements})]

    def secret_arn(self, region: str) -> Callable[[str], str]:
        return lambda secret_id: (
            SECRET_ARN if secret_id in ("wa-local-MistralApiKeySecret", SECRET_ARN) else secret_id
        )


class Downstream:
    """Stands for moto: answers every request it is given with an empty success."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.calls.append(environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO", ""))
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b"{}"]


@pytest.fixture
def identities() -> FakeIdentities:
    return FakeIdentities()


@pytest.fixture
def downstream() -> Downstream:
    return Downstream()


@pytest.fixture
def enforcer(identities: FakeIdentities, downstream: Downstream) -> IamEnforcer:
    return IamEnforcer(downstream, ADMIN_ACCESS_KEY_ID, ACCOUNT_ID, identities=identities)


def _through(enforcer: IamEnforcer) -> Callable[..., AWSResponse]:
    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        raw: Any = request.body
        body = raw if isinstance(raw, bytes) else str(raw or "").encode()
        url = urlsplit(request.url)
        headers: list[tuple[str, str]] = []
        for name, value in request.headers.items():
            text: Any = value
            headers.append((name, text.decode() if isinstance(text, bytes) else str(text)))
        environ = EnvironBuilder(
            method=request.method, path=url.path or "/", query_string=url.query, headers=headers, data=body
        ).get_environ()
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            captured["status"] = int(status.split(maxsplit=1)[0])
            captured["headers"] = dict(headers)

        content = b"".join(enforcer(environ, start_response))

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield content

        return AWSResponse(request.url, captured["status"], captured["headers"], Raw())

    return send


def client(
    enforcer: IamEnforcer, service: str, *, key: str = ROLE_KEY, token: str | None = ROLE_TOKEN
) -> Any:
    credentials = {"aws_access_key_id": key, "aws_secret_access_key": ROLE_SECRET}
    if token is not None:
        credentials["aws_session_token"] = token
    made = boto3.client(service, region_name=REGION, endpoint_url="http://127.0.0.1:5000", **credentials)  # type: ignore[call-overload]
    made.meta.events.register("before-send", _through(enforcer))
    return made


def denied(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    error: Any = raised.value.response["Error"]
    return dict(error)


# ----------------------------------------------------------------- what is asked, and AWS's answers
def test_sqs_batch_calls_need_the_single_action_and_get_access_denied(enforcer: IamEnforcer) -> None:
    sqs = client(enforcer, "sqs")
    error = denied(
        lambda: sqs.change_message_visibility_batch(
            QueueUrl=QUEUE_URL, Entries=[{"Id": "0", "ReceiptHandle": "r", "VisibilityTimeout": 5}]
        )
    )
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (
        f"User: {PRINCIPAL} is not authorized to perform: sqs:ChangeMessageVisibility on resource: "
        f"{QUEUE_ARN} because no identity-based policy allows the sqs:ChangeMessageVisibility action"
    )
    for call, action in (
        (
            lambda: sqs.send_message_batch(QueueUrl=QUEUE_URL, Entries=[{"Id": "0", "MessageBody": "b"}]),
            "SendMessage",
        ),
        (
            lambda: sqs.delete_message_batch(QueueUrl=QUEUE_URL, Entries=[{"Id": "0", "ReceiptHandle": "r"}]),
            "DeleteMessage",
        ),
        (lambda: sqs.receive_message(QueueUrl=QUEUE_URL), "ReceiveMessage"),
    ):
        error = denied(call)
        assert error["Code"] == "AccessDenied"
        assert f"perform: sqs:{action} on resource: {QUEUE_ARN} " in error["Message"]
    assert [d["action"] for d in enforcer.denials] == [
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
        "sqs:DeleteMessage",
        "sqs:ReceiveMessage",
    ]
    assert {d["code"] for d in enforcer.denials} == {"AccessDenied"}


def test_an_allowed_call_reaches_moto_and_is_recorded(
    enforcer: IamEnforcer, identities: FakeIdentities, downstream: Downstream
) -> None:
    identities.statements = [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE_ARN}]
    client(enforcer, "sqs").send_message_batch(QueueUrl=QUEUE_URL, Entries=[{"Id": "0", "MessageBody": "b"}])
    assert downstream.calls == ["AmazonSQS.SendMessageBatch"]
    assert enforcer.allowed == {
        ("wa-local-AiReplyFunctionRole", "wa-local-AiReplyFunction", "sqs:SendMessage", QUEUE_ARN)
    }
    assert enforcer.denials == []


def test_dynamodb_denials_are_access_denied_exceptions(
    enforcer: IamEnforcer, identities: FakeIdentities
) -> None:
    dynamodb = client(enforcer, "dynamodb")
    error = denied(lambda: dynamodb.put_item(TableName="wa-local-IdempotencyTable", Item={"id": {"S": "x"}}))
    assert error["Code"] == "AccessDeniedException"
    assert f"perform: dynamodb:PutItem on resource: {TABLE_ARN} " in error["Message"]
    with pytest.raises(dynamodb.exceptions.ClientError):
        dynamodb.scan(TableName="wa-local-IdempotencyTable")
    assert enforcer.denials[-1]["action"] == "dynamodb:Scan"


def test_dynamodb_transactions_need_each_items_action_and_batches_every_table(
    enforcer: IamEnforcer, identities: FakeIdentities
) -> None:
    identities.statements = [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN}]
    dynamodb = client(enforcer, "dynamodb")
    error = denied(
        lambda: dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "wa-local-IdempotencyTable", "Item": {"id": {"S": "x"}}}},
                {
                    "Update": {
                        "TableName": "wa-local-MemoryTable",
                        "Key": {"id": {"S": "y"}},
                        "UpdateExpression": "SET a = :a",
                        "ExpressionAttributeValues": {":a": {"S": "1"}},
                    }
                },
            ]
        )
    )
    assert error["Code"] == "AccessDeniedException"
    assert (
        "dynamodb:UpdateItem on resource: " + TABLE_ARN.replace("IdempotencyTable", "MemoryTable")
        in error["Message"]
    )
    assert (
        "wa-local-AiReplyFunctionRole",
        "wa-local-AiReplyFunction",
        "dynamodb:PutItem",
        TABLE_ARN,
    ) in enforcer.allowed
    denied(
        lambda: dynamodb.batch_write_item(
            RequestItems={"wa-local-IdempotencyTable": [{"DeleteRequest": {"Key": {"id": {"S": "x"}}}}]}
        )
    )
    assert enforcer.denials[-1]["action"] == "dynamodb:BatchWriteItem"
    denied(
        lambda: dynamodb.query(
            TableName="wa-local-IdempotencyTable",
            IndexName="byUser",
            KeyConditionExpression="u = :u",
            ExpressionAttributeValues={":u": {"S": "1"}},
        )
    )
    assert enforcer.denials[-1]["resource"] == TABLE_ARN + "/index/byUser"


def test_secrets_are_checked_on_their_arn_whether_named_or_arned(enforcer: IamEnforcer) -> None:
    secrets = client(enforcer, "secretsmanager")
    for secret_id in ("wa-local-MistralApiKeySecret", SECRET_ARN):

        def read(secret_id: str = secret_id) -> Any:
            return secrets.get_secret_value(SecretId=secret_id)

        error = denied(read)
        assert error["Code"] == "AccessDeniedException"
        assert f"perform: secretsmanager:GetSecretValue on resource: {SECRET_ARN} " in error["Message"]


def test_sns_denials_are_authorization_errors(enforcer: IamEnforcer) -> None:
    sns = client(enforcer, "sns")
    error = denied(lambda: sns.publish(TopicArn=TOPIC_ARN, Message="m"))
    assert error["Code"] == "AuthorizationError"
    assert f"perform: sns:Publish on resource: {TOPIC_ARN} " in error["Message"]
    denied(
        lambda: sns.publish_batch(
            TopicArn=TOPIC_ARN, PublishBatchRequestEntries=[{"Id": "0", "Message": "m"}]
        )
    )
    assert enforcer.denials[-1]["action"] == "sns:Publish"


def test_an_explicit_deny_is_named_as_aws_names_it(enforcer: IamEnforcer, identities: FakeIdentities) -> None:
    identities.statements = [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": QUEUE_ARN},
    ]
    error = denied(lambda: client(enforcer, "sqs").send_message(QueueUrl=QUEUE_URL, MessageBody="b"))
    assert error["Message"].endswith("with an explicit deny in an identity-based policy")


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("sqs", lambda c: c.send_message(QueueUrl=QUEUE_URL, MessageBody="b"), "InvalidClientTokenId"),
        (
            "dynamodb",
            lambda c: c.get_item(TableName="t", Key={"id": {"S": "x"}}),
            "UnrecognizedClientException",
        ),
        ("sns", lambda c: c.publish(TopicArn=TOPIC_ARN, Message="m"), "InvalidClientTokenId"),
    ],
)
def test_unknown_credentials_are_refused_as_aws_refuses_them(
    enforcer: IamEnforcer, service: str, call: Callable[[Any], Any], code: str
) -> None:
    assert (
        denied(lambda: call(client(enforcer, service, key="AKIAUNKNOWN000000000", token=None)))["Code"]
        == code
    )
    assert denied(lambda: call(client(enforcer, service, token="stale-token")))["Code"] == code


def test_the_stacks_own_credentials_pass_unchecked(enforcer: IamEnforcer, downstream: Downstream) -> None:
    client(enforcer, "sqs", key=ADMIN_ACCESS_KEY_ID, token=None).purge_queue(QueueUrl=QUEUE_URL)
    assert downstream.calls == ["AmazonSQS.PurgeQueue"]
    assert enforcer.denials == []


def test_the_state_endpoint_lists_denials_and_allowed_calls(enforcer: IamEnforcer) -> None:
    denied(lambda: client(enforcer, "sqs").send_message(QueueUrl=QUEUE_URL, MessageBody="b"))
    environ = EnvironBuilder(path=STATE_PATH).get_environ()
    body = b"".join(enforcer(environ, lambda status, headers: None))
    state = json.loads(body)
    assert [d["action"] for d in state["denials"]] == ["sqs:SendMessage"]
    assert state["denials"][0]["principal"] == PRINCIPAL
    assert state["allowed"] == []


def test_the_query_protocols_denial_parses_as_access_denied() -> None:
    """SQS's query protocol (older SDKs): 403 XML AccessDenied, as botocore's query parser reads it."""
    call = AwsCall("sqs", "query", "SendMessage", {"QueueUrl": QUEUE_URL}, REGION, ACCOUNT_ID)
    response = access_denied(call, "User: x is not authorized")
    sqs_model = boto3.client("sqs", region_name=REGION).meta.service_model
    output_shape = sqs_model.operation_model("SendMessage").output_shape
    assert output_shape is not None
    parsed = create_parser("query").parse(
        {"status_code": response.status, "headers": dict(response.headers), "body": response.body},
        output_shape,
    )
    assert response.status == 403
    assert parsed["Error"]["Code"] == "AccessDenied"
    assert parsed["Error"]["Message"] == "User: x is not authorized"
