"""template.yaml after the SAM transform, as CloudFormation receives it from `sam deploy`.

The transform is aws-sam-translator's own code (the library `sam validate` and the
CloudFormation transform run), offline: the managed policies SAM adds by name
(AWSLambdaBasicExecutionRole, AWSLambdaSQSQueueExecutionRole...) come from its bundled
name -> ARN map, and no AWS account is asked. Local code folders are replaced by
`s3://` locations as `sam package` does; `TransformedTemplate.code_folder` maps each
location back to its folder.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

from local_stack.cfn import PSEUDO_PARAMETERS, REGION, TemplateError, load_template, resolve_parameters

CODE_BUCKET = "local-stack-code"
"""The bucket named in the transformed template's code locations; nothing is uploaded."""
_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


@dataclass(frozen=True)
class TransformedTemplate:
    template: dict[str, Any]
    """The CloudFormation template (intrinsic functions still unresolved)."""
    parameters: dict[str, str]
    """Every parameter's value: defaults, then the overrides, validated."""
    code_folders: dict[str, Path]
    """S3 key of a code location -> the local folder it stands for."""

    def code_folder(self, location: Any) -> Path:
        """The local folder of a Lambda `Code` / layer `Content` ({S3Bucket, S3Key})."""
        if isinstance(location, Mapping) and location.get("S3Bucket") == CODE_BUCKET:
            key = str(location.get("S3Key"))
            if key in self.code_folders:
                return self.code_folders[key]
        raise TemplateError(f"code location {location!r} is not a local folder of the template")

    def attaches_aws_managed_policies(self) -> bool:
        """Whether a role attaches an AWS managed policy (moto then has to load their documents)."""
        return any(
            ":iam::aws:policy/" in json.dumps(role.get("Properties", {}).get("ManagedPolicyArns", []))
            for role in self.resources("AWS::IAM::Role").values()
        )

    def resources(self, *types: str) -> dict[str, dict[str, Any]]:
        """Logical id -> resource of the given types (all when none given), in template order."""
        return {
            logical_id: resource
            for logical_id, resource in self.template.get("Resources", {}).items()
            if not types or resource.get("Type") in types
        }


class _OfflinePolicyLoader:
    """No IAM account to list managed policies from: SAM's bundled map answers instead."""

    def load(self) -> dict[str, str]:
        return {}


def _package_code(template: dict[str, Any], root: Path) -> dict[str, Path]:
    """Replace local CodeUri/ContentUri with s3:// locations, as `sam package` does."""
    folders: dict[str, Path] = {}

    def package(properties: dict[str, Any], key: str) -> None:
        value = properties.get(key)
        if not isinstance(value, str) or value.startswith("s3://"):
            return
        folder = (root / value).resolve()
        s3_key = str(folder.relative_to(root.resolve()) if folder.is_relative_to(root.resolve()) else folder)
        folders[s3_key] = folder
        properties[key] = f"s3://{CODE_BUCKET}/{s3_key}"

    package(template.get("Globals", {}).get("Function", {}), "CodeUri")
    for resource in template.get("Resources", {}).values():
        key = _CODE_PROPERTIES.get(resource.get("Type"))
        if key is not None:
            package(resource.setdefault("Properties", {}), key)
    return folders


def sam_transform(
    source: Path | Mapping[str, Any], overrides: Mapping[str, str] | None = None, root: Path | None = None
) -> TransformedTemplate:
    """Transform a SAM template (a path, or the loaded document with `root` for its relative paths)."""
    if isinstance(source, Path):
        template = load_template(source)
        root = source.parent if root is None else root
    else:
        template = copy.deepcopy(dict(source))
        if root is None:
            raise TemplateError("a template given as data needs the root its CodeUri paths are relative to")
    parameters = resolve_parameters(template, dict(overrides or {}))
    folders = _package_code(template, root)
    if "Transform" not in template:
        return TransformedTemplate(template, parameters, folders)
    to_py27_compatible_template(template, parameters)
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.session.Session(region_name=REGION),
    )
    loader = _OfflinePolicyLoader()
    try:
        transformed = translator.translate(
            template,
            parameter_values={**parameters, **PSEUDO_PARAMETERS},
            get_managed_policy_map=loader.load,
        )
    except InvalidDocumentException as error:
        causes = "; ".join(cause.message for cause in error.causes)
        raise TemplateError(f"the SAM transform rejected the template: {causes}") from error
    return TransformedTemplate(undo_mark_unicode_str_in_template(transformed), parameters, folders)
