"""LocalStack: the whole bundle on one machine, for people (`make local`), the demo and tests.

with LocalStack(parameters={"RetryBaseDelaySeconds": "1"}) as stack:
    stack.post_webhook(body)               # signed, through the HTTP API
    stack.wait_until(lambda: len(stack.sink.messages()) == 1)
    stack.mistral.script(status=429, times=3, retry_after=1)
    stack.queue_depths()                   # {"InboundQueue": 0, ...} visible + in flight
    stack.kill_worker("AiReplyFunction")   # a crash mid-batch
    stack.access_denials()                 # calls a function's role did not allow (IAM is enforced)
    stack.notices()                        # SNS notices (handoffs), also logged with source `sns`
    stack.write_state(path)                # what `make doctor --state path` reads
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

from local_stack.alarms import alarm_specs
from local_stack.api_gateway import ApiGateway
from local_stack.config import ROOT, STATE_DIR, TEMPLATE, LocalConfig
from local_stack.functions import FunctionRuntime
from local_stack.graph_sink import GraphSink
from local_stack.http_server import free_port
from local_stack.iam_enforcer import STATE_PATH as IAM_STATE_PATH
from local_stack.logs import LogSink
from local_stack.mistral_standin import MistralStandIn
from local_stack.moto_launcher import MotoServer, MotoServerError
from local_stack.notices import Notice, NoticeLog
from local_stack.sam_transform import sam_transform
from local_stack.sqs_poller import EventSourceError, SqsPoller
from local_stack.topology import (
    REGION,
    STACK_NAME,
    TOPOLOGY_SERVICES,
    FunctionSpec,
    Topology,
    build_topology,
    moto_client,
)
from local_stack.webhooks import BUSINESS_ACCOUNT_ID, PHONE_NUMBER_ID, signature

REGION_ENV = {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
ROLE_SESSION_SECONDS = 12 * 3600
"""How long a function's role credentials last (Lambda renews them; the local stack asks for 12 hours)."""
INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "SSL_CERT_FILE",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
)
"""What a worker takes from the caller's environment: nothing else, so no local secret leaks in."""
MAX_HTTP_WORKERS = 4
"""Warm containers per HTTP-triggered function; Lambda would start as many as requests arrive (up to
its reserved or the account's unreserved concurrency), which on a laptop costs a Python process each."""


class StackError(Exception):
    """The local stack could not start, or a wait ran out."""


