"""The stack described by template.yaml: resources created in moto, functions resolved.

Everything here is read from the template (queues and their attributes, tables,
secrets, functions, routes, event source mappings); only the values of the
secrets come from the local configuration.
"""

from __future__ import annotations

import json
import secrets as token_source
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_stack.cfn import (
    NO_VALUE,
    Resolver,
    TemplateError,
    cfn_string,
    load_template,
    logical_id_of,
    resolve_parameters,
    resources_of_type,
)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK_NAME = "wa-local"

QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "SqsManagedSseEnabled",
)
"""CloudFormation properties of AWS::SQS::Queue that are also SetQueueAttributes names."""


def moto_client(service: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client for the local moto server (None: moto's in-process mock), with dummy credentials."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )


@dataclass(frozen=True)
class Route:
    method: str
    path: str


@dataclass(frozen=True)
class SqsEventSource:
    queue_logical_id: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None
    enabled: bool = True


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    layer_paths: list[Path]
    environment: dict[str, str]
    reserved_concurrency: int | None
    routes: list[Route] = field(default_factory=list)
    sqs_sources: list[SqsEventSource] = field(default_factory=list)


@dataclass(frozen=True)
class QueueInfo:
    logical_id: str
    name: str
    url: str
    arn: str


@dataclass
class Topology:
    parameters: dict[str, str]
    queues: dict[str, QueueInfo]
    tables: dict[str, str]
    secrets: dict[str, str]
    functions: dict[str, FunctionSpec]

    def queue(self, logical_id: str) -> QueueInfo:
        return self.queues[logical_id]


def _queue_name(logical_id: str, properties: Mapping[str, Any]) -> str:
    if "QueueName" in properties:
        return str(properties["QueueName"])
    fifo = cfn_string(properties.get("FifoQueue", "false")) == "true"
    return f"{STACK_NAME}-{logical_id}" + (".fifo" if fifo else "")


def _secret_env_vars(template: Mapping[str, Any]) -> dict[str, str]:
    """Secret logical id -> the environment variable through which a function reads its name."""
    found: dict[str, str] = {}
    for function in resources_of_type(template, "AWS::Serverless::Function").values():
        variables = function.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for name, node in variables.items():
            if isinstance(node, dict) and "Ref" in node:
                found.setdefault(str(node["Ref"]), name)
    return found


def build_topology(
    template_path: Path,
    parameter_overrides: Mapping[str, str],
    clients: Mapping[str, Any],
    secret_values: Mapping[str, str],
) -> Topology:
    """Create the template's queues, tables and secrets in moto and resolve the functions.

    `secret_values` maps the environment variable a function reads a secret's
    name from (WEBHOOK_SECRET_NAME...) to the value to store, so that the
    secrets are found the way the functions find them.
    """
    template = load_template(template_path)
    root = template_path.parent
    parameters = resolve_parameters(template, parameter_overrides)
    resolver = Resolver(
        parameters=parameters,
        conditions_source=template.get("Conditions", {}),
        pseudo={
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    # Anything not created locally (log groups, the HTTP API...) is referred to by its logical id.
    for logical_id in template.get("Resources", {}):
        resolver.refs[logical_id] = logical_id
    for logical_id, layer in resources_of_type(template, "AWS::Serverless::LayerVersion").items():
        resolver.refs[logical_id] = str(root / layer["Properties"]["ContentUri"])

    queues = _create_queues(template, resolver, clients["sqs"])
    tables = _create_tables(template, resolver, clients["dynamodb"])
    secret_names = _create_secrets(template, resolver, clients["secretsmanager"], secret_values)
    functions = _resolve_functions(template, resolver, root)
    return Topology(parameters, queues, tables, secret_names, functions)


def _create_queues(template: Mapping[str, Any], resolver: Resolver, sqs: Any) -> dict[str, QueueInfo]:
    created: dict[str, QueueInfo] = {}
    redrives: dict[str, Any] = {}
    for logical_id, resource in resources_of_type(template, "AWS::SQS::Queue").items():
        raw = resource.get("Properties", {})
        properties = resolver.resolve({k: v for k, v in raw.items() if k != "RedrivePolicy"})
        name = _queue_name(logical_id, properties)
        attributes = {k: cfn_string(properties[k]) for k in QUEUE_ATTRIBUTES if k in properties}
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[logical_id] = QueueInfo(logical_id, name, url, arn)
        resolver.refs[logical_id] = url
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "QueueName")] = name
        resolver.attributes[(logical_id, "QueueUrl")] = url
        if "RedrivePolicy" in raw:
            redrives[logical_id] = raw["RedrivePolicy"]
    # Redrive policies point at other queues: set them once every queue exists.
    for logical_id, policy in redrives.items():
        resolved = resolver.resolve(policy)
        resolved["maxReceiveCount"] = int(resolved["maxReceiveCount"])
        sqs.set_queue_attributes(
            QueueUrl=created[logical_id].url, Attributes={"RedrivePolicy": json.dumps(resolved)}
        )
    return created


def _create_tables(template: Mapping[str, Any], resolver: Resolver, dynamodb: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        properties = resolver.resolve(resource.get("Properties", {}))
        name = properties.get("TableName", f"{STACK_NAME}-{logical_id}")
        arguments: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if arguments["BillingMode"] != "PAY_PER_REQUEST":
            throughput = properties["ProvisionedThroughput"]
            arguments["ProvisionedThroughput"] = {k: int(v) for k, v in throughput.items()}
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                arguments[key] = properties[key]
        dynamodb.create_table(**arguments)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and cfn_string(ttl.get("Enabled", "false")) == "true":
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        names[logical_id] = name
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
    return names


def _create_secrets(
    template: Mapping[str, Any], resolver: Resolver, secretsmanager: Any, secret_values: Mapping[str, str]
) -> dict[str, str]:
    env_var_of = _secret_env_vars(template)
    names: dict[str, str] = {}
    for logical_id, resource in resources_of_type(template, "AWS::SecretsManager::Secret").items():
        properties = resolver.resolve(resource.get("Properties", {}))
        name = properties.get("Name", f"{STACK_NAME}-{logical_id}")
        env_var = env_var_of.get(logical_id)
        if env_var is not None and env_var in secret_values:
            value = secret_values[env_var]
        elif "SecretString" in properties:
            value = cfn_string(properties["SecretString"])
        else:
            value = token_source.token_urlsafe(24)
        arn = secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
        names[logical_id] = name
        # The brief of the local stack: !Ref of a secret gives the name the function reads.
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = arn
    return names


def _resolve_functions(
    template: Mapping[str, Any], resolver: Resolver, root: Path
) -> dict[str, FunctionSpec]:
    globals_ = template.get("Globals", {}).get("Function", {})
    functions: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        own = resource.get("Properties", {})
        merged: dict[str, Any] = {**globals_, **own}
        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
        layers = [*globals_.get("Layers", []), *own.get("Layers", [])]
        resolver.refs[logical_id] = f"{STACK_NAME}-{logical_id}"
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STACK_NAME}-{logical_id}"
        )
        environment = {
            name: cfn_string(value)
            for name, value in resolver.resolve(variables).items()
            if value is not None
        }
        spec = FunctionSpec(
            logical_id=logical_id,
            code_uri=root / str(resolver.resolve(merged["CodeUri"])),
            handler=str(resolver.resolve(merged["Handler"])),
            timeout_seconds=int(resolver.resolve(merged.get("Timeout", 3))),
            memory_mb=int(resolver.resolve(merged.get("MemorySize", 128))),
            layer_paths=[Path(p) for p in resolver.resolve(layers)],
            environment=environment,
            reserved_concurrency=_optional_int(resolver.resolve(merged.get("ReservedConcurrentExecutions"))),
        )
        for event in own.get("Events", {}).values():
            _add_event_source(spec, event, resolver)
        functions[logical_id] = spec
    return functions


def _optional_int(value: Any) -> int | None:
    """An optional numeric property: absent, or !If [..., !Ref AWS::NoValue], gives None."""
    return None if value is None or value is NO_VALUE else int(value)


def _add_event_source(spec: FunctionSpec, event: Mapping[str, Any], resolver: Resolver) -> None:
    kind = event.get("Type")
    properties = event.get("Properties", {})
    if kind == "HttpApi":
        resolved = resolver.resolve({k: v for k, v in properties.items() if k != "ApiId"})
        spec.routes.append(
            Route(str(resolved.get("Method", "ANY")).upper(), str(resolved.get("Path", "$default")))
        )
    elif kind == "SQS":
        resolved = resolver.resolve({k: v for k, v in properties.items() if k != "Queue"})
        scaling = resolved.get("ScalingConfig", {})
        spec.sqs_sources.append(
            SqsEventSource(
                queue_logical_id=logical_id_of(properties["Queue"]),
                batch_size=int(resolved.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures"
                in resolved.get("FunctionResponseTypes", []),
                maximum_concurrency=(
                    int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None
                ),
                enabled=cfn_string(resolved.get("Enabled", "true")) == "true",
            )
        )
    else:
        raise TemplateError(f"{spec.logical_id}: event type {kind} is not served by the local stack")
