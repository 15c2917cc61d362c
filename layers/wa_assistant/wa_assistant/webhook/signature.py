"""Meta's X-Hub-Signature-256 check: HMAC-SHA256 of the app secret over the raw request bytes.

Meta signs the exact bytes it sends (ASCII with `\\uXXXX` escapes), so the body is
never parsed or re-serialised before this check: a verifier that re-dumps JSON
fails on real traffic containing non-ASCII text, `/` or `@`.

Header rules (decided here, tested in tests/unit/webhook/test_signature.py):
- surrounding whitespace is stripped; the prefix must be exactly `sha256=`;
- the digest must be exactly 64 hex digits, upper or lower case (hex is case-insensitive);
- anything else (missing, `sha1=`, two signatures comma-joined by API Gateway, garbage)
  is refused. Every refusal maps to 401: Meta treats any non-2xx as a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum

SIGNATURE_PREFIX = "sha256="
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class SignatureVerdict(StrEnum):
    """Why a request is (not) authentic; the value is safe to log."""

    VALID = "valid"
    MISSING = "missing X-Hub-Signature-256 header"
    MALFORMED = "X-Hub-Signature-256 is not 'sha256=<64 hex digits>'"
    MISMATCH = "X-Hub-Signature-256 does not match the body"


def expected_signature(app_secret: str | bytes, raw_body: bytes) -> str:
    """The header value Meta sends for this body (also used to sign local test events)."""
    key = app_secret.encode() if isinstance(app_secret, str) else app_secret
    return SIGNATURE_PREFIX + hmac.new(key, raw_body, hashlib.sha256).hexdigest()


def check_signature(app_secret: str | bytes, raw_body: bytes, header: str | None) -> SignatureVerdict:
    """Verdict on one request; compares digests in constant time."""
    if header is None or not header.strip():
        return SignatureVerdict.MISSING
    value = header.strip()
    if not value.startswith(SIGNATURE_PREFIX):
        return SignatureVerdict.MALFORMED
    digest_hex = value[len(SIGNATURE_PREFIX) :]
    # fullmatch before fromhex: fromhex would also accept spaces between bytes.
    if not _HEX_DIGEST.fullmatch(digest_hex):
        return SignatureVerdict.MALFORMED
    key = app_secret.encode() if isinstance(app_secret, str) else app_secret
    expected = hmac.new(key, raw_body, hashlib.sha256).digest()
    if hmac.compare_digest(expected, bytes.fromhex(digest_hex)):
        return SignatureVerdict.VALID
    return SignatureVerdict.MISMATCH


def verify_signature(app_secret: str | bytes, raw_body: bytes, header: str | None) -> bool:
    """True only for a well-formed header whose digest matches the raw body."""
    return check_signature(app_secret, raw_body, header) is SignatureVerdict.VALID
