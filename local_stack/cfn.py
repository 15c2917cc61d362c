"""template.yaml as data: the local stack's only source of topology.

PyYAML cannot read CloudFormation's short-form tags (!Ref, !GetAtt, !Sub...), and
cfn-lint's loader pulls in its whole rule engine, so a small loader turns each
tag into its long form ({"Ref": ...}, {"Fn::GetAtt": [...]}) and `Resolver`
evaluates the intrinsic functions the template uses.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

NO_VALUE = object()
"""AWS::NoValue: removes the property or list item that holds it."""

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK_NAME = "wa-local"
PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
"""The local stack's account, region and stack name, as CloudFormation's pseudo parameters."""

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class TemplateError(Exception):
    """The template uses something the local stack cannot resolve."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short-form tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


def cfn_string(value: Any) -> str:
    """A resolved scalar as CloudFormation passes it to Lambda and SQS (always a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameters and already-created resources.

    `refs` maps a logical id to what !Ref returns; `attributes` maps
    (logical id, attribute) to what !GetAtt returns.
    """

    parameters: Mapping[str, str]
    conditions_source: Mapping[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    pseudo: Mapping[str, str] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)
    placeholder_attribute: Callable[[str, str], Any] | None = None
    """!GetAtt of a resource the caller does not emulate: (logical id, attribute) -> a stand-in value."""
    _conditions: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.conditions_source:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self.conditions_source[name]))
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), *_ = node.items()
            handler = self._intrinsics.get(key)
            if handler is not None:
                return handler(self, value)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"!Ref {name}: not a parameter or a resource the local stack creates")

    def _get_att(self, value: list[Any]) -> Any:
        logical_id, attribute = value[0], value[1]
        if not isinstance(attribute, str):  # !GetAtt [Resource, !Ref AttributeName]
            attribute = cfn_string(self.resolve(attribute))
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        if self.placeholder_attribute is not None:
            found = self.placeholder_attribute(logical_id, attribute)
            if found is not None:
                return found
        raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not available locally")

    def _sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, variables = value[0], {k: self.resolve(v) for k, v in value[1].items()}
        else:
            text, variables = value, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return cfn_string(variables[name])
            if "." in name:
                return cfn_string(self._get_att(name.split(".", 1)))
            return cfn_string(self._ref(name))

        # ${!Literal} is CloudFormation's escape for a literal ${Literal}.
        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def _if(self, value: list[Any]) -> Any:
        name, when_true, when_false = value
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, value: list[Any]) -> bool:
        left, right = (cfn_string(self.resolve(v)) for v in value)
        return left == right

    def _not(self, value: list[Any]) -> bool:
        return not self.resolve(value[0])

    def _and(self, value: list[Any]) -> bool:
        return all(self.resolve(v) for v in value)

    def _or(self, value: list[Any]) -> bool:
        return any(self.resolve(v) for v in value)

    def _join(self, value: list[Any]) -> str:
        separator, items = value
        return cfn_string(separator).join(cfn_string(i) for i in self.resolve(items))

    def _select(self, value: list[Any]) -> Any:
        index, items = value
        return self.resolve(items)[int(self.resolve(index))]

    def _condition_key(self, value: str) -> bool:
        return self.condition(value)

    def _split(self, value: list[Any]) -> list[str]:
        separator, text = value
        return cfn_string(self.resolve(text)).split(cfn_string(separator))

    def _find_in_map(self, value: list[Any]) -> Any:
        name, top, second = (cfn_string(self.resolve(v)) for v in value[:3])
        try:
            return self.mappings[name][top][second]
        except KeyError:
            raise TemplateError(f"!FindInMap [{name}, {top}, {second}]: no such entry") from None

    def _base64(self, value: Any) -> str:
        return base64.b64encode(cfn_string(self.resolve(value)).encode()).decode()

    def _get_azs(self, value: Any) -> list[str]:
        region = cfn_string(self.resolve(value)) or self.pseudo.get("AWS::Region", REGION)
        return [f"{region}{zone}" for zone in "abc"]

    _intrinsics: ClassVar[Mapping[str, Callable[[Resolver, Any], Any]]] = {
        "Ref": lambda self, v: self._ref(v),
        "Fn::GetAtt": lambda self, v: self._get_att(v),
        "Fn::Sub": lambda self, v: self._sub(v),
        "Fn::If": lambda self, v: self._if(v),
        "Fn::Equals": lambda self, v: self._equals(v),
        "Fn::Not": lambda self, v: self._not(v),
        "Fn::And": lambda self, v: self._and(v),
        "Fn::Or": lambda self, v: self._or(v),
        "Fn::Join": lambda self, v: self._join(v),
        "Fn::Select": lambda self, v: self._select(v),
        "Condition": lambda self, v: self._condition_key(v),
        "Fn::Split": lambda self, v: self._split(v),
        "Fn::FindInMap": lambda self, v: self._find_in_map(v),
        "Fn::Base64": lambda self, v: self._base64(v),
        "Fn::GetAZs": lambda self, v: self._get_azs(v),
    }


def resolve_parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Parameter defaults, overridden like `sam deploy --parameter-overrides`, validated."""
    declared: Mapping[str, Any] = template.get("Parameters", {})
    unknown = set(overrides) - set(declared)
    if unknown:
        raise TemplateError(f"unknown template parameters: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = cfn_string(overrides[name])
        elif "Default" in spec:
            value = cfn_string(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default: pass it as a parameter override")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [cfn_string(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        if spec.get("Type") == "Number":
            number = float(value)
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"parameter {name}={value} is below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"parameter {name}={value} is above MaxValue {spec['MaxValue']}")
        values[name] = value
    return values


def resources_of_type(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for the given resource types, in template order."""
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") in types
    }


def logical_id_of(node: Any) -> str:
    """The logical id a !Ref or !GetAtt points at (event sources name their queue this way)."""
    if isinstance(node, dict):
        if "Ref" in node:
            return str(node["Ref"])
        if "Fn::GetAtt" in node:
            return str(node["Fn::GetAtt"][0])
    raise TemplateError(f"expected a !Ref or !GetAtt, got {node!r}")


def references(node: Any) -> Iterator[str]:
    """Every logical id or parameter a template node names (Ref, GetAtt, Sub), in both branches of an If."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield str(value)
            elif key == "Fn::GetAtt":
                yield str(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                yield from (name.split(".")[0] for name in _SUB_VARIABLE.findall(str(text)))
                if isinstance(value, list) and len(value) > 1:
                    yield from references(value[1])
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)
