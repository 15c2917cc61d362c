"""template.yaml as CloudFormation receives it (after the SAM transform), with default parameters.

Run by `make validate` in the SAM CLI's environment, which has aws-sam-translator
(the dev environment cannot: the translator pins an older pydantic than the layer's).
Checks what only the transformed template shows:

- no AWS::Lambda::Function reserves concurrency: a new account's concurrency quota
  can be 10, and CloudFormation refuses a reservation that leaves less than 10
  unreserved ("decreases account's UnreservedConcurrentExecution below its minimum value").

Exit status 1 with one line per problem.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_stack.cfn import NO_VALUE, Resolver, load_template, resolve_parameters  # noqa: E402


class _NoManagedPolicies:
    """The translator's managed-policy loader asks IAM; the template names policies by ARN only."""

    def load(self) -> dict[str, str]:
        return {}


_PACKAGED = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
"""Properties that `sam package` turns from a local path into an S3 URI before the transform."""


def transformed(path: Path) -> dict[str, Any]:
    # Only the SAM CLI's environment has the translator (see the module docstring).
    from samtranslator.translator.transform import transform  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator fills AWS::Region from it
    template = load_template(path)
    for logical_id, resource in template["Resources"].items():
        key = _PACKAGED.get(resource.get("Type", ""))
        if key is not None:
            resource["Properties"][key] = f"s3://packaged-artifacts/{logical_id}"
    result: dict[str, Any] = transform(template, {}, _NoManagedPolicies())
    return result


def reserved_concurrency_problems(template: dict[str, Any], parameters: dict[str, str]) -> list[str]:
    resolver = Resolver(parameters=parameters, conditions_source=template.get("Conditions", {}))
    problems = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        reserved = resource.get("Properties", {}).get("ReservedConcurrentExecutions")
        value = NO_VALUE if reserved is None else resolver.resolve(reserved)
        if value is not NO_VALUE:
            problems.append(f"{logical_id}: ReservedConcurrentExecutions={value} with default parameters")
    return problems


def main() -> int:
    path = ROOT / "template.yaml"
    template = transformed(path)
    functions = [r for r in template["Resources"].values() if r.get("Type") == "AWS::Lambda::Function"]
    problems = reserved_concurrency_problems(template, resolve_parameters(load_template(path), {}))
    for problem in problems:
        print(f"transformed template: {problem}")
    if not problems:
        print(f"transformed template: none of {len(functions)} functions reserves concurrency by default")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