class LocalStack:
    def __init__(
        self,
        parameters: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        echo_logs: bool = False,
        function_env: Mapping[str, Mapping[str, str]] | None = None,
        template: Path | Mapping[str, Any] = TEMPLATE,
        max_http_workers: int = MAX_HTTP_WORKERS,
        print_chat: bool = False,
    ) -> None:
        """`env` is the configuration environment (defaults to os.environ); `port` 0 = a free port.

        `template` is template.yaml's path, or a template as data (its CodeUri paths relative
        to the project root), e.g. a copy with a permission taken away.
        """
        self.config = LocalConfig.from_env(os.environ if env is None else env)
        self.parameter_overrides = {**self.config.parameter_overrides, **(parameters or {})}
        self.port = self.config.port if port is None else port
        self.echo_logs = echo_logs
        self.function_env = {k: dict(v) for k, v in (function_env or {}).items()}
        self.template = template
        self.max_http_workers = max_http_workers
        self.print_chat = print_chat
        self.run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.run_dir = STATE_DIR / self.run_id
        self.logs = LogSink(self.run_dir / "logs.jsonl", echo=echo_logs)
        self.mistral = MistralStandIn(self.config.mistral_api_key, log=self._logger("mistral-standin"))
        self.sink = GraphSink(self.config.access_token, print_line=self._chat_line)
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.pollers: list[SqsPoller] = []
        self.api = ApiGateway(log=self._logger("http-api"))
        self._moto: MotoServer | None = None
        self.moto_url = ""
        self.topology: Topology | None = None
        self.credentials: dict[str, dict[str, str]] = {}
        """Function logical id -> its role session's AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN."""
        self._sqs: Any = None
        self._notice_log: NoticeLog | None = None

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _logger(self, source: str) -> Callable[[str], None]:
        return lambda line: self.logs.emit(source, line)

    def _chat_line(self, line: str) -> None:
        self.logs.emit("graph-sink", line)
        if self.print_chat and not self.echo_logs:
            print(f"graph-sink | {line}", flush=True)

    def start(self) -> Self:
        self.mistral.start()
        self.sink.start()
        overrides = dict(self.parameter_overrides)
        overrides.setdefault("MistralBaseUrl", self.mistral.base_url)
        overrides.setdefault("GraphApiBaseUrl", self.sink.base_url)
        transformed = sam_transform(
            self.template, overrides, root=None if isinstance(self.template, Path) else ROOT
        )
        self._start_moto(load_managed_policies=transformed.attaches_aws_managed_policies())
        clients = {name: self._client(name) for name in TOPOLOGY_SERVICES}
        self._sqs = clients["sqs"]
        self.topology = build_topology(transformed, overrides, clients, self.config.secret_values())
        if self.topology.topics:
            self._notice_log = NoticeLog(
                clients["sqs"], clients["sns"], self.topology.topics, self._logger("sns")
            ).start()
        for logical_id, spec in self.topology.functions.items():
            self.credentials[logical_id] = self._role_credentials(spec)
            environment = {
                **{k: os.environ[k] for k in INHERITED_ENV if k in os.environ},
                "NO_PROXY": "127.0.0.1,localhost",
                **REGION_ENV,
                # As Lambda does: the function runs with temporary credentials of its execution role.
                **self.credentials[logical_id],
                "AWS_LAMBDA_FUNCTION_NAME": f"wa-local-{logical_id}",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/wa-local-{logical_id}",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "LAMBDA_TASK_ROOT": str(spec.code_uri),
                "_HANDLER": spec.handler,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                **spec.environment,
                # After the template's own (empty) AWS_ENDPOINT_URL: locally, AWS is moto.
                "AWS_ENDPOINT_URL": self.moto_url,
                **self.function_env.get(logical_id, {}),
            }
            concurrency = max(
                [s.maximum_concurrency or 1000 for s in spec.sqs_sources]
                + ([min(self.max_http_workers, spec.reserved_concurrency or 1000)] if spec.routes else [])
            )
            self.runtimes[logical_id] = FunctionRuntime(spec, environment, self.logs, concurrency)
        prewarm = [threading.Thread(target=r.prewarm, daemon=True) for r in self.runtimes.values()]
        for thread in prewarm:
            thread.start()
        for thread in prewarm:
            thread.join()
        for logical_id, spec in self.topology.functions.items():
            for route in spec.routes:
                self.api.add_route(route, self.runtimes[logical_id])
            for source in spec.sqs_sources:
                if not source.enabled:
                    continue
                self.pollers.append(
                    self._poller(
                        source=source,
                        queue=self.topology.queue(source.queue_logical_id),
                        runtime=self.runtimes[logical_id],
                        endpoint_url=self.moto_url,
                        log=self._logger("event-source"),
                        concurrency=source.maximum_concurrency or 5,
                        # In AWS the mapping polls with the function's execution role.
                        credentials=self.credentials[logical_id],
                    )
                )
        self.api.start(self.port)
        assert self.api.server is not None
        self.port = self.api.server.port
        return self

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        self.api.stop()
        for runtime in self.runtimes.values():
            runtime.close()
        for poller in self.pollers:
            poller.join(5)
        if self._notice_log is not None:
            self._notice_log.stop()
        self.mistral.stop()
        self.sink.stop()
        if self._moto is not None:
            self._moto.stop()
        self.logs.close()

    def _start_moto(self, load_managed_policies: bool) -> None:
        self._moto = MotoServer(
            free_port(),
            self.run_dir / "moto.log",
            enforce_iam=True,
            on_iam_event=self._iam_denied,
            load_managed_policies=load_managed_policies,
        )
        self.moto_url = self._moto.url
        try:
            self._moto.start()
        except MotoServerError as error:
            raise StackError(str(error)) from error

    def _client(self, service: str) -> Any:
        return moto_client(service, self.moto_url)

    @staticmethod
    def _poller(**arguments: Any) -> SqsPoller:
        try:
            return SqsPoller(**arguments).start()
        except EventSourceError as error:
            raise StackError(str(error)) from error

    def _role_credentials(self, spec: FunctionSpec) -> dict[str, str]:
        """Temporary credentials of the function's role, from moto's STS (Lambda assumes the role)."""
        assert self.topology is not None
        assert spec.role_logical_id is not None
        role = self.topology.roles[spec.role_logical_id]
        credentials = self._client("sts").assume_role(
            RoleArn=role.arn, RoleSessionName=spec.function_name, DurationSeconds=ROLE_SESSION_SECONDS
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def _function_of_session(self, session: str | None) -> str | None:
        if self.topology is None or session is None:
            return None
        functions = self.topology.functions.values()
        return next((f.logical_id for f in functions if f.function_name == session), None)

    def _iam_denied(self, line: str) -> None:
        """One denial, as moto's IAM check reported it: one loud line in the stack's log."""
        try:
            record = json.loads(line)
        except ValueError:
            self.logs.emit("iam", line, "stderr")
            return
        session = record.get("session")
        function = self._function_of_session(session) or session or "an unknown caller"
        self.logs.emit(
            "iam",
            f"{record['code']}: {function} (role {record.get('role')}) may not {record['action']} on "
            f"{record['resource']} ({record['operation']}): {record['detail']}",
            "stderr",
        )

    def _iam_state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.moto_url}{IAM_STATE_PATH}", timeout=10) as response:
            state: dict[str, Any] = json.loads(response.read())
        return state

    def access_denials(self) -> list[dict[str, Any]]:
        """Every call a function's role did not allow so far, oldest first.

        Each: function (logical id), role, action, resource, code (the AWS error code the
        function got), detail (which statement decided, or none allowed), message (AWS's).
        """
        denials = self._iam_state()["denials"]
        for denial in denials:
            denial["function"] = self._function_of_session(denial.get("session"))
        return list(denials)

    def allowed_calls(self) -> set[tuple[str, str, str]]:
        """Every distinct (function logical id, IAM action, resource ARN) a role allowed so far."""
        found = set()
        for _role, session, action, resource in self._iam_state()["allowed"]:
            function = self._function_of_session(session)
            if function is not None:
                found.add((function, action, resource))
        return found

    # ------------------------------------------------------------ use
    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def post_webhook(
        self, body: bytes, *, signed: bool = True, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """POST a webhook body as Meta does (X-Hub-Signature-256 with the app secret)."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if signed:
            all_headers["X-Hub-Signature-256"] = signature(body, self.config.app_secret)
        request = urllib.request.Request(self.webhook_url, data=body, method="POST", headers=all_headers)
        return _send(request)

    def get(self, path_and_query: str) -> tuple[int, bytes]:
        return _send(urllib.request.Request(f"http://127.0.0.1:{self.port}{path_and_query}"))

    def queue_depths(self) -> dict[str, int]:
        """Messages per queue (logical id), visible plus in flight plus delayed."""
        assert self.topology is not None
        depths: dict[str, int] = {}
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        for logical_id, queue in self.topology.queues.items():
            attributes = self._sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=names)[
                "Attributes"
            ]
            depths[logical_id] = sum(int(attributes.get(n, 0)) for n in names)
        return depths

    def queue_messages(self, logical_id: str) -> list[dict[str, Any]]:
        """Peek at a queue (e.g. a dead-letter queue): receive with visibility 0, so nothing changes."""
        assert self.topology is not None
        url = self.topology.queue(logical_id).url
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(10):
            batch = self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                seen.setdefault(message["MessageId"], message)
        return list(seen.values())

    def send_to_queue(self, logical_id: str, body: str, *, group_id: str, deduplication_id: str) -> None:
        """Put one record on a FIFO queue as its producer would, e.g. a webhook redelivered after
        SQS's 5-minute deduplication window (a new deduplication id for the same wamid)."""
        assert self.topology is not None
        self._sqs.send_message(
            QueueUrl=self.topology.queue(logical_id).url,
            MessageBody=body,
            MessageGroupId=group_id,
            MessageDeduplicationId=deduplication_id,
        )

    def purge(self, logical_id: str) -> None:
        """Delete every visible message of a queue (e.g. a dead-letter queue after a test).

        Received and deleted rather than PurgeQueue: SQS allows one PurgeQueue per queue a
        minute, and tests one after another park and clear messages more often than that.
        """
        assert self.topology is not None
        url = self.topology.queue(logical_id).url
        while batch := self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            self._sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )

    def busy(self) -> bool:
        return any(runtime.in_flight for runtime in self.runtimes.values())

    def idle(self) -> bool:
        """No message on any queue (DLQs excepted) and no invocation running."""
        depths = self.queue_depths()
        return not self.busy() and all(
            depth == 0 for name, depth in depths.items() if "DeadLetter" not in name
        )

    def wait_until(self, condition: Callable[[], bool], timeout: float = 60, interval: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise StackError(f"condition not met within {timeout} s")
            time.sleep(interval)

    def kill_worker(self, logical_id: str, wait: float = 30) -> None:
        """Kill a worker of the function while it runs an invocation (waits for one to be busy)."""
        runtime = self.runtimes[logical_id]
        self.wait_until(runtime.kill_busy_worker, timeout=wait, interval=0.02)

    def notices(self) -> list[Notice]:
        """Every SNS notice published so far (handoff notices), oldest first."""
        return self._notice_log.notices() if self._notice_log is not None else []

    # ------------------------------------------------------------ operator view
    def state(self) -> dict[str, Any]:
        """What operator tools (`make chat`, `make doctor`) need to find this stack: never a secret value.

        `outputs` are the template's outputs that name a resource created locally (queue
        URLs, secret names...), plus the local WebhookUrl; `resources` maps the logical id of
        each queue, table and secret to its URL or name; `alarms` are the template's alarms
        resolved for local evaluation (local_stack.alarms).
        """
        assert self.topology is not None
        template = self.topology.template  # transformed: Outputs and alarms are as in template.yaml
        created: dict[str, str] = {
            **{logical_id: queue.url for logical_id, queue in self.topology.queues.items()},
            **self.topology.secrets,
            **self.topology.tables,
            **self.topology.topics,
        }
        outputs = {
            name: created[output["Value"]["Ref"]]
            for name, output in template.get("Outputs", {}).items()
            if isinstance(output.get("Value"), dict) and output["Value"].get("Ref") in created
        }
        outputs["WebhookUrl"] = self.webhook_url
        queue_names = {logical_id: queue.name for logical_id, queue in self.topology.queues.items()}
        return {
            "pid": os.getpid(),
            "stack_name": STACK_NAME,
            "region": REGION,
            "moto_url": self.moto_url,
            "webhook_url": self.webhook_url,
            "graph_sink_url": self.sink.base_url,
            "mistral_standin_url": self.mistral.base_url,
            "logs": str(self.logs.path),
            "outputs": outputs,
            "resources": created,
            "parameters": dict(self.topology.parameters),
            "functions": {
                logical_id: {"service": spec.environment.get("POWERTOOLS_SERVICE_NAME", "")}
                for logical_id, spec in self.topology.functions.items()
            },
            "alarms": [asdict(spec) for spec in alarm_specs(template, self.topology.parameters, queue_names)],
            "whatsapp": {"phone_number_id": PHONE_NUMBER_ID, "business_account_id": BUSINESS_ACCOUNT_ID},
        }

    def write_state(self, path: Path) -> None:
        """Write `state()` as JSON, atomically (a reader never sees half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
        partial.replace(path)

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line logged in this run so far (functions, stand-ins, HTTP API)."""
        with self.logs.path.open(encoding="utf-8") as stream:
            return [json.loads(line) for line in stream if line.strip()]


def _send(request: urllib.request.Request) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
