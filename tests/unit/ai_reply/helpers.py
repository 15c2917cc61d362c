"""Helpers of the AI reply tests: settings, message builders, the moto stack, captured output."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from local_stack.cfn import cfn_string, load_template
from local_stack.sqs_poller import sqs_event
from tests.support import ROOT, FakeLambdaContext
from wa_assistant.records import InboundMessage, OwnerEcho, Sender, outbound_action_adapter, sqs_safe_id

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ai_reply"
REGION = "us-east-1"
ACCOUNT = "123456789012"
API_KEY = "sk-test-NEVER-LOG-7f3a9c2e"
MISTRAL_BASE_URL = "https://mistral.test/v1"
BUSINESS_NUMBER_ID = "106540352242922"
SYSTEM_PROMPT = "You help customers of {business_name}. Greet {user_name}. Keep {unknown} braces."
FALLBACK = "Sorry, I can't read this kind of message. Could you type your question?"
MEDIA_UNAVAILABLE = "I couldn't open that file. Could you send it again?"
MEDIA_TOO_LARGE = "That file is too large for me. Could you send a smaller one?"
UNSUPPORTED_DOCUMENT = "I can read PDFs and photos, not this kind of file."
VIDEO = "I can't watch videos. Could you tell me what it shows?"
UNCLEAR_VOICE_NOTE = "I couldn't make out that voice note. Could you say it again or type it?"
GRAPH_BASE_URL = "https://graph.test"
GRAPH_TOKEN = "EAAG-graph-token-NEVER-LOG-5c1d"

CONTROL_PARAMETERS = {
    "HANDOFF_KEYWORDS": "HandoffKeywords",
    "HANDOFF_REPLY": "HandoffReply",
    "HANDOFF_PAUSE_HOURS": "HandoffPauseHours",
    "HANDOFF_TOOL_ENABLED": "HandoffToolEnabled",
    "OPT_OUT_KEYWORDS": "OptOutKeywords",
    "OPT_OUT_REPLY": "OptOutReply",
    "OPT_IN_KEYWORDS": "OptInKeywords",
    "OPT_IN_REPLY": "OptInReply",
    "USER_DAILY_MESSAGE_LIMIT": "UserDailyMessageLimit",
    "USER_DAILY_TOKEN_LIMIT": "UserDailyTokenLimit",
    "USER_LIMIT_REPLY": "UserLimitReply",
    "DAILY_TOKEN_BUDGET": "DailyTokenBudget",
    "BUSY_REPLY": "BusyReply",
}
"""Conversation control's variables and the template parameters that set them."""
_PARAMETERS = load_template(ROOT / "template.yaml")["Parameters"]
CONTROL_ENV = {
    name: cfn_string(_PARAMETERS[parameter]["Default"]) for name, parameter in CONTROL_PARAMETERS.items()
}
"""The template's defaults, as a deploy without overrides gives them to the function."""

BASE_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_SERVICE_NAME": "ai-reply",
    "POWERTOOLS_METRICS_NAMESPACE": "WhatsAppAssistant",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "SECRETS_MAX_AGE_SECONDS": "300",
    "RETRY_BASE_SECONDS": "0",
    "RETRY_MAX_ATTEMPTS": "200",
    "RETRY_BUDGET_HOURS": "24",
    "MISTRAL_SECRET_NAME": "ai-reply/mistral-api-key",
    "MISTRAL_BASE_URL": MISTRAL_BASE_URL,
    "MISTRAL_MODEL": "mistral-small-latest",
    "MISTRAL_TEMPERATURE": "",
    "MISTRAL_MAX_TOKENS": "",
    "MISTRAL_SAFE_PROMPT": "",
    "MISTRAL_RANDOM_SEED": "",
    "MISTRAL_TIMEOUT_SECONDS": "5",
    "BUSINESS_NAME": "Acme Store",
    "SYSTEM_PROMPT": SYSTEM_PROMPT,
    "FALLBACK_REPLY": FALLBACK,
    "MEMORY_TABLE_NAME": "ai-reply-memory",
    "MEMORY_TURNS": "10",
    "MEMORY_TTL_HOURS": "24",
    "PROMPT_BUDGET_CHARS": "12000",
    "SERVICE_WINDOW_HOURS": "24",
    "IDEMPOTENCY_TABLE_NAME": "ai-reply-idempotency",
    "CONVERSATION_TABLE_NAME": "ai-reply-conversations",
    **CONTROL_ENV,
    "GRAPH_SECRET_NAME": "ai-reply/graph-access-token",
    "GRAPH_API_BASE_URL": GRAPH_BASE_URL,
    "GRAPH_API_VERSION": "v23.0",
    "GRAPH_TIMEOUT_SECONDS": "3",
    "TRANSCRIPTION_ENABLED": "true",
    "TRANSCRIPTION_MODEL": "voxtral-mini-latest",
    "TRANSCRIPTION_LANGUAGE": "",
    "VISION_ENABLED": "true",
    "VISION_MODEL": "pixtral-large-latest",
    "OCR_ENABLED": "true",
    "OCR_MODEL": "mistral-ocr-latest",
    "OCR_MAX_PAGES": "3",
    "AUDIO_MAX_BYTES": "16777216",
    "IMAGE_MAX_BYTES": "5242880",
    "STICKER_MAX_BYTES": "512000",
    "DOCUMENT_MAX_BYTES": "10485760",
    "MEDIA_UNAVAILABLE_REPLY": MEDIA_UNAVAILABLE,
    "MEDIA_TOO_LARGE_REPLY": MEDIA_TOO_LARGE,
    "UNSUPPORTED_DOCUMENT_REPLY": UNSUPPORTED_DOCUMENT,
    "VIDEO_REPLY": VIDEO,
    "UNCLEAR_VOICE_NOTE_REPLY": UNCLEAR_VOICE_NOTE,
}


