"""The calls each function's code makes, and the stack built in moto to check its roles against them.

`FUNCTION_CALLS` is the one table of what every function does in AWS: each
(IAM action, resource logical id) its code, its event source mapping and Lambda on its
behalf (logs) call. The unit tests check the transformed template's roles allow exactly
these; the end-to-end suite checks every call the local stack allowed is in it, so the
table cannot fall behind the code. Add a row when the code makes a new call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto import mock_aws

from local_stack.config import ROOT, TEMPLATE, LocalConfig
from local_stack.iam_policy import NamedPolicy, role_policies
from local_stack.sam_transform import sam_transform
from local_stack.topology import TOPOLOGY_SERVICES, Topology, build_topology, moto_client

ANY_RESOURCE = "*"

_LAMBDA_LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
"""Lambda writes the function's log streams with its role (LoggingConfig: the function's own group)."""
_POLL = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
"""The SQS event source mapping polls with the function's role (DeleteMessageBatch = sqs:DeleteMessage)."""
_IDEMPOTENCY = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
"""Powertools' DynamoDBPersistenceLayer: get_item, put_item, update_item, delete_item."""

FUNCTION_CALLS: dict[str, frozenset[tuple[str, str]]] = {
    "WebhookFunction": frozenset(
        {
            *((action, "WebhookFunctionLogs") for action in _LAMBDA_LOGS),
            ("sqs:SendMessage", "InboundQueue"),  # aws/queue.py: SendMessageBatch
            ("secretsmanager:GetSecretValue", "WebhookSecret"),  # aws/secrets.py
        }
    ),
    "AiReplyFunction": frozenset(
        {
            *((action, "AiReplyFunctionLogs") for action in _LAMBDA_LOGS),
            *((action, "InboundQueue") for action in _POLL),
            ("sqs:ChangeMessageVisibility", "InboundQueue"),  # aws/batch.py: the backoff of a failed record
            ("sqs:SendMessage", "OutboundQueue"),  # typing indicator and reply
            ("sqs:SendMessage", "InboundDeadLetterQueue"),  # aws/batch.py: parking
            ("secretsmanager:GetSecretValue", "MistralApiKeySecret"),
            ("secretsmanager:GetSecretValue", "GraphAccessTokenSecret"),  # whatsapp/media.py: media download
            *((action, "IdempotencyTable") for action in _IDEMPOTENCY),
            ("dynamodb:GetItem", "MemoryTable"),  # conversation/memory.py
            ("dynamodb:PutItem", "MemoryTable"),
            ("dynamodb:GetItem", "ConversationTable"),  # conversation/control_store.py
            ("dynamodb:BatchGetItem", "ConversationTable"),  # state and day counters in one read
            ("dynamodb:UpdateItem", "ConversationTable"),  # opt-out, pause, counters (ADD)
            ("sns:Publish", "HandoffTopic"),  # aws/notify.py: the operator's handoff notice
        }
    ),
    "SendReplyFunction": frozenset(
        {
            *((action, "SendReplyFunctionLogs") for action in _LAMBDA_LOGS),
            *((action, "OutboundQueue") for action in _POLL),
            ("sqs:ChangeMessageVisibility", "OutboundQueue"),
            ("sqs:SendMessage", "OutboundDeadLetterQueue"),  # parking (expired token)
            ("secretsmanager:GetSecretValue", "GraphAccessTokenSecret"),
            *((action, "IdempotencyTable") for action in _IDEMPOTENCY),
        }
    ),
}
TRACING_CALLS = frozenset(
    {("xray:PutTraceSegments", ANY_RESOURCE), ("xray:PutTelemetryRecords", ANY_RESOURCE)}
)
"""With TracingEnabled=true Lambda sends each function's traces with its role (X-Ray takes only "*")."""


def expected_calls(function: str, tracing: bool) -> frozenset[tuple[str, str]]:
    return FUNCTION_CALLS[function] | (TRACING_CALLS if tracing else frozenset())


@dataclass
class BuiltStack:
    topology: Topology
    policies: dict[str, list[NamedPolicy]]
    """Function logical id -> its role's policies as IAM holds them (inline and attached)."""

    def resource_pattern(self, logical_id: str) -> str:
        """How a statement names the resource: its ARN (a log group's ends in `:*`), or "*"."""
        return ANY_RESOURCE if logical_id == ANY_RESOURCE else self.topology.arns[logical_id]

    def request_arn(self, logical_id: str) -> str:
        """The resource of a request on it (a log group is written through one of its streams)."""
        pattern = self.resource_pattern(logical_id)
        if pattern.startswith("arn:aws:logs:") and pattern.endswith(":*"):
            return pattern[:-1] + "log-stream:2026/01/01/[$LATEST]0123456789abcdef"
        return pattern


def build_in_moto(
    template: Path | Mapping[str, Any] = TEMPLATE, parameters: Mapping[str, str] | None = None
) -> BuiltStack:
    """The transformed template's resources created in moto's in-process mock, roles read back from IAM."""
    transformed = sam_transform(template, parameters, root=None if isinstance(template, Path) else ROOT)
    load_managed_policies = transformed.attaches_aws_managed_policies()  # ~1 s when needed
    with mock_aws(config={"iam": {"load_aws_managed_policies": load_managed_policies}}):
        clients = {name: moto_client(name) for name in TOPOLOGY_SERVICES}
        topology = build_topology(transformed, {}, clients, LocalConfig().secret_values())
        policies = {
            logical_id: role_policies(clients["iam"], topology.roles[spec.role_logical_id].name)
            for logical_id, spec in topology.functions.items()
            if spec.role_logical_id is not None
        }
    return BuiltStack(topology, policies)
