"""The raw bytes of an API Gateway HTTP API request body, size-capped.

The webhook signature covers the bytes Meta sent, so they are rebuilt exactly:
base64-decoded when API Gateway set isBase64Encoded, else the UTF-8 encoding of
the body string (API Gateway decoded valid UTF-8 text into it, so encoding it
again gives back the same bytes).
"""

from __future__ import annotations

import base64
import binascii

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLargeError(ValueError):
    """The body exceeds the configured cap (413)."""


class UndecodableBodyError(ValueError):
    """isBase64Encoded was set but the body is not valid base64 (400)."""


def raw_body(body: str | None, is_base64_encoded: bool, max_bytes: int) -> bytes:
    """Request bytes as received; refuses an oversize body before decoding it."""
    text = body or ""
    # Cheap pre-check on the string: base64 inflates by 4/3, and UTF-8 never has fewer bytes than chars.
    limit_chars = (max_bytes + 2) // 3 * 4 if is_base64_encoded else max_bytes
    if len(text) > limit_chars:
        raise BodyTooLargeError(f"body of more than {max_bytes} bytes")
    if is_base64_encoded:
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise UndecodableBodyError("isBase64Encoded body is not valid base64") from error
    else:
        try:
            data = text.encode()
        except UnicodeEncodeError as error:  # lone surrogates in the string cannot come from real bytes
            raise UndecodableBodyError("body string is not encodable as UTF-8") from error
    if len(data) > max_bytes:
        raise BodyTooLargeError(f"body of more than {max_bytes} bytes")
    return data
