"""A WhatsApp user sends voice notes, photos, documents, contacts, orders, and comes from an ad."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from local_stack import LocalStack
from local_stack.cfn import load_template
from local_stack.config import TEMPLATE
from local_stack.graph_media import StoredMedia
from local_stack.media_samples import pdf, png, voice_note
from local_stack.webhooks import (
    ad_referral_message,
    audio_message,
    contacts_message,
    document_message,
    image_message,
    message_webhook,
    order_message,
    wamid_of,
)
from tests.e2e.helpers import BURST_JOINER, emf_metrics, function_records, new_user, settle, texts_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def post(stack: LocalStack, user: str, message: dict[str, Any]) -> tuple[str, bytes]:
    body = message_webhook(user, message)
    status, answer = stack.post_webhook(body)
    assert status == 200, answer
    return wamid_of(body), body


def model_calls(stack: LocalStack, path: str, since: int = 0) -> list[dict[str, Any]]:
    return [call for call in stack.mistral.calls()[since:] if call["path"].endswith(path)]


def chat_about(stack: LocalStack, text: str) -> list[dict[str, Any]]:
    """Chat calls whose last user message contains `text` (a content list's text parts included)."""
    return [c for c in model_calls(stack, "/chat/completions") if text in (c.get("last_user_text") or "")]


def media_requests(stack: LocalStack, stored: StoredMedia) -> list[str]:
    return [r["kind"] for r in stack.sink.media.requests() if r.get("media_id") == stored.media_id]


def replies_to(stack: LocalStack, user: str) -> list[str]:
    return [m["text"] for m in texts_to(stack, user)]


def test_a_voice_note_is_transcribed_once_and_answered_once_even_when_redelivered(stack: LocalStack) -> None:
    user = new_user()
    audio = voice_note(f"voice of {user}")
    stored = stack.sink.media.add(audio, "audio/ogg; codecs=opus")
    stack.mistral.media.speech(audio, f"Do you deliver to Porto, {user}?")
    calls_before = len(stack.mistral.calls())

    wamid, body = post(stack, user, audio_message(stored.media_id, stored.sha256_base64))
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    assert stack.post_webhook(body)[0] == 200  # Meta redelivers the same webhook
    settle(stack)

    transcriptions = model_calls(stack, "/audio/transcriptions", calls_before)
    assert [c["body"]["file"]["sha256"] for c in transcriptions] == [stored.sha256]  # once, these bytes
    spoken = f"🎤 [stand-in transcript {stored.sha256[:8]}] Do you deliver to Porto, {user}?"
    assert [c["last_user_text"] for c in chat_about(stack, user)] == [spoken]  # one model call
    assert replies_to(stack, user) == [f'[stand-in model] You said: "{spoken}" (turn 1)']
    assert [m["context_message_id"] for m in texts_to(stack, user)] == [wamid]
    assert media_requests(stack, stored) == ["lookup", "download"]
    receipt = next(r for r in stack.sink.receipts() if r["message_id"] == wamid)
    assert receipt["time"] < texts_to(stack, user)[0]["time"]  # "typing…" before the (slower) answer


@pytest.mark.parametrize("caption", ["Is this lamp in stock?", None], ids=["caption", "no-caption"])
def test_a_photo_reaches_the_vision_model_as_the_downloaded_bytes(
    stack: LocalStack, caption: str | None
) -> None:
    user = new_user()
    photo = png(seed=int(user[-3:]))
    stored = stack.sink.media.add(photo, "image/png")
    template = load_template(TEMPLATE)

    post(stack, user, image_message(stored.media_id, stored.sha256_base64, caption, mime_type="image/png"))
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)

    [call] = [c for c in model_calls(stack, "/chat/completions") if _image_bytes(c) == photo]
    assert call["model"] == template["Parameters"]["VisionModel"]["Default"]
    content = call["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["text", "image_url"]
    assert content[0]["text"] == (caption or "[photo without caption]")
    assert _image_bytes(call) == photo  # the data URL carries exactly the downloaded file
    assert "showed me an image (image/png" in replies_to(stack, user)[0]


def _image_bytes(call: dict[str, Any]) -> bytes | None:
    for message in call.get("messages") or []:
        for part in message.get("content") if isinstance(message.get("content"), list) else []:
            if part.get("type") == "image_url":
                return base64.b64decode(part["image_url"].split(",", 1)[1])
    return None


def test_a_pdf_is_read_through_ocr(stack: LocalStack) -> None:
    user = new_user()
    document = pdf([f"Invoice {user}", "Total: 99 EUR"])
    stored = stack.sink.media.add(document, "application/pdf")
    stack.mistral.media.document(document, [f"# Invoice {user}", "Total: **99 EUR**"])

    post(
        stack, user, document_message(stored.media_id, stored.sha256_base64, "invoice.pdf", caption="Total?")
    )
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)

    [ocr] = [c for c in model_calls(stack, "/ocr") if f"Invoice {user}".encode() in _document_bytes(c)]
    assert ocr["body"]["document"]["type"] == "document_url"
    assert _document_bytes(ocr) == document
    [chat] = chat_about(stack, f"# Invoice {user}")
    assert chat["last_user_text"] == f"Total?\n\n📄 invoice.pdf:\n# Invoice {user}\n\nTotal: **99 EUR**"


