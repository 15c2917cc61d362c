"""Mistral chat-completions adapter (any server with the same API shape works).

`POST {MISTRAL_BASE_URL}/chat/completions` with `Authorization: Bearer <key>`:
Mistral, OpenAI, OpenRouter or a self-hosted model by changing MISTRAL_BASE_URL
and MISTRAL_MODEL. One `httpx.Client` per container keeps the connection alive
between invocations.

Every failure is classified in ONE place, `classify_mistral_error`, by HTTP
status only (never by message text):

- retryable: no response (timeout, connection error), 408/409/425/429, 5xx, and
  a 2xx whose reply has no text and calls none of the tools offered (a model can
  return an empty answer once).
  The caller retries through SQS backoff (at least Retry-After); after
  RetryMaxAttempts real attempts or RetryBudgetHours it is parked in the
  dead-letter queue (wa_assistant.aws.batch).
- rejected: 401/403 (bad key), 400/404/422 (bad model or request body), other
  4xx and 3xx (wrong base URL). Retrying cannot fix these, and a hot retry loop
  would only burn the queue's receive count. The caller parks the message in
  the dead-letter queue at once and raises the MistralRequestRejected alarm; the
  operator fixes the key or model and redrives, so users get a real answer
  instead of an apology.

The API key is never logged: it is sent only in the Authorization header,
removed from error bodies, and httpx/httpcore logging is kept at WARNING.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from wa_assistant.conversation.prompt import ChatMessage
from wa_assistant.retry_after import retry_after_seconds

DEFAULT_BASE_URL = "https://api.mistral.ai/v1"
DEFAULT_MODEL = "mistral-small-latest"
DEFAULT_READ_TIMEOUT_SECONDS = 25.0
CONNECT_TIMEOUT_SECONDS = 3.0
RETRYABLE_CLIENT_STATUSES = frozenset({408, 409, 425, 429})
MAX_ERROR_TEXT_CHARS = 300

# httpx logs each request at INFO and httpcore traces the exchange at DEBUG; a
# DEBUG log level on the function must never risk printing the Authorization header.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class MistralSettings(BaseModel):
    """Where and how to ask; optional sampling values are sent only when set."""

    model_config = ConfigDict(frozen=True)

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS
    connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS
    temperature: float | None = None
    max_tokens: int | None = None
    safe_prompt: bool | None = None
    random_seed: int | None = None

    @field_validator("temperature", "max_tokens", "safe_prompt", "random_seed", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # CloudFormation parameters cannot be absent, so "" means "use the server's default".
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MistralSettings:
        env = os.environ if env is None else env
        return cls.model_validate(
            {
                "base_url": (env.get("MISTRAL_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
                "model": env.get("MISTRAL_MODEL") or DEFAULT_MODEL,
                "read_timeout_seconds": env.get("MISTRAL_TIMEOUT_SECONDS") or DEFAULT_READ_TIMEOUT_SECONDS,
                "temperature": env.get("MISTRAL_TEMPERATURE"),
                "max_tokens": env.get("MISTRAL_MAX_TOKENS"),
                "safe_prompt": env.get("MISTRAL_SAFE_PROMPT"),
                "random_seed": env.get("MISTRAL_RANDOM_SEED"),
            }
        )


def chat_completion_request(
    settings: MistralSettings,
    messages: Sequence[ChatMessage],
    tools: Sequence[Mapping[str, Any]] = (),
    model: str | None = None,
) -> dict[str, Any]:
    """The JSON body of one chat-completions call: `tools` (function definitions) with tool_choice
    auto; `model` overrides the configured one (vision)."""
    body: dict[str, Any] = {
        "model": model or settings.model,
        "messages": [m.model_dump(mode="json") for m in messages],
    }
    if tools:
        body["tools"] = [dict(tool) for tool in tools]
        body["tool_choice"] = "auto"
    optional = {
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "safe_prompt": settings.safe_prompt,
        "random_seed": settings.random_seed,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


# ------------------------------------------------------------------ responses


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function the model asked to call; `arguments` is {} when they are not a JSON object."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatCompletion:
    """The usable part of a chat-completions response."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    latency_ms: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def total_tokens(self) -> int:
        """Prompt + completion tokens (0 for what the server did not report)."""
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _FunctionCall(_Lenient):
    name: str = ""
    arguments: dict[str, Any] | str | None = None


