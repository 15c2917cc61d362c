"""AiReplyFunction with media, in-process: moto for AWS, respx for Graph and Mistral (chat, audio, OCR)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from tests.support import FakeLambdaContext, load_function
from tests.unit.ai_reply.helpers import (
    API_KEY,
    BASE_ENV,
    GRAPH_BASE_URL,
    GRAPH_TOKEN,
    MEDIA_TOO_LARGE,
    MEDIA_UNAVAILABLE,
    MISTRAL_BASE_URL,
    UNCLEAR_VOICE_NOTE,
    Captured,
    Stack,
    inbound,
    ok,
)
from wa_assistant.records import InboundMessage, Media, TextReply, TypingIndicator

VOICE = b"OggS\x00\x02voice-note" + bytes(range(256)) * 8
PHOTO = b"\xff\xd8\xff\xe0photo" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Pages /Count 1 >>\nendobj\n2 0 obj\n<< /Type /Page >>\nendobj\n%%EOF"
MEDIA_IDS = {"voice": "7001", "photo": "7002", "pdf": "7003"}
FILES = {"7001": (VOICE, "audio/ogg"), "7002": (PHOTO, "image/jpeg"), "7003": (PDF, "application/pdf")}


def download_url(media_id: str) -> str:
    return f"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid={media_id}"


def b64_sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def voice_note(**overrides: Any) -> InboundMessage:
    media = Media(
        id=MEDIA_IDS["voice"], mime_type="audio/ogg; codecs=opus", voice=True, sha256=b64_sha(VOICE)
    )
    return inbound(None, type_="audio", media=media, **overrides)


def photo(caption: str | None = None) -> InboundMessage:
    media = Media(id=MEDIA_IDS["photo"], mime_type="image/jpeg", caption=caption, sha256=b64_sha(PHOTO))
    return inbound(caption, type_="image", media=media)


def pdf(caption: str | None = "What is the total?") -> InboundMessage:
    media = Media(id=MEDIA_IDS["pdf"], mime_type="application/pdf", filename="invoice.pdf", caption=caption)
    return inbound(caption, type_="document", media=media)


class Graph:
    """Graph's two media calls as respx routes, one per media id."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.lookups: dict[str, respx.Route] = {}
        self.downloads: dict[str, respx.Route] = {}
        for media_id, (data, mime) in FILES.items():
            self.lookups[media_id] = router.get(f"{GRAPH_BASE_URL}/v23.0/{media_id}").respond(
                json={
                    "url": download_url(media_id),
                    "mime_type": mime,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "file_size": str(len(data)),
                    "id": media_id,
                    "messaging_product": "whatsapp",
                }
            )
            self.downloads[media_id] = router.get(download_url(media_id)).respond(content=data)

    def download_count(self) -> int:
        return sum(route.call_count for route in self.downloads.values())


@pytest.fixture
def graph(outside: respx.MockRouter) -> Graph:
    return Graph(outside)


@pytest.fixture
def transcription(outside: respx.MockRouter) -> respx.Route:
    return outside.post(f"{MISTRAL_BASE_URL}/audio/transcriptions").respond(
        json={
            "model": "voxtral-mini-latest",
            "text": "Do you have the blue one in size 42?",
            "language": "en",
            "segments": [],
            "usage": {
                "prompt_audio_seconds": 4,
                "prompt_tokens": 4,
                "total_tokens": 30,
                "completion_tokens": 26,
            },
        }
    )


@pytest.fixture
def ocr(outside: respx.MockRouter) -> respx.Route:
    return outside.post(f"{MISTRAL_BASE_URL}/ocr").respond(
        json={
            "pages": [
                {"index": 0, "markdown": "# Invoice 42\n| Item | Price |\n| Lamp | 99 EUR |", "images": []}
            ],
            "model": "mistral-ocr-2512",
            "usage_info": {"pages_processed": 1, "doc_size_bytes": len(PDF)},
        }
    )


@dataclass
class World:
    """The outside APIs one media message meets."""

    graph: Graph
    transcription: respx.Route
    ocr: respx.Route
    mistral: respx.Route


@pytest.fixture
def world(graph: Graph, transcription: respx.Route, ocr: respx.Route, mistral: respx.Route) -> World:
    return World(graph, transcription, ocr, mistral)


PROFILE_NOTE = "(The customer's WhatsApp profile name is: Sheena Nelson)"
"""What opens the user's turn: the helpers' SYSTEM_PROMPT uses {user_name} (conversation.prompt)."""


