"""How an operator tool finds a stack: deployed (CloudFormation) or the running local stack.

Both give the same view: the stack's outputs and parameters, boto3 clients for its
AWS services, its alarms and their state, and the recent error lines of each function.

- `DeployedStack.open(name, region)`: outputs and parameters from `describe_stacks`, resources
  from `list_stack_resources` (alarms by their physical names, each function's log group
  `<Function>Logs`), with the usual AWS environment (profile, credentials, region).
- `LocalStackView.open(state_path)`: what `make local` (or a test's LocalStack) wrote with
  `LocalStack.write_state`; AWS is the stack's moto server, alarms are evaluated locally
  (local_stack.alarms) and the log lines come from the run's logs.jsonl.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from local_stack.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    AlarmSpec,
    evaluate,
    metric_datapoints,
    parse_records,
)
from local_stack.logs import recent_lines
from local_stack.topology import moto_client

ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = ROOT / "samconfig.toml"
REQUIRED_OUTPUTS = (
    "WebhookUrl",
    "WebhookSecretName",
    "MistralApiKeySecretName",
    "GraphAccessTokenSecretName",
    "InboundDeadLetterQueueUrl",
    "OutboundDeadLetterQueueUrl",
)
"""Outputs the operator tools read; an older stack that lacks one must be deployed again."""
ERROR_FILTER = '?ERROR ?"Task timed out" ?"Status: timeout"'
"""CloudWatch Logs filter: Powertools' ERROR lines and Lambda's own timeout lines."""
USABLE_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


class StackNotFound(Exception):  # noqa: N818 - it names the outcome
    """No stack to look at; `fix` says in one sentence what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class AlarmState:
    logical_id: str
    name: str
    state: str
    description: str


@dataclass
class StackView(ABC):
    """What an operator tool knows about one stack."""

    name: str
    region: str
    status: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    functions: list[str]
    """Logical ids of the stack's Lambda functions."""
    phone_number_id: str | None = None
    waba_id: str | None = None
    local: bool = False
    aws_cli_options: str = ""
    """What an `aws` command needs to reach this stack's services (--region, or the local endpoint)."""
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    @abstractmethod
    def description(self) -> str:
        """One line naming the stack for people."""

    @abstractmethod
    def _new_client(self, service: str) -> Any: ...

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._new_client(service)
        return self._clients[service]

    @abstractmethod
    def alarms(self) -> tuple[list[AlarmState], str]:
        """Every alarm of the stack with its state, and a note on how the states were found."""

    @abstractmethod
    def error_lines(self, function: str, since: float, limit: int) -> list[str]:
        """The last `limit` error log lines of a function (logical id) since `since` (epoch s)."""

    def missing_outputs(self) -> list[str]:
        return [name for name in REQUIRED_OUTPUTS if not self.outputs.get(name)]

    @abstractmethod
    def physical_id(self, logical_id: str) -> str | None:
        """What the stack created for a template resource (a table's name, a queue's URL...)."""


