"""The stack described by template.yaml, after the SAM transform: resources created in moto.

The template goes through aws-sam-translator (`local_stack.sam_transform`) exactly as
`sam deploy` hands it to CloudFormation; every resource of the *transformed* template
is then created in dependency order, as CloudFormation would: queues, tables,
secrets, SNS topics and IAM roles (with their inline and managed policies) in moto;
functions, layers, event source mappings and HTTP routes resolved for the local
runtime. Resource types the local stack does not emulate (log groups, alarms,
dashboards, permissions, stages, subscriptions...) are skipped, but `!Ref` and
`!GetAtt` of them still resolve to values shaped like AWS's, so a template that
grows new resources keeps working locally. Only the values of the secrets come
from the local configuration.
"""

from __future__ import annotations

import graphlib
import json
import secrets as token_source
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_stack.cfn import (
    ACCOUNT_ID,
    PSEUDO_PARAMETERS,
    REGION,
    STACK_NAME,
    Resolver,
    TemplateError,
    cfn_string,
    references,
)
from local_stack.iam_requests import ADMIN_ACCESS_KEY_ID
from local_stack.sam_transform import TransformedTemplate, sam_transform

__all__ = [
    "ACCOUNT_ID",
    "ADMIN_ACCESS_KEY_ID",
    "REGION",
    "STACK_NAME",
    "FunctionSpec",
    "QueueInfo",
    "RoleInfo",
    "Route",
    "SqsEventSource",
    "Topology",
    "build_topology",
    "moto_client",
]

TOPOLOGY_SERVICES = ("sqs", "dynamodb", "secretsmanager", "sns", "iam")
"""The AWS services `build_topology` creates resources in: one client each."""

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
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"


def moto_client(
    service: str, endpoint_url: str | None = None, credentials: Mapping[str, str] | None = None
) -> Any:
    """A boto3 client for the local moto server (None: moto's in-process mock).

    Without `credentials`, the stack's own admin credentials; with them (a function's
    role session: AWS_ACCESS_KEY_ID...), every call is checked against that role.
    """
    if credentials is None:
        keys = {
            "aws_access_key_id": ADMIN_ACCESS_KEY_ID,
            "aws_secret_access_key": "testing",  # moto's dummy credentials
        }
    else:
        keys = {
            "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": credentials["AWS_SESSION_TOKEN"],
        }
    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION, **keys)  # type: ignore[call-overload]


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
    role_logical_id: str | None = None
    """The AWS::IAM::Role whose credentials the function (and its event source mappings) use."""
    function_name: str = ""


@dataclass(frozen=True)
class QueueInfo:
    logical_id: str
    name: str
    url: str
    arn: str


@dataclass(frozen=True)
class RoleInfo:
    logical_id: str
    name: str
    arn: str


@dataclass
class Topology:
    parameters: dict[str, str]
    queues: dict[str, QueueInfo]
    tables: dict[str, str]
    secrets: dict[str, str]
    """Secret logical id -> its name (what `sam local invoke` reads; `!Ref` gives the ARN)."""
    functions: dict[str, FunctionSpec]
    roles: dict[str, RoleInfo] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    """Logical id -> ARN of every resource that has one (created, or stood in for)."""
    template: dict[str, Any] = field(default_factory=dict)
    """The transformed template (CloudFormation, intrinsics unresolved)."""
    topics: dict[str, str] = field(default_factory=dict)
    """SNS topic logical id -> ARN."""

    def queue(self, logical_id: str) -> QueueInfo:
        return self.queues[logical_id]

    def logical_id_of_arn(self, arn: str) -> str | None:
        for logical_id, known in self.arns.items():
            if known == arn:
                return logical_id
        return None


