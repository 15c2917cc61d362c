"""Domain: a parsed webhook -> the inbound queue records, plus what to log about the rest.

Plain functions over the webhook models; no AWS, no HTTP, no logging. Decisions:
- every user message becomes one `InboundMessage`, whatever its type (reactions,
  system and unknown types included): the AI function decides what to answer;
- `text` is the user-visible text only: text body, template button text,
  interactive reply title, Flow reply (body + answers), media caption;
  order, location, contacts, reaction, system and unknown types carry none;
- what the user saw is kept as structured fields instead: shared contact cards,
  an order's items and note, the ad a user came from (`referral`), the product
  they asked about (`context.referred_product`), media ids, the location;
- a message whose sender cannot be built is reported as skipped, not raised;
- statuses and value-level errors are reported for logs and metrics, never enqueued;
- every `smb_message_echoes` item (the owner wrote from the WhatsApp Business app)
  becomes one `OwnerEcho`, in the user's conversation (the AI function pauses the bot);
- a message carrying `group_id` is enqueued like any other: the AI function decides
  (groups are not answered one-to-one);
- a payload that is not a WhatsApp `messages` webhook is reported as ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from wa_assistant.records import InboundMessage, OwnerEcho
from wa_assistant.webhook.payload import (
    ECHOES_FIELD,
    MESSAGES_FIELD,
    WHATSAPP_OBJECT,
    Contact,
    MediaContent,
    MessagesValue,
    Metadata,
    ParsedWebhook,
    SkippedItem,
    WebhookEcho,
    WebhookError,
    WebhookMessage,
    WebhookStatus,
)

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
FLOW_SUMMARY_MAX_CHARS = 2000
"""Cap of a Flow reply summary: a form can carry many answers; the model needs the gist."""


# The reports below are built for every status and error of every webhook, so they are
# plain slotted dataclasses: a frozen one sets each field through object.__setattr__,
# which makes a StatusReport ~7x slower to build (2.0 µs instead of 0.3 µs).
@dataclass(slots=True)
class ErrorReport:
    code: int | None
    title: str | None
    message: str | None
    details: str | None

    @classmethod
    def of(cls, error: WebhookError) -> ErrorReport:
        details = error.error_data.details if error.error_data else None
        return cls(code=error.code, title=error.title, message=error.message, details=details)


@dataclass(slots=True)
class StatusReport:
    """A delivery status of a message the business sent."""

    phone_number_id: str
    message_id: str
    status: str
    timestamp: int | None
    recipient_id: str | None
    recipient_user_id: str | None
    conversation_category: str | None
    pricing_category: str | None
    pricing_model: str | None
    billable: bool | None
    errors: tuple[ErrorReport, ...]


@dataclass(slots=True)
class ValueErrorReport:
    """An error Meta reports for the whole business number (`value.errors`)."""

    phone_number_id: str
    error: ErrorReport


@dataclass(slots=True)
class MessageErrorReport:
    """Errors Meta attached to one user message (e.g. 131051 unsupported type)."""

    message_id: str
    errors: tuple[ErrorReport, ...]


@dataclass
class WebhookDigest:
    """Everything one webhook call means for this system."""

    messages: list[InboundMessage] = field(default_factory=list)
    echoes: list[OwnerEcho] = field(default_factory=list)
    """Messages the owner sent from the WhatsApp Business app."""
    statuses: list[StatusReport] = field(default_factory=list)
    errors: list[ValueErrorReport] = field(default_factory=list)
    message_errors: list[MessageErrorReport] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Why parts (or all) of the payload were ignored; safe to log."""


def digest_webhook(parsed: ParsedWebhook) -> WebhookDigest:
    """Split a parsed webhook into queue records and reports."""
    digest = WebhookDigest(skipped=list(parsed.skipped))
    payload = parsed.payload
    if payload is None:
        digest.ignored.append(parsed.rejection or "not a webhook payload")
        return digest
    if payload.object != WHATSAPP_OBJECT:
        digest.ignored.append(f"object is {payload.object!r}, not {WHATSAPP_OBJECT!r}")
        return digest
    if not payload.entry:
        digest.ignored.append("no entry")
        return digest
    for entry in payload.entry:
        for change in entry.changes or ():
            if change.field == ECHOES_FIELD:
                _digest_echoes(digest, change.value)
                continue
            if change.field != MESSAGES_FIELD:
                digest.ignored.append(f"field {change.field!r} is not handled")
                continue
            value = change.value
            if value is None:
                digest.ignored.append("messages change without a value")
                continue
            if not (value.messages or value.statuses or value.errors):
                digest.ignored.append("messages change with no messages, statuses or errors")
            if value.messages:
                _digest_messages(digest, value.metadata, value.contacts or (), value.messages)
            if value.statuses:
                digest.statuses.extend(status_report(value.metadata, status) for status in value.statuses)
            if value.errors:
                digest.errors.extend(
                    ValueErrorReport(value.metadata.phone_number_id, ErrorReport.of(error))
                    for error in value.errors
                )
    return digest


