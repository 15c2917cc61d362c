"""Runs last (file order): every log line of the session, scanned for every secret value."""

from __future__ import annotations

import urllib.parse

import pytest

from local_stack import LocalStack
from local_stack.webhooks import message_webhook, text_message
from tests.e2e.helpers import new_user, send_text, settle, texts_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_no_log_line_holds_a_secret(stack: LocalStack) -> None:
    # Make sure every path ran at least once in this session, error paths included.
    user = new_user()
    send_text(stack, user, f"scan {user}")
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    forged = message_webhook(user, text_message("forged"))
    assert stack.post_webhook(forged, signed=False, headers={"X-Hub-Signature-256": "sha256=00"})[0] == 401
    wrong = urllib.parse.urlencode(
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    )
    assert stack.get(f"/webhook?{wrong}")[0] == 403
    stack.mistral.api_key = "rotated"  # one 401 from the model, parked
    send_text(stack, new_user(), "bad key")
    stack.wait_until(lambda: stack.queue_depths()["InboundDeadLetterQueue"] == 1, timeout=60)
    stack.purge("InboundDeadLetterQueue")
    settle(stack)

    lines = stack.log_lines()
    assert {"WebhookFunction", "AiReplyFunction", "SendReplyFunction"} <= {line["source"] for line in lines}
    secrets = {
        "app secret": stack.config.app_secret,
        "verify token": stack.config.verify_token,
        "access token": stack.config.access_token,
        "Mistral API key": stack.config.mistral_api_key,
    }
    assert all(len(value) > 20 for value in secrets.values())  # random per session, never a default
    leaks = [
        (what, line["source"], line["line"][:200])
        for line in lines
        for what, value in secrets.items()
        if value in line["line"]
    ]
    assert leaks == []
