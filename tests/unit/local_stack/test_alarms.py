"""Local evaluation of the template's alarms: the rules CloudWatch applies, on local metric sources."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from local_stack.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmSpec,
    alarm_specs,
    emf_datapoints,
    evaluate,
    metric_datapoints,
    parse_records,
)
from local_stack.cfn import load_template, resolve_parameters
from local_stack.config import TEMPLATE

NOW = 1_000_000.0


def spec(**changes: Any) -> AlarmSpec:
    base = AlarmSpec(name="A", description="", namespace="WhatsAppAssistant", metric="GraphAuthFailed")
    return dataclasses.replace(base, **changes)


def emf(metric: str, value: float, when: float, service: str = "send-reply") -> dict[str, object]:
    """A Powertools EMF record as the functions print it."""
    return {
        "_aws": {
            "Timestamp": int(when * 1000),
            "CloudWatchMetrics": [
                {"Namespace": "WhatsAppAssistant", "Dimensions": [["service"]], "Metrics": [{"Name": metric}]}
            ],
        },
        "service": service,
        metric: [value],
    }


def test_template_alarms_resolve_with_local_queue_names() -> None:
    template = load_template(TEMPLATE)
    queue_names = {"InboundDeadLetterQueue": "wa-local-in-dlq.fifo", "OutboundDeadLetterQueue": "out.fifo"}
    specs = {s.name: s for s in alarm_specs(template, resolve_parameters(template, {}), queue_names)}
    inbound = specs["InboundDeadLetterAlarm"]
    assert (inbound.namespace, inbound.metric, inbound.dimensions) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "wa-local-in-dlq.fifo"},
    )
    graph = specs["GraphAuthFailureAlarm"]
    assert (graph.statistic, graph.period, graph.threshold, graph.treat_missing_data) == (
        "Sum",
        60,
        0.0,
        "notBreaching",
    )
    assert graph.dimensions == {"service": "send-reply"}


@pytest.mark.parametrize(
    ("changes", "points", "state"),
    [
        ({}, [(NOW - 5, 1.0)], ALARM),
        ({}, [(NOW - 65, 1.0)], OK),  # notBreaching: older than the period, missing now
        ({"treat_missing_data": "missing"}, [], INSUFFICIENT_DATA),
        ({"treat_missing_data": "breaching"}, [], ALARM),
        ({"statistic": "Maximum", "threshold": 3.0}, [(NOW - 1, 2.0), (NOW - 2, 3.0)], OK),
        ({"statistic": "Sum", "threshold": 3.0}, [(NOW - 1, 2.0), (NOW - 2, 3.0)], ALARM),
        ({"evaluation_periods": 2, "datapoints_to_alarm": 2}, [(NOW - 5, 1.0)], OK),
        ({"evaluation_periods": 2, "datapoints_to_alarm": 2}, [(NOW - 5, 1.0), (NOW - 70, 1.0)], ALARM),
        ({"comparison": "LessThanThreshold", "threshold": 1.0}, [(NOW - 5, 0.0)], ALARM),
        ({"statistic": "p99"}, [(NOW - 5, 1.0)], INSUFFICIENT_DATA),
        ({"metric": ""}, [(NOW - 5, 1.0)], INSUFFICIENT_DATA),
    ],
)
def test_alarm_rule(changes: dict[str, Any], points: list[tuple[float, float]], state: str) -> None:
    assert evaluate(spec(**{"treat_missing_data": "notBreaching", **changes}), points, NOW) == state


def test_emf_lines_give_datapoints_of_the_named_service_only() -> None:
    lines = [
        {"line": json.dumps(emf("GraphAuthFailed", 1, NOW - 3))},
        {"line": json.dumps(emf("GraphAuthFailed", 1, NOW - 3, service="webhook"))},
        {"line": json.dumps(emf("RepliesSent", 4, NOW - 3))},
        {"line": "not json"},
        {"line": json.dumps({"level": "INFO", "message": "no metrics"})},
    ]
    records = parse_records(lines)
    assert len(list(emf_datapoints(records))) == 3
    assert metric_datapoints(spec(dimensions={"service": "send-reply"}), records, {}, NOW) == [(NOW - 3, 1.0)]


def test_queue_alarms_read_the_queue_and_other_aws_namespaces_have_no_local_source() -> None:
    dlq = spec(
        namespace="AWS/SQS", metric="ApproximateNumberOfMessagesVisible", dimensions={"QueueName": "q"}
    )
    assert metric_datapoints(dlq, [], {"q": {"ApproximateNumberOfMessages": "2"}}, NOW) == [(NOW, 2.0)]
    assert metric_datapoints(dlq, [], {}, NOW) is None
    assert metric_datapoints(spec(namespace="AWS/Lambda", metric="Errors"), [], {}, NOW) is None
