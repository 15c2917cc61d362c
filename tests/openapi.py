"""Requests checked against the OpenAPI subsets of the public corpus (Mistral's and Meta's own specs).

`OpenApiSpec(path).request_errors(operation_id, ...)` lists what is wrong with one
request: the path, every header and query parameter the operation declares
(required ones present, values matching their schemas, no undeclared query
parameter) and the body against the request schema of its content type
(multipart forms as a dict of their fields, a file as a string, as `format:
binary` is described). The schema validator is openapi-schema-validator's
OAS 3.1 validator; two OpenAPI meanings plain JSON Schema gets wrong are
applied first, because Meta's spec relies on them (see the corpus README's quirks):

- an `allOf` of object schemas is one object: properties and `required` merged,
  `additionalProperties: false` applying to the merged properties (as OpenAPI
  generators read it; JSON Schema would reject every property of the sibling
  members, so Meta's `TextMessage` would reject all 50 of Meta's own examples);
- a `oneOf` with a `discriminator` validates against the mapped schema only.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS31Validator

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class OpenApiSpec:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))

    # ------------------------------------------------------------ schemas
    @cached_property
    def components(self) -> dict[str, Any]:
        """The components with allOf merged and discriminated oneOf narrowed (see the module docstring)."""
        components: dict[str, Any] = copy.deepcopy(self.document.get("components", {}))
        resolved: dict[str, Any] = {}

        def lookup(ref: str) -> Any:
            node: Any = {"components": components}
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            return node

        def merged(schema: Any, seen: frozenset[str] = frozenset()) -> Any:
            if isinstance(schema, list):
                return [merged(item, seen) for item in schema]
            if not isinstance(schema, dict):
                return schema
            if "$ref" in schema and len(schema) == 1:
                return schema
            out = {key: merged(value, seen) for key, value in schema.items()}
            if "allOf" in out:
                members = [_deref(member, lookup, seen) for member in out.pop("allOf")]
                if all(_is_object(member) for member in members):
                    out = _merge_objects([*members, out])
                else:
                    out["allOf"] = members
            return out

        for name, schema in components.get("schemas", {}).items():
            resolved[name] = merged(schema)
        components["schemas"] = resolved
        return components

    def validator(self, schema: Mapping[str, Any]) -> OAS31Validator:
        return OAS31Validator({**schema, "components": self.components})

    def schema_errors(self, schema: Mapping[str, Any], instance: Any) -> list[str]:
        """Errors of `instance` against `schema` (a `$ref` or an inline schema), discriminators applied."""
        schema = self._narrow(schema, instance)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
            for error in self.validator(schema).iter_errors(instance)
        ]

    def _narrow(self, schema: Mapping[str, Any], instance: Any) -> Mapping[str, Any]:
        """Follow `$ref`s and discriminated `oneOf`s down to the schema the instance is meant for."""
        for _ in range(10):
            if "$ref" in schema and len(schema) == 1:
                target = self._resolve(str(schema["$ref"]))
                if "discriminator" in target and "oneOf" in target:
                    schema = target
                    continue
                return schema
            discriminator = schema.get("discriminator")
            if discriminator and "oneOf" in schema and isinstance(instance, dict):
                value = instance.get(discriminator["propertyName"])
                mapped = discriminator.get("mapping", {}).get(value)
                if mapped is None:
                    return schema
                schema = {"$ref": mapped}
                continue
            return schema
        return schema

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = {"components": self.components}
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return dict(node)

    # ------------------------------------------------------------ requests
    def operation(self, operation_id: str) -> tuple[str, str, dict[str, Any], list[dict[str, Any]]]:
        """(path template, method, operation, parameters declared at path and operation level)."""
        for template, item in self.document["paths"].items():
            for method in HTTP_METHODS:
                operation = item.get(method)
                if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                    parameters = [
                        self._parameter(p)
                        for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                    ]
                    return template, method, operation, parameters
        raise KeyError(f"{self.path.name} has no operation {operation_id!r}")

    def _parameter(self, parameter: Mapping[str, Any]) -> dict[str, Any]:
        if "$ref" in parameter:
            return self._resolve(str(parameter["$ref"]))
        return dict(parameter)

    def request_errors(
        self,
        operation_id: str,
        *,
        method: str,
        path: str | None = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        body: Any = None,
        check_path: bool = True,
    ) -> list[str]:
        """Everything wrong with one request to `operation_id` (empty when it follows the spec)."""
        template, expected_method, operation, parameters = self.operation(operation_id)
        errors: list[str] = []
        if method.lower() != expected_method:
            errors.append(f"method {method.upper()} is not {expected_method.upper()}")
        path_values: dict[str, str] | None = None
        if check_path and path is not None:
            path_values = _path_values(template, path)
            if path_values is None:
                errors.append(f"path {path!r} does not match {template}")
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        values = {
            "header": lowered,
            "query": dict(query or {}),
            "path": path_values if path_values is not None else {},
        }
        declared_query = {p["name"] for p in parameters if p.get("in") == "query"}
        errors += [
            f"query parameter {n!r} is not declared" for n in values["query"] if n not in declared_query
        ]
        for parameter in parameters:
            errors += self._parameter_errors(parameter, values, check_path=check_path)
        errors += self._security_errors(operation, lowered)
        return errors + self._body_errors(operation, content_type or lowered.get("content-type"), body)

    def _parameter_errors(
        self, parameter: Mapping[str, Any], values: Mapping[str, Mapping[str, str]], *, check_path: bool
    ) -> list[str]:
        where, name = str(parameter.get("in")), str(parameter["name"])
        if where not in values or (where == "path" and not check_path):
            return []
        if where == "header" and name.lower() == "content-type":
            return []  # checked against the body's declared content types
        value = values[where].get(name.lower() if where == "header" else name)
        if value is None:
            return [f"{where} parameter {name!r} is required"] if parameter.get("required") else []
        return [f"{where} {name}: {e}" for e in self.schema_errors(parameter.get("schema", {}), value)]

    def _body_errors(self, operation: Mapping[str, Any], content_type: str | None, body: Any) -> list[str]:
        request_body = operation.get("requestBody")
        if request_body is None:
            return [] if body in (None, b"", "") else ["the operation takes no body"]
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        content = request_body.get("content", {})
        if media_type not in content:
            return [f"content type {media_type!r} is not one of {sorted(content)}"]
        schema = content[media_type].get("schema", {})
        errors = [f"body {e}" for e in self.schema_errors(schema, body)]
        if media_type == "multipart/form-data" and isinstance(body, dict):
            properties = self._narrow_properties(schema)
            errors += [f"form field {name!r} is not declared" for name in body if name not in properties]
        return errors

    def _security_errors(self, operation: Mapping[str, Any], headers: Mapping[str, str]) -> list[str]:
        """HTTP bearer schemes the operation (or the document) requires: `Authorization: Bearer <token>`."""
        requirements = operation.get("security", self.document.get("security", []))
        schemes = self.document.get("components", {}).get("securitySchemes", {})
        for requirement in requirements:
            for name in requirement:
                scheme = schemes.get(
                    name, {"type": "http", "scheme": "bearer"}
                )  # Meta names it, never defines it
                if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
                    value = headers.get("authorization", "")
                    if not re.match(r"^Bearer [^\s]+$", value):
                        return [f"security {name}: no `Authorization: Bearer <token>` header"]
        return []

    def _narrow_properties(self, schema: Mapping[str, Any]) -> set[str]:
        if "$ref" in schema:
            schema = self._resolve(str(schema["$ref"]))
        return set(schema.get("properties", {}))


def _path_values(template: str, path: str) -> dict[str, str] | None:
    """`{name}` segments of a path template read from a concrete path; None when it does not match."""
    names = re.findall(r"\{([^}]+)\}", template)
    pattern = "^" + "([^/]+)".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template)) + "$"
    found = re.match(pattern, path)
    return dict(zip(names, found.groups(), strict=True)) if found else None


def _deref(schema: Any, lookup: Any, seen: frozenset[str]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema and len(schema) == 1:
        ref = str(schema["$ref"])
        if ref in seen:
            return schema
        seen = seen | {ref}
        schema = copy.deepcopy(lookup(ref))
    if isinstance(schema, dict) and "allOf" in schema:
        members = [_deref(member, lookup, seen) for member in schema["allOf"]]
        rest = {key: value for key, value in schema.items() if key != "allOf"}
        if all(_is_object(member) for member in members):
            return _merge_objects([*members, rest])
    return schema


def _is_object(schema: Any) -> bool:
    return (
        isinstance(schema, dict)
        and "$ref" not in schema
        and schema.get("type", "object") == "object"
        and not ({"oneOf", "anyOf"} & set(schema))
    )


def _merge_objects(members: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    closed = False
    for member in members:
        out["properties"].update(member.get("properties", {}))
        out["required"] += [name for name in member.get("required", []) if name not in out["required"]]
        if member.get("additionalProperties") is False:
            closed = True
        for key, value in member.items():
            if key not in ("properties", "required", "additionalProperties", "type", "allOf"):
                out.setdefault(key, value)
    if closed:
        out["additionalProperties"] = False
    if not out["required"]:
        del out["required"]
    return out
