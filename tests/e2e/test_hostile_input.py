"""Hostile and malformed webhooks over real HTTP: never a 5xx, nothing enqueued without a valid signature.

The webhook's rules (functions/webhook/app.py, wa_assistant/webhook/signature.py): 413 above
MaxWebhookBodyBytes, 401 for any signature header that is not exactly
`sha256=<64 hex digits>` matching the body (hex in either case, surrounding
whitespace ignored), 400 for a signed body that is not JSON, 200 otherwise
(malformed items are dropped and acknowledged).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local_stack import LocalStack
from local_stack.webhooks import message_webhook, new_wamid, signature, text_message
from tests.e2e.helpers import (
    calls_about,
    function_records,
    messages_webhook,
    new_user,
    settle,
    texts_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HeaderMaker = Callable[[bytes], list[tuple[str, str]]]
"""The signature headers a client sends for a body."""
ENQUEUED = "Inbound message enqueued"
NOT_ANSWERED = {"Outside the customer-service window; not answering", "No reply needed"}


def post(stack: LocalStack, body: bytes, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    """POST with exactly these headers (repeated names allowed), as a client on the internet can."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
    try:
        connection.putrequest("POST", "/webhook")
        for name, value in [("Content-Type", "application/json"), *headers]:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def enqueued_wamids(stack: LocalStack, since: int) -> list[str]:
    return [
        str(r["correlation_id"])
        for r in function_records(stack, "WebhookFunction", since)
        if r.get("message") == ENQUEUED
    ]


def assert_each_enqueued_message_handled_once(stack: LocalStack, since: int) -> None:
    """Every message the webhook enqueued got exactly one outcome: one reply, or a logged no-reply."""
    enqueued = enqueued_wamids(stack, since)
    replies = Counter(m["context_message_id"] for m in stack.sink.messages() if m["type"] == "text")
    not_answered = Counter(
        r["correlation_id"]
        for r in function_records(stack, "AiReplyFunction", since)
        if r.get("message") in NOT_ANSWERED
    )
    assert len(enqueued) == len(set(enqueued))
    assert {wamid: replies[wamid] + not_answered[wamid] for wamid in enqueued} == dict.fromkeys(enqueued, 1)


# ----------------------------------------------------------------- size
@pytest.mark.parametrize("size", [3 * 1024 * 1024, 7 * 1024 * 1024, 11 * 1024 * 1024])
def test_oversized_bodies_are_refused_with_413_signed_or_not(stack: LocalStack, size: int) -> None:
    user = new_user()
    message = message_webhook(user, text_message(f"huge {user}"))
    body = message[:-1] + b"," + b'"padding":"' + b"x" * (size - len(message) - 13) + b'"}'
    assert len(body) == size
    since = len(stack.log_lines())
    assert post(stack, body, [("X-Hub-Signature-256", signature(body, stack.config.app_secret))])[0] == 413
    assert post(stack, body, [])[0] == 413
    settle(stack)
    assert enqueued_wamids(stack, since) == []
    assert calls_about(stack, user) == []


def test_body_at_the_size_cap_is_accepted_and_one_byte_more_is_not(stack: LocalStack) -> None:
    cap = int(stack.topology.parameters["MaxWebhookBodyBytes"]) if stack.topology else 0
    user = new_user()
    message = message_webhook(user, text_message(f"at the cap {user}"))
    at_cap = message + b" " * (cap - len(message))  # JSON allows trailing whitespace
    over = at_cap + b" "
    since = len(stack.log_lines())
    assert stack.post_webhook(over)[0] == 413
    assert stack.post_webhook(at_cap)[0] == 200
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)
    assert len(enqueued_wamids(stack, since)) == 1
    assert_each_enqueued_message_handled_once(stack, since)


