"""X-Hub-Signature-256 verification over raw bytes, header variants and the raw body rebuild."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import CORPUS
from wa_assistant.webhook.body import BodyTooLargeError, UndecodableBodyError, raw_body
from wa_assistant.webhook.signature import (
    SignatureVerdict,
    check_signature,
    expected_signature,
    verify_signature,
)

SECRET = "test_app_secret"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


ASCII_BODY = b'{"object":"whatsapp_business_account","entry":[]}'
VALUE = {"text": "äöå / @ 🙂 नमस्ते"}
RAW_UTF8 = json.dumps(VALUE, ensure_ascii=False, separators=(",", ":")).encode()
META_ESCAPED = json.dumps(VALUE, ensure_ascii=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("body", [ASCII_BODY, RAW_UTF8, META_ESCAPED, b"", b"\xff\xfe not utf-8"])
def test_a_signature_over_the_exact_bytes_is_valid(body: bytes) -> None:
    assert check_signature(SECRET, body, sign(body)) is SignatureVerdict.VALID
    assert verify_signature(SECRET.encode(), body, sign(body))
    assert expected_signature(SECRET, body) == sign(body)


def test_meta_escaped_unicode_and_raw_utf8_are_different_bytes_with_different_signatures() -> None:
    assert json.loads(RAW_UTF8) == json.loads(META_ESCAPED)
    assert META_ESCAPED.isascii()
    assert b"\\u00e4" in META_ESCAPED
    assert sign(RAW_UTF8) != sign(META_ESCAPED)
    assert check_signature(SECRET, RAW_UTF8, sign(META_ESCAPED)) is SignatureVerdict.MISMATCH
    # A verifier that re-serialises the parsed body signs different bytes: it would refuse Meta's request.
    reserialised = json.dumps(json.loads(META_ESCAPED)).encode()
    assert not verify_signature(SECRET, reserialised, sign(META_ESCAPED))
    assert verify_signature(SECRET, META_ESCAPED, sign(META_ESCAPED))


def test_a_different_secret_or_a_changed_byte_is_a_mismatch() -> None:
    assert check_signature("other", ASCII_BODY, sign(ASCII_BODY)) is SignatureVerdict.MISMATCH
    assert check_signature(SECRET, ASCII_BODY + b" ", sign(ASCII_BODY)) is SignatureVerdict.MISMATCH


GOOD = sign(ASCII_BODY)
HEX = GOOD.removeprefix("sha256=")


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (GOOD, SignatureVerdict.VALID),
        ("sha256=" + HEX.upper(), SignatureVerdict.VALID),  # hex is case-insensitive
        (f"  {GOOD}\t", SignatureVerdict.VALID),  # surrounding whitespace stripped
        (None, SignatureVerdict.MISSING),
        ("", SignatureVerdict.MISSING),
        ("   ", SignatureVerdict.MISSING),
        (HEX, SignatureVerdict.MALFORMED),  # no prefix
        ("sha1=" + hashlib.sha1(ASCII_BODY).hexdigest(), SignatureVerdict.MALFORMED),
        ("SHA256=" + HEX, SignatureVerdict.MALFORMED),  # the prefix is exactly Meta's
        (f"{GOOD},{GOOD}", SignatureVerdict.MALFORMED),  # two headers, comma-joined by API Gateway
        (f"{GOOD}, sha256={'0' * 64}", SignatureVerdict.MALFORMED),
        ("sha256=" + HEX[:-1], SignatureVerdict.MALFORMED),  # too short
        ("sha256=" + HEX + "00", SignatureVerdict.MALFORMED),  # too long
        ("sha256=" + " ".join(HEX[i : i + 2] for i in range(0, 64, 2)), SignatureVerdict.MALFORMED),
        ("sha256=" + "g" * 64, SignatureVerdict.MALFORMED),
        ("sha256= " + HEX, SignatureVerdict.MALFORMED),
        ("sha256=" + "0" * 64, SignatureVerdict.MISMATCH),
        ("garbage", SignatureVerdict.MALFORMED),
        ("sha256=" + "\u0661" * 64, SignatureVerdict.MALFORMED),  # non-ASCII digits
    ],
)
def test_header_variants(header: str | None, verdict: SignatureVerdict) -> None:
    assert check_signature(SECRET, ASCII_BODY, header) is verdict
    assert verify_signature(SECRET, ASCII_BODY, header) is (verdict is SignatureVerdict.VALID)


@given(body=st.binary(max_size=512), header=st.text(max_size=100))
def test_random_headers_never_verify_and_never_raise(body: bytes, header: str) -> None:
    assert not verify_signature(SECRET, body, header)
    assert verify_signature(SECRET, body, header + sign(body)) is (not header.strip())


def _corpus_vectors() -> list[tuple[str, str, bool, str]]:
    path = CORPUS / "signatures.tsv"
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return [
        (row["file"], row["x_hub_signature_256"], row["expected_valid"] == "true", row["note"])
        for row in csv.DictReader(lines, delimiter="\t")
    ]


@pytest.mark.skipif(not (CORPUS / "signatures.tsv").exists(), reason="public corpus not present")
@pytest.mark.parametrize(("file", "header", "valid", "note"), _corpus_vectors())
def test_corpus_signature_vectors(file: str, header: str, valid: bool, note: str) -> None:
    body = (CORPUS / file).read_bytes()
    assert verify_signature(SECRET, body, header) is valid, note


# ----------------------------------------------------------------- raw body rebuild
def test_plain_body_is_its_utf8_bytes() -> None:
    text = RAW_UTF8.decode()
    assert raw_body(text, False, 1024) == RAW_UTF8
    assert raw_body(None, False, 1024) == b""


def test_base64_body_is_decoded_to_the_exact_bytes() -> None:
    body = b"\xff\x00 binary \xe4"
    assert raw_body(base64.b64encode(body).decode(), True, 1024) == body


def test_invalid_base64_is_refused() -> None:
    with pytest.raises(UndecodableBodyError):
        raw_body("not base64!!", True, 1024)


def test_lone_surrogate_in_the_body_string_is_refused() -> None:
    with pytest.raises(UndecodableBodyError):
        raw_body('{"a":"\ud800"}', False, 1024)


@pytest.mark.parametrize("size", [1024, 1025])
def test_body_size_cap_counts_bytes(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)  # 2 bytes per é
    if len(text.encode()) > 1024:
        with pytest.raises(BodyTooLargeError):
            raw_body(text, False, 1024)
    else:
        assert len(raw_body(text, False, 1024)) == size
    encoded = base64.b64encode(b"x" * size).decode()
    if size > 1024:
        with pytest.raises(BodyTooLargeError):
            raw_body(encoded, True, 1024)
    else:
        assert len(raw_body(encoded, True, 1024)) == size
