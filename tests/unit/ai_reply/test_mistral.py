"""The Mistral adapter: request bodies, response parsing and the one error classification."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from tests.support import CORPUS
from tests.unit.ai_reply.helpers import completion_json
from wa_assistant.conversation.handoff import HANDOFF_TOOL
from wa_assistant.conversation.prompt import ChatMessage
from wa_assistant.model.chat import (
    ChatCompletion,
    MistralClient,
    MistralError,
    MistralSettings,
    ToolCall,
    chat_completion_request,
    classify_mistral_error,
    parse_chat_completion,
    reply_text,
)

MISTRAL_CORPUS = CORPUS / "mistral"
needs_corpus = pytest.mark.skipif(not MISTRAL_CORPUS.is_dir(), reason="public corpus not present")
KEY = "sk-unit-test-key-0123456789"
CHAT = [
    ChatMessage(role="system", content="You help customers of Acme Store."),
    ChatMessage(role="user", content="When do you open?"),
    ChatMessage(role="assistant", content="At 9."),
    ChatMessage(role="user", content="And on Sundays?"),
]


def corpus(name: str) -> bytes:
    return (MISTRAL_CORPUS / name).read_bytes()


# ------------------------------------------------------------------ settings and request


def test_settings_send_only_what_is_set() -> None:
    settings = MistralSettings.from_env(
        {
            "MISTRAL_TEMPERATURE": "",
            "MISTRAL_MAX_TOKENS": " ",
            "MISTRAL_SAFE_PROMPT": "",
            "MISTRAL_RANDOM_SEED": "",
        }
    )
    assert settings.base_url == "https://api.mistral.ai/v1"
    assert settings.model == "mistral-small-latest"
    assert chat_completion_request(settings, CHAT) == {
        "model": "mistral-small-latest",
        "messages": [message.model_dump() for message in CHAT],
    }


def test_settings_parse_every_optional_value() -> None:
    settings = MistralSettings.from_env(
        {
            "MISTRAL_BASE_URL": "https://openrouter.ai/api/v1/",
            "MISTRAL_MODEL": "mistralai/mistral-small",
            "MISTRAL_TIMEOUT_SECONDS": "12",
            "MISTRAL_TEMPERATURE": "0.3",
            "MISTRAL_MAX_TOKENS": "256",
            "MISTRAL_SAFE_PROMPT": "false",
            "MISTRAL_RANDOM_SEED": "7",
        }
    )
    body = chat_completion_request(settings, CHAT)
    assert settings.base_url == "https://openrouter.ai/api/v1"
    assert settings.read_timeout_seconds == 12
    assert (body["temperature"], body["max_tokens"], body["safe_prompt"], body["random_seed"]) == (
        0.3,
        256,
        False,
        7,
    )


@needs_corpus
@pytest.mark.parametrize(
    "env",
    [
        {},
        {
            "MISTRAL_TEMPERATURE": "0.7",
            "MISTRAL_MAX_TOKENS": "512",
            "MISTRAL_SAFE_PROMPT": "true",
            "MISTRAL_RANDOM_SEED": "1234",
        },
    ],
    ids=["defaults", "all-options"],
)
@pytest.mark.parametrize("tools", [(), (HANDOFF_TOOL,)], ids=["no-tools", "handoff-tool"])
def test_request_bodies_match_mistrals_openapi_schema(env: dict[str, str], tools: tuple[Any, ...]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec = json.loads(corpus("openapi_chat.json"))
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/ChatCompletionRequest", "components": spec["components"]}
    )
    body = chat_completion_request(MistralSettings.from_env(env), CHAT, tools)
    assert list(validator.iter_errors(json.loads(json.dumps(body)))) == []
    assert ("tools" in body, body.get("tool_choice")) == ((True, "auto") if tools else (False, None))
    # The schema is strict (additionalProperties: false): a field Mistral does not know fails.
    assert list(validator.iter_errors({**body, "max_completion_tokens": 10}))


# ------------------------------------------------------------------ responses


@needs_corpus
@pytest.mark.parametrize(
    ("name", "starts_with", "finish_reason", "tokens"),
    [
        ("response_normal_stop.json", "The distance between the **Earth and the Moon**", "stop", (11, 268)),
        ("response_finish_length.json", 'Choosing the "best" French cheese', "length", (10, 128)),
        ("response_usage_details_content_chunks.json", "Let's denote the ages", "stop", (77, 1114)),
    ],
)
def test_parses_mistrals_documented_responses(
    name: str, starts_with: str, finish_reason: str, tokens: tuple[int, int]
) -> None:
    completion = parse_chat_completion(corpus(name))
    assert completion is not None
    assert completion.text.startswith(starts_with)
    assert (completion.finish_reason, (completion.prompt_tokens, completion.completion_tokens)) == (
        finish_reason,
        tokens,
    )


@needs_corpus
def test_thinking_chunks_never_reach_the_user() -> None:
    completion = parse_chat_completion(corpus("response_usage_details_content_chunks.json"))
    assert completion is not None
    assert "Okay, let's try to figure out" not in completion.text
    assert completion.text.endswith("years old.")


@needs_corpus
def test_parses_mistrals_documented_tool_call() -> None:
    completion = parse_chat_completion(corpus("response_tool_calls.json"))
    assert completion is not None
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == (ToolCall("retrieve_payment_status", {"transaction_id": "T1001"}),)
    assert completion.total_tokens == 124


@pytest.mark.parametrize(
    ("arguments", "parsed"),
    [
        ('{"reason": "refund"}', {"reason": "refund"}),
        ({"reason": "refund"}, {"reason": "refund"}),  # the schema allows an object too
        ("not json", {}),
        ("[1, 2]", {}),
        (None, {}),
    ],
)
def test_tool_call_arguments_in_every_shape(arguments: Any, parsed: dict[str, Any]) -> None:
    body = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"function": {"name": "handoff_to_human", "arguments": arguments}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    completion = parse_chat_completion(json.dumps(body))
    assert completion is not None
    assert completion.tool_calls == (ToolCall("handoff_to_human", parsed),)


def test_tool_calls_without_a_function_name_are_no_reply() -> None:
    body = {
        "choices": [{"message": {"content": "", "tool_calls": [{"function": {"name": ""}}, {"id": "x"}]}}]
    }
    assert parse_chat_completion(json.dumps(body)) is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"choices": []}',
        b'{"choices": [{"message": null}]}',
        b'{"choices": [{"message": {"content": null}}]}',
        b'{"choices": [{"message": {"content": "   "}}]}',
        b'{"choices": [{"message": {"content": [{"type": "thinking", "thinking": []}]}}]}',
        b'{"choices": "oops"}',
    ],
)
def test_bodies_without_reply_text_parse_to_none(body: bytes) -> None:
    assert parse_chat_completion(body) is None


def test_reply_text_joins_text_chunks_only() -> None:
    content: list[Any] = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "secret reasoning"}]},
        {"type": "text", "text": "Hello "},
        "stray",
        {"type": "text", "text": "world."},
        {"type": "image_url", "image_url": "https://example.test/x.png"},
    ]
    assert reply_text(content) == "Hello world."


def test_missing_usage_is_fine() -> None:
    completion = parse_chat_completion(json.dumps({"choices": [{"message": {"content": "Hi"}}]}))
    assert completion == ChatCompletion(text="Hi")


# ------------------------------------------------------------------ errors


@needs_corpus
@pytest.mark.parametrize(
    ("name", "status", "retryable", "message", "code"),
    [
        ("error_401_unauthorized.json", 401, False, "Unauthorized", None),
        ("error_401_unauthorized_detail.json", 401, False, "Unauthorized", None),
        (
            "error_422_validation.json",
            422,
            False,
            "body.max_completion_tokens: Extra inputs are not permitted",
            None,
        ),
        (
            "error_422_validation_detail_only.json",
            422,
            False,
            "body.store: Extra inputs are not permitted; "
            "body.max_completion_tokens: Extra inputs are not permitted",
            None,
        ),
        ("error_429_rate_limited.json", 429, True, "Rate limit exceeded", "1300"),
        ("error_429_rate_limit_legacy.json", 429, True, "Requests rate limit exceeded", None),
    ],
)
def test_classifies_mistrals_observed_error_bodies(
    name: str, status: int, retryable: bool, message: str, code: str | None
) -> None:
    error = classify_mistral_error(status, {}, corpus(name))
    assert (error.retryable, error.status, error.message, error.code) == (retryable, status, message, code)


def test_keeps_request_id_and_type() -> None:
    error = classify_mistral_error(
        401, {}, b'{"message": "Unauthorized", "request_id": "c61f2f15feca71626a990e3740f99245"}'
    )
    assert error.request_id == "c61f2f15feca71626a990e3740f99245"
    rate = classify_mistral_error(
        429,
        {},
        b'{"object":"error","message":"Rate limit exceeded","type":"rate_limited",'
        b'"param":null,"code":"1300"}',
    )
    assert (rate.error_type, rate.code) == ("rate_limited", "1300")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (301, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (200, True),
        (None, True),
    ],
)
def test_classification_is_by_status(status: int | None, retryable: bool) -> None:
    assert classify_mistral_error(status, {}, b"").retryable is retryable


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"", "(empty body)"),
        (b"\xff\xfe broken", "\ufffd\ufffd broken"),
        (b'"just a string"', '"just a string"'),
        (
            b'{"error": {"message": "Invalid model", "type": "invalid_request_error", "code": 404}}',
            "Invalid model",
        ),
        (b'{"unexpected": true}', '{"unexpected": true}'),
    ],
    ids=["html", "empty", "not-utf8", "json-string", "openai-shape", "unknown-json"],
)
def test_any_error_body_gives_a_readable_message(body: bytes, message: str) -> None:
    assert classify_mistral_error(400, {}, body).message == message


def test_no_response_is_retryable_and_says_why() -> None:
    error = classify_mistral_error(None, {}, "ReadTimeout")
    assert (error.retryable, error.status, error.message) == (True, None, "ReadTimeout")
    assert "unreachable" in str(error)


def test_a_2xx_without_text_is_retryable() -> None:
    error = classify_mistral_error(200, {}, b'{"choices": []}')
    assert (error.retryable, error.message) == (True, "the reply has no text")


def test_retry_after_is_read_from_any_header_case() -> None:
    assert classify_mistral_error(429, {"Retry-After": "12"}, b"").retry_after == 12
    assert classify_mistral_error(429, {"retry-after": "3.5"}, b"").retry_after == 3.5
    assert classify_mistral_error(503, {}, b"").retry_after is None


# ------------------------------------------------------------------ client


@pytest.fixture
def client() -> MistralClient:
    settings = MistralSettings(base_url="https://llm.test/v1", model="mistral-small-latest")
    return MistralClient(settings, api_key=lambda: KEY)


@respx.mock
def test_client_posts_the_chat_with_bearer_key(client: MistralClient) -> None:
    route = respx.post("https://llm.test/v1/chat/completions").respond(json=completion_json("At 10."))

    completion = client.complete(CHAT)

    assert completion.text == "At 10."
    assert completion.latency_ms > 0
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == chat_completion_request(client.settings, CHAT)


def test_client_timeouts_stay_below_the_function_timeout() -> None:
    settings = MistralSettings.from_env({"MISTRAL_TIMEOUT_SECONDS": "25"})
    client = MistralClient(settings, api_key=lambda: KEY)
    timeout = client._http.timeout
    assert (timeout.connect, timeout.read) == (3.0, 25.0)


@respx.mock
@pytest.mark.parametrize(
    "exception",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("x"),
    ],
)
def test_transport_errors_are_retryable(client: MistralClient, exception: Exception) -> None:
    respx.post("https://llm.test/v1/chat/completions").mock(side_effect=exception)

    with pytest.raises(MistralError) as raised:
        client.complete(CHAT)

    assert raised.value.retryable
    assert raised.value.status is None
    assert raised.value.message == type(exception).__name__


@respx.mock
def test_an_error_body_echoing_the_key_is_redacted(client: MistralClient) -> None:
    respx.post("https://llm.test/v1/chat/completions").respond(
        401, json={"message": f"Incorrect API key provided: {KEY}"}
    )

    with pytest.raises(MistralError) as raised:
        client.complete(CHAT)

    assert not raised.value.retryable
    assert KEY not in str(raised.value)
    assert KEY not in json.dumps(raised.value.log_fields())
    assert raised.value.message == "Incorrect API key provided: [redacted]"


@respx.mock
def test_an_empty_reply_raises_a_retryable_error(client: MistralClient) -> None:
    respx.post("https://llm.test/v1/chat/completions").respond(json=completion_json(""))

    with pytest.raises(MistralError) as raised:
        client.complete(CHAT)

    assert raised.value.retryable
    assert raised.value.status == 200


def tool_call_json(name: str, arguments: str = '{"reason": "wants a refund"}') -> dict[str, Any]:
    body = completion_json("")
    body["choices"][0]["message"]["tool_calls"] = [
        {"function": {"name": name, "arguments": arguments}, "id": "D681PevKs", "type": "function"}
    ]
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


@respx.mock
def test_a_call_of_an_offered_tool_is_a_reply(client: MistralClient) -> None:
    route = respx.post("https://llm.test/v1/chat/completions").respond(
        json=tool_call_json("handoff_to_human")
    )

    completion = client.complete(CHAT, [HANDOFF_TOOL])

    assert completion.tool_calls == (ToolCall("handoff_to_human", {"reason": "wants a refund"}),)
    sent = json.loads(route.calls.last.request.content)
    assert (sent["tools"], sent["tool_choice"]) == ([HANDOFF_TOOL], "auto")


@respx.mock
@pytest.mark.parametrize("tools", [(), (HANDOFF_TOOL,)], ids=["nothing-offered", "another-tool-offered"])
def test_a_call_of_a_tool_not_offered_without_text_is_retryable(
    client: MistralClient, tools: tuple[Any, ...]
) -> None:
    respx.post("https://llm.test/v1/chat/completions").respond(json=tool_call_json("delete_everything"))

    with pytest.raises(MistralError) as raised:
        client.complete(CHAT, tools)

    assert raised.value.retryable
    assert raised.value.status == 200