# ----------------------------------------------------------------- structure
def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_client_error_never_a_5xx(stack: LocalStack, depth: int) -> None:
    user = new_user()
    inner = message_webhook(user, text_message(f"nested {user}"))
    bodies = [
        _nested(depth),
        b'{"a":' * depth + b"1" + b"}" * depth,
        # Nested inside an otherwise valid webhook, in a field nobody reads.
        inner[:-1] + b',"deep":' + _nested(depth) + b"}",
    ]
    since = len(stack.log_lines())
    statuses = [stack.post_webhook(body)[0] for body in bodies]
    assert all(status in (200, 400) for status in statuses), statuses
    settle(stack)
    assert enqueued_wamids(stack, since) == []
    assert calls_about(stack, user) == []


def test_invalid_utf8_is_400_when_signed_and_401_when_not(stack: LocalStack) -> None:
    user = new_user()
    valid = message_webhook(user, text_message(f"utf8 {user} ZZ"))
    broken = valid.replace(b"ZZ", b"\xff\xfe\xc3")  # not UTF-8: Meta never sends this
    since = len(stack.log_lines())
    assert stack.post_webhook(broken)[0] == 400
    assert stack.post_webhook(broken, signed=False)[0] == 401
    settle(stack)
    assert enqueued_wamids(stack, since) == []