def _digest_messages(
    digest: WebhookDigest,
    metadata: Metadata,
    contacts: Sequence[Contact],
    messages: Sequence[WebhookMessage],
) -> None:
    by_identity: dict[str, Contact] = {}
    for contact in contacts:
        for key in (contact.wa_id, contact.user_id):
            if key:
                by_identity.setdefault(key, contact)
    for index, message in enumerate(messages):
        try:
            digest.messages.append(inbound_message(metadata, message, _contact_of(message, by_identity)))
        except ValidationError as error:  # e.g. a sender field of the wrong shape for Sender
            problems = tuple(
                ".".join(str(p) for p in e["loc"]) + f": {e['type']}"
                for e in error.errors(include_url=False, include_input=False, include_context=False)
            )
            digest.skipped.append(SkippedItem("message", index, message.id, problems))
            continue
        if message.errors:
            digest.message_errors.append(
                MessageErrorReport(message.id, tuple(ErrorReport.of(e) for e in message.errors))
            )


def _digest_echoes(digest: WebhookDigest, value: MessagesValue | None) -> None:
    if value is None or not value.message_echoes:
        digest.ignored.append("smb_message_echoes change with no message_echoes")
        return
    for index, echo in enumerate(value.message_echoes):
        try:
            digest.echoes.append(owner_echo(value.metadata, echo))
        except ValidationError as error:  # e.g. `to` holds no digit and there is no BSUID
            problems = tuple(
                ".".join(str(p) for p in e["loc"]) + f": {e['type']}"
                for e in error.errors(include_url=False, include_input=False, include_context=False)
            )
            digest.skipped.append(SkippedItem("echo", index, echo.id, problems))


_NOT_A_DIGIT = re.compile(r"\D")


def owner_echo(metadata: Metadata, echo: WebhookEcho) -> OwnerEcho:
    """The inbound queue record of one echo, addressed like the user's own messages.

    `to` is the number as the app dialled it (`+16505551234`); the user's messages
    carry it as `wa_id` (`16505551234`), so only its digits are kept.
    """
    wa_id = _NOT_A_DIGIT.sub("", echo.to or "") or None
    content = getattr(echo, echo.type, None) if echo.type in ("image", "video", "document") else None
    text = echo.text.body if echo.type == "text" and echo.text else (content.caption if content else None)
    return OwnerEcho.model_validate(
        {
            "phone_number_id": metadata.phone_number_id,
            "display_phone_number": metadata.display_phone_number,
            "recipient": {"wa_id": wa_id, "user_id": echo.to_user_id or None},
            "message_id": echo.id,
            "timestamp": echo.timestamp,
            "type": echo.type,
            "text": text or None,
        }
    )


def _contact_of(message: WebhookMessage, by_identity: dict[str, Contact]) -> Contact | None:
    for key in (message.from_user_id, message.from_):
        if key and key in by_identity:
            return by_identity[key]
    return None


_validate_record: Callable[[dict[str, Any]], InboundMessage] = (
    InboundMessage.__pydantic_validator__.validate_python
)
"""`InboundMessage.model_validate` without its per-call keyword handling (~0.5 µs of ~3)."""


def inbound_message(metadata: Metadata, message: WebhookMessage, contact: Contact | None) -> InboundMessage:
    """The inbound queue record of one user message.

    Built from one plain dict in one validation pass (sender, media and location
    included): pydantic-core checks it faster than nested `Sender(...)`/`Media(...)`
    calls, and faster than `model_construct` (a Python loop over every field).
    """
    profile = contact.profile if contact else None
    context = message.context
    reaction = message.reaction if message.type == "reaction" else None
    return _validate_record(
        {
            "phone_number_id": metadata.phone_number_id,
            "display_phone_number": metadata.display_phone_number,
            "sender": {
                "wa_id": message.from_ or (contact.wa_id if contact else None),
                "user_id": message.from_user_id or (contact.user_id if contact else None),
                "parent_user_id": message.from_parent_user_id
                or (contact.parent_user_id if contact else None),
                "profile_name": profile.name if profile else None,
                "username": profile.username if profile else None,
            },
            "message_id": message.id,
            "timestamp": message.timestamp,
            "type": message.type,
            "text": user_text(message),
            "media": media_of(message),
            "location": location_of(message),
            "reaction_emoji": reaction.emoji if reaction else None,
            "reacted_message_id": reaction.message_id if reaction else None,
            "context_message_id": context.id if context else None,
            "forwarded": bool(context and (context.forwarded or context.frequently_forwarded)),
            "group_id": message.group_id,
            "contacts": contacts_of(message) if message.contacts else (),
            "order": order_of(message) if message.order is not None else None,
            "referral": referral_of(message) if message.referral is not None else None,
            "referred_product": (
                {
                    "catalog_id": context.referred_product.catalog_id,
                    "product_retailer_id": context.referred_product.product_retailer_id,
                }
                if context is not None and context.referred_product is not None
                else None
            ),
        }
    )


