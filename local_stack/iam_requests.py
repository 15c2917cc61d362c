"""What an AWS API request asks IAM for, and how AWS answers when IAM says no.

For each request reaching the local moto server: the caller's access key (from the
SigV4 Authorization header), the operation (JSON protocols: X-Amz-Target; query
protocols: Action), and the (IAM action, resource ARN) pairs IAM authorises, named
as AWS names them:
- a batch call needs the single action's permission (SendMessageBatch ->
  sqs:SendMessage, DeleteMessageBatch -> sqs:DeleteMessage, ChangeMessageVisibilityBatch
  -> sqs:ChangeMessageVisibility, PublishBatch -> sns:Publish);
- DynamoDB's transactions need each item's own action on each item's table
  (TransactWriteItems -> PutItem/UpdateItem/DeleteItem/ConditionCheckItem,
  TransactGetItems -> GetItem); BatchGetItem/BatchWriteItem are actions of their own,
  checked on every table they touch; a Query/Scan of an index is on the index's ARN;
- Secrets Manager's SecretId (a name or an ARN) is checked on the secret's full ARN;
- anything else is `<service>:<Operation>` on "*".

A denial is answered per protocol exactly as AWS does, so that botocore raises
ClientError with AWS's code: SQS (JSON, awsQueryCompatible) 403 with
`x-amzn-query-error: AccessDenied;Sender` (botocore reports AccessDenied); SQS query
403 XML AccessDenied; DynamoDB (JSON 1.0) and Secrets Manager (JSON 1.1) 400
AccessDeniedException; SNS (query) 403 XML AuthorizationError.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

ADMIN_ACCESS_KEY_ID = "testing"
"""The local stack's own access key (it acts as CloudFormation and as the operator): never checked."""
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "execute-api"}
"""SigV4 signing names that differ from the service's IAM prefix."""
SINGLE_ACTION = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("sns", "PublishBatch"): "Publish",
}
"""Batch operations that IAM authorises as their single action."""
_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}
"""Actions IAM never denies (AWS: "No permissions are required to perform this operation")."""


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    region: str
    service: str


def parse_authorization(header: str) -> Credential | None:
    """The access key, region and signing service of a SigV4 Authorization header."""
    found = _CREDENTIAL.search(header or "")
    if found is None:
        return None
    return Credential(found.group(1), found.group(2), found.group(3))


@dataclass(frozen=True)
class AwsCall:
    """One API request: which service, over which protocol, which operation with which parameters."""

    service: str
    """The SigV4 signing name (sqs, dynamodb, secretsmanager, sns...)."""
    protocol: str
    """"json" (X-Amz-Target) or "query" (Action=...)."""
    operation: str
    params: Mapping[str, Any]
    region: str
    account_id: str
    path: str = "/"

    @property
    def iam_prefix(self) -> str:
        return IAM_PREFIX.get(self.service, self.service)


