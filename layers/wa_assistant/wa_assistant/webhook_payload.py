"""Pydantic models of Meta's WhatsApp webhook (`object`/`entry[]`/`changes[]`/`value`).

Tolerance rules, decided once here:
- unknown fields are ignored (`extra="ignore"`), so Meta can add fields freely;
- message `type` is a plain string: a type that does not exist yet still parses;
- a change whose `field` is not `messages` keeps its field name but its value is
  not validated (other webhook fields have other shapes and are ignored later);
- one malformed item of a list (an entry, a change, a contact, a message, a
  status, an error) is dropped and reported as a `SkippedItem`; its siblings are
  kept. Only a payload whose top level is unusable fails as a whole.
- duplicate JSON keys: the last one wins (JSON allows them; the signature
  already proved Meta sent the bytes, so there is no parser-differential risk).

`parse_webhook` validates the raw bytes in one pass (`model_validate_json`:
no `json.loads` + re-validation); the valid items of a list are validated a
second time only when one of their siblings failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

WHATSAPP_OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"


class InvalidJsonError(ValueError):
    """The body is not JSON at all (or not UTF-8): a 400, Meta never sends this."""


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """A list item dropped because it did not validate; holds no user content."""

    kind: str
    index: int
    item_id: str | None
    problems: tuple[str, ...]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _drop_invalid_items(kind: str) -> Callable[[Any, ValidatorFunctionWrapHandler, ValidationInfo], Any]:
    """A wrap validator that drops the failing items of a list and records them in the context."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        skipped: list[SkippedItem] | None = (info.context or {}).get("skipped")
        mark = len(skipped) if skipped is not None else 0
        try:
            return handler(value)
        except ValidationError as error:
            errors = error.errors(include_url=False, include_input=False, include_context=False)
            whole_list_wrong = any(not e["loc"] or not isinstance(e["loc"][0], int) for e in errors)
            if whole_list_wrong or not isinstance(value, list):
                raise  # the list itself is wrong (null is allowed before we get here): fail the parent
            problems: dict[int, list[str]] = {}
            for e in errors:
                index = int(e["loc"][0])
                where = ".".join(str(part) for part in e["loc"][1:])
                problems.setdefault(index, []).append(f"{where}: {e['type']}")
            if skipped is not None:
                # Items nested in the valid siblings are validated (and recorded) again below.
                del skipped[mark:]
                for index, item_problems in sorted(problems.items()):
                    item = value[index]
                    item_id = item.get("id") if isinstance(item, dict) else None
                    skipped.append(
                        SkippedItem(
                            kind=kind,
                            index=index,
                            item_id=item_id if isinstance(item_id, str) else None,
                            problems=tuple(item_problems),
                        )
                    )
            return handler([item for index, item in enumerate(value) if index not in problems])

    return validate


# ----------------------------------------------------------------- shared parts
class ErrorData(_Part):
    details: str | None = None


class WebhookError(_Part):
    """An error object (value-level, in a failed status, or in an unsupported message)."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None
    href: str | None = None


class Metadata(_Part):
    phone_number_id: str = Field(min_length=1)
    display_phone_number: str | None = None


class Profile(_Part):
    name: str | None = None
    username: str | None = None
    """WhatsApp username, for users who adopted one."""


class Contact(_Part):
    """The sender's profile; wa_id may be absent for users who adopted a username."""

    wa_id: str | None = None
    user_id: str | None = None
    """Business-scoped user id (BSUID)."""
    parent_user_id: str | None = None
    profile: Profile | None = None


# ----------------------------------------------------------------- message parts
class ReferredProduct(_Part):
    catalog_id: str | None = None
    product_retailer_id: str | None = None


class MessageContext(_Part):
    """Present when the user quoted a message, forwarded one, or asked about a product."""

    id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: ReferredProduct | None = None


class TextContent(_Part):
    body: str | None = None


class MediaContent(_Part):
    """image, audio (voice notes: voice=true), video, document, sticker (animated)."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False
    animated: bool = False
    url: str | None = None


class LocationContent(_Part):
    latitude: float = Field(allow_inf_nan=False)
    longitude: float = Field(allow_inf_nan=False)
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ButtonContent(_Part):
    """A template quick-reply button press."""

    payload: str | None = None
    text: str | None = None


class ReplyOption(_Part):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class FlowReply(_Part):
    """A WhatsApp Flow's answer (`nfm_reply`); response_json is a JSON string."""

    name: str | None = None
    body: str | None = None
    response_json: str | None = None


class InteractiveContent(_Part):
    type: str | None = None
    button_reply: ReplyOption | None = None
    list_reply: ReplyOption | None = None
    nfm_reply: FlowReply | None = None


class ReactionContent(_Part):
    message_id: str | None = None
    emoji: str | None = None
    """Empty string: the user removed their reaction."""


class ProductItem(_Part):
    product_retailer_id: str | None = None
    quantity: int | None = None
    item_price: float | None = None
    currency: str | None = None


