"""A stand-in for Mistral's chat-completions API, deterministic and scriptable.

Speaks the wire format (`POST /v1/chat/completions`, also `/chat/completions`,
Bearer auth, Mistral's error bodies) and answers from the conversation itself, so
tests can assert on replies and on memory. `GET /v1/models` (also `/models`) lists
`models` in Mistral's ModelList shape (what `make doctor` asks):

    [stand-in model] You said: "<last user text>" (turn <n>; I remember: <previous user text>)

Function calling, deterministically: when the request offers a tool (`tools`) and
the last user message contains `[tool:<name>]` (e.g. `[tool:handoff_to_human]`),
or a scripted step says so, the reply calls that tool in Mistral's documented
shape (content "", `tool_calls[].function.arguments` a JSON string, finish_reason
"tool_calls"), with arguments {"reason": <the rest of the user's text>}.

Media (`local_stack.mistral_media`): `POST /v1/audio/transcriptions` (multipart) and
`POST /v1/ocr` answer deterministically and labelled; an image in a chat message is described
in the reply (`... and showed me an image (image/jpeg, N bytes, sha256 ...)`).

Control API for tests and benchmarks:
    POST /_control  {"script": [{"status": 429, "times": 3, "retry_after": 1}, {"delay": 5, "times": 1},
                                {"tool_call": {"name": "handoff_to_human", "arguments": {"reason": "..."}}}],
                     "latency_seconds": 0.3, "api_key": "...", "models": ["mistral-large-latest"],
                     "reset": true,
                     "speech": [{"base64": ..., "text": ...}], "documents": [{"base64": ..., "pages": [...]}],
                     "transcription_latency_seconds": 0.5}
    GET  /_calls    every request received, in order (chat, transcription, OCR).
    GET  /v1/models the models the stand-in offers (Mistral's ModelList; `models` above changes it).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_stack.http_server import BackgroundServer, QuietHandler, recorded_headers
from local_stack.mistral_media import MediaModels, describe_image

LABEL = "[stand-in model]"
KNOWN_MODEL_PREFIXES = (
    "mistral-",
    "open-mistral-",
    "open-mixtral-",
    "ministral-",
    "codestral-",
    "pixtral-",
    "magistral-",
    "devstral-",
    "stand-in",
)
MESSAGE_ROLES = {"system", "user", "assistant", "tool"}
TOOL_CHOICES = {"auto", "none", "any", "required"}
TOOL_TRIGGER = re.compile(r"\[tool:(?P<name>[A-Za-z0-9_-]+)\]")
LISTED_MODELS = (
    "mistral-small-latest",
    "mistral-medium-latest",
    "mistral-large-latest",
    "ministral-8b-latest",
    "open-mistral-nemo",
    "codestral-latest",
    "pixtral-large-latest",
    "magistral-medium-latest",
    "mistral-embed",
)
"""What GET /v1/models lists by default: the template's default model among Mistral's public names."""
MODEL_CREATED = 1_750_000_000


def model_card(model_id: str) -> dict[str, Any]:
    """One entry of Mistral's ModelList (BaseModelCard in Mistral's OpenAPI)."""
    chat = "embed" not in model_id
    return {
        "id": model_id,
        "object": "model",
        "created": MODEL_CREATED,
        "owned_by": "mistralai",
        "capabilities": {
            "completion_chat": chat,
            "completion_fim": model_id.startswith("codestral"),
            "function_calling": chat,
            "fine_tuning": False,
            "vision": model_id.startswith("pixtral"),
            "classification": False,
        },
        "name": model_id,
        "description": f"{model_id} (local stand-in)",
        "max_context_length": 131072 if chat else 8192,
        "aliases": [],
        "deprecation": None,
        "default_model_temperature": 0.3 if chat else None,
        "type": "base",
    }


CONTENT_TYPES = {"text", "image_url", "document_url", "reference", "file", "thinking", "input_audio"}
MEDIA_PATHS = ("/v1/audio/transcriptions", "/audio/transcriptions", "/v1/ocr", "/ocr")


@dataclass
class ScriptedAnswer:
    """What the next call gets instead of a normal answer."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    tool_call: dict[str, Any] | None = None
    """{"name": ..., "arguments": {...}}: the reply calls this tool (when the request offers it)."""