def without_profile_note(content: Any) -> Any:
    """A user message's content as the understanding made it, without the profile-name note."""
    if isinstance(content, str):
        return content.removeprefix(PROFILE_NOTE + "\n\n")
    assert content[0] == {"type": "text", "text": PROFILE_NOTE}
    return content[1:]


def last_user_content(route: respx.Route, call: int = -1) -> Any:
    return without_profile_note(json.loads(route.calls[call].request.content)["messages"][-1]["content"])


def replies(stack: Stack) -> list[Any]:
    return stack.outbound_actions()


def test_a_voice_note_is_transcribed_after_the_typing_indicator_and_answered(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    message = voice_note()
    stack.enqueue(message)
    world.mistral.return_value = ok("Yes, size 42 is in stock.")

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    assert stack.outbound_actions() == [
        TypingIndicator(phone_number_id=message.phone_number_id, inbound_message_id=message.message_id),
        TextReply(
            phone_number_id=message.phone_number_id,
            recipient=message.sender.model_copy()
            and TextReply.model_fields["recipient"].annotation.of(message.sender),  # type: ignore[union-attr]
            inbound_message_id=message.message_id,
            text="Yes, size 42 is in stock.",
        ),
    ]
    lookup = world.graph.lookups[MEDIA_IDS["voice"]].calls.last.request
    assert lookup.headers["Authorization"] == f"Bearer {GRAPH_TOKEN}"
    assert lookup.url.params["phone_number_id"] == message.phone_number_id
    sent_audio = world.transcription.calls.last.request
    assert sent_audio.headers["Authorization"] == f"Bearer {API_KEY}"
    assert VOICE in sent_audio.content
    assert last_user_content(world.mistral) == "🎤 Do you have the blue one in size 42?"
    assert json.loads(world.mistral.calls.last.request.content)["model"] == BASE_ENV["MISTRAL_MODEL"]
    for metric in (
        "AudioSecondsTranscribed",
        "MediaBytesDownloaded",
        "VoiceNotesTranscribed",
        "MessagesAnswered",
    ):
        assert metric in captured.metric_names()
    # The transcript is user content: its text is in no log line, only its length.
    assert "size 42" not in captured.stream.getvalue()
    assert any(line.get("transcript_chars") == 36 for line in captured.logs())


def test_memory_keeps_the_transcript_for_the_next_question(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    world.mistral.side_effect = [ok("Yes, size 42 is in stock."), ok("It is 89 EUR.")]
    stack.enqueue(voice_note())
    stack.invoke(app, stack.receive_event())
    stack.enqueue(inbound("How much is it?"))
    stack.invoke(app, stack.receive_event())

    messages = json.loads(world.mistral.calls[1].request.content)["messages"]
    assert [m["content"] for m in messages[1:-1]] == [
        "🎤 Do you have the blue one in size 42?",
        "Yes, size 42 is in stock.",
    ]
    assert without_profile_note(messages[-1]["content"]) == "How much is it?"


def test_a_redelivered_voice_note_is_transcribed_once_and_answered_once(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    message = voice_note()
    world.mistral.return_value = ok("Yes.")
    stack.enqueue(message)
    stack.invoke(app, stack.receive_event())
    stack.enqueue(message)  # Meta redelivers the webhook, hours later: a new record with the same wamid
    stack.invoke(load_function("ai_reply"), stack.receive_event())

    assert (world.transcription.call_count, world.mistral.call_count, world.graph.download_count()) == (
        1,
        1,
        1,
    )
    assert len([a for a in stack.outbound_actions() if isinstance(a, TextReply)]) == 1


def test_a_retry_after_the_model_failed_does_not_transcribe_again(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    stack.enqueue(voice_note())
    world.mistral.side_effect = [httpx.Response(429, json={"message": "Rate limit exceeded"}), ok("Yes.")]
    event = stack.receive_event()
    first = stack.invoke(app, event)
    assert len(first["batchItemFailures"]) == 1

    stack.make_visible_again(event)
    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    assert (world.transcription.call_count, world.graph.download_count(), world.mistral.call_count) == (
        1,
        1,
        2,
    )
    assert (
        last_user_content(world.mistral, 0)
        == last_user_content(world.mistral, 1)
        == "🎤 Do you have the blue one in size 42?"
    )
    assert "MediaReadingsReused" in captured.metric_names()


@pytest.mark.parametrize(
    "case",
    [("Is this in stock?", "Is this in stock?"), (None, "[photo without caption]")],
    ids=["caption", "none"],
)
def test_a_photo_reaches_the_vision_model_as_the_downloaded_bytes(
    app: ModuleType, stack: Stack, world: World, captured: Captured, case: tuple[str | None, str]
) -> None:
    caption, text = case
    world.mistral.return_value = ok("That is our blue lamp.")
    stack.enqueue(photo(caption))

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    body = json.loads(world.mistral.calls.last.request.content)
    assert body["model"] == BASE_ENV["VISION_MODEL"]
    [text_part, image_part] = without_profile_note(body["messages"][-1]["content"])
    assert text_part == {"type": "text", "text": text}
    assert image_part["type"] == "image_url"
    prefix, encoded = image_part["image_url"].split(",", 1)
    assert prefix == "data:image/jpeg;base64"
    assert base64.b64decode(encoded) == PHOTO
    assert "ImagesRead" in captured.metric_names()
    assert encoded[:40] not in captured.text  # neither bytes nor data URL in any log line
    stored = stack.dynamodb.scan(TableName=BASE_ENV["MEMORY_TABLE_NAME"])["Items"]
    assert encoded[:40] not in json.dumps(stored)  # memory keeps words, never the image


def test_a_pdf_is_read_by_ocr_and_answered(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    world.mistral.return_value = ok("The total is 99 EUR.")
    stack.enqueue(pdf())

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    sent = json.loads(world.ocr.calls.last.request.content)
    assert sent["model"] == "mistral-ocr-latest"
    assert base64.b64decode(sent["document"]["document_url"].split(",", 1)[1]) == PDF
    assert last_user_content(world.mistral) == (
        "What is the total?\n\n📄 invoice.pdf:\n# Invoice 42\n| Item | Price |\n| Lamp | 99 EUR |"
    )
    assert "OcrPagesRead" in captured.metric_names()


@pytest.mark.parametrize(
    "case",
    [
        ("oversized", MEDIA_TOO_LARGE, "MediaRefusedTooLarge"),
        ("expired", MEDIA_UNAVAILABLE, "MediaUnavailable"),
        ("url-expired", MEDIA_UNAVAILABLE, "MediaUnavailable"),
    ],
    ids=["oversized", "expired", "url-expired"],
)
def test_oversized_or_expired_media_gets_the_honest_reply(
    app: ModuleType, stack: Stack, world: World, captured: Captured, case: tuple[str, str, str]
) -> None:
    setup, text, metric = case
    media_id = MEDIA_IDS["voice"]
    if setup == "oversized":
        world.graph.lookups[media_id].respond(
            json={"url": download_url(media_id), "file_size": 20 * 1024 * 1024}
        )
    elif setup == "expired":
        world.graph.lookups[media_id].respond(
            404,
            json={
                "error": {"message": "Unsupported get request", "type": "GraphMethodException", "code": 100}
            },
        )
    else:
        world.graph.downloads[media_id].respond(404, text="URL signature expired")
    message = voice_note()
    stack.enqueue(message)

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    actions = stack.outbound_actions()
    assert [type(a) for a in actions] == [TypingIndicator, TextReply]
    assert actions[1].text == text
    assert (world.transcription.call_count, world.mistral.call_count) == (0, 0)
    if setup != "url-expired":
        assert world.graph.download_count() == 0  # refused before downloading
    assert metric in captured.metric_names()
    assert "HonestReplies" in captured.metric_names()


def test_silence_gets_asked_to_repeat(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    world.transcription.respond(
        json={"model": "voxtral-mini-latest", "text": "", "language": None, "usage": {}}
    )
    stack.enqueue(voice_note())
    stack.invoke(app, stack.receive_event())
    assert [a.text for a in stack.outbound_actions() if isinstance(a, TextReply)] == [UNCLEAR_VOICE_NOTE]
    assert world.mistral.call_count == 0


def test_an_expired_whatsapp_token_parks_the_message_and_raises_the_graph_alarm(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    world.graph.lookups[MEDIA_IDS["voice"]].respond(
        401,
        json={
            "error": {
                "message": f"Error validating access token {GRAPH_TOKEN}",
                "type": "OAuthException",
                "code": 190,
            }
        },
    )
    message = voice_note()
    stack.enqueue(message)

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    assert [InboundMessage.model_validate_json(b) for b in stack.drain(stack.dlq_url)] == [message]
    assert "GraphAuthFailed" in captured.metric_names()
    assert (world.transcription.call_count, world.mistral.call_count) == (0, 0)
    assert GRAPH_TOKEN not in captured.text


@pytest.mark.parametrize(
    "failure", [httpx.Response(500, json={"error": {"code": 1}}), httpx.ReadTimeout("slow")]
)
def test_a_graph_outage_while_fetching_media_is_retried(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
    failure: Any,
) -> None:
    world.graph.downloads[MEDIA_IDS["voice"]].mock(side_effect=[failure])
    stack.enqueue(voice_note())
    event = stack.receive_event()

    response = stack.invoke(app, event)

    assert [i["itemIdentifier"] for i in response["batchItemFailures"]] == [event["Records"][0]["messageId"]]
    assert stack.drain(stack.dlq_url) == []
    assert "GraphTransientError" in captured.metric_names()


@pytest.mark.parametrize(
    "case",
    [(401, True, None), (400, False, MEDIA_UNAVAILABLE), (429, False, None)],
    ids=["bad-key", "model-rejects-file", "rate-limited"],
)
def test_transcription_failures(
    app: ModuleType, stack: Stack, world: World, captured: Captured, case: tuple[int, bool, str | None]
) -> None:
    status, parked, reply = case
    world.transcription.respond(
        status, json={"object": "error", "message": "nope", "type": "invalid_request_error"}
    )
    stack.enqueue(voice_note())
    event = stack.receive_event()

    response = stack.invoke(app, event)

    assert bool(stack.drain(stack.dlq_url)) is parked
    texts = [a.text for a in stack.outbound_actions() if isinstance(a, TextReply)]
    assert texts == ([reply] if reply else [])
    assert bool(response["batchItemFailures"]) is (status == 429)
    assert world.mistral.call_count == 0
    if status != 429:
        assert "MistralRequestRejected" in captured.metric_names()


def test_no_transcription_starts_without_time_for_it(
    app: ModuleType,
    stack: Stack,
    world: World,
    captured: Captured,
) -> None:
    """Time for the first check (a model call, 3 + 5 + 5 s); the download uses it up: the record returns."""
    stack.enqueue(voice_note())
    event = stack.receive_event()
    context = FakeLambdaContext(remaining_millis=60_000)

    def slow_download(request: httpx.Request) -> httpx.Response:
        context.remaining_millis = 12_000  # the media took most of the invocation
        return httpx.Response(200, content=VOICE)

    world.graph.downloads[MEDIA_IDS["voice"]].mock(side_effect=slow_download)

    response = app.lambda_handler(event, context)

    assert len(response["batchItemFailures"]) == 1
    assert world.transcription.call_count == 0


@pytest.mark.parametrize(
    "message",
    [
        inbound(
            None,
            type_="contacts",
            contacts=({"name": "Ana Pérez", "phones": [{"phone": "+34 600 000 000"}]},),
        ),
        inbound(None, type_="order", order={"items": [{"product_retailer_id": "sku-1", "quantity": 2}]}),
        inbound("Hello!", referral={"source_type": "ad", "headline": "Spring sale", "body": "20% off"}),
    ],
    ids=["contacts", "order", "ad"],
)
def test_contacts_orders_and_ads_reach_the_model_as_text(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured, message: InboundMessage
) -> None:
    mistral.return_value = ok()
    stack.enqueue(message)
    stack.invoke(app, stack.receive_event())
    asked = last_user_content(mistral)
    expected = {
        "contacts": "👤 shared a contact: Ana Pérez, +34 600 000 000",
        "order": "🛒 sent an order:\n- 2 x sku-1",
        "referral": "[Came from an ad: Spring sale — 20% off]\nHello!",
    }
    assert asked == expected["referral" if message.referral else message.type]


def test_a_huge_document_is_stored_and_sent_cut_to_the_prompt_budget(
    app: ModuleType, stack: Stack, world: World, captured: Captured
) -> None:
    """DynamoDB refuses items over 400 KB: an uncut text would fail the idempotency record, retry forever."""
    world.ocr.respond(
        json={
            "pages": [{"index": 0, "markdown": "lorem ipsum " * 50_000}],
            "model": "mistral-ocr-2512",
            "usage_info": {"pages_processed": 1},
        }
    )
    world.mistral.return_value = ok("It is a long text.")
    stack.enqueue(pdf())

    assert stack.invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    asked = last_user_content(world.mistral)
    assert len(asked) <= int(BASE_ENV["PROMPT_BUDGET_CHARS"])
    assert asked.endswith("…")
    stored = stack.dynamodb.scan(TableName=BASE_ENV["IDEMPOTENCY_TABLE_NAME"])["Items"]
    assert max(len(json.dumps(item)) for item in stored) < int(BASE_ENV["PROMPT_BUDGET_CHARS"]) * 2
