"""The HTTP API as `sam local start-api` serves it: payload format 2.0 in, Lambda's result out."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_stack.functions import FunctionRuntime, InvocationError
from local_stack.http_server import BackgroundServer, QuietHandler
from local_stack.topology import ACCOUNT_ID, Route

API_ID = "localapi"


@dataclass
class BoundRoute:
    route: Route
    pattern: re.Pattern[str]
    runtime: FunctionRuntime

    @property
    def route_key(self) -> str:
        return "$default" if self.route.path == "$default" else f"{self.route.method} {self.route.path}"


def _path_pattern(path: str) -> re.Pattern[str]:
    """An HTTP API route path as a regex: {name} is one segment, {name+} the rest."""
    if path == "$default":
        return re.compile(r"^.*$")
    regex = ""
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{") and piece.endswith("+}"):
            regex += f"(?P<{piece[1:-2]}>.+)"
        elif piece.startswith("{"):
            regex += f"(?P<{piece[1:-1]}>[^/]+)"
        else:
            regex += re.escape(piece)
    return re.compile(f"^{regex}$")


def build_event(
    method: str,
    raw_path: str,
    *,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    bound: BoundRoute,
    path_parameters: dict[str, str],
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event."""
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": bound.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": lowered.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": bound.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def map_result(result: Any) -> tuple[int, dict[str, str], list[str], bytes]:
    """Lambda's result as HTTP (payload format 2.0 rules, including the inferred format)."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(name)] = ",".join(str(v) for v in values)
        raw_body = result.get("body")
        if raw_body is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw_body)
        else:
            body = (raw_body if isinstance(raw_body, str) else json.dumps(raw_body)).encode()
        return int(result["statusCode"]), headers, list(result.get("cookies") or []), body
    # No statusCode: API Gateway infers 200 and a JSON body of whatever came back.
    body = (result if isinstance(result, str) else json.dumps(result)).encode()
    return 200, {"content-type": "application/json"}, [], body


class ApiGateway:
    """Routes requests to functions; `log` receives one access-log line per request."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.routes: list[BoundRoute] = []
        self.log = log
        self.server: BackgroundServer | None = None

    def add_route(self, route: Route, runtime: FunctionRuntime) -> None:
        self.routes.append(BoundRoute(route, _path_pattern(route.path), runtime))
        # Explicit routes win over $default, as in API Gateway.
        self.routes.sort(key=lambda b: b.route.path == "$default")

    def match(self, method: str, path: str) -> tuple[BoundRoute, dict[str, str]] | None:
        for bound in self.routes:
            if bound.route.method not in (method, "ANY") and bound.route.path != "$default":
                continue
            found = bound.pattern.match(path)
            if found:
                return bound, found.groupdict()
        return None

    def start(self, port: int) -> ApiGateway:
        self.server = BackgroundServer(_Handler, self, port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class _Handler(QuietHandler):
    def _serve(self) -> None:
        gateway: ApiGateway = self.server.owner  # type: ignore[attr-defined]
        started = time.perf_counter()
        parts = urlsplit(self.path)
        body = self.read_body()
        matched = gateway.match(self.command, parts.path)
        headers: dict[str, str]
        cookies: list[str]
        if matched is None:
            status, headers, cookies, payload = 404, {}, [], b'{"message":"Not Found"}'
        else:
            bound, path_parameters = matched
            event = build_event(
                self.command,
                parts.path,
                raw_query=parts.query,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                bound=bound,
                path_parameters=path_parameters,
            )
            try:
                status, headers, cookies, payload = map_result(bound.runtime.invoke(event))
            except InvocationError:
                status, headers, cookies, payload = 500, {}, [], b'{"message":"Internal Server Error"}'
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if not any(name.lower() == "content-type" for name in headers):
            self.send_header("Content-Type", "application/json")
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        gateway.log(f"{self.command} {parts.path} {status} {(time.perf_counter() - started) * 1000:.0f} ms")

    # http.server dispatches on these names.
    do_GET = _serve  # noqa: N815
    do_POST = _serve  # noqa: N815
    do_PUT = _serve  # noqa: N815
    do_DELETE = _serve  # noqa: N815
    do_PATCH = _serve  # noqa: N815
    do_HEAD = _serve  # noqa: N815
    do_OPTIONS = _serve  # noqa: N815