def test_duplicate_keys_take_the_last_value(stack: LocalStack) -> None:
    user = new_user()
    wamid = new_wamid()
    body = message_webhook(user, text_message(f"first {user}", wamid))
    body = body.replace(
        f'"body":"first {user}"'.encode(), f'"body":"first {user}","body":"last {user}"'.encode()
    )
    assert body.count(b'"body":') == 2
    assert stack.post_webhook(body)[0] == 200
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)
    [reply] = texts_to(stack, user)
    assert reply["context_message_id"] == wamid
    assert f'You said: "last {user}"' in reply["text"]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every node below the root (containers and leaves) with its path."""
    children: Any = (
        node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    )
    for key, child in children:
        yield (*path, key), child
        yield from _paths(child, (*path, key))


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return "not a number"
    if isinstance(value, str):
        return {"not": "a string"}
    return "not a container"


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return changed


def test_null_and_wrong_type_in_every_field_never_give_a_5xx(stack: LocalStack) -> None:
    """For each node of a real-shaped text webhook: one variant with null, one with a wrong type."""
    since = len(stack.log_lines())
    variants = 0
    received = 0
    template = json.loads(message_webhook("16500000000", text_message("x")))
    for path, value in list(_paths(template)):
        for replacement in (None, _wrong_type(value)):
            user = new_user()
            document = json.loads(
                message_webhook(user, text_message(f"variant {user} {'.'.join(map(str, path))}"))
            )
            body = json.dumps(_replace(document, path, replacement), separators=(",", ":")).encode()
            status, answer = stack.post_webhook(body)
            assert status in (200, 400), (path, replacement, status, answer)
            if status == 200:
                received += json.loads(answer)["received"]
            variants += 1
    assert variants >= 2 * 20
    settle(stack)
    assert len(enqueued_wamids(stack, since)) == received
    assert_each_enqueued_message_handled_once(stack, since)
    depths = stack.queue_depths()
    assert depths["InboundDeadLetterQueue"] == depths["OutboundDeadLetterQueue"] == 0


# ----------------------------------------------------------------- volume
def test_one_signed_webhook_with_1000_messages_enqueues_every_one(stack: LocalStack) -> None:
    """A backlog Meta delivers after an outage: 1,000 messages, all older than the 24-hour window,
    so each is enqueued and consumed (logged as not answered) without 1,000 model calls."""
    users = [new_user() for _ in range(100)]
    messages = [(user, text_message(f"backlog {user} {n}")) for n in range(10) for user in users]
    wamids = [message["id"] for _, message in messages]
    body = messages_webhook(messages, timestamp=int(time.time()) - 25 * 3600)
    since = len(stack.log_lines())

    status, answer = stack.post_webhook(body)
    assert (status, json.loads(answer)) == (200, {"received": 1000})

    def all_consumed() -> bool:
        seen = {
            r["correlation_id"]
            for r in function_records(stack, "AiReplyFunction", since)
            if r.get("message") in NOT_ANSWERED
        }
        return seen >= set(wamids)

    stack.wait_until(all_consumed, timeout=120, interval=1)
    settle(stack)
    assert Counter(enqueued_wamids(stack, since)) == Counter(wamids)  # each enqueued exactly once
    assert_each_enqueued_message_handled_once(stack, since)
    assert texts_to(stack, *users) == []
    assert set(stack.queue_depths().values()) == {0}


# ----------------------------------------------------------------- signature
def test_signature_header_variants(stack: LocalStack) -> None:
    secret = stack.config.app_secret

    def request_for(label: str, make: HeaderMaker) -> tuple[str, bytes, list[tuple[str, str]]]:
        user = new_user()
        body = message_webhook(user, text_message(f"sig {label} {user}"))
        return user, body, make(body)

    def sha256_hex(body: bytes) -> str:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    accepting: dict[str, HeaderMaker] = {
        "uppercase hex": lambda b: [("X-Hub-Signature-256", "sha256=" + sha256_hex(b).upper())],
        "surrounding whitespace": lambda b: [("X-Hub-Signature-256", f" \t{signature(b, secret)} ")],
        "lower-case header name": lambda b: [("x-hub-signature-256", signature(b, secret))],
    }
    refusing: dict[str, HeaderMaker] = {
        "missing": lambda b: [],
        "empty": lambda b: [("X-Hub-Signature-256", "")],
        "two signatures": lambda b: [("X-Hub-Signature-256", signature(b, secret))] * 2,
        "valid and garbage": lambda b: [
            ("X-Hub-Signature-256", signature(b, secret)),
            ("X-Hub-Signature-256", "garbage"),
        ],
        "comma-joined": lambda b: [("X-Hub-Signature-256", f"{signature(b, secret)},{signature(b, secret)}")],
        "sha1": lambda b: [
            ("X-Hub-Signature-256", "sha1=" + hmac.new(secret.encode(), b, hashlib.sha1).hexdigest())
        ],
        "sha1 header only": lambda b: [
            ("X-Hub-Signature", "sha1=" + hmac.new(secret.encode(), b, hashlib.sha1).hexdigest())
        ],
        "upper-case prefix": lambda b: [("X-Hub-Signature-256", "SHA256=" + sha256_hex(b))],
        "no prefix": lambda b: [("X-Hub-Signature-256", sha256_hex(b))],
        "garbage": lambda b: [("X-Hub-Signature-256", "sha256=not-hex-at-all")],
        "truncated": lambda b: [("X-Hub-Signature-256", signature(b, secret)[:-2])],
        "spaces inside": lambda b: [("X-Hub-Signature-256", "sha256=" + " ".join(sha256_hex(b)))],
        "other body": lambda b: [("X-Hub-Signature-256", signature(b + b" ", secret))],
        "wrong secret": lambda b: [("X-Hub-Signature-256", signature(b, "not-the-app-secret"))],
    }
    accepted = {label: request_for(label, make) for label, make in accepting.items()}
    refused = {label: request_for(label, make) for label, make in refusing.items()}

    since = len(stack.log_lines())
    statuses = {label: post(stack, body, headers)[0] for label, (_, body, headers) in refused.items()}
    assert statuses == dict.fromkeys(refused, 401)
    statuses = {label: post(stack, body, headers)[0] for label, (_, body, headers) in accepted.items()}
    assert statuses == dict.fromkeys(accepted, 200)
    accepted_users = [user for user, _, _ in accepted.values()]
    stack.wait_until(lambda: len(texts_to(stack, *accepted_users)) == len(accepted))
    settle(stack)

    assert len(enqueued_wamids(stack, since)) == len(accepted)  # nothing from a refused request
    assert_each_enqueued_message_handled_once(stack, since)
    refused_users = [user for user, _, _ in refused.values()]
    assert texts_to(stack, *refused_users) == []
    assert [
        c for c in stack.mistral.calls() if any(u in (c.get("last_user_text") or "") for u in refused_users)
    ] == []
