"""Versioned records that travel on the two FIFO queues.

These are the contracts between the three functions. They are versioned
(`schema_version`) so that a deploy that changes a record can drain old ones:
a consumer rejects a version it does not know instead of misreading it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, model_validator

SQS_ID_MAX_LENGTH = 128


def sqs_safe_id(*parts: str) -> str:
    """Join parts into an SQS group/deduplication id (max 128 chars).

    SQS allows 128 characters of alphanumerics and punctuation; wamids and
    BSUIDs fit, but a join of several may not, so long ids are hashed.
    """
    joined = ":".join(parts)
    if len(joined) <= SQS_ID_MAX_LENGTH and joined.isascii() and joined.isprintable() and " " not in joined:
        return joined
    return hashlib.sha256(joined.encode()).hexdigest()


class Record(BaseModel):
    """Base of every queue record: immutable, tolerant of fields added later."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Sender(Record):
    """Who wrote to the business: a phone number, a BSUID, or both."""

    wa_id: str | None = None
    """Phone number (absent for users who adopted a username and hide it)."""
    user_id: str | None = None
    """Business-scoped user id (BSUID), stable even when the number changes."""
    parent_user_id: str | None = None
    profile_name: str | None = None
    username: str | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> Sender:
        if not self.wa_id and not self.user_id:
            raise ValueError("a sender needs a wa_id or a user_id (BSUID)")
        return self

    @property
    def identity(self) -> str:
        """Stable key for the user: the BSUID when Meta sent one, else the phone number."""
        return self.user_id or self.wa_id or ""


class Media(Record):
    """What a later step needs to fetch and describe a media message."""

    id: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None
    sha256: str | None = None
    voice: bool = False
    animated: bool = False


class Location(Record):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class SharedContactPhone(Record):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class SharedContact(Record):
    """A contact card the user shared (a `contacts` message): what the card showed them."""

    name: str | None = None
    """`formatted_name`, else first and last name joined."""
    company: str | None = None
    phones: tuple[SharedContactPhone, ...] = ()
    emails: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


class OrderItem(Record):
    product_retailer_id: str | None = None
    quantity: int | None = None
    item_price: float | None = None
    currency: str | None = None


class Order(Record):
    """A cart the user sent from the business's catalogue (an `order` message)."""

    catalog_id: str | None = None
    text: str | None = None
    items: tuple[OrderItem, ...] = ()


class Referral(Record):
    """The click-to-WhatsApp ad (or post) the user came from: what the ad said to them."""

    source_type: str | None = None
    source_url: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    welcome_message: str | None = None
    """The greeting the ad showed in the chat before the user wrote."""


class ReferredProduct(Record):
    """The catalogue product the user asked about (`context.referred_product`)."""

    catalog_id: str | None = None
    product_retailer_id: str | None = None


class InboundMessage(Record):
    """One user message, normalised from Meta's webhook (inbound queue, v1)."""

    schema_version: Literal[1] = 1
    phone_number_id: str
    """The business phone number id the message was sent to."""
    display_phone_number: str | None = None
    sender: Sender
    message_id: str
    """Meta's wamid: the correlation id in every log line and the idempotency key."""
    timestamp: int
    """Unix seconds, as Meta reports when the user sent it."""
    type: str
    """Meta's message type, kept as a string so that future types pass through."""
    text: str | None = None
    """User-visible text: text body, button text, interactive reply title, caption..."""
    media: Media | None = None
    location: Location | None = None
    reaction_emoji: str | None = None
    reacted_message_id: str | None = None
    context_message_id: str | None = None
    """The wamid the user replied to, when they quoted a message."""
    forwarded: bool = False
    group_id: str | None = None
    """Set when the message was written in a WhatsApp group the business is in (not answered one-to-one)."""
    contacts: tuple[SharedContact, ...] = ()
    """Contact cards of a `contacts` message."""
    order: Order | None = None
    referral: Referral | None = None
    """Set on the first message a user sends after tapping an ad (any message type)."""
    referred_product: ReferredProduct | None = None

    @property
    def conversation_id(self) -> str:
        """The FIFO group: one ordered stream per business number and user."""
        return sqs_safe_id(self.phone_number_id, self.sender.identity)


class Recipient(Record):
    """Where a reply goes: `to` (phone number) wins over `recipient` (BSUID)."""

    wa_id: str | None = None
    user_id: str | None = None

    @model_validator(mode="after")
    def _has_address(self) -> Recipient:
        if not self.wa_id and not self.user_id:
            raise ValueError("a recipient needs a wa_id or a user_id (BSUID)")
        return self

    @classmethod
    def of(cls, sender: Sender) -> Recipient:
        return cls(wa_id=sender.wa_id, user_id=sender.user_id)

    @property
    def identity(self) -> str:
        """The same key as `Sender.identity`: the BSUID when known, else the phone number."""
        return self.user_id or self.wa_id or ""


class OwnerEcho(Record):
    """A message the business itself sent from the WhatsApp Business app (inbound queue, v1).

    Meta's `smb_message_echoes` webhook. It travels in the conversation's FIFO group,
    ordered with the user's messages, so the AI function pauses the bot and
    remembers what the owner said before it reads the user's next message.
    """

    schema_version: Literal[1] = 1
    kind: Literal["owner_echo"] = "owner_echo"
    phone_number_id: str
    display_phone_number: str | None = None
    recipient: Recipient
    """The user the owner wrote to: the phone number from `to` (digits only) and/or the BSUID."""
    message_id: str
    timestamp: int
    type: str
    text: str | None = None
    """What the owner wrote: the text body or a media caption; None for other types."""

    @property
    def conversation_id(self) -> str:
        """The FIFO group of the user's own messages (same key as `InboundMessage.conversation_id`)."""
        return sqs_safe_id(self.phone_number_id, self.recipient.identity)


def _inbound_kind(value: Any) -> str:
    """Records without `kind` are `InboundMessage` v1 (written before kinds existed)."""
    kind = value.get("kind", "message") if isinstance(value, dict) else getattr(value, "kind", "message")
    return kind if isinstance(kind, str) else "unknown"


InboundRecord = Annotated[
    Annotated[InboundMessage, Tag("message")] | Annotated[OwnerEcho, Tag("owner_echo")],
    Discriminator(_inbound_kind),
]

inbound_record_adapter: TypeAdapter[InboundMessage | OwnerEcho] = TypeAdapter(InboundRecord)
"""Parses an inbound queue body into the right kind."""


class TypingIndicator(Record):
    """Mark the inbound message read and show "typing…" while the reply is made."""

    schema_version: Literal[1] = 1
    kind: Literal["typing"] = "typing"
    phone_number_id: str
    inbound_message_id: str


class TextReply(Record):
    """A text answer to one inbound message (outbound queue, v1)."""

    schema_version: Literal[1] = 1
    kind: Literal["text"] = "text"
    phone_number_id: str
    recipient: Recipient
    inbound_message_id: str
    """The wamid answered: quoted as `context.message_id` and used as correlation id."""
    text: str = Field(min_length=1)


OutboundAction = Annotated[TypingIndicator | TextReply, Field(discriminator="kind")]

outbound_action_adapter: TypeAdapter[TypingIndicator | TextReply] = TypeAdapter(OutboundAction)
"""Parses an outbound queue body into the right kind."""