def _secret_env_vars(functions: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Secret logical id -> the environment variable through which a function reads its name."""
    found: dict[str, str] = {}
    for function in functions.values():
        variables = function.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for name, node in variables.items():
            if isinstance(node, dict) and "Ref" in node:
                found.setdefault(str(node["Ref"]), name)
    return found


def _service_of(resource_type: str) -> str:
    return resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "unknown"


class _Builder:
    """Creates one transformed template's resources, in dependency order."""

    def __init__(
        self, transformed: TransformedTemplate, clients: Mapping[str, Any], secret_values: Mapping[str, str]
    ) -> None:
        self.transformed = transformed
        self.template = transformed.template
        self.clients = clients
        self.secret_values = secret_values
        self.resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        self.stand_ins: dict[str, str] = {}
        self.resolver = Resolver(
            parameters=transformed.parameters,
            conditions_source=self.template.get("Conditions", {}),
            pseudo=PSEUDO_PARAMETERS,
            mappings=self.template.get("Mappings", {}),
            placeholder_attribute=self._stand_in_attribute,
        )
        self.topology = Topology(transformed.parameters, {}, {}, {}, {}, template=self.template)
        self.layer_folders: dict[str, Path] = {}
        self.function_by_name: dict[str, str] = {}
        self.secret_env_var = _secret_env_vars(transformed.resources("AWS::Lambda::Function"))
        self.handlers: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::SQS::Queue": self._queue,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::SNS::Topic": self._topic,
            "AWS::IAM::Role": self._role,
            "AWS::IAM::Policy": self._inline_policy,
            "AWS::IAM::ManagedPolicy": self._managed_policy,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::Lambda::LayerVersion": self._layer,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "AWS::ApiGatewayV2::Api": self._http_api,
        }

    # ------------------------------------------------------------ order
    def active(self) -> dict[str, dict[str, Any]]:
        """Resources whose Condition holds (CloudFormation creates no others)."""
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if "Condition" not in resource or self.resolver.condition(str(resource["Condition"]))
        }

    def build(self) -> Topology:
        active = self.active()
        graph: dict[str, set[str]] = {}
        for logical_id, resource in active.items():
            depends = resource.get("DependsOn", [])
            named = set(references(resource.get("Properties", {}))) | set(
                [depends] if isinstance(depends, str) else depends
            )
            graph[logical_id] = {name for name in named if name in active and name != logical_id}
        try:
            order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as error:
            raise TemplateError(f"circular dependency between resources: {error.args[1]}") from None
        for logical_id in order:
            resource = active[logical_id]
            handler = self.handlers.get(str(resource.get("Type")))
            if handler is None:
                self._stand_in(logical_id, str(resource.get("Type")))
            else:
                handler(logical_id, self.resolver.resolve(resource.get("Properties", {})))
        self._check_function_roles()
        return self.topology

    # ------------------------------------------------------------ stand-ins
    def _stand_in(self, logical_id: str, resource_type: str) -> None:
        name = f"{STACK_NAME}-{logical_id}"
        self.stand_ins[logical_id] = resource_type
        self.resolver.refs[logical_id] = name
        self._arn(logical_id, f"arn:aws:{_service_of(resource_type)}:{REGION}:{ACCOUNT_ID}:{name}")

    def _stand_in_attribute(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.stand_ins:
            return None
        if attribute == "Arn":
            return self.topology.arns[logical_id]
        return f"{self.resolver.refs[logical_id]}.{attribute}"

    def _arn(self, logical_id: str, arn: str) -> None:
        self.topology.arns[logical_id] = arn
        self.resolver.attributes[(logical_id, "Arn")] = arn

    # ------------------------------------------------------------ data
    def _queue(self, logical_id: str, properties: dict[str, Any]) -> None:
        if "QueueName" in properties:
            name = str(properties["QueueName"])
        else:
            fifo = cfn_string(properties.get("FifoQueue", "false")) == "true"
            name = f"{STACK_NAME}-{logical_id}" + (".fifo" if fifo else "")
        attributes = {k: cfn_string(properties[k]) for k in QUEUE_ATTRIBUTES if k in properties}
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in properties:
                policy = dict(properties[key])
                if "maxReceiveCount" in policy:
                    policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
                attributes[key] = json.dumps(policy)
        sqs = self.clients["sqs"]
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.topology.queues[logical_id] = QueueInfo(logical_id, name, url, arn)
        self.resolver.refs[logical_id] = url
        self._arn(logical_id, arn)
        self.resolver.attributes[(logical_id, "QueueName")] = name
        self.resolver.attributes[(logical_id, "QueueUrl")] = url

    def _table(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = str(properties.get("TableName", f"{STACK_NAME}-{logical_id}"))
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
        dynamodb = self.clients["dynamodb"]
        arn = dynamodb.create_table(**arguments)["TableDescription"]["TableArn"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and cfn_string(ttl.get("Enabled", "false")) == "true":
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        self.topology.tables[logical_id] = name
        self.resolver.refs[logical_id] = name
        self._arn(logical_id, arn)

    def _secret(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = str(properties.get("Name", f"{STACK_NAME}-{logical_id}"))
        env_var = self.secret_env_var.get(logical_id)
        if env_var is not None and env_var in self.secret_values:
            value = self.secret_values[env_var]
        elif "SecretString" in properties:
            value = cfn_string(properties["SecretString"])
        else:
            generate = properties.get("GenerateSecretString", {})
            token = token_source.token_urlsafe(24)
            if "SecretStringTemplate" in generate and "GenerateStringKey" in generate:
                fields = json.loads(generate["SecretStringTemplate"])
                fields[generate["GenerateStringKey"]] = token
                value = json.dumps(fields)
            else:
                value = token
        arn = self.clients["secretsmanager"].create_secret(Name=name, SecretString=value)["ARN"]
        self.topology.secrets[logical_id] = name
        # As in AWS: !Ref of a secret is its ARN (functions accept it as SecretId).
        self.resolver.refs[logical_id] = arn
        self._arn(logical_id, arn)
        self.resolver.attributes[(logical_id, "Id")] = arn

    def _topic(self, logical_id: str, properties: dict[str, Any]) -> None:
        fifo = cfn_string(properties.get("FifoTopic", "false")) == "true"
        name = str(properties.get("TopicName", f"{STACK_NAME}-{logical_id}" + (".fifo" if fifo else "")))
        attributes = {"FifoTopic": "true"} if fifo else {}
        if "ContentBasedDeduplication" in properties:
            attributes["ContentBasedDeduplication"] = cfn_string(properties["ContentBasedDeduplication"])
        arn = self.clients["sns"].create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.resolver.refs[logical_id] = arn
        self._arn(logical_id, arn)
        self.resolver.attributes[(logical_id, "TopicArn")] = arn
        self.resolver.attributes[(logical_id, "TopicName")] = name
        self.topology.topics[logical_id] = arn

    def _log_group(self, logical_id: str, properties: dict[str, Any]) -> None:
        """Not created (functions log to the terminal), but named and ARN'd as CloudFormation would."""
        name = str(properties.get("LogGroupName", f"{STACK_NAME}-{logical_id}"))
        self.resolver.refs[logical_id] = name
        self._arn(logical_id, f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*")

    # ------------------------------------------------------------ IAM
    def _role(self, logical_id: str, properties: dict[str, Any]) -> None:
        iam = self.clients["iam"]
        name = str(properties.get("RoleName", f"{STACK_NAME}-{logical_id}"))
        arguments: dict[str, Any] = {
            "RoleName": name,
            "Path": properties.get("Path", "/"),
            "AssumeRolePolicyDocument": _policy_json(properties["AssumeRolePolicyDocument"]),
        }
        if "MaxSessionDuration" in properties:
            arguments["MaxSessionDuration"] = int(properties["MaxSessionDuration"])
        role = iam.create_role(**arguments)["Role"]
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=name,
                PolicyName=str(policy["PolicyName"]),
                PolicyDocument=_policy_json(policy["PolicyDocument"]),
            )
        for policy_arn in properties.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=str(policy_arn))
        self.topology.roles[logical_id] = RoleInfo(logical_id, name, role["Arn"])
        self.resolver.refs[logical_id] = name
        self._arn(logical_id, role["Arn"])
        self.resolver.attributes[(logical_id, "RoleId")] = role["RoleId"]

    def _inline_policy(self, logical_id: str, properties: dict[str, Any]) -> None:
        for role_name in properties.get("Roles", []):
            self.clients["iam"].put_role_policy(
                RoleName=str(role_name),
                PolicyName=str(properties["PolicyName"]),
                PolicyDocument=_policy_json(properties["PolicyDocument"]),
            )
        self.resolver.refs[logical_id] = f"{STACK_NAME}-{logical_id}"

    def _managed_policy(self, logical_id: str, properties: dict[str, Any]) -> None:
        iam = self.clients["iam"]
        arn = iam.create_policy(
            PolicyName=str(properties.get("ManagedPolicyName", f"{STACK_NAME}-{logical_id}")),
            Path=properties.get("Path", "/"),
            PolicyDocument=_policy_json(properties["PolicyDocument"]),
        )["Policy"]["Arn"]
        for role_name in properties.get("Roles", []):
            iam.attach_role_policy(RoleName=str(role_name), PolicyArn=arn)
        self.resolver.refs[logical_id] = arn
        self._arn(logical_id, arn)

    # ------------------------------------------------------------ Lambda
    def _layer(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = str(properties.get("LayerName", f"{STACK_NAME}-{logical_id}"))
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1"
        self.layer_folders[arn] = self.transformed.code_folder(properties.get("Content"))
        self.resolver.refs[logical_id] = arn
        self._arn(logical_id, arn)

    def _function(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = str(properties.get("FunctionName", f"{STACK_NAME}-{logical_id}"))
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        layers: list[Path] = []
        for layer in properties.get("Layers", []):
            if str(layer) not in self.layer_folders:
                raise TemplateError(f"{logical_id}: layer {layer} is not a layer of this template")
            layers.append(self.layer_folders[str(layer)])
        role_arn = str(properties.get("Role", ""))
        role = next((r for r in self.topology.roles.values() if r.arn == role_arn), None)
        if role is None:
            raise TemplateError(
                f"{logical_id}: its Role {role_arn!r} is not a role of this template, so the local stack "
                "cannot give the function its credentials"
            )
        environment = properties.get("Environment", {}).get("Variables", {})
        self.topology.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=self.transformed.code_folder(properties.get("Code")),
            handler=str(properties["Handler"]),
            timeout_seconds=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            layer_paths=layers,
            environment={k: cfn_string(v) for k, v in environment.items() if v is not None},
            reserved_concurrency=(
                int(properties["ReservedConcurrentExecutions"])
                if "ReservedConcurrentExecutions" in properties
                else None
            ),
            role_logical_id=role.logical_id,
            function_name=name,
        )
        self.function_by_name[name] = logical_id
        self.function_by_name[arn] = logical_id
        self.resolver.refs[logical_id] = name
        self._arn(logical_id, arn)

    def _event_source_mapping(self, logical_id: str, properties: dict[str, Any]) -> None:
        function = self.function_by_name.get(str(properties.get("FunctionName")))
        source_arn = str(properties.get("EventSourceArn"))
        queue = next((q for q in self.topology.queues.values() if q.arn == source_arn), None)
        if function is None or queue is None:
            raise TemplateError(
                f"{logical_id}: only SQS event sources of this template's functions are served locally"
            )
        scaling = properties.get("ScalingConfig", {})
        self.topology.functions[function].sqs_sources.append(
            SqsEventSource(
                queue_logical_id=queue.logical_id,
                batch_size=int(properties.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures"
                in properties.get("FunctionResponseTypes", []),
                maximum_concurrency=(
                    int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None
                ),
                enabled=cfn_string(properties.get("Enabled", "true")) == "true",
            )
        )
        self.resolver.refs[logical_id] = f"{STACK_NAME}-{logical_id}"

    def _http_api(self, logical_id: str, properties: dict[str, Any]) -> None:
        """Routes from the API's OpenAPI body: each path and method integrated with a function."""
        for path, methods in properties.get("Body", {}).get("paths", {}).items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                uri = str(integration.get("uri", ""))
                function = next(
                    (
                        f
                        for f in self.topology.functions.values()
                        if f"function:{f.function_name}/" in uri or f":{f.function_name}/" in uri
                    ),
                    None,
                )
                if function is None:
                    continue
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                route_path = "$default" if path in ("$default", "/$default") else path
                function.routes.append(Route(verb, route_path))
        self.resolver.refs[logical_id] = f"{STACK_NAME}-{logical_id}"
        self._arn(logical_id, f"arn:aws:apigateway:{REGION}::/apis/{STACK_NAME}-{logical_id}")

    def _check_function_roles(self) -> None:
        """Lambda refuses a role it cannot assume (CreateFunction: "cannot be assumed by Lambda")."""
        for spec in self.topology.functions.values():
            assert spec.role_logical_id is not None
            trust = self.resolver.resolve(
                self.resources[spec.role_logical_id]["Properties"]["AssumeRolePolicyDocument"]
            )
            if not any(_trusts_lambda(statement) for statement in _listed(trust.get("Statement"))):
                raise TemplateError(
                    f"{spec.logical_id}: the role {spec.role_logical_id} does not let {LAMBDA_PRINCIPAL} "
                    "sts:AssumeRole, so the role defined for the function cannot be assumed by Lambda"
                )


def _policy_json(document: Mapping[str, Any]) -> str:
    """A policy document for moto's IAM.

    SAM's policy templates omit Version; IAM accepts that (it means 2008-10-17, which only
    differs in not expanding policy variables, which the local evaluator never does), moto
    refuses it, so the current version is filled in.
    """
    return json.dumps({"Version": "2012-10-17", **document})


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _trusts_lambda(statement: Mapping[str, Any]) -> bool:
    services = _listed(statement.get("Principal", {}).get("Service", []))
    actions = _listed(statement.get("Action", []))
    return (
        statement.get("Effect") == "Allow"
        and LAMBDA_PRINCIPAL in services
        and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions)
    )


def build_topology(
    template: Path | Mapping[str, Any] | TransformedTemplate,
    parameter_overrides: Mapping[str, str],
    clients: Mapping[str, Any],
    secret_values: Mapping[str, str],
    root: Path | None = None,
) -> Topology:
    """Transform the template, create its resources in moto and resolve the functions.

    `clients` holds one admin client per service of TOPOLOGY_SERVICES. `secret_values`
    maps the environment variable a function reads a secret's name from
    (WEBHOOK_SECRET_NAME...) to the value to store, so that the secrets are found
    the way the functions find them. A template given as data needs `root`, the
    folder its CodeUri paths are relative to; an already transformed one is used as is.
    """
    if isinstance(template, TransformedTemplate):
        transformed = template
    else:
        transformed = sam_transform(template, parameter_overrides, root)
    return _Builder(transformed, clients, secret_values).build()
