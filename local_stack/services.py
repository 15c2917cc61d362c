"""Services only: moto, the Mistral stand-in and the Graph sink, for functions run elsewhere.

`sam local invoke` runs each function in a container; this module gives those
containers the AWS resources of template.yaml (created in moto exactly as `make local`
does, with the local default secrets) and the two stand-ins, on fixed ports of an
address containers can reach (the docker bridge, 172.17.0.1, by default):

    python -m local_stack.services [--host 172.17.0.1] [--moto-port 5010] ...
    sam local invoke WebhookFunction -e events/webhook_post_text.json --env-vars events/env.json

Resource names are deterministic (`wa-local-<LogicalId>`), so `events/env.json`, the
environment overrides of each function, is static; it is generated from the template:

    python -m local_stack.services --write-env-json    # rewrites events/env.json

and a unit test fails when it drifts from the template.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Self

from local_stack.cfn import TemplateError, load_template, resources_of_type
from local_stack.config import ROOT, STATE_DIR, TEMPLATE, LocalConfig
from local_stack.graph_sink import GraphSink
from local_stack.logs import LogSink
from local_stack.mistral_standin import MistralStandIn
from local_stack.moto_launcher import MotoServer, MotoServerError
from local_stack.topology import ACCOUNT_ID, Topology, build_topology, moto_client

DEFAULT_HOST = "172.17.0.1"
"""Docker's default bridge gateway: how a `sam local invoke` container reaches this machine."""
DEFAULT_MOTO_PORT = 5010
DEFAULT_MISTRAL_PORT = 5011
DEFAULT_GRAPH_PORT = 5012
ENV_JSON = ROOT / "events" / "env.json"
SAM_ENV_FILE = STATE_DIR / "sam-env.json"
"""Where the running services write their env file when it differs from events/env.json."""
READY_LINE = "Services ready"
"""First word(s) of the line printed once everything answers (scripts wait for it)."""