class OrderContent(_Part):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[ProductItem] | None = None


class SystemContent(_Part):
    body: str | None = None
    type: str | None = None
    wa_id: str | None = None
    customer: str | None = None
    identity: str | None = None
    user_id: str | None = None


class Identity(_Part):
    acknowledged: bool | None = None
    created_timestamp: int | None = None
    hash: str | None = None


class Referral(_Part):
    """Click-to-WhatsApp ad the user came from."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    body: str | None = None
    headline: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None


class SharedContactName(_Part):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class SharedContactPhone(_Part):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class SharedContact(_Part):
    """A vCard the user shared (a `contacts` message); other vCard fields are ignored."""

    name: SharedContactName | None = None
    phones: list[SharedContactPhone] | None = None


class UnsupportedContent(_Part):
    type: str | None = None


class WebhookMessage(_Part):
    """One message a user sent; `type` says which content field is set."""

    id: str = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from")
    """Sender's phone number; absent for users who adopted a username."""
    from_user_id: str | None = None
    from_parent_user_id: str | None = None
    timestamp: int
    type: str = Field(min_length=1)
    context: MessageContext | None = None
    text: TextContent | None = None
    image: MediaContent | None = None
    audio: MediaContent | None = None
    video: MediaContent | None = None
    document: MediaContent | None = None
    sticker: MediaContent | None = None
    location: LocationContent | None = None
    contacts: list[SharedContact] | None = None
    interactive: InteractiveContent | None = None
    button: ButtonContent | None = None
    reaction: ReactionContent | None = None
    order: OrderContent | None = None
    system: SystemContent | None = None
    identity: Identity | None = None
    referral: Referral | None = None
    unsupported: UnsupportedContent | None = None
    errors: list[WebhookError] | None = None

    @model_validator(mode="after")
    def _has_sender(self) -> WebhookMessage:
        if not self.from_ and not self.from_user_id:
            raise ValueError("a message needs `from` or `from_user_id`")
        return self


# ----------------------------------------------------------------- statuses
class ConversationOrigin(_Part):
    type: str | None = None


class Conversation(_Part):
    id: str | None = None
    expiration_timestamp: int | None = None
    origin: ConversationOrigin | None = None


class Pricing(_Part):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


class WebhookStatus(_Part):
    """Delivery news about a message the business sent: sent, delivered, read, failed..."""

    id: str = Field(min_length=1)
    status: str
    timestamp: int | None = None
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    parent_recipient_user_id: str | None = None
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    errors: list[WebhookError] | None = None


# ----------------------------------------------------------------- envelope
class MessagesValue(_Part):
    """The value of a `messages` change: messages, statuses and/or errors for one business number."""

    messaging_product: str | None = None
    metadata: Metadata
    contacts: list[Contact] | None = None
    messages: list[WebhookMessage] | None = None
    statuses: list[WebhookStatus] | None = None
    errors: list[WebhookError] | None = None

    _contacts = field_validator("contacts", mode="wrap")(_drop_invalid_items("contact"))
    _messages = field_validator("messages", mode="wrap")(_drop_invalid_items("message"))
    _statuses = field_validator("statuses", mode="wrap")(_drop_invalid_items("status"))
    _errors = field_validator("errors", mode="wrap")(_drop_invalid_items("error"))


class Change(_Part):
    field: str
    value: MessagesValue | None = None
    """Validated only for the `messages` field; None for every other field."""

    @model_validator(mode="before")
    @classmethod
    def _value_only_for_messages(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("field") != MESSAGES_FIELD and data.get("value") is not None:
            return {**data, "value": None}
        return data


class Entry(_Part):
    id: str | int | None = None
    """The WhatsApp Business Account id (not used; any scalar is accepted)."""
    changes: list[Change] | None = None

    _changes = field_validator("changes", mode="wrap")(_drop_invalid_items("change"))


class WebhookPayload(_Part):
    object: str
    entry: list[Entry] | None = None

    _entry = field_validator("entry", mode="wrap")(_drop_invalid_items("entry"))


@dataclass(frozen=True)
class ParsedWebhook:
    """A parse result: the payload (None when the JSON is not a webhook at all) and what was dropped."""

    payload: WebhookPayload | None
    skipped: list[SkippedItem] = field(default_factory=list)
    rejection: str | None = None
    """Why the JSON is not a webhook (no user content in it)."""


def parse_webhook(raw: bytes) -> ParsedWebhook:
    """Validate a (signature-checked) body; raises InvalidJsonError only when it is not JSON."""
    skipped: list[SkippedItem] = []
    try:
        payload = WebhookPayload.model_validate_json(raw, context={"skipped": skipped})
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False, include_context=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise InvalidJsonError(errors[0]["msg"]) from None
        problems = "; ".join(".".join(str(p) for p in e["loc"]) + f": {e['type']}" for e in errors[:5])
        return ParsedWebhook(payload=None, rejection=f"not a webhook payload ({problems})")
    return ParsedWebhook(payload=payload, skipped=skipped)