def text_of(content: Any) -> str:
    """A message's text: a plain string or the text chunks of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text")
    return ""


def images_of(content: Any) -> list[str]:
    """The image URLs of a content list (`image_url` as a string or as `{"url": ...}`)."""
    if not isinstance(content, list):
        return []
    urls = []
    for chunk in content:
        if isinstance(chunk, dict) and chunk.get("type") == "image_url":
            url = chunk.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str):
                urls.append(url)
    return urls


def stand_in_reply(messages: list[dict[str, Any]]) -> str:
    """The deterministic answer to a conversation (an image in the last message is described)."""
    users = [m for m in messages if m.get("role") == "user"]
    said = [text_of(m.get("content")) for m in users]
    if not said:
        return f"{LABEL} Nobody said anything yet."
    memory = f"; I remember: {said[-2]}" if len(said) > 1 else ""
    seen = "".join(f" and showed me {describe_image(url)}" for url in images_of(users[-1].get("content")))
    return f'{LABEL} You said: "{said[-1]}" (turn {len(said)}{memory}){seen}'


def _validation_error(location: list[str], message: str, value: Any) -> dict[str, Any]:
    """Mistral's 422 body (observed shape, see the corpus' mistral/error_422_validation.json)."""
    return {
        "object": "error",
        "message": {
            "detail": [{"type": "value_error", "loc": ["body", *location], "msg": message, "input": value}]
        },
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def _message_problem(messages: list[Any]) -> dict[str, Any] | None:
    """A message with an unknown role, or a content part of an unknown type (Mistral's 422 body)."""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in MESSAGE_ROLES:
            return _validation_error(["messages", str(index)], "Input tag does not match", message)
        content = message.get("content")
        for part_index, part in enumerate(content if isinstance(content, list) else []):
            if not isinstance(part, dict) or part.get("type") not in CONTENT_TYPES:
                where = ["messages", str(index), "content", str(part_index)]
                return _validation_error(where, "Input tag does not match", part)
    return None


def _request_problem(body: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(body, dict):
        return 422, _validation_error([], "Input should be a valid dictionary", body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return 422, _validation_error(["model"], "Field required", model)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 422, _validation_error(["messages"], "Field required", messages)
    problem = _message_problem(messages)
    if problem is not None:
        return 422, problem
    if not model.startswith(KNOWN_MODEL_PREFIXES):
        return 400, {
            "object": "error",
            "message": f"Invalid model: {model}",
            "type": "invalid_model",
            "param": None,
            "code": "1500",
        }
    return None


def _tools_problem(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """`tools` and `tool_choice` as Mistral's ChatCompletionRequest schema has them (Tool, ToolChoiceEnum)."""
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return 422, _validation_error(["tools"], "Input should be a valid list", tools)
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(function, dict)
                or tool.get("type", "function") != "function"
                or not isinstance(function.get("name"), str)
                or not isinstance(function.get("parameters"), dict)
                or set(function) - {"name", "description", "strict", "parameters"}
                or set(tool) - {"type", "function"}
            ):
                return 422, _validation_error(["tools", str(index)], "Input should be a valid Tool", tool)
    choice = body.get("tool_choice")
    if choice is not None and not (
        choice in TOOL_CHOICES or (isinstance(choice, dict) and isinstance(choice.get("function"), dict))
    ):
        return 422, _validation_error(
            ["tool_choice"], "Input should be a ToolChoiceEnum or a ToolChoice", choice
        )
    return None


def offered_tools(body: dict[str, Any]) -> set[str]:
    """The functions the model may call (none with tool_choice "none")."""
    if body.get("tool_choice") == "none":
        return set()
    return {tool["function"]["name"] for tool in body.get("tools") or []}


def tool_call_reply(body: dict[str, Any], scripted: dict[str, Any] | None) -> dict[str, Any] | None:
    """The tool call to answer with: a scripted one, or the `[tool:<name>]` trigger in the last user text."""
    offered = offered_tools(body)
    if scripted is not None:
        return scripted if scripted.get("name") in offered else None
    said = [text_of(m.get("content")) for m in body["messages"] if m.get("role") == "user"]
    found = TOOL_TRIGGER.search(said[-1]) if said else None
    if found is None or found["name"] not in offered:
        return None
    rest = " ".join(TOOL_TRIGGER.sub(" ", said[-1]).split())
    return {"name": found["name"], "arguments": {"reason": rest or "the user asked for it"}}


class MistralStandIn:
    """State and behaviour of the stand-in; `server` serves it over HTTP."""

    def __init__(self, api_key: str, log: Callable[[str], None] | None = None) -> None:
        self.api_key = api_key
        self.latency_seconds = 0.0
        self.models: list[str] = list(LISTED_MODELS)
        """Model ids GET /v1/models lists; a test may drop the configured one."""
        self._script: list[ScriptedAnswer] = []
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._log = log or (lambda line: None)
        self.server: BackgroundServer | None = None
        self.media = MediaModels()

    # ------------------------------------------------------------ control
    def start(self, port: int = 0, host: str = "127.0.0.1") -> MistralStandIn:
        self.server = BackgroundServer(_Handler, self, port, host)
        return self

    @property
    def base_url(self) -> str:
        """What MISTRAL_BASE_URL should be to reach the stand-in."""
        assert self.server is not None
        return f"{self.server.url}/v1"

    def script(
        self,
        status: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        tool_call: dict[str, Any] | None = None,
    ) -> None:
        """The next `times` calls get `status` (429/500/401...), answer after `delay` seconds, or call
        `tool_call` ({"name": ..., "arguments": {...}}) when the request offers that tool."""
        with self._lock:
            self._script.extend(ScriptedAnswer(status, retry_after, delay, tool_call) for _ in range(times))

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._calls.clear()
            self.latency_seconds = 0.0
            self.models = list(LISTED_MODELS)
        self.media.reset()

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)

    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    def control(self, command: dict[str, Any]) -> None:
        if command.get("reset"):
            self.reset()
        for step in command.get("script", []):
            self.script(
                step.get("status"),
                int(step.get("times", 1)),
                step.get("retry_after"),
                step.get("delay", 0),
                step.get("tool_call"),
            )
        if "latency_seconds" in command:
            self.latency_seconds = float(command["latency_seconds"])
        if "api_key" in command:
            self.api_key = str(command["api_key"])
        if "models" in command:
            self.models = [str(model) for model in command["models"]]
        self.media.control(command)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    # ------------------------------------------------------------ behaviour
    def list_models(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """GET /v1/models: the ModelList, or Mistral's 401 body without the right Bearer key."""
        if authorization != f"Bearer {self.api_key}":
            self._log(f"401 GET {path}")
            return 401, {"message": "Unauthorized", "request_id": uuid.uuid4().hex}
        self._log(f"200 GET {path}")
        return 200, {"object": "list", "data": [model_card(model) for model in list(self.models)]}

    def answer(
        self, path: str, authorization: str | None, raw: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        request_id = uuid.uuid4().hex
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = None
        messages = body.get("messages") if isinstance(body, dict) else None
        call: dict[str, Any] = {
            "time": time.time(),
            "path": path,
            "authorized": authorization == f"Bearer {self.api_key}",
            "model": body.get("model") if isinstance(body, dict) else None,
            "headers": recorded_headers(headers or {}, self.api_key),
            "messages": messages,
            "body": body,
            "last_user_text": next(
                (
                    text_of(m.get("content"))
                    for m in reversed(messages or [])
                    if isinstance(m, dict) and m.get("role") == "user"
                ),
                None,
            ),
        }
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
            self._calls.append(call)
        status, payload, headers = self._outcome(call, body, scripted, request_id)
        call["status"] = status
        self._log(f"{status} POST {path} model={call['model']} turn_text={call['last_user_text']!r}")
        return status, payload, headers

    def answer_media(
        self,
        path: str,
        authorization: str | None,
        content_type: str,
        raw: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """`/audio/transcriptions` (multipart) and `/ocr` (JSON): scripted failures apply as for chat."""
        transcription = path.endswith("/audio/transcriptions")
        file = None
        form: dict[str, Any] = {}
        body: Any = None
        if transcription:
            form, file = self.media.read_transcription_request(content_type, raw)
            body = form
        else:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
        call: dict[str, Any] = {
            "time": time.time(),
            "path": path,
            "authorized": authorization == f"Bearer {self.api_key}",
            "headers": recorded_headers(headers or {"Content-Type": content_type}, self.api_key),
            "model": body.get("model") if isinstance(body, dict) else None,
            "messages": None,
            "body": body,
            "last_user_text": None,
        }
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
            self._calls.append(call)

        def succeed() -> tuple[int, dict[str, Any]]:
            return self.media.transcription(form, file) if transcription else self.media.ocr(body)

        status, payload, headers = self._outcome(
            call, body, scripted, uuid.uuid4().hex, succeed=succeed, latency=0.0
        )
        call["status"] = status
        size = len(file.value) if file is not None else len(raw)
        self._log(f"{status} POST {path} model={call['model']} bytes={size}")
        return status, payload, headers

    def _outcome(
        self,
        call: dict[str, Any],
        body: Any,
        scripted: ScriptedAnswer | None,
        request_id: str,
        *,
        succeed: Callable[[], tuple[int, dict[str, Any]]] | None = None,
        latency: float | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        delay = (self.latency_seconds if latency is None else latency) + (scripted.delay if scripted else 0.0)
        if delay:
            time.sleep(delay)
        if not call["authorized"] or (scripted and scripted.status == 401):
            return 401, {"message": "Unauthorized", "request_id": request_id}, {}
        if scripted and scripted.status == 429:
            headers = (
                {"Retry-After": str(int(scripted.retry_after))} if scripted.retry_after is not None else {}
            )
            return (
                429,
                {
                    "object": "error",
                    "message": "Rate limit exceeded",
                    "type": "rate_limited",
                    "param": None,
                    "code": "1300",
                },
                headers,
            )
        if scripted and scripted.status is not None:
            return (
                scripted.status,
                {
                    "object": "error",
                    "message": "Internal server error",
                    "type": "internal_server_error",
                    "param": None,
                    "code": None,
                },
                {},
            )
        if succeed is not None:
            status, payload = succeed()
            return status, payload, {}
        problem = _request_problem(body) or _tools_problem(body)
        if problem is not None:
            return problem[0], problem[1], {}
        return 200, self._completion(body, scripted.tool_call if scripted else None), {}

    @staticmethod
    def _completion(body: dict[str, Any], scripted_tool_call: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = stand_in_reply(body["messages"])
        finish_reason = "stop"
        max_tokens = body.get("max_tokens")
        words = reply.split(" ")
        if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
            reply, finish_reason = " ".join(words[:max_tokens]), "length"
        tool_calls = None
        call = tool_call_reply(body, scripted_tool_call)
        if call is not None:
            reply, finish_reason = "", "tool_calls"
            alphabet = string.ascii_letters + string.digits
            tool_calls = [
                {
                    "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))},
                    "id": "".join(secrets.choice(alphabet) for _ in range(9)),
                    "type": "function",
                }
            ]
        prompt_tokens = sum(len(text_of(m.get("content")).split()) for m in body["messages"])
        completion_tokens = len(reply.split()) if tool_calls is None else 10
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply, "tool_calls": tool_calls},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class _Handler(QuietHandler):
    @property
    def standin(self) -> MistralStandIn:
        owner: MistralStandIn = self.server.owner  # type: ignore[attr-defined]
        return owner

    def do_GET(self) -> None:  # noqa: N802 - http.server dispatches on this name
        path = self.path.split("?")[0]
        if path == "/_calls":
            self.send_json(200, {"calls": self.standin.calls()})
        elif path in ("/v1/models", "/models"):
            self.send_json(*self.standin.list_models(path, self.headers.get("Authorization")))
        else:
            self.send_json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        raw = self.read_body()
        path = self.path.split("?")[0]
        if path == "/_control":
            self.standin.control(json.loads(raw or b"{}"))
            self.send_json(200, {"ok": True})
        elif path in ("/v1/chat/completions", "/chat/completions"):
            status, payload, headers = self.standin.answer(
                path, self.headers.get("Authorization"), raw, headers=dict(self.headers.items())
            )
            # The client may have given up (its read timeout); a real server would not notice either.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_json(status, payload, headers)
        elif path in MEDIA_PATHS:
            status, payload, headers = self.standin.answer_media(
                path,
                self.headers.get("Authorization"),
                self.headers.get("Content-Type", ""),
                raw,
                headers=dict(self.headers.items()),
            )
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_json(status, payload, headers)
        else:
            self.send_json(404, {"detail": "Not Found"})
