"""What Meta's answers mean for a deployer: Graph error codes as the missing permission or asset.

The send function classifies Graph errors for retrying (wa_assistant.whatsapp.graph);
this table says, for a person setting the number up, what to change and where.
Codes and their meaning: Meta's Cloud API error-codes reference (authorization 0/3/10/190/200-299,
throttling 4/80007/130429, integrity 368/131031) and Meta's OpenAPI examples of
getPhoneNumberById (190/463 expired, 200 with subcodes 1349174-1349176, 803, 100).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

ERROR_CODES_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes"
SYSTEM_USER_STEPS = (
    "create a permanent System User token (Meta Business settings > Users > System users > Generate "
    "new token, with whatsapp_business_messaging and whatsapp_business_management) and put it into "
    "the WhatsApp token secret (README, Deploy, step 2)"
)
RATE_LIMIT_CODES = {4, 17, 32, 613, 80007, 130429}
BLOCKED_CODES = {368, 131031}


def graph_error(body: Any) -> tuple[int | None, int | None, str]:
    """(code, error_subcode, message) of a Graph error body; Nones when it is not one."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, ""
    code = error.get("code")
    subcode = error.get("error_subcode")
    return (
        code if isinstance(code, int) else None,
        subcode if isinstance(subcode, int) else None,
        str(error.get("message", "")),
    )


def graph_problem(status: int, body: Any, asset: str) -> tuple[str, str]:  # noqa: PLR0911 - one per kind
    """(what went wrong, how to fix it) for Graph's error answer about `asset` ("phone number 123")."""
    code, subcode, message = graph_error(body)
    said = f"Graph answered {status}" + (f", code {code}" if code is not None else "")
    said += f"/{subcode}" if subcode is not None else ""
    said += f" ({message})" if message else ""
    if code in (0, 190) or (status == 401 and code is None):
        what = "the access token has expired" if subcode == 463 else "the access token is not valid"
        return f"{what}: {said}", SYSTEM_USER_STEPS
    if code == 10 or (code is not None and 200 <= code <= 299):
        return (
            f"the token may not use {asset}: {said}",
            "in Meta Business settings > Users > System users, add the WhatsApp Business Account that owns "
            f"{asset} to the system user's assets (full control), then generate its token again with "
            "whatsapp_business_messaging and whatsapp_business_management",
        )
    if (code == 100 and subcode == 33) or code == 803:
        return (
            f"{asset} is not visible to this token: {said}",
            "check the id (Meta app dashboard > WhatsApp > API Setup) and that the token's system user "
            "has the WhatsApp Business Account that owns it",
        )
    if code == 3:
        return (
            f"the app lacks the WhatsApp capability: {said}",
            "add the WhatsApp product to the app (Meta app dashboard > Add product > WhatsApp)",
        )
    if code in RATE_LIMIT_CODES or status == 429:
        return f"Graph's rate limit was reached: {said}", "run make doctor again in a few minutes"
    if code in BLOCKED_CODES:
        return (
            f"the WhatsApp Business Account is restricted: {said}",
            "see WhatsApp Manager > Account tools > Account quality for the reason and the appeal",
        )
    if status >= 500 or code in (1, 2):
        return f"Graph is unavailable: {said}", "run make doctor again later"
    return said, f"look up code {code} in Meta's error codes reference ({ERROR_CODES_URL})"


def harmless_webhook(phone_number_id: str, waba_id: str) -> bytes:
    """A `messages` webhook that carries only a delivery status of a made-up message.

    The webhook function logs and counts it, and enqueues nothing: no reply, no model call.
    """
    status = {
        "id": f"wamid.DOCTOR-{uuid.uuid4().hex}",
        "status": "delivered",
        "timestamp": str(int(time.time())),
        "recipient_id": "0",
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "0", "phone_number_id": phone_number_id},
                            "statuses": [status],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()
