"""Pydantic models of Meta's WhatsApp webhook (`object`/`entry[]`/`changes[]`/`value`).

Tolerance rules, decided once here:
- unknown fields are ignored (`extra="ignore"`), so Meta can add fields freely;
- message `type` is a plain string: a type that does not exist yet still parses;
- a change whose `field` is not `messages` or `smb_message_echoes` keeps its field
  name but not its value (other webhook fields have other shapes and are ignored later);
- one malformed item of a list marked `DropsInvalidItems` (an entry, a change, a
  contact, a message, a status, a value-level error) is dropped and reported as a
  `SkippedItem`; its siblings are kept. Only a payload whose top level is unusable
  fails as a whole.
- duplicate JSON keys: the last one wins (JSON allows them; the signature
  already proved Meta sent the bytes, so there is no parser-differential risk).

`parse_webhook` validates the raw bytes in one pydantic-core pass
(`model_validate_json`, no Python validator that would copy the JSON into Python
objects). Only when that pass fails does the tolerant path run: it reads the
error locations, drops the failing items and validates what is left once more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, from_json

WHATSAPP_OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"
ECHOES_FIELD = "smb_message_echoes"
"""Messages the business sent from the WhatsApp Business app (coexistence): `value.message_echoes[]`."""


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


@dataclass(frozen=True, slots=True)
class DropsInvalidItems:
    """Marks a list whose malformed items are dropped and reported instead of failing the parent.

    Annotation metadata rather than a field validator: a Python validator on a list
    would run on every request and turn pydantic-core's JSON parsing into Python
    objects first; the marker costs nothing until a payload actually fails.
    """

    kind: str


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


class WelcomeMessage(_Part):
    text: str | None = None


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
    welcome_message: WelcomeMessage | None = None


class SharedContactName(_Part):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class SharedContactPhone(_Part):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class SharedContactOrg(_Part):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class SharedContactEmail(_Part):
    email: str | None = None


class SharedContactUrl(_Part):
    url: str | None = None


class SharedContact(_Part):
    """A vCard the user shared (a `contacts` message); addresses and birthday are ignored."""

    name: SharedContactName | None = None
    org: SharedContactOrg | None = None
    phones: list[SharedContactPhone] | None = None
    emails: list[SharedContactEmail] | None = None
    urls: list[SharedContactUrl] | None = None


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
    group_id: str | None = None
    """Set on messages written in a WhatsApp group (Groups API)."""

    @model_validator(mode="after")
    def _has_sender(self) -> WebhookMessage:
        if not self.from_ and not self.from_user_id:
            raise ValueError("a message needs `from` or `from_user_id`")
        return self


# ----------------------------------------------------------------- echoes
class WebhookEcho(_Part):
    """A message the business sent from the WhatsApp Business app: `from` = the business, `to` = the user.

    `to` is the user's number as the app addressed it (Meta's reference shows both
    `16505551234` and `+16505551234`); `to_user_id` is the user's BSUID, which
    BSPs relaying Meta's echoes show since the BSUID rollout. One of them is needed.
    """

    id: str = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    to_user_id: str | None = None
    timestamp: int
    type: str = Field(min_length=1)
    text: TextContent | None = None
    image: MediaContent | None = None
    video: MediaContent | None = None
    document: MediaContent | None = None

    @model_validator(mode="after")
    def _has_recipient(self) -> WebhookEcho:
        if not (self.to and self.to.strip()) and not self.to_user_id:
            raise ValueError("an echo needs `to` or `to_user_id`")
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
    """The value of a `messages` change (messages, statuses and/or errors) or of a
    `smb_message_echoes` change (message_echoes), for one business number."""

    messaging_product: str | None = None
    metadata: Metadata
    contacts: Annotated[list[Contact] | None, DropsInvalidItems("contact")] = None
    messages: Annotated[list[WebhookMessage] | None, DropsInvalidItems("message")] = None
    statuses: Annotated[list[WebhookStatus] | None, DropsInvalidItems("status")] = None
    errors: Annotated[list[WebhookError] | None, DropsInvalidItems("error")] = None
    message_echoes: Annotated[list[WebhookEcho] | None, DropsInvalidItems("echo")] = None


class Change(_Part):
    field: str
    value: MessagesValue | None = None
    """Kept only for the `messages` and `smb_message_echoes` fields; None for every other field."""

    @model_validator(mode="after")
    def _value_only_for_messages(self) -> Change:
        # An after validator sees the built model: no Python copy of the JSON is made.
        if not _carries_messages_value(self.field):
            self.value = None
        return self


def _carries_messages_value(field: object) -> bool:
    """Only `messages` and `smb_message_echoes` changes have a value of the MessagesValue shape."""
    return field in (MESSAGES_FIELD, ECHOES_FIELD)


class Entry(_Part):
    id: str | int | None = None
    """The WhatsApp Business Account id (not used; any scalar is accepted)."""
    changes: Annotated[list[Change] | None, DropsInvalidItems("change")] = None


class WebhookPayload(_Part):
    object: str
    entry: Annotated[list[Entry] | None, DropsInvalidItems("entry")] = None


@dataclass(frozen=True, slots=True)
class ParsedWebhook:
    """A parse result: the payload (None when the JSON is not a webhook at all) and what was dropped."""

    payload: WebhookPayload | None
    skipped: tuple[SkippedItem, ...] = ()
    rejection: str | None = None
    """Why the JSON is not a webhook (no user content in it)."""


_validate_payload_json = WebhookPayload.__pydantic_validator__.validate_json
"""`WebhookPayload.model_validate_json` without its per-call keyword handling (~1 µs of ~10)."""


def parse_webhook(raw: bytes) -> ParsedWebhook:
    """Validate a (signature-checked) body; raises InvalidJsonError only when it is not JSON."""
    try:
        return ParsedWebhook(payload=_validate_payload_json(raw))
    except ValidationError:
        pass  # not JSON, not a webhook, or items to drop: the tolerant path tells which
    try:
        document = from_json(raw)  # the parser model_validate_json uses, with the same rules
    except ValueError as error:
        raise InvalidJsonError(f"Invalid JSON: {error}") from None
    return _parse_dropping_invalid_items(document)


# ----------------------------------------------------------------- the tolerant path
Location = tuple[str | int, ...]


def _droppable_lists(model: type[BaseModel], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Where the `DropsInvalidItems` lists are (field names from the top, indexes left out) -> item kind."""
    found: dict[tuple[str, ...], str] = {}
    for name, info in model.model_fields.items():
        where = (*path, info.alias or name)
        for marker in info.metadata:
            if isinstance(marker, DropsInvalidItems):
                found[where] = marker.kind
        for nested in _models_in(info.annotation):
            found |= _droppable_lists(nested, where)
    return found


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if get_origin(annotation) is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from _models_in(argument)


