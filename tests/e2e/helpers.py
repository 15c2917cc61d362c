"""What the e2e tests do as a WhatsApp user, and how they read what came out of the stack."""

from __future__ import annotations

import itertools
import re
import secrets
from collections import Counter
from typing import Any

from local_stack import LocalStack
from local_stack.webhooks import message_webhook, text_message, wamid_of

_numbers = itertools.count(1)
QUOTED = re.compile(r'You said: "(?P<text>.*)" \(turn (?P<turn>\d+)')


def new_user() -> str:
    """A wa_id no other test uses, so each test reads only its own traffic."""
    return f"1650{secrets.randbelow(10**4):04d}{next(_numbers):03d}"


def send_text(stack: LocalStack, wa_id: str, text: str) -> tuple[str, bytes]:
    """Post a signed text webhook; returns (wamid, body) so a test can redeliver the same bytes."""
    body = message_webhook(wa_id, text_message(text))
    status, answer = stack.post_webhook(body)
    assert status == 200, answer
    return wamid_of(body), body


def texts_to(stack: LocalStack, *wa_ids: str) -> list[dict[str, Any]]:
    wanted = set(wa_ids)
    return [m for m in stack.sink.messages() if m["to"] in wanted and m["type"] == "text"]


def calls_about(stack: LocalStack, marker: str) -> list[dict[str, Any]]:
    """Model calls whose last user text carries the test's marker."""
    return [c for c in stack.mistral.calls() if marker in (c.get("last_user_text") or "")]


def answered_once(messages: list[dict[str, Any]], wamids: list[str]) -> bool:
    counts = Counter(m["context_message_id"] for m in messages)
    return all(counts[w] == 1 for w in wamids) and sum(counts.values()) == len(wamids)


def quoted_text(message: dict[str, Any]) -> str:
    """What the stand-in says the user said (its replies quote the last user text)."""
    found = QUOTED.search(message["text"])
    assert found, message["text"]
    return found["text"]


def settle(stack: LocalStack, timeout: float = 60) -> None:
    """Wait until every queue is empty and no function runs."""
    stack.wait_until(stack.idle, timeout=timeout)
