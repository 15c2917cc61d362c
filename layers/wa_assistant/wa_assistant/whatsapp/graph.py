"""WhatsApp Cloud API (Graph API) adapter: request bodies, one POST, error classification.

Only `POST /{version}/{phone_number_id}/messages` is needed: text messages and
the read receipt + typing indicator. Every failure, with or without a response,
goes through `classify_graph_error`, the one place that decides what a failure
means (`GRAPH_ERROR_KINDS`, then the HTTP status); it keys on Graph's numeric
error `code` and the status, never on message text (Meta rewords messages,
codes are documented).
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
    """What a failure means for the reply; `delivery.OutboundDelivery` maps each kind to a queue outcome."""

    TRANSIENT = "transient"
    """Retry later: rate limits, Meta outages, timeouts."""
    PERMANENT = "permanent"
    """Retrying can never help: the request or the recipient is the problem."""
    AUTH = "auth"
    """The access token or the app's permissions are refused: every send fails until they are fixed."""
    ACCOUNT_BLOCKED = "account_blocked"
    """The business account or number may not send (locked, payment, not registered, policy block):
    every send fails until an operator fixes the account in WhatsApp Manager."""


# The one table of Graph error codes. Codes, titles and HTTP statuses from Meta's "WhatsApp error
# codes" reference (developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes).
# A listed code decides whatever the HTTP status (Meta: build error handling on `code`, not on the
# status or the message text); an unlisted code falls back to `_kind_of_status`. README's failure
# table lists the same codes (a unit test keeps them in step).
GRAPH_ERROR_KINDS: Mapping[int, FailureKind] = {
    # Authorization errors: fix the token or the app's permissions, then redrive.
    0: FailureKind.AUTH,  # AuthException: could not authenticate the app user (token expired/revoked); 401
    3: FailureKind.AUTH,  # API Method: capability or permissions issue; HTTP 500 (not an outage)
    10: FailureKind.AUTH,  # Permission Denied: permission not granted or removed; 403
    190: FailureKind.AUTH,  # Access token has expired; 401
    **dict.fromkeys(range(200, 300), FailureKind.AUTH),  # 200-299 API Permission: not granted or removed; 403
    # Account-level blocks: no reply can go out until the business fixes its account.
    368: FailureKind.ACCOUNT_BLOCKED,  # Temporarily blocked for policies violations (integrity); 403
    130497: FailureKind.ACCOUNT_BLOCKED,  # Business account restricted from messaging this country; 403
    131031: FailureKind.ACCOUNT_BLOCKED,  # Business Account locked (policy, or data verification failed); 403
    131042: FailureKind.ACCOUNT_BLOCKED,  # Business eligibility payment issue (payment method, credit); 400
    133010: FailureKind.ACCOUNT_BLOCKED,  # Phone number not registered on the WhatsApp Business Platform; 400
    # Transient: a later attempt can succeed.
    1: FailureKind.TRANSIENT,  # API Unknown: invalid request or possible server error; 400
    2: FailureKind.TRANSIENT,  # API Service: temporary downtime or overload; 503
    4: FailureKind.TRANSIENT,  # API Too Many Calls: the app's rate limit; 400
    80007: FailureKind.TRANSIENT,  # Rate limit issues: WhatsApp Business Account rate limit; 400
    130429: FailureKind.TRANSIENT,  # Rate limit hit: Cloud API throughput reached; 429
    131000: FailureKind.TRANSIENT,  # Something went wrong; 500
    131016: FailureKind.TRANSIENT,  # Service unavailable; 500
    131056: FailureKind.TRANSIENT,  # (Business Account, Consumer Account) pair rate limit hit; 400
    131057: FailureKind.TRANSIENT,  # Account in maintenance mode (throughput upgrade); 500
    133004: FailureKind.TRANSIENT,  # Server temporarily unavailable; 503
    # Permanent: this message to this user can never be sent; logged and counted.
    100: FailureKind.PERMANENT,  # Invalid parameter; 400
    131026: FailureKind.PERMANENT,  # Message undeliverable (not on WhatsApp, old app, terms unaccepted); 400
    131047: FailureKind.PERMANENT,  # Re-engagement message: more than 24 h since the user last wrote; 400
    131048: FailureKind.PERMANENT,  # Spam rate limit hit: too many messages blocked or flagged as spam; 400
    131051: FailureKind.PERMANENT,  # Unsupported message type; 400
}
"""Graph error code -> kind, whatever the HTTP status."""


def _kind_of_status(status: int | None) -> FailureKind:
    """The kind of a failure whose code is missing or unlisted, from the HTTP status alone."""
    if status in {401, 403}:
        return FailureKind.AUTH  # Unauthorized / Forbidden: the token or its permissions
    if status is None or status == 429 or status >= 500 or status < 400:
        return FailureKind.TRANSIENT  # no response, throttled, Meta's side, or an unexpected non-error
    return FailureKind.PERMANENT  # another 4xx: the request itself is wrong


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
    """Decide the `FailureKind` of one failed call (status None = no response)."""
    error: _GraphError | None = None
    if body:
        try:
            error = _GraphErrorEnvelope.model_validate_json(body).error
        except ValidationError:
            error = None  # an HTML page from a proxy, a truncated body: the status decides
    code = error.code if error else None
    listed = GRAPH_ERROR_KINDS.get(code) if code is not None else None

    return GraphFailure(
        kind=listed or _kind_of_status(status),
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
