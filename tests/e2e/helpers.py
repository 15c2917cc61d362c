"""What the e2e tests do as a WhatsApp user, and how they read what came out of the stack."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from local_stack import LocalStack
from local_stack.webhooks import (
    BUSINESS_ACCOUNT_ID,
    DISPLAY_PHONE_NUMBER,
    PHONE_NUMBER_ID,
    message_webhook,
    text_message,
    wamid_of,
)

_numbers = itertools.count(1)
QUOTED = re.compile(r'You said: "(?P<text>.*)" \(turn (?P<turn>\d+)', re.DOTALL)
BURST_JOINER = "\n\n"
"""How the user turn of a burst joins its messages (conversation.understanding.together)."""


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
    """One reply per wamid (for messages that cannot form a burst: one per user, or sent one by one)."""
    counts = Counter(m["context_message_id"] for m in messages)
    return all(counts[w] == 1 for w in wamids) and sum(counts.values()) == len(wamids)


def all_answered(stack: LocalStack, sent: dict[str, list[str]]) -> bool:
    """Each user has a reply quoting their last message (a burst's one reply quotes its last)."""
    quoted = {m["context_message_id"] for m in texts_to(stack, *sent)}
    return all(wamids[-1] in quoted for wamids in sent.values())


def said_in_order(stack: LocalStack, user: str) -> list[str]:
    """What the user said, as the stand-in's replies quote it, one entry per message: a burst's
    reply quotes its messages joined, so they are split again."""
    replies = texts_to(stack, user)
    return [part for reply in replies for part in quoted_text(reply).split(BURST_JOINER)]


def quoted_text(message: dict[str, Any]) -> str:
    """What the stand-in says the user said (its replies quote the last user text)."""
    found = QUOTED.search(message["text"])
    assert found, message["text"]
    return found["text"]


def settle(stack: LocalStack, timeout: float = 60) -> None:
    """Wait until every queue is empty and no function runs."""
    stack.wait_until(stack.idle, timeout=timeout)


def function_records(stack: LocalStack, function: str, since: int = 0) -> list[dict[str, Any]]:
    """The Powertools JSON lines one function logged (log lines from index `since` on)."""
    records = []
    for line in stack.log_lines()[since:]:
        if line["source"] != function:
            continue
        try:
            record = json.loads(line["line"])
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def retries_logged(stack: LocalStack, function: str, wamids: Iterable[str], since: int = 0) -> list[int]:
    """The `attempt` of each counted "Will retry" line the function logged for these wamids."""
    wanted = set(wamids)
    return [
        int(r["attempt"])
        for r in function_records(stack, function, since)
        if r.get("message") == "Will retry" and r.get("counted_attempt") and r.get("correlation_id") in wanted
    ]


def skips_logged(stack: LocalStack, function: str, wamids: Iterable[str], since: int = 0) -> Counter[str]:
    """How often each of these wamids was skipped (not attempted) behind a failing message."""
    wanted = set(wamids)
    return Counter(
        r["correlation_id"]
        for r in function_records(stack, function, since)
        if str(r.get("message", "")).startswith("Skipped") and r.get("correlation_id") in wanted
    )


def parked_logged(stack: LocalStack, function: str, since: int = 0) -> list[dict[str, Any]]:
    """The "Parked in the dead-letter queue" lines of a function."""
    return [
        r
        for r in function_records(stack, function, since)
        if r.get("message") == "Parked in the dead-letter queue"
    ]


def emf_metrics(records: Iterable[dict[str, Any]]) -> list[tuple[str, str, dict[str, str], float]]:
    """(namespace, metric name, dimensions, value) of every metric in Powertools' EMF lines."""
    found = []
    for record in records:
        directives = record.get("_aws", {}).get("CloudWatchMetrics", [])
        for directive in directives:
            for dimension_set in directive.get("Dimensions", []):
                dimensions = {name: str(record[name]) for name in dimension_set}
                for metric in directive.get("Metrics", []):
                    value = record[metric["Name"]]
                    total = sum(value) if isinstance(value, list) else value
                    found.append((directive["Namespace"], metric["Name"], dimensions, float(total)))
    return found


def messages_webhook(messages: list[tuple[str, dict[str, Any]]], timestamp: int | None = None) -> bytes:
    """One webhook carrying several user messages [(wa_id, message)], as Meta batches them."""
    when = str(int(time.time()) if timestamp is None else timestamp)
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [
            {"profile": {"name": "Burst"}, "wa_id": wa_id} for wa_id in dict.fromkeys(w for w, _ in messages)
        ],
        "messages": [{"from": wa_id, "timestamp": when, **message} for wa_id, message in messages],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": BUSINESS_ACCOUNT_ID, "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def replies_in_order(stack: LocalStack, sent: dict[str, list[str]]) -> None:
    """Every wamid answered once, in order: each user's replies quote, in order and once each, the
    last message of consecutive runs of their messages (a burst answered together gets one reply,
    quoting its last), and the last reply quotes their last message."""
    replies = texts_to(stack, *sent)
    for user, wamids in sent.items():
        quoted = [r["context_message_id"] for r in replies if r["to"] == user]
        assert set(quoted) <= set(wamids), (quoted, wamids)
        positions = [wamids.index(q) for q in quoted]
        assert positions == sorted(set(positions)), (positions, wamids)  # in order, none twice
        assert positions, wamids
        assert positions[-1] == len(wamids) - 1, (positions, wamids)
