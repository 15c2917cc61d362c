"""Webhook bodies for the benchmarks, built here (no third-party data in the repository).

One body per message type the project handles, shaped as Meta documents them,
serialised the way Meta sends them: compact JSON, non-ASCII escaped.
"""

from __future__ import annotations

import json
import time
from typing import Any

PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
APP_SECRET = "bench-app-secret"  # noqa: S105 - a fake secret that signs benchmark bodies only


def _envelope(value: dict[str, Any]) -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _value(messages: list[dict[str, Any]], wa_id: str = "16505551234") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": wa_id, "user_id": f"US.{wa_id}"}],
        "messages": messages,
    }


def wamid(index: int) -> str:
    return f"wamid.HBgLMTY1MDUwNzY1MjAVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA{index:06d}"


def _message(kind: str, index: int, wa_id: str = "16505551234", **content: Any) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid(index),
        "timestamp": str(int(time.time())),  # now: older messages fall outside the 24 h service window
        "type": kind,
        **content,
    }


def text_message(index: int, text: str = "Is it in blue?", wa_id: str = "16505551234") -> bytes:
    """A one-message text webhook, the common case."""
    return _envelope(_value([_message("text", index, wa_id, text={"body": text})], wa_id))


def _media(kind: str, **extra: Any) -> dict[str, Any]:
    return {kind: {"id": "1003383421387256", "mime_type": "image/jpeg", "sha256": "a" * 44, **extra}}


REPLIED_TO = {"from": "15550783881", "id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}
"""Interactive and button replies quote the business message they answer."""


def payloads_by_type() -> dict[str, bytes]:
    """Every message type, plus a status-only body and a three-message batch."""
    messages: dict[str, dict[str, Any]] = {
        "text": _message("text", 1, text={"body": "Olá! ¿Tienen envíos a Zürich? 🙂"}),
        "image": _message("image", 2, **_media("image", caption="This one, in blue")),
        "audio (voice)": _message("audio", 3, **_media("audio", voice=True)),
        "video": _message("video", 4, **_media("video")),
        "document": _message("document", 5, **_media("document", filename="invoice.pdf")),
        "sticker": _message("sticker", 6, **_media("sticker", animated=False)),
        "location": _message(
            "location",
            7,
            location={"latitude": 37.48, "longitude": -122.14, "name": "Philz", "address": "1 Hacker Way"},
        ),
        "contacts": _message(
            "contacts",
            8,
            contacts=[
                {
                    "name": {"formatted_name": "Lucía Gómez", "first_name": "Lucía"},
                    "phones": [{"phone": "+1 650-555-1234", "wa_id": "16505551234", "type": "CELL"}],
                }
            ],
        ),
        "interactive button_reply": _message(
            "interactive",
            9,
            interactive={"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}},
            context=REPLIED_TO,
        ),
        "interactive list_reply": _message(
            "interactive",
            10,
            interactive={"type": "list_reply", "list_reply": {"id": "s1", "title": "Shipping"}},
            context=REPLIED_TO,
        ),
        "button": _message("button", 11, button={"payload": "STOP", "text": "Stop promotions"}),
        "reaction": _message(
            "reaction", 12, reaction={"message_id": "wamid.HBgLMTY1MDUwNzY1MjA=", "emoji": "👍"}
        ),
        "order": _message(
            "order",
            13,
            order={
                "catalog_id": "1537",
                "text": "ok",
                "product_items": [
                    {"product_retailer_id": "sku-1", "quantity": 2, "item_price": 9.5, "currency": "USD"}
                ],
            },
        ),
        "system": _message(
            "system",
            14,
            system={"body": "User changed number", "wa_id": "16505559999", "type": "user_changed_number"},
        ),
        "unsupported": _message(
            "unsupported",
            15,
            errors=[
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is not currently supported"},
                }
            ],
        ),
    }
    bodies = {name: _envelope(_value([message])) for name, message in messages.items()}
    bodies["status (delivered)"] = _envelope(
        {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [
                {
                    "id": "wamid.HBgLMTY1MDUwNzY1MjA=",
                    "status": "delivered",
                    "timestamp": "1750000100",
                    "recipient_id": "16505551234",
                    "pricing": {"billable": True, "pricing_model": "PMP", "category": "service"},
                }
            ],
        }
    )
    bodies["batch of 3 texts"] = _envelope(
        _value([_message("text", 20 + i, text={"body": f"part {i}"}) for i in range(3)])
    )
    return bodies
