"""A stdlib HTTP server on 127.0.0.1 (or a given address) and a free port, run in a background thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_PLACEHOLDER = "TOKEN"  # noqa: S105 - what a recorded header shows instead of the secret
RECORDED_HEADERS = ("authorization", "content-type", "user-agent", "accept")


def recorded_headers(headers: Mapping[str, str], token: str) -> dict[str, str]:
    """The request headers worth checking (stand-ins record them), the secret replaced by TOKEN."""
    return {
        name: value.replace(token, TOKEN_PLACEHOLDER) if token else value
        for name, value in headers.items()
        if name.lower() in RECORDED_HEADERS
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def reachable_host(bind_host: str) -> str:
    """The address a local client uses for a server bound to `bind_host`."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "") else bind_host


class QuietHandler(BaseHTTPRequestHandler):
    """Request handler with JSON helpers; access logs off (the stack logs what matters)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = headers or {}
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Type" not in headers and "content-type" not in {k.lower() for k in headers}:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(payload, ensure_ascii=False).encode(), headers)


class BackgroundServer:
    """Serves `handler_class` until `stop()`; the handler reaches its owner through `server.owner`."""

    def __init__(
        self,
        handler_class: type[BaseHTTPRequestHandler],
        owner: Any,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.httpd = ThreadingHTTPServer((host, port), handler_class)
        self.httpd.daemon_threads = True
        self.httpd.owner = owner  # type: ignore[attr-defined]
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name=handler_class.__name__, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Where this machine reaches the server (a wildcard bind is reached on loopback)."""
        return f"http://{reachable_host(self.host)}:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
