"""`make doctor` against the session's stack, as a separate process over real HTTP and moto.

All ✔ on the healthy stack; a revoked WhatsApp token, a model the server does not offer and
a message parked in a dead-letter queue each give their ✗ and exit status 1. No secret value
of the stack ever appears in doctor's output or in the state file it reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_stack import LocalStack
from local_stack.mistral_standin import LISTED_MODELS
from local_stack.topology import moto_client
from ops.stack import LocalStackView, alarm_is_firing
from tests.e2e.helpers import new_user, send_text, settle
from tests.support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHECKS = (
    "Stack",
    "Webhook secret",
    "Model API key secret",
    "WhatsApp token secret",
    "Meta's verification (GET WebhookUrl)",
    "Webhook signature (POST WebhookUrl)",
    "WhatsApp token and phone number",
    "App subscribed to the WhatsApp Business Account",
    "Model API key and model",
    "Inbound dead-letter queue",
    "Outbound dead-letter queue",
    "Alarms",
)
FUNCTION_LOGS = ("WebhookFunction log", "AiReplyFunction log", "SendReplyFunction log")


@pytest.fixture
def state(stack: LocalStack, tmp_path: Path) -> Path:
    path = tmp_path / "state.json"
    stack.write_state(path)
    return path


def run_doctor(stack: LocalStack, state: Path) -> tuple[int, dict[str, str], str]:
    """Exit status, {check title: its line}, and the whole output (checked for secrets)."""
    done = subprocess.run(
        [sys.executable, "-m", "ops.doctor", "--state", str(state)],
        cwd=ROOT,
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert_no_secret(stack, output)
    lines = {}
    for line in done.stdout.splitlines():
        if line[:2] in ("✔ ", "✗ ", "○ ", "! "):
            title = line[2:].split(": ", 1)[0]
            lines[title] = line
    return done.returncode, lines, output


def assert_no_secret(stack: LocalStack, text: str) -> None:
    values = {
        "app secret": stack.config.app_secret,
        "verify token": stack.config.verify_token,
        "access token": stack.config.access_token,
        "Mistral API key": stack.config.mistral_api_key,
    }
    assert all(len(value) > 20 for value in values.values())  # random per session
    assert [what for what, value in values.items() if value in text] == []


def drain(stack: LocalStack, logical_id: str) -> None:
    """Delete every message of a queue one by one: a purge would lock the queue's purges for 60 s
    (SQS's rule, which moto keeps), and the fault tests purge the same dead-letter queue."""
    assert stack.topology is not None
    sqs = moto_client("sqs", stack.moto_url)
    url = stack.topology.queue(logical_id).url

    def drained() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return stack.queue_depths()[logical_id] == 0

    stack.wait_until(drained, timeout=30)


def wait_for_quiet_alarms(stack: LocalStack, state: Path) -> None:
    """A test before this one may have fired an alarm; like CloudWatch, it clears after its period."""
    view = LocalStackView.open(state)
    stack.wait_until(lambda: not any(alarm_is_firing(a) for a in view.alarms()[0]), timeout=120, interval=1)


def test_healthy_stack_passes_every_check(stack: LocalStack, state: Path) -> None:
    assert_no_secret(stack, state.read_text(encoding="utf-8"))
    assert stack.topology is not None
    view = LocalStackView.open(state)  # what operator tools see of this stack
    assert view.physical_id("MemoryTable") == stack.topology.tables["MemoryTable"]
    assert view.physical_id("InboundQueue") == stack.topology.queue("InboundQueue").url
    settle(stack)
    wait_for_quiet_alarms(stack, state)

    status, lines, output = run_doctor(stack, state)

    assert status == 0, output
    assert set(CHECKS) | set(FUNCTION_LOGS) <= set(lines), output
    assert all(lines[title].startswith("✔ ") for title in CHECKS), output
    # Earlier tests of the session logged errors on purpose: shown as "!", never a failure.
    assert all(lines[title][:2] in ("✔ ", "! ") for title in FUNCTION_LOGS), output
    assert "Local Test Business" in lines["WhatsApp token and phone number"]
    alarms = json.loads(state.read_text(encoding="utf-8"))["alarms"]
    assert len(alarms) >= 4
    assert f"none of {len(alarms)} in ALARM" in lines["Alarms"]
    passed = sum(line.startswith("✔ ") for line in lines.values())
    assert output.rstrip().endswith(f"All {passed} checks passed.")


def test_a_revoked_whatsapp_token_is_named_with_its_fix(stack: LocalStack, state: Path) -> None:
    settle(stack)  # no reply of another test in flight while the token is wrong
    stack.sink.access_token = "a-token-meta-revoked"  # restored by clean_fakes

    status, lines, output = run_doctor(stack, state)

    assert status == 1, output
    line = lines["WhatsApp token and phone number"]
    assert line.startswith("✗ ")
    assert "code 190" in line
    assert "System User token" in line
    assert "whatsapp_business_messaging" in line
    assert lines["Model API key and model"].startswith("✔ ")
    assert lines["WhatsApp token secret"].startswith("✔ ")  # the secret is filled; Meta refuses it


def test_a_model_the_server_does_not_offer_lists_the_close_names(stack: LocalStack, state: Path) -> None:
    configured = stack.topology.parameters["MistralModel"] if stack.topology else ""
    stack.mistral.models = [m for m in LISTED_MODELS if m != configured] + ["mistral-small-2506"]

    status, lines, output = run_doctor(stack, state)

    assert status == 1, output
    line = lines["Model API key and model"]
    assert line.startswith("✗ ")
    assert f"offers no model '{configured}'" in line
    assert "close names: " in line
    assert "mistral-small-2506" in line.split("close names: ")[1]
    assert "MistralModel" in line.split("Fix: ")[1]
    assert lines["WhatsApp token and phone number"].startswith("✔ ")


def test_a_parked_message_fails_the_queue_and_alarm_checks_until_redriven(
    stack: LocalStack, state: Path
) -> None:
    stack.mistral.script(status=401)  # one rejection: the AI function parks the message at once
    send_text(stack, new_user(), "doctor, park this one")
    try:
        stack.wait_until(lambda: stack.queue_depths()["InboundDeadLetterQueue"] == 1, timeout=60)

        status, lines, output = run_doctor(stack, state)

        assert status == 1, output
        dead_letters = lines["Inbound dead-letter queue"]
        assert dead_letters.startswith("✗ Inbound dead-letter queue: 1 message waits here")
        assert "aws sqs start-message-move-task --source-arn arn:aws:sqs:" in dead_letters
        assert lines["Outbound dead-letter queue"].startswith("✔ ")
        assert lines["Alarm InboundDeadLetterAlarm"].startswith("✗ ")
        assert lines["Alarm MistralAuthFailureAlarm"].startswith("✗ ")
        assert lines["AiReplyFunction log"].startswith("! ")
        assert "rejected the request" in output
        assert lines["Model API key and model"].startswith("✔ ")  # the key is fine again
    finally:
        drain(stack, "InboundDeadLetterQueue")
    settle(stack)
    assert stack.queue_depths()["InboundDeadLetterQueue"] == 0  # later tests start from empty DLQs
