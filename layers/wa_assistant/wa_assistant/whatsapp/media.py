"""WhatsApp Cloud API media adapter: a media id from a webhook -> the file's bytes, safely.

Two calls with the WhatsApp access token (Meta: "Retrieve Media URL", "Download Media"):

1. `GET {base}/{version}/{media-id}?phone_number_id=...` -> `{url, mime_type, sha256, file_size, id}`;
   `phone_number_id` makes Meta check the media belongs to this business number.
   `file_size` is a string in Meta's spec and a number in the wild: both are read.
2. `GET {url}` with the same Bearer token (the URL lives about 5 minutes: fetched
   right before use, never stored).

Safety rules, decided here once:
- a file whose `file_size` is over the caller's cap is refused before any byte is
  downloaded (`MediaTooLarge`); the download itself is streamed and stopped at the
  cap too, so a wrong or missing `file_size` cannot make the function read more;
- the token is sent only to the Graph host and Meta's media hosts (`MEDIA_HOSTS`);
- the bytes are checked against the sha256 of the media-URL response (hex) and of
  the webhook (base64) when they are real digests (Meta's examples use placeholders);
- bytes stay in memory: they are never logged, stored or put in an exception.

Failures: every HTTP failure goes through `whatsapp.graph.classify_graph_error` (the
one Graph table) and is raised as `GraphRequestFailed`; a response that cannot be
used (no URL, a foreign host, a checksum that does not match) is `MediaUnavailable`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from wa_assistant.deadline import HasTime, ensure_time, unlimited
from wa_assistant.retry_after import retry_after_seconds
from wa_assistant.whatsapp.graph import REDACTED, GraphRequestFailed, classify_graph_error

MEDIA_HOSTS = ("fbsbx.com", "facebook.com", "fbcdn.net", "whatsapp.net")
"""Meta's domains a media URL may point to (lookaside.fbsbx.com today); the Graph host is always allowed."""
MAX_ERROR_BODY_BYTES = 16 * 1024
"""An error answer from the download URL is read this far, for its Graph error code."""
_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A downloaded file. Its repr names the size and type, never the bytes."""

    data: bytes = field(repr=False)
    mime_type: str
    sha256: str
    """Hex digest of `data`."""
    latency_ms: float = 0.0

    @property
    def size(self) -> int:
        return len(self.data)


class MediaTooLarge(Exception):  # noqa: N818 - names what happened
    """The file is over the cap: refused before downloading (`declared`) or stopped mid-download."""

    def __init__(self, size: int, limit: int, *, declared: bool) -> None:
        super().__init__(
            f"media of {size} bytes is over the {limit}-byte cap"
            + (" (refused before download)" if declared else " (download stopped)")
        )
        self.size = size
        self.limit = limit
        self.declared = declared


class MediaUnavailable(Exception):  # noqa: N818
    """The media cannot be used, and asking again will not change that."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _size(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


class _MediaUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    mime_type: str | None = None
    sha256: str | None = None
    file_size: Annotated[int | None, BeforeValidator(_size)] = None
    id: str | None = None


def webhook_digest_hex(value: str | None) -> str | None:
    """The webhook's base64 sha256 as hex; None when it is not a 32-byte digest (placeholders exist)."""
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def graph_digest_hex(value: str | None) -> str | None:
    """The media-URL response's hex sha256, lower-cased; None for a placeholder such as `<HASH>`."""
    return value.lower() if value and _HEX_SHA256.match(value) else None


