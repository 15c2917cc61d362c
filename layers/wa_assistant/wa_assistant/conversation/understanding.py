"""How the assistant understands one inbound message: what the model reads, what memory keeps, or why not.

Plain code over the queue record; the media work is done by a `MediaReader` passed
in (Graph download, transcription, OCR), so this module is tested with a fake one.
Two steps, so that the handler can decide cheaply before any outside call:

- `plan(message, settings)` -> `Ignore` | `Reply` (an honest direct answer, no model) | `Read`;
- `understand(message, settings, reader)` (for a `Read`) -> `Understood` | `Reply`.

What each WhatsApp message type gets (the model reads / memory keeps), also in README:

- text, button, interactive: its text / the same;
- voice note, audio: "🎤 <transcript>" ("🎧" for an audio file) / the same;
- image: the caption (or "[photo without caption]") and the image as a data URL,
  for the vision model / "📷 [photo] <caption>", never the image;
- sticker: "[sticker]" and the image (an animated one: the words only) / "[sticker]";
- document (PDF, or an image sent as a document): the caption, "📄 <name>:" and
  the OCR text / the same; plain text and CSV are read as they are; other kinds
  get the UnsupportedDocumentReply;
- video: the caption and "(sent a video, which I cannot watch)"; without a caption
  the VideoReply;
- location, contacts, order: "📍 ...", "👤 ...", "🛒 ..." lines / the same;
- a message that came from an ad, or asks about a catalogue product: the ad's
  headline and body, or the product id, in brackets before the message;
- reaction, system: no reply at all;
- unsupported and unknown types: the FallbackReply.

A capability switched off (TranscriptionEnabled, VisionEnabled, OcrEnabled) makes
its messages get the FallbackReply (or, with a caption, the caption alone). A
media that cannot be fetched (expired, deleted, over its size cap) or read gets
its honest reply; a voice note with no words in it gets UnclearVoiceNoteReply.
Transient failures (rate limits, outages) are not decided here: they propagate.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from wa_assistant.model.content import ContentPart, ImagePart, TextPart, data_url
from wa_assistant.records import InboundMessage, Location, Order, SharedContact

TEXT_TYPES = frozenset({"text", "button", "interactive"})
IGNORED_TYPES = frozenset({"reaction", "system"})
PDF = "application/pdf"
OCR_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/avif"})
"""Images sent as documents go through OCR (Mistral reads these as `image_url`)."""
PLAIN_TEXT_TYPES = frozenset({"text/plain", "text/csv"})
"""Read as they are: no OCR needed."""
VISION_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
"""What a vision model reads (WhatsApp sends JPEG and PNG photos, WebP stickers)."""
FALLBACK_REPLY = "Sorry, I can't read this kind of message. Could you type your question?"
"""Used only when the FALLBACK_REPLY variable is empty (the template always sets it)."""

MediaProblem = Literal["unavailable", "too_large", "rejected"]


# ------------------------------------------------------------------ settings


def _enabled(value: str | None) -> bool:
    return (value or "true").strip().lower() != "false"


@dataclass(frozen=True, slots=True)
class Replies:
    """The honest replies (template parameters), each for one situation."""

    fallback: str = FALLBACK_REPLY
    media_unavailable: str = FALLBACK_REPLY
    media_too_large: str = FALLBACK_REPLY
    unsupported_document: str = FALLBACK_REPLY
    video: str = FALLBACK_REPLY
    unclear_voice_note: str = FALLBACK_REPLY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Replies:
        fallback = env.get("FALLBACK_REPLY", "").strip() or FALLBACK_REPLY

        def text(name: str) -> str:
            return env.get(name, "").strip() or fallback

        return cls(
            fallback=fallback,
            media_unavailable=text("MEDIA_UNAVAILABLE_REPLY"),
            media_too_large=text("MEDIA_TOO_LARGE_REPLY"),
            unsupported_document=text("UNSUPPORTED_DOCUMENT_REPLY"),
            video=text("VIDEO_REPLY"),
            unclear_voice_note=text("UNCLEAR_VOICE_NOTE_REPLY"),
        )


@dataclass(frozen=True, slots=True)
class UnderstandingSettings:
    transcription: bool = True
    vision: bool = True
    ocr: bool = True
    replies: Replies = field(default_factory=Replies)
    document_chars: int = 6000
    """Document text kept per message: half the prompt budget, so a follow-up question still has
    room for it in memory."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UnderstandingSettings:
        env = os.environ if env is None else env
        budget = int(env.get("PROMPT_BUDGET_CHARS") or "12000")
        return cls(
            transcription=_enabled(env.get("TRANSCRIPTION_ENABLED")),
            vision=_enabled(env.get("VISION_ENABLED")),
            ocr=_enabled(env.get("OCR_ENABLED")),
            replies=Replies.from_env(env),
            document_chars=max(200, budget // 2),
        )


# ------------------------------------------------------------------ outcomes


@dataclass(frozen=True, slots=True)
class Ignore:
    """Send nothing: the message expects no answer."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with this text, no model call: an honest reply about what cannot be read."""

    text: str
    reason: str
    remembered: str | None = None
    """What memory keeps of the user's turn (None: the turn is not remembered)."""


@dataclass(frozen=True, slots=True)
class Read:
    """Answer with the model; `kind` says what must be read first."""

    kind: Literal["text", "voice", "image", "document"]


Plan = Ignore | Reply | Read


@dataclass(frozen=True, slots=True)
class Understood:
    """What the model reads (text and image parts) and what memory keeps (text only)."""

    parts: tuple[ContentPart, ...]
    remembered: str | None = None
    """None: memory keeps the text the model read."""

    @property
    def text(self) -> str:
        return "\n\n".join(part.text for part in self.parts if isinstance(part, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(part for part in self.parts if isinstance(part, ImagePart))


def together(messages: Sequence[Understood]) -> Understood:
    """Several messages of a burst as one user turn: their parts in order (texts joined by a blank
    line, images after them); memory keeps each one's remembered line, or its text."""
    if len(messages) == 1:
        return messages[0]
    remembered = None
    if any(message.remembered is not None for message in messages):
        remembered = "\n\n".join(
            message.remembered if message.remembered is not None else message.text for message in messages
        )
    return Understood(
        parts=tuple(part for message in messages for part in message.parts), remembered=remembered
    )


# ------------------------------------------------------------------ what the reader gives


# Plain dataclasses, not pydantic models: they cost nothing at import (the AI function's cold
# start), and Powertools idempotency stores them with its DataclassSerializer.
@dataclass(frozen=True, slots=True)
class Transcription:
    """A voice note as text (stored by idempotency so that a retry never transcribes twice)."""

    text: str = field(repr=False)
    audio_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class DocumentText:
    """A document as text (stored by idempotency so that a retry never reads it twice)."""

    text: str = field(repr=False)
    pages_read: int | None = None
    pages_in_document: int | None = None


@dataclass(frozen=True, slots=True)
class ImageFile:
    data: bytes = field(repr=False)
    mime_type: str


class MediaNotReadable(Exception):  # noqa: N818 - names the situation
    """The media cannot be read, and trying again will not change that (expired, too large...)."""

    def __init__(self, problem: MediaProblem, detail: str = "") -> None:
        super().__init__(f"{problem}: {detail}" if detail else problem)
        self.problem = problem


class MediaReader(Protocol):
    """Fetches and reads a message's media; raises MediaNotReadable, or a transient error."""

    def transcript(self, message: InboundMessage) -> Transcription: ...
    def document_text(self, message: InboundMessage) -> DocumentText: ...
    def image(self, message: InboundMessage) -> ImageFile: ...


class LazyMediaReader:
    """A MediaReader built on first use: a container that only ever sees text never loads the
    media adapters (Graph media, transcription, OCR), which keeps the AI function's cold start down."""

    def __init__(self, build: Callable[[], MediaReader]) -> None:
        self._build = build
        self._reader: MediaReader | None = None

    @property
    def reader(self) -> MediaReader:
        if self._reader is None:
            self._reader = self._build()
        return self._reader

    def transcript(self, message: InboundMessage) -> Transcription:
        return self.reader.transcript(message)

    def document_text(self, message: InboundMessage) -> DocumentText:
        return self.reader.document_text(message)

    def image(self, message: InboundMessage) -> ImageFile:
        return self.reader.image(message)


# ------------------------------------------------------------------ plan


def plan(message: InboundMessage, settings: UnderstandingSettings) -> Plan:
    """Decide from the record alone (no outside call) how the message is answered."""
    kind = message.type
    if kind in IGNORED_TYPES:
        return Ignore(f"{kind} messages get no reply")
    planner = _PLANNERS.get(kind)
    planned = planner(message, settings) if planner is not None else None
    return planned or Reply(settings.replies.fallback, f"{kind} messages cannot be read")


def _plan_text(message: InboundMessage, settings: UnderstandingSettings) -> Plan:
    if (message.text or "").strip():
        return Read("text")
    return Reply(settings.replies.fallback, f"{message.type} without text")


def _plan_audio(message: InboundMessage, settings: UnderstandingSettings) -> Plan | None:
    if not (message.media and message.media.id):
        return None
    return (
        Read("voice") if settings.transcription else Reply(settings.replies.fallback, "transcription is off")
    )


def _plan_image(message: InboundMessage, settings: UnderstandingSettings) -> Plan | None:
    if not (message.media and message.media.id):
        return None
    sticker = message.type == "sticker"
    if settings.vision and not (sticker and message.media.animated):
        return Read("image")
    if sticker or _caption(message):
        return Read("text")  # described in words: "[sticker]", or the caption alone
    return Reply(settings.replies.fallback, "vision is off")


def _plan_document(message: InboundMessage, settings: UnderstandingSettings) -> Plan | None:
    if not (message.media and message.media.id):
        return None
    mime = _media_type(message)
    caption = _caption(message)
    if mime in PLAIN_TEXT_TYPES:
        return Read("document")
    if mime == PDF or mime in OCR_IMAGE_TYPES:
        if settings.ocr:
            return Read("document")
        return Read("text") if caption else Reply(settings.replies.fallback, "OCR is off")
    return Reply(
        settings.replies.unsupported_document,
        f"documents of type {mime or 'unknown'} cannot be read",
        remembered=f"📄 [sent {_document_name(message)}, a kind of file I cannot read]"
        + (f" {caption}" if caption else ""),
    )


def _plan_video(message: InboundMessage, settings: UnderstandingSettings) -> Plan:
    if _caption(message):
        return Read("text")
    return Reply(
        settings.replies.video, "videos cannot be watched", remembered="[sent a video without a caption]"
    )


def _plan_structured(message: InboundMessage, settings: UnderstandingSettings) -> Plan | None:
    present = {
        "location": message.location is not None,
        "contacts": bool(message.contacts),
        "order": message.order is not None,
    }
    return Read("text") if present.get(message.type) else None


_PLANNERS: dict[str, Callable[[InboundMessage, UnderstandingSettings], Plan | None]] = {
    **dict.fromkeys(TEXT_TYPES, _plan_text),
    "audio": _plan_audio,
    "image": _plan_image,
    "sticker": _plan_image,
    "document": _plan_document,
    "video": _plan_video,
    **dict.fromkeys(("location", "contacts", "order"), _plan_structured),
}


# ------------------------------------------------------------------ understand


def understand(
    message: InboundMessage, settings: UnderstandingSettings, reader: MediaReader
) -> Understood | Reply:
    """What the model reads for a `Read` plan, or the honest reply when the media cannot be read."""
    planned = plan(message, settings)
    if not isinstance(planned, Read):
        return planned if isinstance(planned, Reply) else Reply(settings.replies.fallback, planned.reason)
    try:
        if planned.kind == "voice":
            return _voice(message, settings, reader.transcript(message))
        if planned.kind == "image":
            return _image(message, reader.image(message))
        if planned.kind == "document":
            return _document(message, settings, reader.document_text(message))
    except MediaNotReadable as problem:
        return _unreadable(message, settings, problem.problem)
    return Understood(parts=(TextPart(text=_with_context(message, describe(message))),))


def describe(message: InboundMessage) -> str:
    """A message that needs no media work, as text the model can read."""
    kind = message.type
    caption = _caption(message)
    if kind in TEXT_TYPES:
        return (message.text or "").strip()
    if kind == "location" and message.location is not None:
        return describe_location(message.location)
    if kind == "contacts":
        return describe_contacts(message.contacts)
    if kind == "order" and message.order is not None:
        return describe_order(message.order)
    if kind == "sticker":
        return "[sticker]"
    notes = {
        "image": "(sent a photo, which I cannot see)",
        "video": "(sent a video, which I cannot watch)",
        "document": f"(sent a document, {_document_name(message)}, which I cannot read)",
    }
    return f"{caption}\n\n{notes.get(kind, f'(sent a {kind} message)')}".strip()


def _voice(
    message: InboundMessage, settings: UnderstandingSettings, transcript: Transcription
) -> Understood | Reply:
    voice = bool(message.media and message.media.voice)
    if not transcript.text.strip():
        return Reply(
            settings.replies.unclear_voice_note,
            "the transcript is empty",
            remembered="🎤 [a voice note without words I could make out]",
        )
    mark = "🎤" if voice else "🎧"
    return Understood(parts=(TextPart(text=_with_context(message, f"{mark} {transcript.text.strip()}")),))


def _image(message: InboundMessage, image: ImageFile) -> Understood:
    caption = _caption(message)
    if message.type == "sticker":
        text, remembered = "[sticker]", "[sticker]"
    elif caption:
        text, remembered = caption, f"📷 [photo] {caption}"
    else:
        text, remembered = "[photo without caption]", "📷 [photo without caption]"
    mime = image.mime_type.split(";", 1)[0].strip().lower()
    if mime not in VISION_TYPES:
        mime = "image/jpeg" if message.type == "image" else "image/webp"  # what WhatsApp sends for each
    return Understood(
        parts=(TextPart(text=_with_context(message, text)), ImagePart(image_url=data_url(mime, image.data))),
        remembered=_with_context(message, remembered),
    )


def _document(message: InboundMessage, settings: UnderstandingSettings, document: DocumentText) -> Understood:
    caption = _caption(message)
    name = _document_name(message)
    pages = ""
    if (
        document.pages_in_document
        and document.pages_read
        and document.pages_read < document.pages_in_document
    ):
        pages = f", the first {document.pages_read} of {document.pages_in_document} pages"
    body = document.text.strip() or "(no text found in it)"
    if len(body) > settings.document_chars:
        body = body[: settings.document_chars - 1] + "…"
    text = f"📄 {name}{pages}:\n{body}"
    if caption:
        text = f"{caption}\n\n{text}"
    return Understood(parts=(TextPart(text=_with_context(message, text)),))


def _unreadable(message: InboundMessage, settings: UnderstandingSettings, problem: MediaProblem) -> Reply:
    replies = settings.replies
    text = replies.media_too_large if problem == "too_large" else replies.media_unavailable
    what = {"audio": "a voice note", "image": "a photo", "sticker": "a sticker", "document": "a document"}
    return Reply(
        text,
        f"the {message.type} could not be read ({problem})",
        remembered=f"[sent {what.get(message.type, 'a file')} I could not open]",
    )


# ------------------------------------------------------------------ text of structured messages


def describe_location(location: Location) -> str:
    """A shared location as a sentence the model can read."""
    place = ", ".join(part for part in (location.name, location.address) if part)
    coordinates = f"({location.latitude}, {location.longitude})"
    return f"📍 shared a location: {place} {coordinates}" if place else f"📍 shared a location: {coordinates}"


def describe_contacts(contacts: Sequence[SharedContact]) -> str:
    """Shared contact cards: names, company, numbers (and whether they are on WhatsApp), emails, sites."""
    cards = []
    for card in contacts:
        parts = [card.name or "(no name)"]
        if card.company:
            parts[0] += f" ({card.company})"
        for phone in card.phones:
            number = phone.phone or phone.wa_id
            if number:
                notes = [n for n in (phone.type, "on WhatsApp" if phone.wa_id else None) if n]
                parts.append(f"{number}" + (f" ({', '.join(notes)})" if notes else ""))
        parts += [*card.emails, *card.urls]
        cards.append(", ".join(parts))
    noun = "contact" if len(cards) == 1 else f"{len(cards)} contacts"
    return f"👤 shared a {noun}: " + "; ".join(cards)


def _money(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def describe_order(order: Order) -> str:
    """A catalogue order: each item with quantity and price, the total per currency, the user's note."""
    lines = ["🛒 sent an order" + (f" from catalogue {order.catalog_id}" if order.catalog_id else "") + ":"]
    totals: dict[str, float] = {}
    for item in order.items:
        quantity = item.quantity if item.quantity is not None else 1
        line = f"- {quantity} x {item.product_retailer_id or '(unknown product)'}"
        if item.item_price is not None:
            line += f" at {_money(item.item_price)} {item.currency or ''}".rstrip() + " each"
            currency = item.currency or ""
            totals[currency] = totals.get(currency, 0.0) + quantity * item.item_price
        lines.append(line)
    if totals:
        lines.append("Total: " + ", ".join(f"{_money(v)} {c}".rstrip() for c, v in totals.items()))
    if order.text and order.text.strip():
        lines.append(f"Note: {order.text.strip()}")
    return "\n".join(lines)


def _with_context(message: InboundMessage, text: str) -> str:
    """The ad the user came from and the product they ask about, before what they said."""
    context = []
    referral = message.referral
    if referral is not None:
        said = " — ".join(part for part in (referral.headline, referral.body) if part)
        ad = f"[Came from an ad{': ' + said if said else ''}"
        if referral.source_url:
            ad += f" ({referral.source_url})"
        if referral.welcome_message:
            ad += f"; the ad greeted them with: {referral.welcome_message}"
        context.append(ad + "]")
    product = message.referred_product
    if product is not None and product.product_retailer_id:
        context.append(f"[Asking about catalogue product {product.product_retailer_id}]")
    return "\n".join([*context, text]) if context else text


def _caption(message: InboundMessage) -> str:
    return ((message.media.caption if message.media else None) or message.text or "").strip()


def _media_type(message: InboundMessage) -> str:
    mime = (message.media.mime_type if message.media else None) or ""
    return mime.split(";", 1)[0].strip().lower()


def _document_name(message: InboundMessage) -> str:
    return (message.media.filename if message.media else None) or "a document"
