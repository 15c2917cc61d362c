"""IAM's evaluation of identity-based policies: is this action on this resource allowed?

Written by hand because no well-kept library evaluates a request against policies:
moto's `IAMPolicy` is too basic (unescaped regex, no `?`, case-sensitive actions, no
NotResource), policyuniverse parses and expands but does not evaluate, and
principalmapper's simulator has not been maintained since 2022.

The rules, from IAM's policy evaluation logic and its element reference:
- an explicit Deny in any statement wins; otherwise any Allow allows; otherwise the
  request is implicitly denied;
- Action/NotAction match case-insensitively, Resource/NotResource case-sensitively;
- `*` matches any run of characters and `?` exactly one; in an ARN, a wildcard stays
  within its colon-separated segment, except a `*` that ends a segment, which may
  run on past the colons (`log-group:name:*` covers every stream of the group);
- a statement with NotAction/NotResource applies to everything *not* listed.

Conditions are not evaluated. So that an unevaluated condition never widens access,
an Allow statement with a Condition never allows (the reason says so) and a Deny
statement with a Condition always denies: both fail closed, and loudly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ARN_SEGMENTS = 6
"""arn:partition:service:region:account:resource (the resource part may hold more colons)."""


@dataclass(frozen=True)
class NamedPolicy:
    """One policy document attached to a principal, with the name the reasons quote."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    action: str
    allowed: bool
    explicit_deny: bool = False
    statement: str | None = None
    """The statement that allowed or explicitly denied (policy name, index, Sid)."""
    unevaluated_conditions: tuple[str, ...] = ()
    """Statements that would have applied but carry a Condition: Allows skipped, a Deny applied."""

    @property
    def aws_reason(self) -> str:
        """The end of AWS's AccessDenied message."""
        if self.explicit_deny:
            return "with an explicit deny in an identity-based policy"
        return f"because no identity-based policy allows the {self.action} action"

    @property
    def detail(self) -> str:
        """Which statement decided, and what was not evaluated: for the stack's log, not for AWS's message."""
        if self.allowed:
            return f"allowed by {self.statement}"
        text = f"explicit deny in {self.statement}" if self.explicit_deny else "no statement allows it"
        if self.unevaluated_conditions:
            text += (
                "; statements with a Condition (not evaluated locally: an Allow never allows, a Deny "
                "always denies): " + ", ".join(self.unevaluated_conditions)
            )
        return text


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A document's statements (a single statement may be written without a list)."""
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


@functools.lru_cache(maxsize=4096)
def _action_regex(pattern: str) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL)


@functools.lru_cache(maxsize=4096)
def _resource_regex(pattern: str) -> re.Pattern[str]:
    if pattern == "*":
        return re.compile(r"^.*$", re.DOTALL)
    if not pattern.startswith("arn:"):
        body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.compile(f"^{body}$", re.DOTALL)
    segments = pattern.split(":", ARN_SEGMENTS - 1)
    parts: list[str] = []
    for segment in segments:
        regex = ""
        for index, char in enumerate(segment):
            if char == "*":
                # A trailing * of a segment may expand past the colon boundaries.
                regex += ".*" if index == len(segment) - 1 else "[^:]*"
            elif char == "?":
                regex += "[^:]"
            else:
                regex += re.escape(char)
        parts.append(regex)
    return re.compile("^" + ":".join(parts) + "$", re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    return pattern == "*" or _action_regex(pattern).match(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    return _resource_regex(pattern).match(resource) is not None


def _applies(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    """Whether the statement's action and resource elements cover the request."""
    if "Action" in statement:
        if not any(action_matches(str(p), action) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(str(p), action) for p in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        return any(resource_matches(str(p), resource) for p in _as_list(statement["Resource"]))
    if "NotResource" in statement:
        return not any(resource_matches(str(p), resource) for p in _as_list(statement["NotResource"]))
    return False


def _label(policy: NamedPolicy, index: int, statement: Mapping[str, Any]) -> str:
    sid = statement.get("Sid")
    return f"{policy.name} statement {index}" + (f" ({sid})" if sid else "")


def evaluate(policies: Iterable[NamedPolicy], action: str, resource: str) -> Decision:
    """IAM's decision for one (action, resource) request of a principal with these policies."""
    allowed_by: str | None = None
    conditional: list[str] = []
    for policy in policies:
        for index, statement in enumerate(statements(policy.document)):
            if not _applies(statement, action, resource):
                continue
            effect = statement.get("Effect")
            label = _label(policy, index, statement)
            if effect == "Deny":
                return Decision(
                    action,
                    allowed=False,
                    explicit_deny=True,
                    statement=label,
                    unevaluated_conditions=(label,) if "Condition" in statement else (),
                )
            if effect == "Allow":
                if "Condition" in statement:
                    conditional.append(label)
                elif allowed_by is None:
                    allowed_by = label
    if allowed_by is not None:
        return Decision(action, allowed=True, statement=allowed_by)
    return Decision(action, allowed=False, unevaluated_conditions=tuple(conditional))


def allow_pairs(policies: Sequence[NamedPolicy]) -> set[tuple[str, str]]:
    """Every (action pattern, resource pattern) an Allow statement names, as written.

    For least-privilege checks: a NotAction/NotResource Allow is reported as
    ("NotAction", ...)/(..., "NotResource") so that it can never pass as narrow.
    """
    pairs: set[tuple[str, str]] = set()
    for policy in policies:
        for statement in statements(policy.document):
            if statement.get("Effect") != "Allow":
                continue
            actions = [str(a) for a in _as_list(statement.get("Action"))] or ["NotAction"]
            resources = [str(r) for r in _as_list(statement.get("Resource"))] or ["NotResource"]
            pairs.update((a, r) for a in actions for r in resources)
    return pairs


def role_policies(iam: Any, role_name: str) -> list[NamedPolicy]:
    """A role's inline and attached policies, read through an IAM client (boto3 decodes the documents)."""
    found = [
        NamedPolicy(
            f"{role_name}/{name}",
            iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"],
        )
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        found.append(NamedPolicy(arn, document))
    return found
