"""The three functions as template.yaml declares them: build dir, handler, memory, environment.

Reuses the local stack's CloudFormation loader and resolver (local_stack.cfn);
resources are given dummy physical ids, since nothing is created here: the
cold-start children must make no AWS call at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_stack.cfn import Resolver, cfn_string, load_template, resolve_parameters, resources_of_type

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DEFAULT_MEMORY_MB = 128
"""Lambda's own default when neither Globals nor the function set MemorySize."""


@dataclass(frozen=True)
class FunctionInfo:
    logical_id: str
    code_uri: str
    handler_module: str
    handler_name: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]


def dummy_physical_id(logical_id: str, resource_type: str) -> str:
    """What !Ref returns for a resource, shaped like the real thing."""
    if resource_type == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/bench-{logical_id}.fifo"
    if resource_type == "AWS::SecretsManager::Secret":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:bench-{logical_id}-AbCdEf"
    return f"bench-{logical_id}"


def _dummy_attributes(template: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    attributes: dict[tuple[str, str], str] = {}
    for logical_id in template.get("Resources", {}):
        attributes[(logical_id, "Arn")] = f"arn:aws:bench:{REGION}:{ACCOUNT_ID}:{logical_id}"
        attributes[(logical_id, "QueueName")] = f"bench-{logical_id}.fifo"
    return attributes


def read_functions(template_path: Path, overrides: Mapping[str, str] | None = None) -> list[FunctionInfo]:
    """Every AWS::Serverless::Function with Globals merged and intrinsics resolved."""
    template = load_template(template_path)
    parameters = resolve_parameters(template, dict(overrides or {}))
    resolver = Resolver(
        parameters=parameters,
        conditions_source=template.get("Conditions", {}),
        refs={
            logical_id: dummy_physical_id(logical_id, resource.get("Type", ""))
            for logical_id, resource in template.get("Resources", {}).items()
        },
        attributes=_dummy_attributes(template),
        pseudo={"AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::URLSuffix": "amazonaws.com"},
    )
    globals_ = template.get("Globals", {}).get("Function", {})
    global_env = resolver.resolve(globals_.get("Environment", {}).get("Variables", {}))
    default_memory = globals_.get("MemorySize", DEFAULT_MEMORY_MB)
    default_timeout = globals_.get("Timeout", 3)
    functions: list[FunctionInfo] = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = resource.get("Properties", {})
        env = {**global_env, **resolver.resolve(properties.get("Environment", {}).get("Variables", {}))}
        module, _, name = str(properties["Handler"]).rpartition(".")
        functions.append(
            FunctionInfo(
                logical_id=logical_id,
                code_uri=str(properties["CodeUri"]),
                handler_module=module,
                handler_name=name,
                memory_mb=int(resolver.resolve(properties.get("MemorySize", default_memory))),
                timeout_s=int(resolver.resolve(properties.get("Timeout", default_timeout))),
                environment={key: cfn_string(value) for key, value in env.items()},
            )
        )
    return functions
