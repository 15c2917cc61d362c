"""A local WhatsApp Cloud API (Graph) messages endpoint that records and prints what it gets.

`POST /{version}/{phone_number_id}/messages` with Bearer auth answers Meta's
success shapes: a wamid for a sent message, `{"success": true}` for a read
receipt / typing indicator (recorded apart from text messages).

Control API for tests:
    POST /_control  {"script": [{"status": 500, "times": 3}, {"code": 131047, "times": 1, "to": "<wa_id>"}],
                     "reset": true,
                     "access_token": "..."}
    GET  /_messages {"messages": [...accepted sends...], "receipts": [...], "attempts": [...every call...],
                     "media_requests": [...every media lookup and download...]}

Media (`local_stack.graph_media`): `sink.media.add(bytes, mime_type)` registers a file that
`GET /{version}/{media-id}` and its download URL then serve as Meta does; over HTTP,
`POST /_control {"media": [{"id", "mime_type", "base64", "state"}]}`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_stack.graph_media import MediaStore
from local_stack.http_server import BackgroundServer, QuietHandler, recorded_headers

_MESSAGES_PATH = re.compile(r"^/(?P<version>v[0-9.]+)/(?P<phone_number_id>[^/]+)/messages$")

GRAPH_ERRORS: dict[int, tuple[int, dict[str, Any]]] = {
    131047: (
        400,
        {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131047,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Message failed to send because more than 24 hours have passed since the customer "
                "last replied to this number.",
            },
        },
    ),
    190: (
        401,
        {
            "message": "Error validating access token: Session has expired",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
        },
    ),
    130429: (
        429,
        {
            "message": "(#130429) Rate limit hit",
            "type": "OAuthException",
            "code": 130429,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Message failed to send because there were too many messages sent from this phone "
                "number in a short period of time",
            },
        },
    ),
}
"""Meta's error bodies (shapes as in Meta's error-codes reference) and their HTTP statuses."""


@dataclass
class ScriptedFailure:
    status: int | None = None
    code: int | None = None
    to: str | None = None
    """Only a message to this recipient fails (None: the next call, read receipts included)."""


class GraphSink:
    """State and behaviour of the sink; `server` serves it over HTTP."""

    def __init__(self, access_token: str, print_line: Callable[[str], None] | None = None) -> None:
        self.access_token = access_token
        self._print = print_line or (lambda line: None)
        self._script: list[ScriptedFailure] = []
        self._messages: list[dict[str, Any]] = []
        self._receipts: list[dict[str, Any]] = []
        self._attempts: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server: BackgroundServer | None = None
        self.media = MediaStore(access_token=lambda: self.access_token, base_url=lambda: self.base_url)

    def start(self, port: int = 0, host: str = "127.0.0.1") -> GraphSink:
        self.server = BackgroundServer(_Handler, self, port, host)
        return self

    @property
    def base_url(self) -> str:
        """What GRAPH_API_BASE_URL should be to reach the sink."""
        assert self.server is not None
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    # ------------------------------------------------------------ control
    def script(
        self, status: int | None = None, code: int | None = None, times: int = 1, to: str | None = None
    ) -> None:
        """The next `times` calls fail: plain `status` (500) or Meta's error `code` (131047, 190, 130429).

        With `to`, only messages to that recipient fail (typing indicators and other users' messages pass).
        """
        if code is not None and code not in GRAPH_ERRORS:
            raise ValueError(f"no scripted body for Graph error {code}; known: {sorted(GRAPH_ERRORS)}")
        with self._lock:
            self._script.extend(ScriptedFailure(status, code, to) for _ in range(times))

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._messages.clear()
            self._receipts.clear()
            self._attempts.clear()
        self.media.reset()

    def control(self, command: dict[str, Any]) -> None:
        if command.get("reset"):
            self.reset()
        for step in command.get("script", []):
            self.script(step.get("status"), step.get("code"), int(step.get("times", 1)), step.get("to"))
        if "access_token" in command:
            self.access_token = str(command["access_token"])
        self.media.control(command)

    def messages(self) -> list[dict[str, Any]]:
        """Accepted sends that are not read receipts (texts, and any other message type)."""
        with self._lock:
            return list(self._messages)

    def receipts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._receipts)

    def attempts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._attempts)

    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    # ------------------------------------------------------------ behaviour
    def receive(
        self, path: str, authorization: str | None, raw: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        match = _MESSAGES_PATH.match(path)
        if match is None:
            return 400, {
                "error": {"message": "Unknown path components", "type": "OAuthException", "code": 2500}
            }
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = None
        record: dict[str, Any] = {
            "time": time.time(),
            "path": path,
            "version": match["version"],
            "phone_number_id": match["phone_number_id"],
            "body": body,
            "headers": recorded_headers(headers or {}, self.access_token),
        }
        to = body.get("to") if isinstance(body, dict) else None
        with self._lock:
            scripted = next((s for s in self._script if s.to is None or s.to == to), None)
            if scripted is not None:
                self._script.remove(scripted)
            self._attempts.append(record)
        status, payload = self._outcome(record, authorization, body, scripted)
        record["status"] = status
        return status, payload

    def _outcome(
        self, record: dict[str, Any], authorization: str | None, body: Any, scripted: ScriptedFailure | None
    ) -> tuple[int, dict[str, Any]]:
        if authorization != f"Bearer {self.access_token}":
            status, error = GRAPH_ERRORS[190]
            return status, {"error": error}
        if scripted is not None:
            if scripted.code is not None:
                status, error = GRAPH_ERRORS[scripted.code]
                return status, {"error": error}
            return scripted.status or 500, {
                "error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1}
            }
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return 400, {
                "error": {
                    "message": "(#100) The parameter messaging_product is required.",
                    "type": "OAuthException",
                    "code": 100,
                }
            }
        if body.get("status") == "read":
            record["message_id"] = body.get("message_id")
            with self._lock:
                self._receipts.append(record)
            return 200, {"success": True}
        to = body.get("to") or body.get("recipient")
        wamid = f"wamid.LOCAL{next(self._ids):012d}"
        record.update(
            id=wamid,
            to=to,
            type=body.get("type"),
            text=(body.get("text") or {}).get("body"),
            context_message_id=(body.get("context") or {}).get("message_id"),
        )
        with self._lock:
            self._messages.append(record)
        shown = record["text"] if record["text"] is not None else f"[{record['type']}]"
        self._print(f"→ {to}: {shown}")
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }


class _Handler(QuietHandler):
    @property
    def sink(self) -> GraphSink:
        owner: GraphSink = self.server.owner  # type: ignore[attr-defined]
        return owner

    def do_GET(self) -> None:  # noqa: N802 - http.server dispatches on this name
        if self.path.split("?")[0] == "/_messages":
            self.send_json(
                200,
                {
                    "messages": self.sink.messages(),
                    "receipts": self.sink.receipts(),
                    "attempts": self.sink.attempts(),
                    "media_requests": self.sink.media.requests(),
                },
            )
        elif self.sink.media.handles(self.path.split("?")[0]):
            status, body, headers = self.sink.media.get(self.path, dict(self.headers.items()))
            self.send_bytes(status, body, headers)
        else:
            self.send_json(404, {"error": {"message": "Unsupported get request", "code": 100}})

    def do_POST(self) -> None:  # noqa: N802
        raw = self.read_body()
        path = self.path.split("?")[0]
        if path == "/_control":
            self.sink.control(json.loads(raw or b"{}"))
            self.send_json(200, {"ok": True})
            return
        status, payload = self.sink.receive(
            path, self.headers.get("Authorization"), raw, headers=dict(self.headers.items())
        )
        self.send_json(status, payload)