# ----------------------------------------------------------------- deployed
def default_region(explicit: str | None, samconfig: Path = SAMCONFIG) -> str | None:
    """--region, else AWS_REGION / AWS_DEFAULT_REGION, else the region `sam deploy --guided` saved."""
    for candidate in (explicit, os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION")):
        if candidate:
            return candidate
    try:
        config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    default = config.get("default", {})
    for section in ("deploy", "global"):
        region = default.get(section, {}).get("parameters", {}).get("region")
        if region:
            return str(region)
    return None  # boto3's own configuration (the profile's region) decides


@dataclass
class DeployedStack(StackView):
    session: Any = None
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Logical id -> (resource type, physical id)."""

    @property
    def description(self) -> str:
        return f"stack {self.name} in {self.region}"

    @classmethod
    def open(cls, name: str, region: str | None = None, session: Any = None) -> DeployedStack:
        try:
            session = session or boto3.Session(region_name=default_region(region))
            cloudformation = session.client("cloudformation")
            stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
            pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
            resources = {
                r["LogicalResourceId"]: (r["ResourceType"], r.get("PhysicalResourceId", ""))
                for page in pages
                for r in page["StackResourceSummaries"]
            }
        except NoRegionError as error:
            raise StackNotFound(
                "no AWS region configured", "pass REGION=<the region you deployed to> (samconfig.toml has it)"
            ) from error
        except NoCredentialsError as error:
            raise StackNotFound(
                "no AWS credentials found",
                "configure them as for `sam deploy` (aws configure, AWS_PROFILE=..., or aws sso login)",
            ) from error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", str(error))
            if "does not exist" in message:
                raise StackNotFound(
                    f"no stack {name} in {session.region_name}",
                    "check STACK_NAME and the region (samconfig.toml holds both after `sam deploy --guided`)",
                ) from error
            raise StackNotFound(
                f"CloudFormation refused ({code}): {message}",
                "use credentials allowed cloudformation:DescribeStacks and ListStackResources on this stack",
            ) from error
        except BotoCoreError as error:
            raise StackNotFound(f"AWS unreachable: {error}", "check the network and the region") from error
        region_name = str(session.region_name)
        return cls(
            name=name,
            region=region_name,
            status=stack["StackStatus"],
            outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
            functions=[lid for lid, (kind, _) in resources.items() if kind == "AWS::Lambda::Function"],
            aws_cli_options=f"--region {region_name}",
            session=session,
            resources=resources,
        )

    def _new_client(self, service: str) -> Any:
        return self.session.client(service)

    def physical_id(self, logical_id: str) -> str | None:
        return self.resources.get(logical_id, ("", ""))[1] or None

    def alarms(self) -> tuple[list[AlarmState], str]:
        names = {
            physical: logical
            for logical, (kind, physical) in self.resources.items()
            if kind == "AWS::CloudWatch::Alarm" and physical
        }
        states: list[AlarmState] = []
        listed = list(names)
        for start in range(0, len(listed), 100):  # DescribeAlarms takes at most 100 names
            answer = self.client("cloudwatch").describe_alarms(AlarmNames=listed[start : start + 100])
            states += [
                AlarmState(
                    logical_id=names.get(alarm["AlarmName"], alarm["AlarmName"]),
                    name=alarm["AlarmName"],
                    state=alarm["StateValue"],
                    description=alarm.get("AlarmDescription", ""),
                )
                for alarm in answer.get("MetricAlarms", [])
            ]
        return states, "CloudWatch"

    def error_lines(self, function: str, since: float, limit: int) -> list[str]:
        kind, log_group = self.resources.get(f"{function}Logs", ("", ""))
        if kind != "AWS::Logs::LogGroup" or not log_group:
            return []
        pages = (
            self.client("logs")
            .get_paginator("filter_log_events")
            .paginate(
                logGroupName=log_group,
                startTime=int(since * 1000),
                filterPattern=ERROR_FILTER,
                PaginationConfig={"MaxItems": 1000},
            )
        )
        lines = [event["message"] for page in pages for event in page.get("events", [])]
        return [line for line in lines if is_error_line(line)][-limit:]


# ----------------------------------------------------------------- local
@dataclass
class LocalStackView(StackView):
    state_path: Path = Path()
    moto_url: str = ""
    logs_path: Path = Path()
    alarm_specs: list[AlarmSpec] = field(default_factory=list)
    resources: dict[str, str] = field(default_factory=dict)
    """Logical id -> the local queue URL, table name or secret name."""

    @property
    def description(self) -> str:
        return f"the local stack ({self.state_path})"

    @classmethod
    def open(cls, state_path: Path) -> LocalStackView:
        start = "start one with `make local` (or pass STACK_NAME=<stack> to check a deployed stack)"
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise StackNotFound(f"no running local stack ({state_path} does not exist)", start) from error
        except (OSError, ValueError) as error:
            raise StackNotFound(f"cannot read {state_path}: {error}", start) from error
        if "outputs" not in state:
            raise StackNotFound(f"{state_path} was written by an older local stack", "restart `make local`")
        if not _running(int(state.get("pid", 0))):
            raise StackNotFound(
                f"the local stack that wrote {state_path} (pid {state.get('pid')}) is gone", start
            )
        whatsapp = state.get("whatsapp", {})
        return cls(
            name=str(state.get("stack_name", "local")),
            region=str(state.get("region", "us-east-1")),
            status="RUNNING",
            outputs=dict(state["outputs"]),
            parameters=dict(state.get("parameters", {})),
            functions=list(state.get("functions", {})),
            phone_number_id=whatsapp.get("phone_number_id"),
            waba_id=whatsapp.get("business_account_id"),
            local=True,
            aws_cli_options=f"--endpoint-url {state['moto_url']}",
            state_path=state_path,
            moto_url=str(state["moto_url"]),
            logs_path=Path(state["logs"]),
            alarm_specs=[AlarmSpec.from_dict(a) for a in state.get("alarms", [])],
            resources=dict(state.get("resources", {})),
        )

    def _new_client(self, service: str) -> Any:
        return moto_client(service, self.moto_url)

    def physical_id(self, logical_id: str) -> str | None:
        return self.resources.get(logical_id)

    def alarms(self) -> tuple[list[AlarmState], str]:
        now = time.time()
        window = max((s.period * s.evaluation_periods for s in self.alarm_specs), default=0)
        records = parse_records(recent_lines(self.logs_path, now - window))
        queues = self._queue_attributes()
        states = []
        for spec in self.alarm_specs:
            points = metric_datapoints(spec, records, queues, now)
            state = INSUFFICIENT_DATA if points is None else evaluate(spec, points, now)
            states.append(AlarmState(spec.name, spec.name, state, spec.description))
        unsourced = sum(1 for s in states if s.state == INSUFFICIENT_DATA)
        note = "evaluated from this run's metrics and queues"
        return states, note + (f"; {unsourced} without a local source" if unsourced else "")

    def _queue_attributes(self) -> dict[str, dict[str, str]]:
        """Current attributes of the queues the outputs name, by queue name."""
        sqs = self.client("sqs")
        attributes = {}
        for name, url in self.outputs.items():
            if name.endswith("QueueUrl"):
                answer = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
                attributes[url.rsplit("/", 1)[-1]] = answer.get("Attributes", {})
        return attributes

    def error_lines(self, function: str, since: float, limit: int) -> list[str]:
        lines = [
            line["line"]
            for line in recent_lines(self.logs_path, since)
            if line.get("source") == function and is_error_line(str(line.get("line", "")))
        ]
        return lines[-limit:]


def _running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def is_error_line(line: str) -> bool:
    """A Powertools JSON line at ERROR/CRITICAL, or a plain line of Lambda's about a crash or timeout."""
    try:
        record = json.loads(line)
    except ValueError:
        return "ERROR" in line or "Task timed out" in line or "Status: timeout" in line
    if not isinstance(record, dict):
        return False
    return str(record.get("level", "")).upper() in {"ERROR", "CRITICAL"}


def alarm_is_firing(alarm: AlarmState) -> bool:
    return alarm.state == ALARM
