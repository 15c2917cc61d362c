"""AWS outages on command: a TCP forwarder between one function and one AWS service (moto).

A function reaches a service through the proxy when its environment sets the
service-specific endpoint botocore honours (`AWS_ENDPOINT_URL_SQS`...), which wins
over the stack's `AWS_ENDPOINT_URL`; the unchanged function code sees a real
outage: while a proxy is `cut()`, open connections are reset and new ones are
accepted and reset at once (botocore's ConnectionClosedError, as when an endpoint
drops), until `restore()`. Nothing else (the event source pollers, the tests)
goes through it. No library does this for moto (toxiproxy is a Go server to
install), so it is a few lines of sockets and threads.

    proxies = FaultProxies({"WebhookFunction": ["sqs"]})
    with LocalStack(function_env=proxies.function_env()) as stack:
        proxies.start(stack.moto_url, log=...)
        with proxies.outage("WebhookFunction", "sqs"):
            ...
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

ENDPOINT_VARIABLES = {
    "sqs": "AWS_ENDPOINT_URL_SQS",
    "secretsmanager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
}
"""botocore's service-specific endpoint variables (service id, upper case, spaces as underscores)."""

_CHUNK = 65536


def _reset(connection: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees its connection reset, not a clean end."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        connection.close()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to `upstream` (host:port of an http URL) unless cut."""

    def __init__(self, name: str, log: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.log = log or (lambda line: None)
        self.upstream = ""
        self.refused = 0
        """Connections reset because the proxy was cut (proof that the outage was felt)."""
        self._cut = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name=f"fault-proxy-{name}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, upstream: str) -> FaultProxy:
        self.upstream = upstream
        self._thread.start()
        return self

    def cut(self) -> None:
        reset = self._reset_open()
        self.log(f"{self.name}: outage starts ({reset} open connections reset)")

    def _reset_open(self) -> int:
        with self._lock:
            self._cut = True
            connections = list(self._open)
            self._open.clear()
        for connection in connections:
            _reset(connection)
        return len(connections)

    def restore(self) -> None:
        with self._lock:
            self._cut = False
        self.log(f"{self.name}: outage ends ({self.refused} connections refused so far)")

    def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._reset_open()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refuse = self._cut
                if refuse:
                    self.refused += 1
            if refuse:
                _reset(client)
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        target = urlsplit(self.upstream)
        try:
            server = socket.create_connection((target.hostname or "127.0.0.1", target.port or 80), timeout=10)
            server.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self._lock:
            if self._cut:  # cut while connecting
                self.refused += 1
                _reset(client)
                _reset(server)
                return
            self._open.update((client, server))
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
        self._pump(client, server)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            for connection in (source, sink):
                with contextlib.suppress(OSError):
                    connection.close()


class FaultProxies:
    """One `FaultProxy` per (function logical id, service) that a test may cut."""

    def __init__(self, routes: Mapping[str, Iterable[str]]) -> None:
        self.proxies = {
            (function, service): FaultProxy(f"{function}->{service}")
            for function, services in routes.items()
            for service in services
        }

    def function_env(self) -> dict[str, dict[str, str]]:
        """For LocalStack(function_env=...): each function reaches its proxied services through them."""
        env: dict[str, dict[str, str]] = {}
        for (function, service), proxy in self.proxies.items():
            env.setdefault(function, {})[ENDPOINT_VARIABLES[service]] = proxy.url
        return env

    def start(self, upstream: str, log: Callable[[str], None] | None = None) -> FaultProxies:
        """Forward to `upstream` (the stack's moto URL, known once the stack runs)."""
        for proxy in self.proxies.values():
            if log is not None:
                proxy.log = log
            proxy.start(upstream)
        return self

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()

    def __getitem__(self, key: tuple[str, str]) -> FaultProxy:
        return self.proxies[key]

    @contextlib.contextmanager
    def outage(self, function: str, service: str) -> Iterator[FaultProxy]:
        """`service` is unreachable for `function` inside the block, whatever happens in it."""
        proxy = self.proxies[(function, service)]
        proxy.cut()
        try:
            yield proxy
        finally:
            proxy.restore()
