"""`make sam-local`: every function invoked in SAM's Lambda emulator, offline, with its result checked.

Steps: start a Docker engine (scripts/dockerd.sh; when none can run here at all, print
one "skipped" line and exit 0), build the offline stand-in of the Lambda base image
(scripts/lambda_base_image.sh, cached), `sam build`, start `python -m local_stack.services`
on the docker bridge address, then `sam local invoke` each function with its sample
event and `--env-vars events/env.json` and check what it did (response, queues, the
Mistral stand-in's calls, the Graph sink's messages). Everything it started is stopped
on the way out, failures included. Exit 0 when every check passed, 1 otherwise.

Env: SAM (the sam command, default .venv-sam/bin/sam with Python 3.13 on PATH),
SAM_LOCAL_INVOKE_TIMEOUT (seconds per invoke, default 300).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as `python scripts/sam_local_check.py`: the repository and the layer are not on sys.path.
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "wa_assistant")]

from local_stack.mistral_standin import stand_in_reply  # noqa: E402
from local_stack.services import (  # noqa: E402
    DEFAULT_GRAPH_PORT,
    DEFAULT_MISTRAL_PORT,
    DEFAULT_MOTO_PORT,
    ENV_JSON,
    READY_LINE,
    ServiceAddresses,
)
from local_stack.topology import REGION, moto_client  # noqa: E402
from wa_assistant.records import (  # noqa: E402
    InboundMessage,
    Sender,
    TextReply,
    TypingIndicator,
    outbound_action_adapter,
    sqs_safe_id,
)

EVENTS = ROOT / "events"
WORK_DIR = ROOT / ".aws-sam" / "sam-local"
"""Own build and cache directories: `make bench` may run `sam build` into .aws-sam/build meanwhile."""
BUILD_DIR = WORK_DIR / "build"
CACHE_DIR = WORK_DIR / "cache"
DOCKERD = ROOT / "scripts" / "dockerd.sh"
BASE_IMAGE = ROOT / "scripts" / "lambda_base_image.sh"
NO_ENGINE = 3
"""scripts/dockerd.sh's exit code when no container engine can run here."""
STDERR_TAIL_LINES = 25


