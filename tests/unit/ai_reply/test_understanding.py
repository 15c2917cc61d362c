"""Domain: what the model reads and memory keeps for each message type (a fake reader stands in for media)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.ai_reply.helpers import BASE_ENV, inbound
from wa_assistant.conversation.understanding import (
    DocumentText,
    Ignore,
    ImageFile,
    MediaNotReadable,
    MediaProblem,
    Read,
    Reply,
    Transcription,
    UnderstandingSettings,
    Understood,
    plan,
    understand,
)
from wa_assistant.model.content import ImagePart, TextPart
from wa_assistant.records import (
    InboundMessage,
    Location,
    Media,
    Order,
    OrderItem,
    Referral,
    ReferredProduct,
    SharedContact,
    SharedContactPhone,
)

SETTINGS = UnderstandingSettings.from_env(BASE_ENV)
REPLIES = SETTINGS.replies
PHOTO = b"\xff\xd8\xff\xe0 a jpeg"


@dataclass
class FakeReader:
    """Answers from fixed values and records what it was asked (not a mock: a small real reader)."""

    transcript_text: str = "Do you have it in blue?"
    document: str = "# Invoice 42\nTotal: 99 EUR"
    pages: tuple[int | None, int | None] = (1, 1)
    problem: MediaProblem | None = None
    calls: list[str] = field(default_factory=list)

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.problem is not None:
            raise MediaNotReadable(self.problem)

    def transcript(self, message: InboundMessage) -> Transcription:
        self._check("transcript")
        return Transcription(text=self.transcript_text, audio_seconds=4)

    def document_text(self, message: InboundMessage) -> DocumentText:
        self._check("document")
        return DocumentText(text=self.document, pages_read=self.pages[0], pages_in_document=self.pages[1])

    def image(self, message: InboundMessage) -> ImageFile:
        self._check("image")
        return ImageFile(data=PHOTO, mime_type="image/jpeg")


def voice(**media: object) -> InboundMessage:
    return inbound(
        None, type_="audio", media=Media(id="m1", mime_type="audio/ogg; codecs=opus", voice=True, **media)
    )


def photo(caption: str | None = None) -> InboundMessage:
    return inbound(caption, type_="image", media=Media(id="m2", mime_type="image/jpeg", caption=caption))


def document(mime: str, filename: str = "invoice-42.pdf", caption: str | None = None) -> InboundMessage:
    return inbound(
        caption, type_="document", media=Media(id="m3", mime_type=mime, filename=filename, caption=caption)
    )


def settings(**switches: bool) -> UnderstandingSettings:
    env = {**BASE_ENV, **{f"{name.upper()}_ENABLED": str(on).lower() for name, on in switches.items()}}
    return UnderstandingSettings.from_env(env)


# ------------------------------------------------------------------ the plan (no outside call)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (inbound("Hello"), Read("text")),
        (inbound("Yes, please", type_="button"), Read("text")),
        (inbound("Blue shirt", type_="interactive"), Read("text")),
        (inbound("  ", type_="text"), Reply(REPLIES.fallback, "text without text")),
        (voice(), Read("voice")),
        (inbound(None, type_="audio", media=Media(id="a", mime_type="audio/mpeg")), Read("voice")),
        (photo(), Read("image")),
        (photo("Is this in stock?"), Read("image")),
        (inbound(None, type_="sticker", media=Media(id="s", mime_type="image/webp")), Read("image")),
        (inbound(None, type_="sticker", media=Media(id="s", animated=True)), Read("text")),
        (document("application/pdf"), Read("document")),
        (document("image/png", "scan.png"), Read("document")),
        (document("text/plain", "notes.txt"), Read("document")),
        (inbound(None, type_="video", media=Media(id="v", caption="Noise at startup")), Read("text")),
        (inbound(None, type_="location", location=Location(latitude=1, longitude=2)), Read("text")),
        (inbound(None, type_="contacts", contacts=(SharedContact(name="Ana"),)), Read("text")),
        (
            inbound(None, type_="order", order=Order(items=(OrderItem(product_retailer_id="x"),))),
            Read("text"),
        ),
        (inbound("👍", type_="reaction"), Ignore("reaction messages get no reply")),
        (inbound(None, type_="system"), Ignore("system messages get no reply")),
    ],
    ids=lambda value: value.type if isinstance(value, InboundMessage) else "",
)
def test_plan(message: InboundMessage, expected: object) -> None:
    assert plan(message, SETTINGS) == expected


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (
            document("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "cv.docx"),
            REPLIES.unsupported_document,
        ),
        (inbound(None, type_="video", media=Media(id="v")), REPLIES.video),
        (inbound(None, type_="contacts"), REPLIES.fallback),  # a contacts message without a card
        (inbound(None, type_="audio"), REPLIES.fallback),  # no media id: nothing to fetch
        (inbound(None, type_="unsupported"), REPLIES.fallback),
        (inbound(None, type_="hologram"), REPLIES.fallback),
    ],
    ids=[
        "docx",
        "video-without-caption",
        "contacts-without-card",
        "audio-without-id",
        "unsupported",
        "future",
    ],
)
def test_what_cannot_be_read_gets_its_honest_reply_without_a_model(
    message: InboundMessage, text: str
) -> None:
    planned = plan(message, SETTINGS)
    assert isinstance(planned, Reply)
    assert planned.text == text
    assert (
        len({REPLIES.fallback, REPLIES.unsupported_document, REPLIES.video}) == 3
    )  # the test can tell them apart


@pytest.mark.parametrize(
    ("switch", "message", "expected"),
    [
        ("transcription", voice(), Reply(REPLIES.fallback, "transcription is off")),
        ("vision", photo(), Reply(REPLIES.fallback, "vision is off")),
        ("vision", photo("Is this in stock?"), Read("text")),
        ("ocr", document("application/pdf"), Reply(REPLIES.fallback, "OCR is off")),
        ("ocr", document("application/pdf", caption="My invoice"), Read("text")),
        ("ocr", document("text/plain", "notes.txt"), Read("document")),  # no OCR needed
    ],
)
def test_a_capability_switched_off_gets_the_fallback_or_the_caption(
    switch: str, message: InboundMessage, expected: object
) -> None:
    assert plan(message, settings(**{switch: False})) == expected


# ------------------------------------------------------------------ understanding


def test_a_voice_note_is_read_as_spoken_text() -> None:
    reader = FakeReader()
    understood = understand(voice(), SETTINGS, reader)
    assert understood == Understood(parts=(TextPart(text="🎤 Do you have it in blue?"),))
    assert reader.calls == ["transcript"]
    audio_file = inbound(None, type_="audio", media=Media(id="a", mime_type="audio/mpeg"))
    assert understand(audio_file, SETTINGS, FakeReader()) == Understood(
        parts=(TextPart(text="🎧 Do you have it in blue?"),)
    )


def test_a_voice_note_without_words_asks_to_repeat() -> None:
    understood = understand(voice(), SETTINGS, FakeReader(transcript_text="  "))
    assert isinstance(understood, Reply)
    assert understood.text == REPLIES.unclear_voice_note
    assert understood.remembered is not None


@pytest.mark.parametrize(
    ("caption", "text", "remembered"),
    [
        ("Is this in stock?", "Is this in stock?", "📷 [photo] Is this in stock?"),
        (None, "[photo without caption]", "📷 [photo without caption]"),
    ],
)
def test_a_photo_reaches_the_model_as_a_data_url_of_its_bytes(
    caption: str | None, text: str, remembered: str
) -> None:
    understood = understand(photo(caption), SETTINGS, FakeReader())
    assert isinstance(understood, Understood)
    assert understood.text == text
    [image] = understood.images
    prefix, encoded = image.image_url.split(",", 1)
    assert prefix == "data:image/jpeg;base64"
    assert base64.b64decode(encoded) == PHOTO
    assert understood.remembered == remembered  # memory keeps words, never the image
    assert "base64" not in understood.remembered


def test_a_sticker_is_seen_and_an_animated_one_is_named() -> None:
    sticker = inbound(None, type_="sticker", media=Media(id="s", mime_type="image/webp"))
    understood = understand(sticker, SETTINGS, FakeReader())
    assert isinstance(understood, Understood)
    assert (understood.text, understood.remembered, len(understood.images)) == ("[sticker]", "[sticker]", 1)
    animated = inbound(None, type_="sticker", media=Media(id="s", mime_type="image/webp", animated=True))
    reader = FakeReader()
    assert understand(animated, SETTINGS, reader) == Understood(parts=(TextPart(text="[sticker]"),))
    assert reader.calls == []


def test_a_pdf_is_read_with_its_caption_name_and_page_note() -> None:
    reader = FakeReader(pages=(3, 12))
    understood = understand(document("application/pdf", caption="Is this right?"), SETTINGS, reader)
    assert understood == Understood(
        parts=(
            TextPart(
                text="Is this right?\n\n📄 invoice-42.pdf, the first 3 of 12 pages:\n"
                "# Invoice 42\nTotal: 99 EUR"
            ),
        )
    )
    assert reader.calls == ["document"]


def test_a_long_document_is_cut_to_half_the_prompt_budget() -> None:
    understood = understand(document("application/pdf"), SETTINGS, FakeReader(document="word " * 10_000))
    assert isinstance(understood, Understood)
    assert len(understood.text) < SETTINGS.document_chars + 100
    assert understood.text.endswith("…")
    assert SETTINGS.document_chars == int(BASE_ENV["PROMPT_BUDGET_CHARS"]) // 2


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        ("too_large", REPLIES.media_too_large),
        ("unavailable", REPLIES.media_unavailable),
        ("rejected", REPLIES.media_unavailable),
    ],
)
@pytest.mark.parametrize(
    "message", [voice(), photo(), document("application/pdf")], ids=["voice", "photo", "pdf"]
)
def test_media_that_cannot_be_read_gets_the_honest_reply(
    message: InboundMessage, problem: MediaProblem, text: str
) -> None:
    understood = understand(message, SETTINGS, FakeReader(problem=problem))
    assert isinstance(understood, Reply)
    assert understood.text == text
    assert understood.remembered is not None
    assert "could not open" in understood.remembered


def test_contacts_orders_and_locations_become_readable_text() -> None:
    contacts = inbound(
        None,
        type_="contacts",
        contacts=(
            SharedContact(
                name="Lucía Gómez",
                company="Google",
                phones=(SharedContactPhone(phone="+1 (983) 555-2319", wa_id="19835552319", type="MOBILE"),),
                emails=("lucia@example.com",),
            ),
        ),
    )
    order = inbound(
        None,
        type_="order",
        order=Order(
            catalog_id="194836987003835",
            text="Gift wrap please",
            items=(
                OrderItem(product_retailer_id="di9ozbzfi4", quantity=2, item_price=30, currency="USD"),
                OrderItem(product_retailer_id="nqryix03ez", quantity=1, item_price=25.5, currency="USD"),
            ),
        ),
    )
    location = inbound(None, type_="location", location=Location(latitude=38.7, longitude=-9.1, name="Praça"))
    texts = [understand(m, SETTINGS, FakeReader()) for m in (contacts, order, location)]
    assert [u.text for u in texts if isinstance(u, Understood)] == [
        "👤 shared a contact: Lucía Gómez (Google), +1 (983) 555-2319 (MOBILE, on WhatsApp), "
        "lucia@example.com",
        "🛒 sent an order from catalogue 194836987003835:\n"
        "- 2 x di9ozbzfi4 at 30 USD each\n"
        "- 1 x nqryix03ez at 25.50 USD each\n"
        "Total: 85.50 USD\n"
        "Note: Gift wrap please",
        "📍 shared a location: Praça (38.7, -9.1)",
    ]


def test_the_ad_and_the_product_asked_about_come_before_the_message() -> None:
    message = inbound(
        "Can I get more info on this?",
        referral=Referral(
            source_type="ad",
            source_url="https://fb.me/3cr4Wqqkv",
            headline="Chat with us",
            body="Summer Succulents are here!",
            welcome_message="Hi there! Let us know how we can help!",
        ),
        referred_product=ReferredProduct(catalog_id="1948", product_retailer_id="di9ozbzfi4"),
    )
    understood = understand(message, SETTINGS, FakeReader())
    assert isinstance(understood, Understood)
    assert understood.text == (
        "[Came from an ad: Chat with us — Summer Succulents are here! (https://fb.me/3cr4Wqqkv); "
        "the ad greeted them with: Hi there! Let us know how we can help!]\n"
        "[Asking about catalogue product di9ozbzfi4]\n"
        "Can I get more info on this?"
    )


@given(
    type_=st.one_of(
        st.sampled_from(
            [
                "text",
                "image",
                "video",
                "document",
                "audio",
                "sticker",
                "location",
                "contacts",
                "order",
                "reaction",
            ]
        ),
        st.text(),
    ),
    text=st.none() | st.text(),
    media=st.none()
    | st.builds(
        Media, id=st.none() | st.text(), mime_type=st.none() | st.text(), caption=st.none() | st.text()
    ),
    problem=st.none() | st.sampled_from(["unavailable", "too_large", "rejected"]),
)
def test_no_message_crashes_the_understanding(
    type_: str, text: str | None, media: Media | None, problem: MediaProblem | None
) -> None:
    message = inbound(text, type_=type_, media=media)
    planned = plan(message, SETTINGS)
    assert isinstance(planned, Ignore | Reply | Read)
    if isinstance(planned, Read):
        understood = understand(message, SETTINGS, FakeReader(problem=problem))
        assert isinstance(understood, Understood | Reply)
        if isinstance(understood, Understood):
            assert understood.text.strip() or understood.images
            assert all(isinstance(part, TextPart | ImagePart) for part in understood.parts)