def aws_call(
    credential: Credential,
    headers: Mapping[str, str],
    *,
    path: str,
    query_string: str,
    body: bytes,
    account_id: str,
) -> AwsCall | None:
    """The call a request makes, or None when it is not an API call this module understands."""
    lowered = {k.lower(): v for k, v in headers.items()}
    target = lowered.get("x-amz-target")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return AwsCall(
            credential.service,
            "json",
            target.rsplit(".", 1)[-1],
            params if isinstance(params, dict) else {},
            credential.region,
            account_id,
            path,
        )
    form = dict(parse_qsl(query_string, keep_blank_values=True))
    if body and "json" not in lowered.get("content-type", ""):
        form.update(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    if "Action" not in form:
        return None
    return AwsCall(credential.service, "query", form["Action"], form, credential.region, account_id, path)


def _sqs_queue_arn(call: AwsCall) -> str:
    url = call.params.get("QueueUrl")
    # The query protocol may also name the queue by the request's path.
    parts = (urlsplit(str(url)).path if url else call.path).strip("/").split("/")
    if len(parts) >= 2 and parts[-2].isdigit():
        return f"arn:aws:sqs:{call.region}:{parts[-2]}:{parts[-1]}"
    name = call.params.get("QueueName")
    if name:
        return f"arn:aws:sqs:{call.region}:{call.account_id}:{name}"
    return "*"


def _table_arn(call: AwsCall, table: str, index: str | None = None) -> str:
    if table.startswith("arn:"):
        arn = table
    else:
        arn = f"arn:aws:dynamodb:{call.region}:{call.account_id}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb_targets(call: AwsCall) -> list[tuple[str, str]]:
    params = call.params
    operation = call.operation
    if operation in ("BatchGetItem", "BatchWriteItem"):
        tables = sorted(params.get("RequestItems", {}))
        return [(f"dynamodb:{operation}", _table_arn(call, t)) for t in tables] or [
            (f"dynamodb:{operation}", "*")
        ]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        targets: list[tuple[str, str]] = []
        for item in params.get("TransactItems", []):
            for kind, detail in item.items():
                action = _TRANSACT_ITEM_ACTIONS.get(kind)
                if action and isinstance(detail, dict) and "TableName" in detail:
                    pair = (f"dynamodb:{action}", _table_arn(call, str(detail["TableName"])))
                    if pair not in targets:
                        targets.append(pair)
        return targets or [(f"dynamodb:{operation}", "*")]
    if "TableName" in params:
        index = params.get("IndexName") if operation in ("Query", "Scan") else None
        return [(f"dynamodb:{operation}", _table_arn(call, str(params["TableName"]), index))]
    return [(f"dynamodb:{operation}", "*")]


def call_targets(call: AwsCall, secret_arn: Callable[[str], str]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs IAM must allow for this call; `secret_arn` resolves a SecretId."""
    prefix = call.iam_prefix
    single = SINGLE_ACTION.get((prefix, call.operation), call.operation)
    action = f"{prefix}:{single}"
    if prefix == "sqs":
        return [(action, _sqs_queue_arn(call))]
    if prefix == "dynamodb":
        return _dynamodb_targets(call)
    if prefix == "secretsmanager":
        secret_id = call.params.get("SecretId") or call.params.get("Name")
        return [(action, secret_arn(str(secret_id)) if secret_id else "*")]
    if prefix == "sns":
        arn = call.params.get("TopicArn") or call.params.get("TargetArn")
        if not arn and call.operation == "CreateTopic" and call.params.get("Name"):
            arn = f"arn:aws:sns:{call.region}:{call.account_id}:{call.params['Name']}"
        return [(action, str(arn) if arn else "*")]
    return [(action, "*")]


# ---------------------------------------------------------------- AWS's answers
@dataclass(frozen=True)
class ErrorResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    code: str = ""
    """The error code botocore reports for this answer (ClientError's Error.Code)."""


def _json_error(status: int, error_type: str, message: str, content_type: str) -> ErrorResponse:
    request_id = str(uuid.uuid4())
    body = json.dumps({"__type": error_type, "message": message}).encode()
    headers = [("Content-Type", content_type), ("x-amzn-RequestId", request_id)]
    return ErrorResponse(status, headers, body, error_type.rsplit("#", 1)[-1])


def _xml_error(status: int, code: str, message: str, namespace: str) -> ErrorResponse:
    request_id = str(uuid.uuid4())
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{escape(message)}</Message><Detail/></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return ErrorResponse(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body, code)


_JSON_CONTENT_TYPE = {
    "sqs": "application/x-amz-json-1.0",
    "dynamodb": "application/x-amz-json-1.0",
    "secretsmanager": "application/x-amz-json-1.1",
}
_XML_NAMESPACE = {
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
}


def access_denied(call: AwsCall, message: str) -> ErrorResponse:
    """AWS's AccessDenied answer to this call, in its protocol."""
    if call.protocol == "json":
        content_type = _JSON_CONTENT_TYPE.get(call.service, "application/x-amz-json-1.1")
        if call.service == "sqs":
            # awsQueryCompatible: the query protocol's code travels in a header (botocore reads it).
            response = _json_error(
                403, "com.amazon.coral.service#AccessDeniedException", message, content_type
            )
            return ErrorResponse(
                403,
                [*response.headers, ("x-amzn-query-error", "AccessDenied;Sender")],
                response.body,
                "AccessDenied",
            )
        return _json_error(400, "com.amazon.coral.service#AccessDeniedException", message, content_type)
    if call.service == "sns":
        return _xml_error(403, "AuthorizationError", message, _XML_NAMESPACE["sns"])
    namespace = _XML_NAMESPACE.get(call.service, f"https://{call.service}.amazonaws.com/doc/")
    return _xml_error(403, "AccessDenied", message, namespace)


INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."  # noqa: S105 - AWS's text


def invalid_token(call: AwsCall) -> ErrorResponse:
    """AWS's answer to credentials it does not know (a key from elsewhere, a stale session)."""
    if call.protocol == "json":
        content_type = _JSON_CONTENT_TYPE.get(call.service, "application/x-amz-json-1.1")
        if call.service == "sqs":
            response = _json_error(
                403, "com.amazon.coral.service#InvalidClientTokenId", INVALID_TOKEN_MESSAGE, content_type
            )
            return ErrorResponse(
                403,
                [*response.headers, ("x-amzn-query-error", "InvalidClientTokenId;Sender")],
                response.body,
                "InvalidClientTokenId",
            )
        return _json_error(
            400, "com.amazon.coral.service#UnrecognizedClientException", INVALID_TOKEN_MESSAGE, content_type
        )
    namespace = _XML_NAMESPACE.get(call.service, f"https://{call.service}.amazonaws.com/doc/")
    return _xml_error(403, "InvalidClientTokenId", INVALID_TOKEN_MESSAGE, namespace)


def denial_message(principal_arn: str, action: str, resource: str, aws_reason: str) -> str:
    return (
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {aws_reason}"
    )
