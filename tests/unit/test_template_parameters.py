"""template.yaml's parameter bounds: what a deployer may choose must work with the functions as built."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.cfn import load_template
from tests.support import ROOT
from wa_assistant.model.chat import CONNECT_TIMEOUT_SECONDS
from wa_assistant.whatsapp.graph import http_client

SETUP_ROOM_SECONDS = 5
"""What an invocation needs besides the slow call: queue, table and secret calls, the batch around it."""
MODEL_CALL_MARGIN_SECONDS = 5
"""The AI function's own margin after a model call (TIME_NEEDED_FOR_MODEL_MS in functions/ai_reply/app.py)."""
GRAPH_CALL_MARGIN_SECONDS = 1
"""The send function's margin before a Graph call (OutboundDelivery._ensure_time_for_a_call)."""


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def parameter(template: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Parameters"][name]
    return found


def timeout_of(template: dict[str, Any], function: str) -> int:
    value: int = template["Resources"][function]["Properties"]["Timeout"]
    return value


def test_the_longest_model_timeout_fits_the_ai_function_timeout(template: dict[str, Any]) -> None:
    mistral = parameter(template, "MistralTimeoutSeconds")
    assert mistral["MinValue"] >= 1
    assert mistral["MinValue"] <= mistral["Default"] <= mistral["MaxValue"]
    one_call = CONNECT_TIMEOUT_SECONDS + mistral["MaxValue"] + MODEL_CALL_MARGIN_SECONDS
    assert one_call + SETUP_ROOM_SECONDS <= timeout_of(template, "AiReplyFunction")


def test_the_longest_graph_timeout_fits_the_send_function_timeout(template: dict[str, Any]) -> None:
    graph = parameter(template, "GraphTimeoutSeconds")
    assert graph["MinValue"] >= 1
    assert graph["MinValue"] <= graph["Default"] <= graph["MaxValue"]
    timeout = http_client(graph["MaxValue"]).timeout
    connect, read = timeout.connect, timeout.read
    assert connect is not None
    assert read is not None
    assert read == graph["MaxValue"]
    one_call = connect + read + GRAPH_CALL_MARGIN_SECONDS
    assert one_call + SETUP_ROOM_SECONDS <= timeout_of(template, "SendReplyFunction")


@pytest.mark.parametrize("name", ["AiMaxConcurrency", "SendMaxConcurrency"])
def test_maximum_concurrency_has_the_bounds_aws_accepts(template: dict[str, Any], name: str) -> None:
    # ScalingConfig.MaximumConcurrency of an SQS event source mapping: 2 to 1000.
    bounds = parameter(template, name)
    assert (bounds["MinValue"], bounds["MaxValue"]) == (2, 1000)
    assert 2 <= bounds["Default"] <= 1000
