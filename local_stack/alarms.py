"""The template's CloudWatch alarms, evaluated on the local stack (what `make doctor` reports).

CloudWatch is not emulated, so each alarm is evaluated from the local source of its
metric: the functions' own metrics from the EMF lines they logged (Powertools writes
them to stdout, as Lambda does to CloudWatch Logs), SQS queue metrics from the queue's
attributes in moto (the current value only). Alarms on other namespaces (AWS/Lambda,
AWS/ApiGateway) or on metric math have no local source and stay INSUFFICIENT_DATA.

No library evaluates CloudWatch alarm rules offline (moto stores alarms but never
evaluates them), so the rule (periods, statistic, threshold, missing data,
datapoints to alarm) is written here, simplified to windows ending now.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_stack.cfn import Resolver, TemplateError, cfn_string, resources_of_type

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"

SQS_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}
"""SQS metric name -> the queue attribute that holds its current value."""

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Maximum": max,
    "Minimum": min,
    "Average": lambda values: sum(values) / len(values),
    "SampleCount": len,
}


@dataclass(frozen=True)
class AlarmSpec:
    """One AWS::CloudWatch::Alarm of the template, resolved with the stack's parameters."""

    name: str
    description: str
    namespace: str
    metric: str
    dimensions: dict[str, str] = field(default_factory=dict)
    statistic: str = "Sum"
    period: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    threshold: float = 0.0
    comparison: str = "GreaterThanThreshold"
    treat_missing_data: str = "missing"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlarmSpec:
        return cls(**data)


def alarm_specs(
    template: Mapping[str, Any], parameters: Mapping[str, str], queue_names: Mapping[str, str]
) -> list[AlarmSpec]:
    """The template's alarms (those whose Condition holds), with `!GetAtt Queue.QueueName` resolved."""
    resolver = Resolver(
        parameters=parameters,
        conditions_source=template.get("Conditions", {}),
        refs={logical_id: logical_id for logical_id in template.get("Resources", {})},
        attributes={(logical_id, "QueueName"): name for logical_id, name in queue_names.items()},
    )
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        raw = resource.get("Properties", {})
        try:
            properties = resolver.resolve(
                {k: v for k, v in raw.items() if k not in ("AlarmActions", "OKActions")}
            )
        except TemplateError:
            properties = {}
        evaluation_periods = int(properties.get("EvaluationPeriods", 1))
        specs.append(
            AlarmSpec(
                name=logical_id,
                description=cfn_string(properties.get("AlarmDescription", "")),
                namespace=cfn_string(properties.get("Namespace", "")),
                metric=cfn_string(properties.get("MetricName", "")),  # empty: metric math, not evaluated
                dimensions={
                    cfn_string(d["Name"]): cfn_string(d["Value"]) for d in properties.get("Dimensions", [])
                },
                statistic=cfn_string(properties.get("Statistic", properties.get("ExtendedStatistic", ""))),
                period=int(properties.get("Period", 60)),
                evaluation_periods=evaluation_periods,
                datapoints_to_alarm=int(properties.get("DatapointsToAlarm", evaluation_periods)),
                threshold=float(properties.get("Threshold", 0)),
                comparison=cfn_string(properties.get("ComparisonOperator", "GreaterThanThreshold")),
                treat_missing_data=cfn_string(properties.get("TreatMissingData", "missing")),
            )
        )
    return specs


def emf_datapoints(
    records: Iterable[Mapping[str, Any]],
) -> Iterator[tuple[str, str, dict[str, str], float, float]]:
    """(namespace, metric, dimensions, value, time in s) of each metric in Powertools' EMF records."""
    for record in records:
        metadata = record.get("_aws")
        if not isinstance(metadata, dict):
            continue
        when = float(metadata.get("Timestamp", 0)) / 1000
        for directive in metadata.get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", []):
                dimensions = {name: str(record.get(name, "")) for name in dimension_set}
                for metric in directive.get("Metrics", []):
                    value = record.get(metric.get("Name"))
                    for number in value if isinstance(value, list) else [value]:
                        if isinstance(number, int | float):
                            yield (
                                directive.get("Namespace", ""),
                                metric["Name"],
                                dimensions,
                                float(number),
                                when,
                            )


def evaluate(spec: AlarmSpec, datapoints: Iterable[tuple[float, float]], now: float) -> str:
    """The alarm state given (time, value) datapoints, over the evaluation periods ending now."""
    compare = _COMPARE.get(spec.comparison)
    statistic = _STATISTICS.get(spec.statistic)
    if compare is None or statistic is None or not spec.metric:
        return INSUFFICIENT_DATA
    buckets: list[list[float]] = [[] for _ in range(spec.evaluation_periods)]
    for when, value in datapoints:
        index = int((now - when) // spec.period)
        if 0 <= index < spec.evaluation_periods:
            buckets[index].append(value)
    breaching = 0
    evaluated = 0
    for values in buckets:
        if values:
            evaluated += 1
            breaching += compare(statistic(values), spec.threshold)
        elif spec.treat_missing_data == "breaching":
            evaluated += 1
            breaching += 1
        elif spec.treat_missing_data == "notBreaching":
            evaluated += 1
    if breaching >= spec.datapoints_to_alarm:
        return ALARM
    return OK if evaluated else INSUFFICIENT_DATA


def metric_datapoints(
    spec: AlarmSpec,
    records: Iterable[Mapping[str, Any]],
    queue_attributes: Mapping[str, Mapping[str, str]],
    now: float,
) -> list[tuple[float, float]] | None:
    """The spec's datapoints from local sources; None when the metric has no local source.

    `records` are the log records of the window; `queue_attributes` maps a queue name
    to its current attributes.
    """
    if spec.namespace == "AWS/SQS":
        attribute = SQS_ATTRIBUTES.get(spec.metric)
        queue = queue_attributes.get(spec.dimensions.get("QueueName", ""))
        if attribute is None or queue is None:
            return None
        return [(now, float(queue.get(attribute, 0)))]
    if spec.namespace.startswith("AWS/"):
        return None
    return [
        (when, value)
        for namespace, metric, dimensions, value, when in emf_datapoints(records)
        if namespace == spec.namespace
        and metric == spec.metric
        and all(dimensions.get(k) == v for k, v in spec.dimensions.items())
    ]


def parse_records(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The JSON objects among LogSink lines ({"line": "<a function's stdout line>"...})."""
    records = []
    for line in lines:
        try:
            record = json.loads(line.get("line", ""))
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