class CheckError(Exception):
    """A step or an invocation did not do what it should."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def say(line: str) -> None:
    print(f"sam-local: {line}", flush=True)


def tail(text: str, lines: int = STDERR_TAIL_LINES, width: int = 400) -> str:
    kept = [line if len(line) <= width else line[:width] + " …" for line in text.splitlines()[-lines:]]
    return "\n".join("    " + line for line in kept)


def run_step(name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run a set-up command with its output in `log`; raise with the log's tail if it fails."""
    started = time.monotonic()
    with log.open("wb") as output:
        result = subprocess.run(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise CheckError(
            f"{name} failed (exit {result.returncode}, log {log})", tail(log.read_text(errors="replace"))
        )
    say(f"{name}: ok ({seconds:.1f} s)")
    return seconds


# ---------------------------------------------------------------- sam
def python313_bin() -> str:
    """The directory of a real Python 3.13 (not a venv: `sam build` runs pip with it)."""
    base = Path(sys.base_prefix) / "bin"
    if sys.version_info[:2] == (3, 13) and (base / "python3.13").exists():
        return str(base)
    found = shutil.which("python3.13")
    if found is None:
        raise CheckError("Python 3.13 not found: `sam build` needs python3.13 on PATH")
    return str(Path(found).parent)


def sam_command() -> tuple[list[str], dict[str, str]]:
    """As the Makefile's $(SAM): .venv-sam's sam, Python 3.13 first on PATH, no telemetry."""
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    if os.environ.get("SAM"):
        return shlex.split(os.environ["SAM"]), env
    env["PATH"] = python313_bin() + os.pathsep + env.get("PATH", "")
    return [str(ROOT / ".venv-sam" / "bin" / "sam")], env


# ---------------------------------------------------------------- docker
@contextmanager
def docker_engine(logs: Path) -> Iterator[str | None]:
    """Yields the bridge address, or None when no container engine can run here.

    Stops the engine afterwards only if this run started it (another user's may be in use).
    """
    was_running = subprocess.run([str(DOCKERD), "status"], capture_output=True, check=False).returncode == 0
    started = subprocess.run([str(DOCKERD), "start"], capture_output=True, text=True, check=False)
    (logs / "dockerd-start.log").write_text(started.stdout + started.stderr)
    if started.returncode == NO_ENGINE:
        reason = (started.stderr.strip().splitlines() or ["dockerd.sh gave no reason"])[-1]
        reason = reason.removeprefix("dockerd.sh: ").removeprefix("no container engine: ")
        say(f"skipped: no container engine can start here ({reason})")
        yield None
        return
    try:
        if started.returncode != 0:
            raise CheckError(
                f"scripts/dockerd.sh start failed (exit {started.returncode})",
                tail(started.stdout + started.stderr),
            )
        say("docker engine: " + ("already running" if was_running else "started"))
        bridge = subprocess.run([str(DOCKERD), "bridge-ip"], capture_output=True, text=True, check=False)
        if bridge.returncode != 0 or not bridge.stdout.strip():
            raise CheckError("no docker bridge address", tail(bridge.stderr))
        yield bridge.stdout.strip()
    finally:
        if not was_running:
            stopped = subprocess.run([str(DOCKERD), "stop"], capture_output=True, text=True, check=False)
            say("docker engine: " + (stopped.stdout.strip() or f"stop exited {stopped.returncode}"))


def prepare_base_image(logs: Path) -> None:
    """The Lambda base image SAM layers its emulator on (invokes use --skip-pull-image).

    As root, scripts/lambda_base_image.sh (cached; keeps a real AWS image it finds). Without
    root it cannot build, so a developer's machine uses the real image, pulled if missing.
    """
    if os.geteuid() == 0:
        run_step("base image", [str(BASE_IMAGE)], logs / "lambda-base-image.log")
        return
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    image = f"public.ecr.aws/lambda/python:3.13-{arch}"
    if (
        subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode
        == 0
    ):
        say(f"base image: {image} present")
        return
    run_step(f"docker pull {image}", ["docker", "pull", image], logs / "docker-pull.log")


# ---------------------------------------------------------------- services
def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # As the servers themselves do: a port held only by closed connections (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def free_ports(host: str, count: int) -> list[int]:
    """Distinct free ports (every probe stays open until all are picked)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((host, 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def choose_addresses(host: str) -> ServiceAddresses:
    """The documented fixed ports, unless something (another run?) holds one of them."""
    defaults = ServiceAddresses(host)
    if all(port_free(host, p) for p in (DEFAULT_MOTO_PORT, DEFAULT_MISTRAL_PORT, DEFAULT_GRAPH_PORT)):
        return defaults
    chosen = ServiceAddresses(host, *free_ports(host, 3))
    say(
        f"ports {DEFAULT_MOTO_PORT}-{DEFAULT_GRAPH_PORT} on {host} are in use; using "
        f"{chosen.moto_port}, {chosen.mistral_port}, {chosen.graph_port} and a generated env file"
    )
    return chosen


@contextmanager
def local_services(addresses: ServiceAddresses, env_file: Path, log: Path) -> Iterator[None]:
    command = [
        sys.executable,
        "-m",
        "local_stack.services",
        "--host",
        addresses.host,
        "--moto-port",
        str(addresses.moto_port),
        "--mistral-port",
        str(addresses.mistral_port),
        "--graph-port",
        str(addresses.graph_port),
        "--env-json",
        str(env_file),
    ]
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    try:
        while READY_LINE not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise CheckError(
                    f"local_stack.services exited ({process.returncode})",
                    tail(log.read_text(errors="replace")),
                )
            if time.monotonic() - started > 90:
                raise CheckError("local_stack.services not ready within 90 s", tail(log.read_text()))
            time.sleep(0.2)
        say(f"services on {addresses.host}: ready ({time.monotonic() - started:.1f} s, log {log})")
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Services:
    """What the checks look at: moto's queues and the stand-ins' records."""

    def __init__(self, addresses: ServiceAddresses) -> None:
        self.addresses = addresses
        self.sqs = moto_client("sqs", addresses.moto_url)

    def drain(self, queue_name: str) -> list[dict[str, Any]]:
        """Receive and delete every message of a queue (FIFO order kept within a group)."""
        url = self.addresses.queue_url(queue_name)
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)

    def get(self, url: str) -> Any:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local stand-in
            return json.loads(response.read())

    def mistral_calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.get(
            self.addresses.mistral_base_url.removesuffix("/v1") + "/_calls"
        )["calls"]
        return calls

    def graph_messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.get(self.addresses.graph_base_url + "/_messages")["messages"]
        return messages


# ---------------------------------------------------------------- checks
def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckError(message)


def expected_inbound(event: dict[str, Any]) -> InboundMessage:
    """The record a webhook with one text message must put on the inbound queue (read from the event)."""
    value = json.loads(event["body"])["entry"][0]["changes"][0]["value"]
    message, contact = value["messages"][0], value["contacts"][0]
    return InboundMessage(
        phone_number_id=value["metadata"]["phone_number_id"],
        display_phone_number=value["metadata"]["display_phone_number"],
        sender=Sender(wa_id=contact["wa_id"], profile_name=contact["profile"]["name"]),
        message_id=message["id"],
        timestamp=int(message["timestamp"]),
        type="text",
        text=message["text"]["body"],
    )


def check_verify(response: dict[str, Any], services: Services) -> str:
    challenge = load_event("webhook_get_verify.json")["queryStringParameters"]["hub.challenge"]
    expect(response.get("statusCode") == 200, f"statusCode {response.get('statusCode')}, expected 200")
    expect(response.get("body") == challenge, f"body {response.get('body')!r}, expected {challenge!r}")
    return f"200, challenge {challenge} echoed"


def check_post_text(response: dict[str, Any], services: Services) -> str:
    expect(response.get("statusCode") == 200, f"statusCode {response.get('statusCode')}, expected 200")
    queued = services.drain("wa-local-InboundQueue.fifo")
    expect(len(queued) == 1, f"{len(queued)} records on the inbound queue, expected 1")
    record = InboundMessage.model_validate_json(queued[0]["Body"])
    expected = expected_inbound(load_event("webhook_post_text.json"))
    expect(record == expected, f"inbound record {record!r}, expected {expected!r}")
    attributes = queued[0]["Attributes"]
    expect(
        attributes.get("MessageGroupId") == expected.conversation_id,
        f"MessageGroupId {attributes.get('MessageGroupId')}, expected {expected.conversation_id}",
    )
    expect(
        attributes.get("MessageDeduplicationId") == sqs_safe_id(expected.message_id),
        f"MessageDeduplicationId {attributes.get('MessageDeduplicationId')}, expected the wamid",
    )
    return f"200, InboundMessage {expected.message_id} enqueued"


def check_post_status(response: dict[str, Any], services: Services) -> str:
    expect(response.get("statusCode") == 200, f"statusCode {response.get('statusCode')}, expected 200")
    queued = services.drain("wa-local-InboundQueue.fifo")
    expect(not queued, f"{len(queued)} records on the inbound queue for a status webhook, expected none")
    return "200, nothing enqueued"


def check_ai_reply(response: dict[str, Any], services: Services) -> str:
    expect(response == {"batchItemFailures": []}, f"response {response}, expected no batchItemFailures")
    inbound = InboundMessage.model_validate_json(load_event("ai_reply_inbound.json")["Records"][0]["body"])
    calls = services.mistral_calls()
    expect(len(calls) == 1, f"{len(calls)} calls at the Mistral stand-in, expected 1")
    expect(
        calls[0]["status"] == 200 and calls[0]["authorized"],
        f"Mistral stand-in answered {calls[0]['status']}",
    )
    expect(calls[0]["last_user_text"] == inbound.text, f"model asked {calls[0]['last_user_text']!r}")
    actions = [
        outbound_action_adapter.validate_json(m["Body"])
        for m in services.drain("wa-local-OutboundQueue.fifo")
    ]
    expected_text = stand_in_reply([{"role": "user", "content": inbound.text}])
    expect(
        len(actions) == 2 and isinstance(actions[0], TypingIndicator) and isinstance(actions[1], TextReply),
        f"outbound queue holds {[type(a).__name__ for a in actions]}, expected [TypingIndicator, TextReply]",
    )
    reply = actions[1]
    assert isinstance(reply, TextReply)
    expect(actions[0].inbound_message_id == inbound.message_id, "typing indicator for another message")
    expect(reply.inbound_message_id == inbound.message_id, "reply to another message")
    expect(reply.recipient.wa_id == inbound.sender.wa_id, f"reply to {reply.recipient}")
    expect(reply.text == expected_text, f"reply text {reply.text!r}, expected {expected_text!r}")
    dead = services.drain("wa-local-InboundDeadLetterQueue.fifo")
    expect(not dead, f"{len(dead)} records in the inbound dead-letter queue")
    return "no failures, 1 model call, typing + reply enqueued"


def check_send_reply(response: dict[str, Any], services: Services) -> str:
    expect(response == {"batchItemFailures": []}, f"response {response}, expected no batchItemFailures")
    reply = outbound_action_adapter.validate_json(
        load_event("send_reply_outbound.json")["Records"][0]["body"]
    )
    assert isinstance(reply, TextReply)
    sent = services.graph_messages()
    expect(len(sent) == 1, f"{len(sent)} messages at the Graph sink, expected 1")
    expect(sent[0]["text"] == reply.text, f"Graph sink got {sent[0]['text']!r}, expected {reply.text!r}")
    expect(
        sent[0]["to"] == reply.recipient.wa_id, f"sent to {sent[0]['to']}, expected {reply.recipient.wa_id}"
    )
    expect(
        sent[0]["context_message_id"] == reply.inbound_message_id, "reply does not quote the inbound message"
    )
    return "no failures, text delivered to the Graph sink"


@dataclass
class Invocation:
    function: str
    event: str
    check: Callable[[dict[str, Any], Services], str]
    result: str = "not run"
    seconds: float = 0.0
    passed: bool = False
    details: str = field(default="", repr=False)


INVOCATIONS = [
    Invocation("WebhookFunction", "webhook_get_verify.json", check_verify),
    Invocation("WebhookFunction", "webhook_post_text.json", check_post_text),
    Invocation("WebhookFunction", "webhook_post_status.json", check_post_status),
    Invocation("AiReplyFunction", "ai_reply_inbound.json", check_ai_reply),
    Invocation("SendReplyFunction", "send_reply_outbound.json", check_send_reply),
]


def invoke(invocation: Invocation, env_file: Path, services: Services, logs: Path) -> None:
    sam, env = sam_command()
    command = [
        *sam,
        "local",
        "invoke",
        invocation.function,
        "--template",
        str(BUILD_DIR / "template.yaml"),
        "--skip-pull-image",
        "--event",
        str(EVENTS / invocation.event),
        "--env-vars",
        str(env_file),
        "--region",
        REGION,
    ]
    timeout = float(os.environ.get("SAM_LOCAL_INVOKE_TIMEOUT") or 300)
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        invocation.seconds = time.monotonic() - started
        stderr = (
            error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr or ""
        )
        raise CheckError(f"sam local invoke did not finish within {timeout:.0f} s", tail(stderr)) from error
    invocation.seconds = time.monotonic() - started
    log = logs / f"{invocation.function}-{invocation.event.removesuffix('.json')}.log"
    log.write_text(f"$ {shlex.join(command)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    if result.returncode != 0:
        raise CheckError(f"sam local invoke exited {result.returncode}", tail(result.stderr))
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    try:
        response = json.loads(lines[-1])
    except (IndexError, ValueError) as error:
        raise CheckError("no JSON response on stdout", tail(result.stdout + result.stderr)) from error
    try:
        invocation.result = invocation.check(response, services)
    except CheckError as failure:
        raise CheckError(str(failure), tail(result.stderr)) from failure


# ---------------------------------------------------------------- main
def summary(invocations: list[Invocation]) -> str:
    rows = [("function", "event", "result", "seconds")]
    rows += [
        (i.function, i.event, ("ok: " if i.passed else "FAILED: ") + i.result, f"{i.seconds:.1f}")
        for i in invocations
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    return "\n".join(
        f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>7}" for row in rows
    )


def env_file_for(addresses: ServiceAddresses, generated: Path) -> Path:
    """events/env.json for the documented addresses (and it must match the live services); else ours."""
    if addresses != ServiceAddresses():
        say(f"services at {addresses.moto_url} (not the documented defaults): invoking with {generated}")
        return generated
    if generated.read_text(encoding="utf-8") != ENV_JSON.read_text(encoding="utf-8"):
        raise CheckError(
            "events/env.json does not match the running services: regenerate it with "
            "`.venv/bin/python -m local_stack.services --write-env-json`"
        )
    return ENV_JSON


def run(logs: Path) -> int:
    started = time.monotonic()
    with docker_engine(logs) as bridge_host:
        if bridge_host is None:
            return 0
        prepare_base_image(logs)
        sam, sam_env = sam_command()
        build = [*sam, "build", "--build-dir", str(BUILD_DIR), "--cache-dir", str(CACHE_DIR)]
        run_step("sam build", build, logs / "sam-build.log", sam_env)
        addresses = choose_addresses(bridge_host)
        generated = logs / "env.json"
        with local_services(addresses, generated, logs / "services.log"):
            env_file = env_file_for(addresses, generated)
            services = Services(addresses)
            for invocation in INVOCATIONS:
                try:
                    invoke(invocation, env_file, services, logs)
                    invocation.passed = True
                except CheckError as failure:
                    invocation.result = str(failure)
                    invocation.details = failure.details
                say(f"{invocation.function} {invocation.event}: {'ok' if invocation.passed else 'FAILED'}")
    for invocation in INVOCATIONS:
        if not invocation.passed:
            say(f"FAILED {invocation.function} -e events/{invocation.event}: {invocation.result}")
            if invocation.details:
                print(invocation.details, flush=True)
    print(summary(INVOCATIONS), flush=True)
    failed = sum(not i.passed for i in INVOCATIONS)
    verdict = "all passed" if not failed else f"{failed} of {len(INVOCATIONS)} FAILED"
    say(f"{verdict} in {time.monotonic() - started:.0f} s (logs in {logs})")
    return 0 if not failed else 1


def main() -> int:
    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through every `finally`, so nothing is left running

    signal.signal(signal.SIGTERM, terminate)
    (WORK_DIR / "logs").mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=WORK_DIR / "logs"))
    try:
        return run(logs)
    except CheckError as failure:
        say(f"FAILED: {failure}")
        if failure.details:
            print(failure.details, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