DROPPABLE_LISTS = _droppable_lists(WebhookPayload)
"""e.g. ("entry", "changes", "value", "messages") -> "message"; derived from the models' markers."""


@dataclass(frozen=True, slots=True)
class _FailedItem:
    location: Location
    """Where the item is in the document, e.g. ("entry", 0, "changes", 0, "value", "messages", 2)."""
    kind: str
    problem: str
    """`where.inside.the.item: error_type`, never the input value (it may be user text)."""


def _failed_item(loc: Location) -> _FailedItem | None:
    """The innermost droppable item an error lies in; None when the error is outside every such item.

    An error about a list itself (e.g. `messages` is not a list) lies in the item
    that holds the list, so that item is dropped, as for any other bad field.
    """
    names: list[str] = []
    found: _FailedItem | None = None
    for position, part in enumerate(loc):
        if isinstance(part, str):
            names.append(part)
        elif (kind := DROPPABLE_LISTS.get(tuple(names))) is not None:
            found = _FailedItem(loc[: position + 1], kind, ".".join(map(str, loc[position + 1 :])))
    return found


def _parse_dropping_invalid_items(document: Any) -> ParsedWebhook:
    """Drop every item an error lies in (reporting the outermost only), then validate the rest."""
    _forget_values_of_other_fields(document)
    try:
        return ParsedWebhook(payload=WebhookPayload.model_validate(document))
    except ValidationError as error:
        errors = _details(error)
    kinds: dict[Location, str] = {}
    problems: dict[Location, list[str]] = {}
    outside: list[ErrorDetails] = []
    for error_details in errors:
        item = _failed_item(error_details["loc"])
        if item is None:
            outside.append(error_details)
            continue
        kinds[item.location] = item.kind
        problems.setdefault(item.location, []).append(f"{item.problem}: {error_details['type']}")
    if outside:
        return _rejected(outside)
    dropped = [location for location in kinds if not _inside_another(location, kinds)]
    skipped = tuple(
        SkippedItem(
            kind=kinds[location],
            index=int(location[-1]),
            item_id=_item_id(document, location),
            problems=tuple(problems[location]),
        )
        for location in dropped
    )
    for location in sorted(dropped, reverse=True):  # later items first: earlier locations stay valid
        del _at(document, location[:-1])[location[-1]]
    try:
        payload = WebhookPayload.model_validate(document)
    except ValidationError as error:  # not expected: every failing part was just removed
        return _rejected(_details(error))
    return ParsedWebhook(payload=payload, skipped=skipped)


def _forget_values_of_other_fields(document: Any) -> None:
    """What `Change` does after validation, done before it: other fields' values may have any shape."""
    entries = document.get("entry") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            if isinstance(change, dict) and not _carries_messages_value(change.get("field")):
                change["value"] = None


def _inside_another(location: Location, failed: dict[Location, str]) -> bool:
    return any(location[:length] in failed for length in range(1, len(location)))


def _at(document: Any, location: Location) -> Any:
    node = document
    for part in location:
        node = node[part]
    return node


def _item_id(document: Any, location: Location) -> str | None:
    item = _at(document, location)
    item_id = item.get("id") if isinstance(item, dict) else None
    return item_id if isinstance(item_id, str) else None


def _details(error: ValidationError) -> list[ErrorDetails]:
    return error.errors(include_url=False, include_input=False, include_context=False)


def _rejected(errors: list[ErrorDetails]) -> ParsedWebhook:
    problems = "; ".join(".".join(str(p) for p in e["loc"]) + f": {e['type']}" for e in errors[:5])
    return ParsedWebhook(payload=None, rejection=f"not a webhook payload ({problems})")
