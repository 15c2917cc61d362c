"""A local WhatsApp Cloud API (Graph) messages endpoint that records and prints what it gets.

`POST /{version}/{phone_number_id}/messages` with Bearer auth answers Meta's
success shapes: a wamid for a sent message, `{"success": true}` for a read
receipt / typing indicator (recorded apart from text messages).

What `make doctor` asks, with the same Bearer rule (shapes from Meta's Business
Messaging OpenAPI, operations getPhoneNumberById and getAllSubscriptionsForAWaba):
    GET  /{version}/{phone_number_id}?fields=...   the phone number's status
    GET  /{version}/{waba_id}/subscribed_apps       apps that get the WABA's webhooks
    POST /{version}/{waba_id}/subscribed_apps       subscribe the local app
An id the sink does not know gets Graph's "Unsupported get request" error (code 100, subcode 33).

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
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_stack.graph_media import MediaStore, unknown_object
from local_stack.http_server import BackgroundServer, QuietHandler, recorded_headers
from local_stack.webhooks import BUSINESS_ACCOUNT_ID, DISPLAY_PHONE_NUMBER, PHONE_NUMBER_ID

_MESSAGES_PATH = re.compile(r"^/(?P<version>v[0-9.]+)/(?P<phone_number_id>[^/]+)/messages$")
_OBJECT_PATH = re.compile(r"^/(?P<version>v[0-9.]+)/(?P<object_id>[^/]+)$")
_SUBSCRIBED_APPS_PATH = re.compile(r"^/(?P<version>v[0-9.]+)/(?P<waba_id>[^/]+)/subscribed_apps$")

LOCAL_APP = {
    "id": "1000000000000001",
    "name": "Local WhatsApp assistant",
    "link": "https://www.facebook.com/games/?app_id=1000000000000001",
}
"""The Meta app the local stack pretends to be (whatsapp_business_api_data of subscribed_apps)."""
DEFAULT_PHONE_FIELDS = ("id", "display_phone_number", "verified_name", "quality_rating")
"""What GET /{phone_number_id} returns without `fields` (Meta's OpenAPI, getPhoneNumberById)."""


def local_phone_number() -> dict[str, Any]:
    """The local business number as Graph describes a registered Cloud API number."""
    return {
        "id": PHONE_NUMBER_ID,
        "display_phone_number": f"+{DISPLAY_PHONE_NUMBER}",
        "verified_name": "Local Test Business",
        "quality_rating": "GREEN",
        "code_verification_status": "NOT_VERIFIED",
        "name_status": "APPROVED",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "messaging_limit_tier": "TIER_1K",
        "account_mode": "LIVE",
        "status": "CONNECTED",
        "is_official_business_account": False,
    }


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


def _meta_error(status: int, code: int, title: str, details: str) -> tuple[int, dict[str, Any]]:
    """An error body in the shape of Meta's reference ("(#code) title" message, error_data.details)."""
    return status, {
        "message": f"(#{code}) {title}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": f"LocalSinkTrace{code}",
    }


_PERMISSION_DETAILS = "Permission is either not granted or has been removed."
# Authorization and account-level errors, with the HTTP status Meta's error-codes reference gives.
GRAPH_ERRORS.update(
    {
        10: _meta_error(403, 10, "Permission Denied", _PERMISSION_DETAILS),
        200: _meta_error(403, 200, "API Permission", _PERMISSION_DETAILS),
        368: _meta_error(
            403,
            368,
            "Temporarily blocked for policies violations",
            "The WhatsApp Business Account associated with the app has been restricted or disabled "
            "for violating a platform policy.",
        ),
        130497: _meta_error(
            403,
            130497,
            "Business account is restricted from messaging users in this country",
            "The WhatsApp Business Account is restricted from messaging users in certain countries.",
        ),
        131031: _meta_error(
            403,
            131031,
            "Business Account locked",
            "The WhatsApp Business Account associated with the app has been restricted or disabled.",
        ),
        131042: _meta_error(
            400,
            131042,
            "Business eligibility payment issue",
            "Message failed to send because there were one or more errors related to your payment method.",
        ),
        133010: _meta_error(
            400,
            133010,
            "Phone number Not Registered",
            "Phone number not registered on the WhatsApp Business Platform.",
        ),
    }
)


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
        self.phone_numbers: dict[str, dict[str, Any]] = {PHONE_NUMBER_ID: local_phone_number()}
        """Phone numbers the token can see (GET /{version}/{phone_number_id})."""
        self.subscribed_apps: dict[str, list[dict[str, str]]] = {BUSINESS_ACCOUNT_ID: [dict(LOCAL_APP)]}
        """WABA id -> the apps subscribed to its webhooks; a test may empty a list."""
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
        """The next `times` calls fail: plain `status` (500) or Meta's error `code` (any of GRAPH_ERRORS).

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
            self.subscribed_apps = {BUSINESS_ACCOUNT_ID: [dict(LOCAL_APP)]}
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

    def _unauthorized(self, authorization: str | None) -> tuple[int, dict[str, Any]] | None:
        if authorization != f"Bearer {self.access_token}":
            status, error = GRAPH_ERRORS[190]
            return status, {"error": error}
        return None

    def is_account_object(self, path: str) -> bool:
        """A GET of one of the account's phone numbers or a WABA's subscribed apps, not of a media id."""
        if _SUBSCRIBED_APPS_PATH.match(path):
            return True
        found = _OBJECT_PATH.match(path)
        with self._lock:
            return found is not None and found["object_id"] in self.phone_numbers

    def look_up(self, path: str, query: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """GET of a phone number or of a WABA's subscribed apps (what `make doctor` asks)."""
        refused = self._unauthorized(authorization)
        if refused is not None:
            return refused
        apps = _SUBSCRIBED_APPS_PATH.match(path)
        if apps is not None:
            with self._lock:
                subscribed = self.subscribed_apps.get(apps["waba_id"])
                if subscribed is None:
                    return 400, unknown_object(apps["waba_id"])
                return 200, {"data": [{"whatsapp_business_api_data": dict(app)} for app in subscribed]}
        found = _OBJECT_PATH.match(path)
        number = self.phone_numbers.get(found["object_id"]) if found else None
        if found is None or number is None:
            return 400, unknown_object(found["object_id"] if found else path)
        requested = urllib.parse.parse_qs(query).get("fields", [""])[0]
        fields = [f for f in requested.split(",") if f] or list(DEFAULT_PHONE_FIELDS)
        unknown = [f for f in fields if f not in number]
        if unknown:
            return 400, {
                "error": {
                    "message": f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type "
                    "(WhatsAppBusinessPhoneNumber)",
                    "type": "OAuthException",
                    "code": 100,
                    "fbtrace_id": "ALocalTraceId",
                }
            }
        return 200, {"id": number["id"], **{f: number[f] for f in fields}}

    def subscribe_app(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]] | None:
        """POST /{version}/{waba_id}/subscribed_apps; None when the path is not that."""
        apps = _SUBSCRIBED_APPS_PATH.match(path)
        if apps is None:
            return None
        refused = self._unauthorized(authorization)
        if refused is not None:
            return refused
        with self._lock:
            subscribed = self.subscribed_apps.get(apps["waba_id"])
            if subscribed is None:
                return 400, unknown_object(apps["waba_id"])
            if all(app["id"] != LOCAL_APP["id"] for app in subscribed):
                subscribed.append(dict(LOCAL_APP))
        return 200, {"success": True}

    def _outcome(
        self, record: dict[str, Any], authorization: str | None, body: Any, scripted: ScriptedFailure | None
    ) -> tuple[int, dict[str, Any]]:
        refused = self._unauthorized(authorization)
        if refused is not None:
            return refused
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
        path, _, query = self.path.partition("?")
        if path == "/_messages":
            self.send_json(
                200,
                {
                    "messages": self.sink.messages(),
                    "receipts": self.sink.receipts(),
                    "attempts": self.sink.attempts(),
                    "media_requests": self.sink.media.requests(),
                },
            )
        elif self.sink.media.serves(path):
            status, body, headers = self.sink.media.get(self.path, dict(self.headers.items()))
            self.send_bytes(status, body, headers)
        else:  # the phone number or a WABA's subscribed apps (what `make doctor` asks)
            self.send_json(*self.sink.look_up(path, query, self.headers.get("Authorization")))

    def do_POST(self) -> None:  # noqa: N802
        raw = self.read_body()
        path = self.path.split("?")[0]
        if path == "/_control":
            self.sink.control(json.loads(raw or b"{}"))
            self.send_json(200, {"ok": True})
            return
        subscribed = self.sink.subscribe_app(path, self.headers.get("Authorization"))
        if subscribed is not None:
            self.send_json(*subscribed)
            return
        status, payload = self.sink.receive(
            path, self.headers.get("Authorization"), raw, headers=dict(self.headers.items())
        )
        self.send_json(status, payload)
