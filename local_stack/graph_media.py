"""The Graph sink's media: Meta's "Retrieve Media URL" and "Download Media", for media a test registers.

    GET /{version}/{media-id}[?phone_number_id=...]   (Bearer)
        -> {"url", "mime_type", "sha256" (hex), "file_size" (a string, as in Meta's spec), "id",
            "messaging_product"}
    GET /whatsapp_business/attachments/?mid=...&ext=<expiry>&hash=...   (the same Bearer)
        -> the bytes; the URL stops working 5 minutes after it was handed out, as Meta's does

Scriptable cases (`state` of a registered media): "ok"; "missing" (the media id is
unknown to Graph: HTTP 400 with Graph's "Unsupported get request" error, code 100 /
subcode 33, as for a deleted or expired media id); "url_expired" (the lookup works, the
download URL answers 404). An oversized media is simply a large one, or one whose
`declared_size` is large: the caller is expected to refuse it from `file_size`.
Every request is recorded (the Authorization header with the token replaced by
`TOKEN`), so that tests can check what was asked and in which order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_stack.http_server import recorded_headers

URL_LIFETIME_SECONDS = 300
DOWNLOAD_PATH = "/whatsapp_business/attachments/"
STATES = ("ok", "missing", "url_expired")


@dataclass
class StoredMedia:
    media_id: str
    data: bytes = field(repr=False)
    mime_type: str
    state: str = "ok"
    declared_size: int | None = None
    """`file_size` to report instead of the real size (a lying or oversized declaration)."""
    file_size_as_number: bool = False
    """Report `file_size` as a number (seen in the wild) instead of a string (Meta's spec)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def sha256_base64(self) -> str:
        """The digest as a webhook carries it."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


EXPIRED_TOKEN = {
    "error": {
        "message": "Error validating access token: Session has expired",
        "type": "OAuthException",
        "code": 190,
    }
}


def unknown_object(object_id: str) -> dict[str, Any]:
    """Graph's answer (HTTP 400) for an id the token cannot see or that does not exist: a media id
    that expired or was deleted, a phone number of another account."""
    return {
        "error": {
            "message": f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please read the "
            "Graph API documentation at https://developers.facebook.com/docs/graph-api",
            "type": "GraphMethodException",
            "code": 100,
            "error_subcode": 33,
            "fbtrace_id": "ALocalTraceId",
        }
    }


class MediaStore:
    """Media registered by tests, served as Graph serves media; thread-safe."""

    def __init__(self, access_token: Callable[[], str], base_url: Callable[[], str]) -> None:
        self._access_token = access_token
        self._base_url = base_url
        self._media: dict[str, StoredMedia] = {}
        self._requests: list[dict[str, Any]] = []
        self._failures: list[int] = []
        self._ids = itertools.count(1)
        self._key = hashlib.sha256(str(time.time_ns()).encode()).digest()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ control
    def add(
        self,
        data: bytes,
        mime_type: str,
        *,
        media_id: str | None = None,
        state: str = "ok",
        declared_size: int | None = None,
        file_size_as_number: bool = False,
    ) -> StoredMedia:
        if state not in STATES:
            raise ValueError(f"state {state!r} is not one of {STATES}")
        with self._lock:
            media_id = media_id or f"{9_000_000_000_000 + next(self._ids)}"
            stored = StoredMedia(media_id, data, mime_type, state, declared_size, file_size_as_number)
            self._media[media_id] = stored
        return stored

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """The next `times` media requests (lookup or download) answer `status` (401: Graph's error 190)."""
        with self._lock:
            self._failures.extend([status] * times)

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._media.clear()
            self._requests.clear()
            self._failures.clear()

    def control(self, command: dict[str, Any]) -> None:
        """The sink's `/_control` body, media part.

        `{"media": [{"id", "mime_type", "base64", "state", "declared_size"}], "fail": [{"status", "times"}]}`
        """
        for item in command.get("media", []):
            self.add(
                base64.b64decode(item["base64"]),
                str(item["mime_type"]),
                media_id=item.get("id"),
                state=item.get("state", "ok"),
                declared_size=item.get("declared_size"),
            )
        for failure in command.get("fail", []):
            self.fail_next(int(failure.get("status", 500)), int(failure.get("times", 1)))

    # ------------------------------------------------------------ behaviour
    def serves(self, path: str) -> bool:
        """A download URL, or `/{version}/{media-id}` of a media registered here (any other id is
        answered by the sink as Graph answers an unknown object)."""
        parts = path.strip("/").split("/")
        if path == DOWNLOAD_PATH:
            return True
        with self._lock:
            return len(parts) == 2 and parts[0][:1] == "v" and parts[1] in self._media

    def get(self, raw_path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """Answer one GET: (status, body, headers)."""
        parsed = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        authorization = headers.get("Authorization")
        token = self._access_token()
        record: dict[str, Any] = {
            "time": time.time(),
            "kind": "download" if parsed.path == DOWNLOAD_PATH else "lookup",
            "path": parsed.path,
            "query": query,
            "headers": recorded_headers(headers, token),
            "authorized": authorization == f"Bearer {token}",
        }
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            self._requests.append(record)
        status, body, extra = self._answer(record, parsed.path, query, failure)
        record["status"] = status
        record["media_id"] = query.get("mid") or parsed.path.strip("/").split("/")[-1]
        return status, body, extra

    def _answer(
        self, record: dict[str, Any], path: str, query: dict[str, str], failure: int | None
    ) -> tuple[int, bytes, dict[str, str]]:
        if not record["authorized"] or failure == 401:
            return _json(401, EXPIRED_TOKEN)
        if failure is not None:
            return _json(
                failure,
                {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1}},
            )
        if record["kind"] == "download":
            return self._download(query)
        media_id = path.strip("/").split("/")[-1]
        with self._lock:
            stored = self._media.get(media_id)
        if stored is None or stored.state == "missing":
            return _json(400, unknown_object(media_id))
        expires = int(time.time()) + URL_LIFETIME_SECONDS
        url = f"{self._base_url()}{DOWNLOAD_PATH}?" + urllib.parse.urlencode(
            {"mid": media_id, "ext": expires, "hash": self._sign(media_id, expires)}
        )
        size = stored.declared_size if stored.declared_size is not None else len(stored.data)
        return _json(
            200,
            {
                "url": url,
                "mime_type": stored.mime_type,
                "sha256": stored.sha256,
                "file_size": size if stored.file_size_as_number else str(size),
                "id": media_id,
                "messaging_product": "whatsapp",
            },
        )

    def _download(self, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        media_id, expires = query.get("mid", ""), query.get("ext", "0")
        with self._lock:
            stored = self._media.get(media_id)
        valid = (
            stored is not None
            and expires.isdigit()
            and int(expires) >= time.time()
            and hmac.compare_digest(query.get("hash", ""), self._sign(media_id, int(expires)))
        )
        if not valid or stored is None or stored.state != "ok":
            return 404, b"URL signature expired", {"Content-Type": "text/plain"}
        return 200, stored.data, {"Content-Type": stored.mime_type}

    def _sign(self, media_id: str, expires: int) -> str:
        return hmac.new(self._key, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _json(status: int, payload: Any) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json"}
