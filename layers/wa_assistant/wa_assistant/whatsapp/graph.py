"""WhatsApp Cloud API (Graph API) adapter: request bodies, one POST, error classification.

Only `POST /{version}/{phone_number_id}/messages` is needed: text messages and
the read receipt + typing indicator. Every failure, with or without a response,
goes through `classify_graph_error`, the one place that decides whether a
failure is worth a retry; it keys on the HTTP status and Graph's numeric error
`code`, never on message text (Meta rewords messages, codes are documented).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from wa_assistant.observability import metrics
from wa_assistant.records import Recipient
from wa_assistant.retry_after import retry_after_seconds

# httpx/httpcore log requests at DEBUG; keep them quiet whatever the function's log level,
# so that nothing about a request carrying the access token can reach the logs.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

REDACTED = "[REDACTED]"


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    """Retry later: rate limits, Meta outages, timeouts."""
    PERMANENT = "permanent"
    """Retrying can never help: the request or the recipient is the problem."""
    AUTH = "auth"
    """The access token is expired or invalid: every send fails until an operator fixes it."""


AUTH_CODES = frozenset({190})
TRANSIENT_CODES = frozenset(
    {
        1,  # API unknown
        2,  # API service (temporary downtime)
        4,  # API too many calls (app rate limit)
        80007,  # WhatsApp Business Account rate limit
        130429,  # Cloud API throughput reached
        131000,  # something went wrong (HTTP 500)
        131016,  # service unavailable
        131056,  # (business, consumer) pair rate limit
        131057,  # business account in maintenance mode
        133004,  # server temporarily unavailable
    }
)
"""Graph error codes that a later attempt can succeed on, whatever the HTTP status."""


@dataclass(frozen=True, slots=True)
class GraphFailure:
    """Why a Graph call failed, in the terms an operator searches logs for."""

    kind: FailureKind
    status: int | None
    """HTTP status; None when no response came (timeout, connection error)."""
    code: int | None = None
    subcode: int | None = None
    message: str | None = None
    details: str | None = None
    """`error_data.details`: Meta's human explanation, the most useful field."""
    fbtrace_id: str | None = None
    """What Meta support asks for."""
    retry_after: float | None = None

    def log_fields(self) -> dict[str, Any]:
        return {f"graph_{key}": value for key, value in asdict(self).items() if value is not None}


class GraphRequestFailed(Exception):  # noqa: N818 - named after what happened, like httpx's errors
    """A Graph call did not succeed; `failure` says how."""

    def __init__(self, failure: GraphFailure) -> None:
        super().__init__(
            f"Graph request failed ({failure.kind}, status {failure.status}, code {failure.code})"
        )
        self.failure = failure


class _GraphErrorData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    details: str | None = None


class _GraphError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str | None = None
    code: int | None = None
    error_subcode: int | None = None
    error_data: _GraphErrorData | None = None
    fbtrace_id: str | None = None


class _GraphErrorEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error: _GraphError


class _SentMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str


class _SendResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    messages: list[_SentMessage] = []


def classify_graph_error(
    status: int | None, body: str | bytes | None = None, retry_after: float | None = None
) -> GraphFailure:
    """Decide transient / permanent / auth for one failed call (status None = no response)."""
    error: _GraphError | None = None
    if body:
        try:
            error = _GraphErrorEnvelope.model_validate_json(body).error
        except ValidationError:
            error = None  # an HTML page from a proxy, a truncated body: the status decides
    code = error.code if error else None

    if code in AUTH_CODES or status == 401:
        kind = FailureKind.AUTH
    elif code in TRANSIENT_CODES or status is None or status == 429 or status >= 500 or status < 400:
        kind = FailureKind.TRANSIENT
    else:
        kind = FailureKind.PERMANENT  # 131047, 131026, 131048, 100, 131051, 368, 131031, other 4xx

    return GraphFailure(
        kind=kind,
        status=status,
        code=code,
        subcode=error.error_subcode if error else None,
        message=error.message if error else None,
        details=error.error_data.details if error and error.error_data else None,
        fbtrace_id=error.fbtrace_id if error else None,
        retry_after=retry_after,
    )


def text_message_body(
    recipient: Recipient, text: str, quoted_message_id: str | None = None
) -> dict[str, Any]:
    """A text message as Meta documents it; `to` (phone number) when known, else `recipient` (BSUID)."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if recipient.wa_id:
        body["to"] = recipient.wa_id
    else:
        body["recipient"] = recipient.user_id
    if quoted_message_id:
        body["context"] = {"message_id": quoted_message_id}
    body["type"] = "text"
    body["text"] = {"body": text, "preview_url": False}
    return body


def typing_indicator_body(inbound_message_id: str) -> dict[str, Any]:
    """Mark the user's message read and show "typing…" (Meta clears it on reply or after 25 s)."""
    return {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": inbound_message_id,
        "typing_indicator": {"type": "text"},
    }


def http_client(timeout_seconds: float) -> httpx.Client:
    """One pooled client per container; connect fails fast, read waits up to the configured time."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout_seconds, connect=min(3.0, timeout_seconds)),
        headers={"Content-Type": "application/json"},
    )


class GraphClient:
    """Posts to the messages endpoint of one Graph API version."""

    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        access_token: Callable[[], str],
        http: httpx.Client,
    ) -> None:
        self._base = f"{base_url.rstrip('/')}/{api_version.strip('/')}"
        self._access_token = access_token
        self._http = http

    def post_message(self, phone_number_id: str, body: Mapping[str, Any]) -> str | None:
        """POST one message; return the wamid Meta assigned (None for a read receipt), or raise."""
        token = self._access_token()
        started = time.perf_counter()
        try:
            response = self._http.post(
                f"{self._base}/{phone_number_id}/messages",
                json=dict(body),
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError as error:  # timeouts, refused/reset connections, protocol errors
            raise GraphRequestFailed(classify_graph_error(None, None)) from error
        finally:
            metrics.add_metric(
                name="GraphLatency", unit="Milliseconds", value=(time.perf_counter() - started) * 1000
            )
        if response.is_success:
            try:
                sent = _SendResponse.model_validate_json(response.content)
            except ValidationError:
                return None  # accepted; Meta did not say under which id
            return sent.messages[0].id if sent.messages else None
        # Graph has been seen to echo a malformed token in its error message: never pass it on.
        text = response.text.replace(token, REDACTED) if token else response.text
        raise GraphRequestFailed(
            classify_graph_error(
                response.status_code, text, retry_after_seconds(response.headers.get("Retry-After"))
            )
        )