class _ToolCall(_Lenient):
    function: _FunctionCall | None = None


class _AssistantMessage(_Lenient):
    content: str | list[Any] | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(_Lenient):
    message: _AssistantMessage | None = None
    finish_reason: str | None = None


class _Usage(_Lenient):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _CompletionBody(_Lenient):
    model: str | None = None
    choices: list[_Choice] = []
    usage: _Usage | None = None


def reply_text(content: str | list[Any] | None) -> str:
    """The visible text of `message.content`: the string, or the text chunks joined (thinking dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    parts = [
        chunk["text"]
        for chunk in content
        if isinstance(chunk, dict) and chunk.get("type") == "text" and isinstance(chunk.get("text"), str)
    ]
    return "".join(parts).strip()


def tool_calls_of(message: _AssistantMessage | None) -> tuple[ToolCall, ...]:
    """The named function calls of a reply; `arguments` is a JSON string or an object (both documented)."""
    calls = []
    for call in (message.tool_calls if message else None) or ():
        function = call.function
        if function is None or not function.name:
            continue
        arguments: Any = function.arguments
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                arguments = None
        calls.append(ToolCall(function.name, arguments if isinstance(arguments, dict) else {}))
    return tuple(calls)


def parse_chat_completion(body: bytes | str) -> ChatCompletion | None:
    """The first choice's reply, or None when the body holds neither text to send nor a tool call."""
    try:
        parsed = _CompletionBody.model_validate_json(body)
    except ValidationError:
        return None
    choice = parsed.choices[0] if parsed.choices else _Choice()
    text = reply_text(choice.message.content if choice.message else None)
    tool_calls = tool_calls_of(choice.message)
    if not text and not tool_calls:
        return None
    usage = parsed.usage or _Usage()
    return ChatCompletion(
        text=text,
        finish_reason=choice.finish_reason,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        model=parsed.model,
        tool_calls=tool_calls,
    )


# ------------------------------------------------------------------ errors


class MistralError(Exception):
    """A chat-completions call that produced no reply; `retryable` says whether trying again can help."""

    def __init__(
        self,
        *,
        retryable: bool,
        status: int | None,
        message: str,
        error_type: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"model API {status if status is not None else 'unreachable'}: {message}")
        self.retryable = retryable
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after

    def log_fields(self) -> dict[str, Any]:
        """What an operator needs in the log line (never the key)."""
        fields = {
            "mistral_status": self.status,
            "mistral_error": self.message,
            "mistral_error_type": self.error_type,
            "mistral_error_code": self.code,
            "mistral_request_id": self.request_id,
            "retry_after_seconds": self.retry_after,
        }
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class _ErrorDetails:
    message: str
    error_type: str | None = None
    code: str | None = None
    request_id: str | None = None


