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
    wa_id: str,
    message: dict[str, Any],
    *,
    name: str = "Local User",
    phone_number_id: str = PHONE_NUMBER_ID,
) -> bytes:
    """One `messages` webhook carrying one user message; compact JSON, as Meta sends it."""
    message = {"from": wa_id, "timestamp": str(int(time.time())), **message}
    message.setdefault("id", new_wamid())
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
                            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                            "messages": [message],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def text_message(text: str, wamid: str | None = None) -> dict[str, Any]:
    return {"id": wamid or new_wamid(), "type": "text", "text": {"body": text}}


def sticker_message(wamid: str | None = None) -> dict[str, Any]:
    return {
        "id": wamid or new_wamid(),
        "type": "sticker",
        "sticker": {
            "mime_type": "image/webp",
            "sha256": "local-sticker-sha256",
            "id": "1234567890",
            "animated": False,
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
