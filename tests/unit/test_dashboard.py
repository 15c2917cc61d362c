"""The dashboard in template.yaml names only metrics the functions emit, under the service that emits them.

The metric names come from the code itself (every `add_metric(name=...)` and
`single_metric(name=...)` in a function's app.py and in the layer modules it
imports), so a renamed metric fails here instead of leaving a graph that shows nothing.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.cfn import load_template
from tests.support import ROOT

Template = dict[str, Any]
LAYER = ROOT / "layers" / "wa_assistant"
METRIC_CALLS = {"add_metric", "single_metric"}
SEARCH_METRIC = re.compile(r'MetricName="([^"]+)"')
SEARCH_SERVICE = re.compile(r'service="([^"]+)"')


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


# ----------------------------------------------------------------- what the code emits
def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _table_values(tree: ast.Module, name: str) -> set[str]:
    """The string values of a module-level dict `name = {...}` (a table of metric names)."""
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and isinstance(value, ast.Dict):
            return {
                str(v.value) for v in value.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            }
    return set()


def _names_of(value: ast.expr, tree: ast.Module) -> set[str]:
    """A metric name argument: a literal, `a if c else b`, `TABLE[key]` or `TABLE.get(key, "Default")`."""
    if isinstance(value, ast.Constant):
        return {str(value.value)}
    if isinstance(value, ast.IfExp):  # "FallbackReplies" if fallback else "HonestReplies"
        return _names_of(value.body, tree) | _names_of(value.orelse, tree)
    if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
        return _table_values(tree, value.value.id)
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "get"
        and isinstance(value.func.value, ast.Name)
    ):
        defaults = {str(a.value) for a in value.args[1:] if isinstance(a, ast.Constant)}
        return _table_values(tree, value.func.value.id) | defaults
    return set()


def metric_names_in(path: Path) -> set[str]:
    """Names passed to add_metric/single_metric in one module: literals, or values of a module-level table."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called_name(node) in METRIC_CALLS:
            for keyword in node.keywords:
                if keyword.arg == "name":
                    names |= _names_of(keyword.value, tree)
    return names


def _module_file(dotted: str) -> Path | None:
    base = LAYER.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _layer_imports(path: Path) -> Iterator[Path]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        dotted: list[str] = []
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from wa_assistant.webhook import report` may name a submodule.
            dotted = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for name in dotted:
            found = _module_file(name) if name.split(".")[0] == "wa_assistant" else None
            if found is not None:
                yield found


def modules_loaded_by(app: Path) -> set[Path]:
    """app.py and every layer module it imports, directly or not."""
    seen = {app}
    todo = [app]
    while todo:
        for module in _layer_imports(todo.pop()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen


def emitted_by_service(template: Template) -> dict[str, set[str]]:
    """POWERTOOLS_SERVICE_NAME of each function -> the metric names its code can emit."""
    emitted: dict[str, set[str]] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        service = properties["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        module = properties["Handler"].split(".")[0]
        app = ROOT / properties["CodeUri"] / f"{module}.py"
        emitted[service] = set().union(*(metric_names_in(m) for m in modules_loaded_by(app)))
    return emitted


# ----------------------------------------------------------------- what the dashboard names
def dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Placeholders (${AWS::Region}, ${InboundQueue.QueueName}...) become plain text for parsing.
    widgets: list[dict[str, Any]] = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))["widgets"]
    return widgets


def custom_metrics(template: Template) -> list[tuple[str, str]]:
    """(metric name, service) of every metric of the functions' namespace on the dashboard."""
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    found: list[tuple[str, str]] = []
    for widget in dashboard_widgets(template):
        for metric in widget.get("properties", {}).get("metrics", []):
            if isinstance(metric[0], dict):  # a metric math or SEARCH expression
                expression = metric[0].get("expression", "")
                if f"{{{namespace}," in expression:
                    service = SEARCH_SERVICE.search(expression)
                    found.extend(
                        (name, service[1] if service else "") for name in SEARCH_METRIC.findall(expression)
                    )
                continue
            if metric[0] == namespace:
                dimensions = dict(zip(metric[2:-1:2], metric[3::2], strict=False))
                found.append((metric[1], dimensions.get("service", "")))
    return found


def unknown_metrics(template: Template) -> list[str]:
    emitted = emitted_by_service(template)
    return [
        f"{name} (service {service!r})"
        for name, service in custom_metrics(template)
        if name not in emitted.get(service, set())
    ]


# ----------------------------------------------------------------- tests
def test_code_scan_finds_the_metrics_each_function_emits(template: Template) -> None:
    emitted = emitted_by_service(template)
    assert set(emitted) == {"webhook", "ai-reply", "send-reply"}
    assert {"MessagesReceived", "SignatureRejected"} <= emitted["webhook"]
    assert {"MessagesAnswered", "MistralLatency", "PromptTokens", "MistralRequestRejected"} <= emitted[
        "ai-reply"
    ]
    assert {"RepliesSent", "GraphAuthFailed", "GraphSendRejectedByCode"} <= emitted["send-reply"]
    assert "MessagesReceived" not in emitted["ai-reply"]
    # Names from a module's table of metric names (VERDICT_METRICS[...], STATUS_METRICS.get(..., default)):
    assert {"OptOuts", "UserLimitReached"} <= emitted["ai-reply"]
    assert {"StatusDelivered", "StatusOther"} <= emitted["webhook"]


def test_every_dashboard_metric_is_emitted_by_the_service_it_names(template: Template) -> None:
    named = custom_metrics(template)
    assert len(named) >= 20
    assert ("GraphSendRejectedByCode", "send-reply") in named  # the SEARCH expression is read too
    assert unknown_metrics(template) == []


def test_dashboard_shows_what_the_issue_asks_for(template: Template) -> None:
    names = {name for name, _ in custom_metrics(template)}
    assert {
        "MessagesReceived",
        "MessagesAnswered",
        "FallbackReplies",
        "MessagesIgnored",
        "MistralLatency",
        "PromptTokens",
        "CompletionTokens",
        "MistralTransientError",
        "MistralRequestRejected",
        "GraphSendRejected",
        "GraphAuthFailed",
    } <= names
    aws_metrics = {
        (metric[0], metric[1])
        for widget in dashboard_widgets(template)
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], str) and metric[0].startswith("AWS/")
    }
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/ApiGateway", "4xx"),
        ("AWS/ApiGateway", "5xx"),
    } <= aws_metrics
    stats = {
        metric[-1].get("stat")
        for widget in dashboard_widgets(template)
        for metric in widget["properties"]["metrics"]
        if metric[1:2] == ["MistralLatency"]
    }
    assert stats == {"p50", "p99"}


def test_dashboard_url_is_a_stack_output(template: Template) -> None:
    assert "${Dashboard}" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_a_misnamed_metric_or_service_is_caught(template: Template) -> None:
    broken = copy.deepcopy(template)
    body = broken["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    body["Fn::Sub"] = (
        body["Fn::Sub"]
        .replace('"MessagesAnswered", "service", "ai-reply"', '"MessagesAnswerd", "service", "ai-reply"')
        .replace('"RepliesSent", "service", "send-reply"', '"RepliesSent", "service", "webhook"')
        .replace('MetricName=\\"GraphSendRejectedByCode\\"', 'MetricName=\\"GraphRejectedByCode\\"')
    )
    assert sorted(unknown_metrics(broken)) == [
        "GraphRejectedByCode (service 'send-reply')",
        "MessagesAnswerd (service 'ai-reply')",
        "RepliesSent (service 'webhook')",
    ]