def user_text(message: WebhookMessage) -> str | None:
    """The text the user typed or tapped, by message type; None when there is none."""
    extract = _TEXT_BY_TYPE.get(message.type)
    text = extract(message) if extract else None
    return text or None


def _interactive_text(message: WebhookMessage) -> str | None:
    interactive = message.interactive
    if interactive is None:
        return None
    for option in (interactive.button_reply, interactive.list_reply):
        if option is not None and option.title:
            return option.title
    if interactive.nfm_reply is not None:
        return flow_reply_summary(interactive.nfm_reply.body, interactive.nfm_reply.response_json)
    return None


def flow_reply_summary(body: str | None, response_json: str | None) -> str | None:
    """A Flow answer as readable lines: the reply body, then `field: value` per answer."""
    lines = [body] if body else []
    if response_json:
        try:
            answers = json.loads(response_json)
        except ValueError:
            answers = response_json
        if isinstance(answers, dict):
            lines.extend(
                f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
                for key, value in answers.items()
                if key != "flow_token"  # an opaque id the business set, not something the user wrote
            )
        else:
            lines.append(str(answers))
    summary = "\n".join(lines)
    return summary[:FLOW_SUMMARY_MAX_CHARS] or None


def _caption(message: WebhookMessage) -> str | None:
    content = getattr(message, message.type, None)
    return content.caption if content is not None else None


_TEXT_BY_TYPE: dict[str, Callable[[WebhookMessage], str | None]] = {
    "text": lambda m: m.text.body if m.text else None,
    "button": lambda m: m.button.text if m.button else None,
    "interactive": _interactive_text,
    **dict.fromkeys(("image", "video", "document"), _caption),
}


def media_of(message: WebhookMessage) -> dict[str, Any] | None:
    """The record's `media` fields (a dict: validated once, with the whole record)."""
    if message.type not in MEDIA_TYPES:
        return None
    content: MediaContent | None = getattr(message, message.type)
    if content is None:
        return None
    return {
        "id": content.id,
        "mime_type": content.mime_type,
        "caption": content.caption,
        "filename": content.filename,
        "sha256": content.sha256,
        "voice": content.voice,
        "animated": content.animated,
    }


def location_of(message: WebhookMessage) -> dict[str, Any] | None:
    """The record's `location` fields (a dict: validated once, with the whole record)."""
    location = message.location
    if message.type != "location" or location is None:
        return None
    return {
        "latitude": location.latitude,
        "longitude": location.longitude,
        "name": location.name,
        "address": location.address,
        "url": location.url,
    }


def contacts_of(message: WebhookMessage) -> list[dict[str, Any]]:
    """The record's `contacts`: each card's name, company, phones, emails and web addresses."""
    cards = []
    for card in message.contacts or ():
        name = card.name
        full_name = None
        if name is not None:
            full_name = name.formatted_name or " ".join(p for p in (name.first_name, name.last_name) if p)
        cards.append(
            {
                "name": full_name or None,
                "company": card.org.company if card.org else None,
                "phones": [
                    {"phone": phone.phone, "wa_id": phone.wa_id, "type": phone.type}
                    for phone in card.phones or ()
                ],
                "emails": [e.email for e in card.emails or () if e.email],
                "urls": [u.url for u in card.urls or () if u.url],
            }
        )
    return cards


def order_of(message: WebhookMessage) -> dict[str, Any] | None:
    """The record's `order`: catalogue, the user's note and every item as Meta sent it."""
    order = message.order
    if order is None:
        return None
    return {
        "catalog_id": order.catalog_id,
        "text": order.text or None,
        "items": [
            {
                "product_retailer_id": item.product_retailer_id,
                "quantity": item.quantity,
                "item_price": item.item_price,
                "currency": item.currency,
            }
            for item in order.product_items or ()
        ],
    }


def referral_of(message: WebhookMessage) -> dict[str, Any] | None:
    """The record's `referral`: what the ad the user tapped said (ids and tracking data left out)."""
    referral = message.referral
    if referral is None:
        return None
    return {
        "source_type": referral.source_type,
        "source_url": referral.source_url,
        "headline": referral.headline,
        "body": referral.body,
        "media_type": referral.media_type,
        "welcome_message": referral.welcome_message.text if referral.welcome_message else None,
    }


def status_report(metadata: Metadata, status: WebhookStatus) -> StatusReport:
    conversation_origin = status.conversation.origin if status.conversation else None
    pricing = status.pricing
    return StatusReport(
        phone_number_id=metadata.phone_number_id,
        message_id=status.id,
        status=status.status,
        timestamp=status.timestamp,
        recipient_id=status.recipient_id,
        recipient_user_id=status.recipient_user_id,
        conversation_category=conversation_origin.type if conversation_origin else None,
        pricing_category=pricing.category if pricing else None,
        pricing_model=pricing.pricing_model if pricing else None,
        billable=pricing.billable if pricing else None,
        errors=tuple(ErrorReport.of(e) for e in status.errors or ()),
    )
