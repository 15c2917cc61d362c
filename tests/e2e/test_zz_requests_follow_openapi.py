"""Runs last (file order): every request the stack sent in this session, against Mistral's and Meta's OpenAPI.

The stand-ins record each request they get (path, headers with the secret replaced,
body; a multipart form as its fields). Each one is checked against the corpus'
OpenAPI subsets with `tests.openapi` (see its docstring for the two OpenAPI meanings
applied to Meta's spec). Requests that are identical apart from their text values are
checked once: a session sends thousands of the same shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from local_stack import LocalStack
from tests.openapi import OpenApiSpec
from tests.support import CORPUS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not CORPUS.is_dir(), reason="public corpus not present"),
]

MISTRAL = CORPUS / "mistral"
GRAPH = CORPUS / "graph"


def shape(value: Any) -> Any:
    """Keys and value types: two requests of one shape get the same verdict from a schema with no patterns."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def unique(requests: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for request in requests:
        seen.setdefault(json.dumps(key(request), sort_keys=True, default=str), request)
    return list(seen.values())


def as_is(body: Any) -> Any:
    return body


def form_for_schema(form: dict[str, Any]) -> dict[str, Any]:
    """A recorded multipart form as the schema sees it: a file part is a binary string."""
    return {name: "<binary>" if isinstance(value, dict) else value for name, value in form.items()}


def test_every_model_request_follows_mistrals_openapi(stack: LocalStack) -> None:
    chat_spec = OpenApiSpec(MISTRAL / "openapi_chat.json")
    media_spec = OpenApiSpec(MISTRAL / "openapi_media_subset.json")
    calls = [c for c in stack.mistral.calls() if c.get("headers")]
    operations: dict[str, tuple[OpenApiSpec, str, Callable[[Any], Any]]] = {
        "/v1/chat/completions": (chat_spec, "chat_completion_v1_chat_completions_post", as_is),
        "/v1/audio/transcriptions": (media_spec, "audio_api_v1_transcriptions_post", form_for_schema),
        "/v1/ocr": (media_spec, "ocr_v1_ocr_post", as_is),
    }
    checked: dict[str, int] = dict.fromkeys(operations, 0)
    problems = []
    for call in unique(calls, lambda c: (c["path"], shape(c["body"]), c.get("status") == 422)):
        spec, operation, as_body = operations[call["path"]]
        checked[call["path"]] += 1
        errors = spec.request_errors(
            operation, method="POST", path=call["path"], headers=call["headers"], body=as_body(call["body"])
        )
        problems += [f"{call['path']}: {error}" for error in errors]
    assert problems == []
    assert all(count > 0 for count in checked.values()), checked  # the session sent each kind
    # The check can fail: a field Mistral does not know, or one it requires missing, is caught.
    for path, (spec, operation, as_body) in operations.items():
        call = next(c for c in calls if c["path"] == path and c.get("status") == 200)
        broken = {**as_body(call["body"]), "not_a_mistral_field": 1}
        assert spec.request_errors(operation, method="POST", path=path, headers=call["headers"], body=broken)
        without_model = {k: v for k, v in as_body(call["body"]).items() if k != "model"}
        assert spec.request_errors(
            operation, method="POST", path=path, headers=call["headers"], body=without_model
        )


BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[0-9A-Za-z]+")
"""A business-scoped user id as Meta shows them (US.13491208655302741918, US.ENT.11815799212886844830)."""


def test_every_graph_request_follows_metas_openapi(stack: LocalStack) -> None:
    messages_spec = OpenApiSpec(GRAPH / "openapi_messages_and_webhooks_subset.json")
    media_spec = OpenApiSpec(GRAPH / "openapi_media_subset.json")
    read_receipt = json.loads((GRAPH / "request_mark_as_read_with_typing_indicator.json").read_text())
    problems = []
    sends = [a for a in stack.sink.attempts() if a.get("headers")]
    for attempt in unique(sends, lambda a: shape(a["body"])):
        body = attempt["body"]
        if isinstance(body, dict) and body.get("status") == "read":
            # Meta's spec has no schema for read receipts (Message is discriminated on `type`, which they
            # lack): the operation's own example is the reference.
            if shape(body) != shape(read_receipt):
                problems.append(f"read receipt {shape(body)} is not shaped like Meta's example")
            errors = messages_spec.request_errors(
                "sendMessage", method="POST", path=attempt["path"], headers=attempt["headers"], body=None
            )
            problems += [e for e in errors if not e.startswith(("body", "content type"))]
            continue
        if isinstance(body, dict) and "recipient" in body and "to" not in body:
            # A username-only user, addressed by BSUID: Meta's v23 spec predates BSUIDs, which its
            # "Business-scoped user IDs" guide adds as `recipient` in place of `to` (same string, the
            # rest of the message unchanged): check the rest as the spec has it.
            problems += (
                [] if BSUID.fullmatch(str(body["recipient"])) else [f"recipient {body['recipient']!r}"]
            )
            body = {("to" if key == "recipient" else key): value for key, value in body.items()}
        problems += messages_spec.request_errors(
            "sendMessage", method="POST", path=attempt["path"], headers=attempt["headers"], body=body
        )
    media = stack.sink.media.requests()
    for request in unique(media, lambda r: (r["kind"], sorted(r["query"]), sorted(r["headers"]))):
        if request["kind"] == "lookup":
            problems += media_spec.request_errors(
                "retrieveMediaUrl",
                method="GET",
                path=request["path"],
                query=request["query"],
                headers=request["headers"],
            )
        else:  # the URL Graph handed out, requested as returned (the spec models it as one path parameter)
            problems += media_spec.request_errors(
                "downloadMedia", method="GET", check_path=False, headers=request["headers"]
            )
    assert problems == []
    assert sends
    assert {r["kind"] for r in media} == {"lookup", "download"}  # the session fetched media
    # The check can fail: a text without its recipient, a media lookup without the token, are caught.
    text = next(a for a in sends if isinstance(a["body"], dict) and a["body"].get("type") == "text")
    without_to = {k: v for k, v in text["body"].items() if k != "to"}
    assert messages_spec.request_errors(
        "sendMessage", method="POST", path=text["path"], headers=text["headers"], body=without_to
    )
    lookup = next(r for r in media if r["kind"] == "lookup")
    assert media_spec.request_errors(
        "retrieveMediaUrl",
        method="GET",
        path=lookup["path"],
        query={**lookup["query"], "fields": "x"},
        headers={},
    )