def completion_json(text: str = "We are open Monday to Saturday, 9:00 to 18:00.") -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "chat_completion_reply.json").read_text())
    body["choices"][0]["message"]["content"] = text
    return body


def inbound(
    text: str | None = "Hi! What are your opening hours?",
    *,
    wa_id: str = "16505551234",
    message_id: str | None = None,
    type_: str = "text",
    timestamp: int | None = None,
    profile_name: str | None = "Sheena Nelson",
    **fields: Any,
) -> InboundMessage:
    seed = f"{wa_id}:{text}:{type_}:{time.perf_counter_ns()}"
    return InboundMessage(
        phone_number_id=BUSINESS_NUMBER_ID,
        sender=Sender(wa_id=wa_id, profile_name=profile_name),
        message_id=message_id or f"wamid.{hashlib.sha256(seed.encode()).hexdigest()[:32]}",
        timestamp=int(time.time()) - 5 if timestamp is None else timestamp,
        type=type_,
        text=text,
        **fields,
    )


@dataclass
class Stack:
    """The AWS side of the AI function, in moto."""

    sqs: Any
    dynamodb: Any
    inbound_url: str
    inbound_arn: str
    dlq_url: str
    outbound_url: str
    notices_url: str = ""
    """A queue subscribed to the handoff topic (SNS's JSON envelope per notice)."""
    _dedup_counter: int = 0

    def enqueue(self, *messages: InboundMessage | OwnerEcho | str, group_id: str | None = None) -> None:
        """Put records on the inbound queue, as the webhook function does (a fresh dedup id each time)."""
        for message in messages:
            self._dedup_counter += 1
            if isinstance(message, InboundMessage | OwnerEcho):
                body, group = message.model_dump_json(), message.conversation_id
            else:
                body, group = message, group_id or "garbage"
            self.sqs.send_message(
                QueueUrl=self.inbound_url,
                MessageBody=body,
                MessageGroupId=group,
                MessageDeduplicationId=sqs_safe_id(f"d{self._dedup_counter}"),
            )

    def receive_event(self) -> dict[str, Any]:
        """Receive what is visible on the inbound queue as Lambda's SQS event source would pass it."""
        response = self.sqs.receive_message(
            QueueUrl=self.inbound_url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
        )
        return sqs_event(response.get("Messages", []), self.inbound_arn)

    def invoke(self, module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
        """Call the handler, then delete the records it did not report, as Lambda's event source does."""
        response = invoke(module, event)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.inbound_url, ReceiptHandle=record["receiptHandle"])
        return response

    def make_visible_again(self, event: dict[str, Any]) -> None:
        """Stand-in for the backoff elapsing (no sleeping in tests)."""
        for record in event["Records"]:
            self.sqs.change_message_visibility(
                QueueUrl=self.inbound_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )

    def drain(self, url: str) -> list[str]:
        """Every body on a FIFO queue, in order (deleting as it reads, so later groups show)."""
        bodies: list[str] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for m in messages:
                bodies.append(m["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def outbound_actions(self) -> list[Any]:
        return [outbound_action_adapter.validate_json(body) for body in self.drain(self.outbound_url)]

    def notices(self) -> list[dict[str, Any]]:
        """The handoff notices published, as SNS delivered them ({"Subject", "Message", ...})."""
        return [json.loads(body) for body in self.drain(self.notices_url)]


@dataclass
class Captured:
    """Everything the function printed: Powertools JSON log lines and EMF metric blobs."""

    stream: io.StringIO = field(default_factory=io.StringIO)
    stdout: Callable[[], str] = lambda: ""

    @property
    def text(self) -> str:
        return self.stream.getvalue() + self.stdout()

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.startswith("{")]

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for line in self.stdout().splitlines():
            if line.startswith("{") and '"_aws"' in line:
                blob = json.loads(line)
                for directive in blob["_aws"]["CloudWatchMetrics"]:
                    names.extend(metric["Name"] for metric in directive["Metrics"])
        return names


def invoke(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    """Call the handler only (nothing deleted from the queue)."""
    result: dict[str, Any] = module.lambda_handler(event, FakeLambdaContext(remaining_millis=60_000))
    return result


def ok(text: str = "We are open Monday to Saturday, 9:00 to 18:00.") -> httpx.Response:
    return httpx.Response(200, json=completion_json(text))