class GraphMedia:
    """Fetches media by id for one Graph API version; one instance per container."""

    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        access_token: Callable[[], str],
        http: httpx.Client,
        seconds_per_call: float,
        has_time: HasTime = unlimited,
    ) -> None:
        self._base = f"{base_url.rstrip('/')}/{api_version.strip('/')}"
        self._graph_host = urllib.parse.urlsplit(base_url).hostname or ""
        self._access_token = access_token
        self._http = http
        self._seconds_per_call = seconds_per_call
        self.has_time = has_time

    def fetch(
        self,
        media_id: str,
        *,
        max_bytes: int,
        phone_number_id: str | None = None,
        webhook_sha256: str | None = None,
    ) -> MediaFile:
        """The file's bytes; raises MediaTooLarge, MediaUnavailable or GraphRequestFailed."""
        started = time.perf_counter()
        token = self._access_token()
        info = self._media_url(media_id, token, phone_number_id)
        if info.file_size is not None and info.file_size > max_bytes:
            raise MediaTooLarge(info.file_size, max_bytes, declared=True)
        if not self._may_receive_token(info.url):
            raise MediaUnavailable(f"the media URL points to {urllib.parse.urlsplit(info.url).hostname!r}")
        data, content_type = self._download(info.url, token, max_bytes)
        digest = hashlib.sha256(data).hexdigest()
        for source, expected in (
            ("media URL response", graph_digest_hex(info.sha256)),
            ("webhook", webhook_digest_hex(webhook_sha256)),
        ):
            if expected is not None and expected != digest:
                raise MediaUnavailable(f"the downloaded bytes do not match the {source}'s sha256")
        return MediaFile(
            data=data,
            mime_type=info.mime_type or content_type or "application/octet-stream",
            sha256=digest,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    # ------------------------------------------------------------------ the two calls
    def _media_url(self, media_id: str, token: str, phone_number_id: str | None) -> _MediaUrl:
        ensure_time(self.has_time, self._seconds_per_call, "the Graph media URL")
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        try:
            response = self._http.get(
                f"{self._base}/{urllib.parse.quote(media_id, safe='')}",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError as error:
            raise GraphRequestFailed(classify_graph_error(None, None)) from error
        if not response.is_success:
            raise _failed(response.status_code, response.headers, response.content, token)
        try:
            return _MediaUrl.model_validate_json(response.content)
        except ValidationError:
            raise MediaUnavailable("Graph's media URL response has no usable url") from None

    def _download(self, url: str, token: str, max_bytes: int) -> tuple[bytes, str | None]:
        ensure_time(self.has_time, self._seconds_per_call, "the media download")
        try:
            with self._http.stream(
                "GET", url, headers={"Authorization": f"Bearer {token}"}, follow_redirects=True
            ) as response:
                if not response.is_success:
                    body = _read_at_most(response, MAX_ERROR_BODY_BYTES)
                    raise _failed(response.status_code, response.headers, body, token)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise MediaTooLarge(int(declared), max_bytes, declared=True)
                chunks: list[bytes] = []
                received = 0
                started = time.monotonic()
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        raise MediaTooLarge(received, max_bytes, declared=False)
                    if time.monotonic() - started > self._seconds_per_call:
                        # A trickle resets httpx's read timeout at every chunk: bound the whole download.
                        raise GraphRequestFailed(classify_graph_error(None, None))
                    chunks.append(chunk)
                content_type = response.headers.get("Content-Type")
        except httpx.TransportError as error:  # timeouts, resets, a connection dropped mid-file
            raise GraphRequestFailed(classify_graph_error(None, None)) from error
        return b"".join(chunks), content_type

    def _may_receive_token(self, url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        if host and host == self._graph_host.lower():
            return parts.scheme in ("https", "http")
        return parts.scheme == "https" and any(host == d or host.endswith(f".{d}") for d in MEDIA_HOSTS)


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return body[:limit]


def _failed(status: int, headers: httpx.Headers, body: bytes, token: str) -> GraphRequestFailed:
    text = body.decode("utf-8", errors="replace")
    if token:  # Graph has been seen to echo a malformed token: never pass it on
        text = text.replace(token, REDACTED)
    return GraphRequestFailed(
        classify_graph_error(status, text, retry_after_seconds(headers.get("Retry-After")))
    )