SAM_LOCAL_PARAMETERS = {"ServiceWindowHours": "0"}
"""The sample events carry fixed, old timestamps: 0 turns the 24-hour window check off."""
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
WILDCARD_HOSTS = ("0.0.0.0", "")
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass(frozen=True)
class ServiceAddresses:
    """Where the services listen, as the functions' containers see them."""

    host: str = DEFAULT_HOST
    moto_port: int = DEFAULT_MOTO_PORT
    mistral_port: int = DEFAULT_MISTRAL_PORT
    graph_port: int = DEFAULT_GRAPH_PORT

    @property
    def moto_url(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def mistral_base_url(self) -> str:
        return f"http://{self.host}:{self.mistral_port}/v1"

    @property
    def graph_base_url(self) -> str:
        return f"http://{self.host}:{self.graph_port}"

    def queue_url(self, queue_name: str) -> str:
        """moto's queue URL format (`Queue.url`: scheme://<request host>/<account>/<name>)."""
        return f"{self.moto_url}/{ACCOUNT_ID}/{queue_name}"

    def parameter_overrides(self) -> dict[str, str]:
        """Template parameters as for a deploy against these services."""
        return {
            "MistralBaseUrl": self.mistral_base_url,
            "GraphApiBaseUrl": self.graph_base_url,
            **SAM_LOCAL_PARAMETERS,
        }


def _references(node: Any) -> Iterator[str]:
    """Every logical id or parameter a template node refers to (Ref, GetAtt, Sub)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield str(value)
            elif key == "Fn::GetAtt":
                yield str(value[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                yield from (name.split(".")[0] for name in _sub_names(str(text)))
                if isinstance(value, list):
                    yield from _references(value[1])
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _sub_names(text: str) -> list[str]:
    return _SUB_VARIABLE.findall(text)


def sam_env_vars(
    template: Mapping[str, Any], topology: Topology, addresses: ServiceAddresses
) -> dict[str, dict[str, str]]:
    """`sam local invoke --env-vars` content: per function, every variable that must differ locally.

    That is AWS_ENDPOINT_URL (moto), each variable that refers to a resource (queue URLs,
    table and secret names) and each variable set from a parameter these services override
    (MISTRAL_BASE_URL, GRAPH_API_BASE_URL, SERVICE_WINDOW_HOURS). SAM only overrides
    variables the template declares, so a missing declaration is an error here.
    """
    resources = set(template.get("Resources", {}))
    overridden = set(addresses.parameter_overrides())
    globals_ = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    queue_urls = {queue.url: addresses.queue_url(queue.name) for queue in topology.queues.values()}
    env: dict[str, dict[str, str]] = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        own = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        declared = {**globals_, **own}
        if ENDPOINT_VARIABLE not in declared:
            raise TemplateError(
                f"{logical_id} does not declare {ENDPOINT_VARIABLE}: `sam local invoke --env-vars` "
                "could not point it at moto (declare it empty in Globals)"
            )
        resolved = topology.functions[logical_id].environment
        variables = {ENDPOINT_VARIABLE: addresses.moto_url}
        for name, node in declared.items():
            if set(_references(node)) & (resources | overridden):
                value = resolved[name]
                variables[name] = queue_urls.get(value, value)
        env[logical_id] = dict(sorted(variables.items()))
    return env


def env_json_text(env: Mapping[str, Mapping[str, str]]) -> str:
    return json.dumps(env, indent=2, ensure_ascii=False) + "\n"


def generate_env_json(addresses: ServiceAddresses, template_path: Path = TEMPLATE) -> str:
    """events/env.json for `addresses`, without running anything (moto in-process).

    The resources are created in moto's in-process mock so that every name, and every
    reference the template makes, is resolved by the same code as for the running services.
    """
    from moto import mock_aws  # noqa: PLC0415 - a dev tool's dependency, needed only here

    with mock_aws():
        clients = {name: moto_client(name) for name in ("sqs", "dynamodb", "secretsmanager", "sns")}
        topology = build_topology(
            template_path, addresses.parameter_overrides(), clients, LocalConfig().secret_values()
        )
    return env_json_text(sam_env_vars(load_template(template_path), topology, addresses))


class ServicesError(Exception):
    """The services could not start (port taken, address not on this machine...)."""


def _check_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        # As the servers themselves do: a port held only by closed connections (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ServicesError(f"cannot listen on {host}:{port}: {error.strerror}") from error


class LocalServices:
    """moto + stand-ins on fixed ports, resources from template.yaml, local default secrets."""

    def __init__(
        self,
        addresses: ServiceAddresses,
        *,
        bind_host: str | None = None,
        template: Path = TEMPLATE,
        echo_logs: bool = True,
    ) -> None:
        self.addresses = addresses
        self.bind_host = addresses.host if bind_host is None else bind_host
        self.template = template
        self.config = LocalConfig()
        run_dir = STATE_DIR / ("services-" + time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
        self.logs = LogSink(run_dir / "logs.jsonl", echo=echo_logs)
        self.moto = MotoServer(addresses.moto_port, run_dir / "moto.log", host=self.bind_host)
        self.mistral = MistralStandIn(
            self.config.mistral_api_key, log=lambda line: self.logs.emit("mistral-standin", line)
        )
        self.sink = GraphSink(
            self.config.access_token, print_line=lambda line: self.logs.emit("graph-sink", line)
        )
        self.topology: Topology | None = None
        self.env: dict[str, dict[str, str]] = {}

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        for port in (self.addresses.moto_port, self.addresses.mistral_port, self.addresses.graph_port):
            _check_free(self.bind_host, port)
        self.moto.start()
        self.mistral.start(self.addresses.mistral_port, self.bind_host)
        self.sink.start(self.addresses.graph_port, self.bind_host)
        clients = {
            name: moto_client(name, self.moto.url) for name in ("sqs", "dynamodb", "secretsmanager", "sns")
        }
        self.topology = build_topology(
            self.template, self.addresses.parameter_overrides(), clients, self.config.secret_values()
        )
        self.env = sam_env_vars(load_template(self.template), self.topology, self.addresses)
        return self

    def stop(self) -> None:
        self.mistral.stop()
        self.sink.stop()
        self.moto.stop()
        self.logs.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.services",
        description="moto + Mistral stand-in + Graph sink for `sam local invoke --env-vars events/env.json`.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    parser.add_argument(
        "--public-host",
        help="address the containers use to reach the services (default: --host; "
        f"{DEFAULT_HOST} when --host is 0.0.0.0)",
    )
    parser.add_argument("--moto-port", type=int, default=DEFAULT_MOTO_PORT)
    parser.add_argument("--mistral-port", type=int, default=DEFAULT_MISTRAL_PORT)
    parser.add_argument("--graph-port", type=int, default=DEFAULT_GRAPH_PORT)
    parser.add_argument(
        "--env-json",
        type=Path,
        help=f"where the running services write the functions' env file (default: {SAM_ENV_FILE} "
        "when it differs from events/env.json)",
    )
    parser.add_argument(
        "--write-env-json",
        nargs="?",
        type=Path,
        const=ENV_JSON,
        metavar="PATH",
        help="write the env file for these addresses (default path events/env.json) and exit; starts nothing",
    )
    return parser


def _addresses(arguments: argparse.Namespace) -> ServiceAddresses:
    public = arguments.public_host or (DEFAULT_HOST if arguments.host in WILDCARD_HOSTS else arguments.host)
    return ServiceAddresses(public, arguments.moto_port, arguments.mistral_port, arguments.graph_port)


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    addresses = _addresses(arguments)
    if arguments.write_env_json is not None:
        arguments.write_env_json.write_text(generate_env_json(addresses), encoding="utf-8")
        print(f"wrote {arguments.write_env_json}")
        return 0

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        with LocalServices(addresses, bind_host=arguments.host) as services:
            env_file = _write_env_file(services.env, arguments.env_json)
            print(_banner(services, arguments.host, env_file), flush=True)
            while not stopping.wait(0.5):
                pass
            print("Stopping...", flush=True)
    except (ServicesError, MotoServerError, OSError) as error:
        print(f"local_stack.services: {error}", file=sys.stderr)
        return 1
    return 0


def _write_env_file(env: Mapping[str, Mapping[str, str]], requested: Path | None) -> Path:
    """The env file for the running services: events/env.json when it is exactly that, else a new one."""
    text = env_json_text(env)
    if requested is None:
        if ENV_JSON.exists() and ENV_JSON.read_text(encoding="utf-8") == text:
            return ENV_JSON
        requested = SAM_ENV_FILE
    requested.parent.mkdir(parents=True, exist_ok=True)
    requested.write_text(text, encoding="utf-8")
    return requested


def _banner(services: LocalServices, bind_host: str, env_file: Path) -> str:
    addresses = services.addresses
    shown = env_file.relative_to(ROOT) if env_file.is_relative_to(ROOT) else env_file
    return "\n".join(
        [
            f"moto (AWS)      : {addresses.moto_url}  (listening on {bind_host})",
            f"Mistral stand-in: {addresses.mistral_base_url}/chat/completions",
            f"Graph sink      : {addresses.graph_base_url}  (prints each message it receives)",
            f"Logs            : {services.logs.path}",
            f"{READY_LINE}: sam local invoke <Function> -e events/<event>.json --env-vars {shown}",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