def _document_bytes(call: dict[str, Any]) -> bytes:
    document = call["body"].get("document", {}) if isinstance(call["body"], dict) else {}
    url = document.get("document_url") or document.get("image_url") or ""
    return base64.b64decode(url.split(",", 1)[1]) if "," in url else b""


def test_contacts_orders_and_ads_reach_the_model_as_readable_text(stack: LocalStack) -> None:
    user = new_user()
    post(stack, user, contacts_message("Lucía Gómez", "+1 (983) 555-2319", wa_id="19835552319"))
    post(stack, user, order_message("194836987003835", [("sku-lamp", 2, 30.0, "USD")], text=f"gift {user}"))
    ad, _ = post(stack, user, ad_referral_message(f"More info {user}?", "Summer sale", "Lamps 20% off"))
    stack.wait_until(lambda: ad in {m["context_message_id"] for m in texts_to(stack, user)})
    settle(stack)

    # The last call carries the whole conversation: the earlier turns from memory (or, for messages
    # that came together, in the same user turn), then the third.
    [last] = [
        c
        for c in model_calls(stack, "/chat/completions")
        if f"More info {user}?" in (c["last_user_text"] or "")
    ]
    user_turns = [m["content"] for m in last["messages"] if m["role"] == "user"]
    asked = [part for turn in user_turns for part in turn.split(BURST_JOINER)]
    assert "👤 shared a contact: Lucía Gómez, +1 (983) 555-2319 (MOBILE, on WhatsApp)" in asked
    assert (
        "🛒 sent an order from catalogue 194836987003835:\n- 2 x sku-lamp at 30 USD each\nTotal: 60 USD\n"
        f"Note: gift {user}"
    ) in asked
    assert (
        f"[Came from an ad: Summer sale — Lamps 20% off (https://fb.me/local-ad)]\nMore info {user}?" in asked
    )


@pytest.mark.parametrize("case", ["oversized", "expired"])
def test_oversized_or_expired_media_gets_the_honest_reply_without_a_download(
    stack: LocalStack, case: str
) -> None:
    user = new_user()
    template = load_template(TEMPLATE)["Parameters"]
    if case == "oversized":
        stored = stack.sink.media.add(voice_note(user), "audio/ogg", declared_size=20 * 1024 * 1024)
        expected = template["MediaTooLargeReply"]["Default"]
    else:
        stored = stack.sink.media.add(voice_note(user), "audio/ogg", state="missing")
        expected = template["MediaUnavailableReply"]["Default"]
    calls_before = len(stack.mistral.calls())
    since = len(stack.log_lines())

    post(stack, user, audio_message(stored.media_id, stored.sha256_base64))
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1)
    settle(stack)

    assert replies_to(stack, user) == [expected]
    assert media_requests(stack, stored) == ["lookup"]  # no download
    assert model_calls(stack, "/audio/transcriptions", calls_before) == []
    metric = "MediaRefusedTooLarge" if case == "oversized" else "MediaUnavailable"
    assert metric in {m[1] for m in emf_metrics(function_records(stack, "AiReplyFunction", since))}


def test_a_graph_outage_while_fetching_media_is_retried_and_answered_once(stack: LocalStack) -> None:
    user = new_user()
    photo = png(seed=7)
    stored = stack.sink.media.add(photo, "image/png")
    stack.sink.media.fail_next(status=503, times=2)

    wamid, _ = post(stack, user, image_message(stored.media_id, stored.sha256_base64, f"retry {user}"))
    stack.wait_until(lambda: len(texts_to(stack, user)) == 1, timeout=90)
    settle(stack)

    assert [m["context_message_id"] for m in texts_to(stack, user)] == [wamid]
    statuses = [r["status"] for r in stack.sink.media.requests() if r.get("media_id") == stored.media_id]
    assert statuses[:2] == [503, 503]
    assert statuses[2:] == [200, 200]
    assert stack.queue_depths()["InboundDeadLetterQueue"] == 0


def test_a_refused_whatsapp_token_while_fetching_media_parks_the_message_and_alarms(
    stack: LocalStack,
) -> None:
    properties = load_template(TEMPLATE)["Resources"]["MediaGraphAuthFailureAlarm"]["Properties"]
    dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
    user = new_user()
    stored = stack.sink.media.add(voice_note(user), "audio/ogg")
    stack.sink.media.fail_next(status=401)
    since = len(stack.log_lines())
    try:
        wamid, _ = post(stack, user, audio_message(stored.media_id, stored.sha256_base64))
        stack.wait_until(lambda: stack.queue_depths()["InboundDeadLetterQueue"] == 1)
        settle(stack)

        parked = stack.queue_messages("InboundDeadLetterQueue")
        assert [wamid in m["Body"] for m in parked] == [True]
        assert texts_to(stack, user) == []
        alarmed = [
            m
            for m in emf_metrics(function_records(stack, "AiReplyFunction", since))
            if m[1] == properties["MetricName"]
        ]
        assert [(m[0], m[2], m[3]) for m in alarmed] == [(properties["Namespace"], dimensions, 1.0)]
    finally:
        stack.purge("InboundDeadLetterQueue")
