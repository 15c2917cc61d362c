"""Meta-shaped webhook bodies and their X-Hub-Signature-256, as a WhatsApp user's messages arrive."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "15550783881"
BUSINESS_ACCOUNT_ID = "102290129340398"


def new_wamid() -> str:
    return "wamid.LOCAL" + uuid.uuid4().hex.upper()


def signature(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 header Meta sends: HMAC-SHA256 of the raw body with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def message_webhook(
    wa_id: str | None,
    message: dict[str, Any],
    *,
    name: str = "Local User",
    phone_number_id: str = PHONE_NUMBER_ID,
    user_id: str | None = None,
) -> bytes:
    """One `messages` webhook carrying one user message; compact JSON, as Meta sends it.

    `user_id` is the sender's BSUID (`from_user_id`); a user who hides their number
    behind a username has one and no `wa_id` (pass None).
    """
    sender = {"from": wa_id} if wa_id else {}
    if user_id:
        sender["from_user_id"] = user_id
    message = {**sender, "timestamp": str(int(time.time())), **message}
    message.setdefault("id", new_wamid())
    contact: dict[str, Any] = {"profile": {"name": name}}
    if wa_id:
        contact["wa_id"] = wa_id
    if user_id:
        contact["user_id"] = user_id
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": BUSINESS_ACCOUNT_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_PHONE_NUMBER,
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [contact],
                            "messages": [message],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def echo_webhook(
    to: str | None,
    text: str,
    *,
    to_user_id: str | None = None,
    wamid: str | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
) -> bytes:
    """Meta's `smb_message_echoes` webhook: the owner wrote `text` to a user from the WhatsApp Business app.

    Shaped like Meta's reference example (`from` = the business's display number, `to`
    = the user's number as the app dialled it, with a `+`); `to_user_id` is the user's BSUID.
    """
    echo: dict[str, Any] = {
        "from": DISPLAY_PHONE_NUMBER,
        "id": wamid or new_wamid(),
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    if to:
        echo["to"] = f"+{to}"
    if to_user_id:
        echo["to_user_id"] = to_user_id
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": BUSINESS_ACCOUNT_ID,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_PHONE_NUMBER,
                                "phone_number_id": phone_number_id,
                            },
                            "message_echoes": [echo],
                        },
                        "field": "smb_message_echoes",
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def text_message(text: str, wamid: str | None = None) -> dict[str, Any]:
    return {"id": wamid or new_wamid(), "type": "text", "text": {"body": text}}


def sticker_message(
    wamid: str | None = None, *, media_id: str = "1234567890", sha256: str = "local-sticker-sha256"
) -> dict[str, Any]:
    return {
        "id": wamid or new_wamid(),
        "type": "sticker",
        "sticker": {"mime_type": "image/webp", "sha256": sha256, "id": media_id, "animated": False},
    }


def audio_message(
    media_id: str, sha256: str, *, voice: bool = True, wamid: str | None = None
) -> dict[str, Any]:
    """A voice note (`voice: true`) or an audio file; `sha256` in base64, as Meta sends it."""
    return {
        "id": wamid or new_wamid(),
        "type": "audio",
        "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": sha256, "id": media_id, "voice": voice},
    }


def image_message(
    media_id: str,
    sha256: str,
    caption: str | None = None,
    *,
    mime_type: str = "image/jpeg",
    wamid: str | None = None,
) -> dict[str, Any]:
    image = {"mime_type": mime_type, "sha256": sha256, "id": media_id}
    if caption is not None:
        image["caption"] = caption
    return {"id": wamid or new_wamid(), "type": "image", "image": image}


def document_message(
    media_id: str,
    sha256: str,
    filename: str,
    *,
    mime_type: str = "application/pdf",
    caption: str | None = None,
    wamid: str | None = None,
) -> dict[str, Any]:
    document = {"filename": filename, "mime_type": mime_type, "sha256": sha256, "id": media_id}
    if caption is not None:
        document["caption"] = caption
    return {"id": wamid or new_wamid(), "type": "document", "document": document}


def video_message(media_id: str, caption: str | None = None, wamid: str | None = None) -> dict[str, Any]:
    video = {"mime_type": "video/mp4", "sha256": "dmlkZW8=", "id": media_id}
    if caption is not None:
        video["caption"] = caption
    return {"id": wamid or new_wamid(), "type": "video", "video": video}


def contacts_message(
    name: str, phone: str, wa_id: str | None = None, wamid: str | None = None
) -> dict[str, Any]:
    """A shared contact card, in Meta's shape (name, phones with the contact's wa_id when on WhatsApp)."""
    first, _, last = name.partition(" ")
    card_phone = {"phone": phone, "type": "MOBILE", **({"wa_id": wa_id} if wa_id else {})}
    return {
        "id": wamid or new_wamid(),
        "type": "contacts",
        "contacts": [
            {
                "name": {
                    "formatted_name": name,
                    "first_name": first,
                    **({"last_name": last} if last else {}),
                },
                "phones": [card_phone],
            }
        ],
    }


def order_message(
    catalog_id: str, items: list[tuple[str, int, float, str]], text: str = "", wamid: str | None = None
) -> dict[str, Any]:
    """A catalogue order: items as (product_retailer_id, quantity, item_price, currency)."""
    return {
        "id": wamid or new_wamid(),
        "type": "order",
        "order": {
            "catalog_id": catalog_id,
            "text": text,
            "product_items": [
                {"product_retailer_id": sku, "quantity": quantity, "item_price": price, "currency": currency}
                for sku, quantity, price, currency in items
            ],
        },
    }


def ad_referral_message(text: str, headline: str, body: str, wamid: str | None = None) -> dict[str, Any]:
    """A text sent from a click-to-WhatsApp ad (`referral`, as in Meta's example)."""
    return {
        **text_message(text, wamid),
        "referral": {
            "source_url": "https://fb.me/local-ad",
            "source_id": "120226305854810726",
            "source_type": "ad",
            "headline": headline,
            "body": body,
            "media_type": "image",
            "ctwa_clid": "local-click-id",
        },
    }


def location_message(
    latitude: float, longitude: float, name: str, wamid: str | None = None
) -> dict[str, Any]:
    return {
        "id": wamid or new_wamid(),
        "type": "location",
        "location": {"latitude": latitude, "longitude": longitude, "name": name},
    }


def wamid_of(body: bytes) -> str:
    """The message id inside a body built by `message_webhook`."""
    payload = json.loads(body)
    wamid: str = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    return wamid