def classify_mistral_error(status: int | None, headers: Mapping[str, str], body: bytes | str) -> MistralError:
    """The one place that decides what a failed call means (see the module docstring).

    `status` is None when no response came back (timeout, connection error);
    `body` is then a short description of the transport error.
    """
    details = _error_details(body)
    retry_after = retry_after_seconds(_header(headers, "retry-after"))
    if status is None:
        retryable = True
    elif 200 <= status < 300:
        retryable = True
        details = replace(details, message="the reply has no text")
    else:
        retryable = status >= 500 or status in RETRYABLE_CLIENT_STATUSES
    return MistralError(
        retryable=retryable,
        status=status,
        message=details.message,
        error_type=details.error_type,
        code=details.code,
        request_id=details.request_id or _header(headers, "x-request-id"),
        retry_after=retry_after,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _error_details(body: bytes | str) -> _ErrorDetails:
    """Message, type, code and request id from every error body shape Mistral (and peers) used.

    {"message": "...", "request_id": "..."}; {"object": "error", "message": "..." or
    {"detail": [...]}, "type": ..., "code": ...}; {"detail": "..."} / {"detail": [...]};
    OpenAI-style {"error": {...}}; or a body that is not JSON at all.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        flat = " ".join(text.split())[:MAX_ERROR_TEXT_CHARS]
        return _ErrorDetails(message=flat or "(empty body)")
    request_id = data.get("request_id")
    if isinstance(data.get("error"), dict):
        data = data["error"]
    message = _message_text(data.get("message")) or _message_text(data.get("detail"))
    if not message:
        message = json.dumps(data)[:MAX_ERROR_TEXT_CHARS]
    error_type = data.get("type")
    code = data.get("code")
    return _ErrorDetails(
        message=message,
        error_type=error_type if isinstance(error_type, str) else None,
        code=str(code) if code is not None else None,
        request_id=str(request_id) if request_id is not None else None,
    )


def _message_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return _message_text(value.get("message")) or _message_text(value.get("detail"))
    if isinstance(value, list):
        return "; ".join(part for part in (_validation_item(item) for item in value) if part)
    return ""


def _validation_item(item: Any) -> str:
    """One FastAPI/pydantic validation item as "body.field: problem"."""
    if not isinstance(item, dict):
        return str(item)
    location = ".".join(str(part) for part in item.get("loc", []))
    problem = str(item.get("msg", ""))
    return f"{location}: {problem}" if location else problem


def post_to_mistral(http: httpx.Client, url: str, key: str, **request: Any) -> tuple[httpx.Response, float]:
    """One POST with the Bearer key to a Mistral endpoint (chat, transcription, OCR): the response
    and its latency in ms. No response at all (timeout, refused or dropped connection) raises the
    classified, retryable MistralError."""
    started = time.perf_counter()
    try:
        response = http.post(url, headers={"Authorization": f"Bearer {key}"}, **request)
    except httpx.TransportError as error:
        raise classify_mistral_error(None, {}, type(error).__name__) from None
    return response, (time.perf_counter() - started) * 1000


def unusable_reply(response: httpx.Response, key: str) -> MistralError:
    """The classified error of a response that gave nothing usable; the key never reaches a log line
    (a proxy may echo it back in an error body)."""
    content = response.content.replace(key.encode(), b"[redacted]") if key else response.content
    return classify_mistral_error(response.status_code, response.headers, content)


# ------------------------------------------------------------------ client


class MistralClient:
    """Asks the model for one reply; raises `MistralError` when there is none."""

    def __init__(
        self,
        settings: MistralSettings,
        api_key: Callable[[], str],
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.url = f"{settings.base_url.rstrip('/')}/chat/completions"
        self._api_key = api_key
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(settings.read_timeout_seconds, connect=settings.connect_timeout_seconds),
            headers={"Accept": "application/json"},
        )

    def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[Mapping[str, Any]] = (),
        model: str | None = None,
    ) -> ChatCompletion:
        """The reply: text to send, or a call of one of `tools` (then the text may be empty)."""
        key = self._api_key()  # cached by the secrets module; read per call so a rotation is picked up
        body = chat_completion_request(self.settings, messages, tools, model)
        response, latency_ms = post_to_mistral(self._http, self.url, key, json=body)
        if response.is_success:
            completion = parse_chat_completion(response.content)
            offered = {tool["function"]["name"] for tool in tools}
            if completion is not None and (
                completion.text or any(call.name in offered for call in completion.tool_calls)
            ):
                return replace(completion, latency_ms=latency_ms)
        raise unusable_reply(response, key)
