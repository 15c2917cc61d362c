"""Mistral transcription and OCR adapters: requests as in Mistral's OpenAPI, replies, the one error table."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import respx

from local_stack.multipart import parse_form
from tests.openapi import OpenApiSpec
from tests.support import CORPUS
from wa_assistant.model.chat import MistralError
from wa_assistant.model.ocr import DocumentOcr, ocr_request, pdf_page_count
from wa_assistant.model.transcription import Transcriber

BASE = "https://mistral.test/v1"
KEY = "sk-media-NEVER-LOG-1234"
MISTRAL = CORPUS / "mistral"
needs_corpus = pytest.mark.skipif(not MISTRAL.is_dir(), reason="public corpus not present")
AUDIO = b"OggS\x00\x02" + bytes(range(256)) * 4


def simple_pdf(pages: int) -> bytes:
    """A small uncompressed PDF with `pages` pages (enough structure for a page count)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>",
        *["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>" for _ in range(pages)],
    ]
    body = "%PDF-1.4\n" + "".join(f"{n + 1} 0 obj\n{o}\nendobj\n" for n, o in enumerate(objects))
    return (body + "trailer\n<< /Root 1 0 R >>\n%%EOF\n").encode()


def transcriber(language: str | None = None) -> Transcriber:
    return Transcriber(
        base_url=BASE,
        model="voxtral-mini-latest",
        language=language,
        api_key=lambda: KEY,
        http=httpx.Client(),
    )


def ocr(max_pages: int = 3) -> DocumentOcr:
    return DocumentOcr(
        base_url=BASE,
        model="mistral-ocr-latest",
        max_pages=max_pages,
        api_key=lambda: KEY,
        http=httpx.Client(),
    )


@pytest.fixture
def mistral() -> Any:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture(scope="module")
def media_spec() -> OpenApiSpec:
    if not MISTRAL.is_dir():
        pytest.skip("public corpus not present")
    return OpenApiSpec(MISTRAL / "openapi_media_subset.json")


def form_of(request: httpx.Request) -> dict[str, Any]:
    """The multipart fields as the OpenAPI schema sees them (a file is a binary string)."""
    fields = parse_form(request.headers["Content-Type"], request.content)
    return {name: "<binary>" if f.filename is not None else f.text for name, f in fields.items()}


# ------------------------------------------------------------------ transcription


@needs_corpus
@pytest.mark.parametrize("language", [None, "fr"])
def test_transcription_request_matches_mistrals_openapi(
    mistral: Any, media_spec: OpenApiSpec, language: str | None
) -> None:
    route = mistral.post("/audio/transcriptions").respond(
        content=(MISTRAL / "response_transcription.json").read_bytes()
    )

    transcript = transcriber(language).transcribe(
        AUDIO, mime_type="audio/ogg; codecs=opus", filename="voice.ogg"
    )

    request = route.calls.last.request
    fields = parse_form(request.headers["Content-Type"], request.content)
    assert fields["file"].value == AUDIO
    assert (fields["file"].filename, fields["file"].content_type) == ("voice.ogg", "audio/ogg")
    assert form_of(request) == {"model": "voxtral-mini-latest", "file": "<binary>"} | (
        {"language": language} if language else {}
    )
    errors = media_spec.request_errors(
        "audio_api_v1_transcriptions_post",
        method="POST",
        path=request.url.path,
        headers=dict(request.headers),
        body=form_of(request),
    )
    assert errors == []
    assert transcript.text.startswith("This week, I traveled to Chicago")
    assert (transcript.language, transcript.audio_seconds) == ("en", 203)
    assert "Chicago" not in repr(transcript)  # user content never shows in a repr


@needs_corpus
@pytest.mark.parametrize(
    "name", ["response_transcription_timestamps.json", "response_transcription_diarized.json"]
)
def test_documented_transcription_variants_are_read(mistral: Any, name: str) -> None:
    mistral.post("/audio/transcriptions").respond(content=(MISTRAL / name).read_bytes())
    transcript = transcriber().transcribe(AUDIO, mime_type="audio/ogg", filename="voice.ogg")
    assert transcript.text
    assert transcript.audio_seconds == 203


def test_silence_is_an_empty_transcript_not_an_error(mistral: Any) -> None:
    mistral.post("/audio/transcriptions").respond(
        json={"model": "voxtral-mini-latest", "text": "  ", "language": None, "usage": {"prompt_tokens": 0}}
    )
    assert transcriber().transcribe(AUDIO, mime_type="audio/ogg", filename="v.ogg").text == ""


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (
            429,
            {"object": "error", "message": "Rate limit exceeded", "type": "rate_limited", "code": "1300"},
            True,
        ),
        (503, {"message": "Service unavailable"}, True),
        (200, {"unexpected": True}, True),  # a reply without text: tried again, like the chat endpoint
        (401, {"message": "Unauthorized", "request_id": "r-1"}, False),
        (422, {"detail": [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]}, False),
    ],
)
def test_transcription_failures_go_through_the_one_mistral_table(
    mistral: Any, status: int, body: dict[str, Any], retryable: bool
) -> None:
    mistral.post("/audio/transcriptions").respond(status, json=body)
    with pytest.raises(MistralError) as failed:
        transcriber().transcribe(AUDIO, mime_type="audio/ogg", filename="v.ogg")
    assert (failed.value.retryable, failed.value.status) == (retryable, status)


def test_a_timeout_is_retryable_and_the_key_is_never_echoed(mistral: Any) -> None:
    mistral.post("/audio/transcriptions").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(MistralError) as failed:
        transcriber().transcribe(AUDIO, mime_type="audio/ogg", filename="v.ogg")
    assert (failed.value.retryable, failed.value.status) == (True, None)
    mistral.post("/audio/transcriptions").respond(401, text=f"bad key {KEY}")
    with pytest.raises(MistralError) as rejected:
        transcriber().transcribe(AUDIO, mime_type="audio/ogg", filename="v.ogg")
    assert KEY not in json.dumps(rejected.value.log_fields())


# ------------------------------------------------------------------ OCR


@needs_corpus
@pytest.mark.parametrize(
    ("mime_type", "data", "chunk"),
    [
        ("application/pdf", simple_pdf(2), "document_url"),
        ("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(100), "image_url"),
    ],
)
def test_ocr_request_matches_mistrals_openapi(
    mistral: Any, media_spec: OpenApiSpec, mime_type: str, data: bytes, chunk: str
) -> None:
    route = mistral.post("/ocr").respond(content=(MISTRAL / "response_ocr_image_url.json").read_bytes())

    result = ocr().read(data, mime_type=mime_type, filename="invoice.pdf")

    request = route.calls.last.request
    body = json.loads(request.content)
    assert body["model"] == "mistral-ocr-latest"
    assert body["document"]["type"] == chunk
    url = body["document"][chunk]
    assert url.startswith(f"data:{mime_type};base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == data  # the bytes sent are the file's bytes
    assert "pages" not in body  # within the cap: the whole document
    errors = media_spec.request_errors(
        "ocr_v1_ocr_post", method="POST", path=request.url.path, headers=dict(request.headers), body=body
    )
    assert errors == []
    assert result.text.startswith("PLACE FACE UP ON DASH")
    assert result.pages_processed == 1


@needs_corpus
def test_documented_pdf_ocr_reply_is_read(mistral: Any) -> None:
    mistral.post("/ocr").respond(content=(MISTRAL / "response_ocr.json").read_bytes())
    result = ocr(max_pages=2).read(simple_pdf(1), mime_type="application/pdf")
    assert len(result.pages) == 2  # the reply had more pages than the cap: only the cap is kept
    assert result.pages_processed == 29


def test_pages_beyond_the_cap_are_not_asked_for() -> None:
    body, pages = ocr_request("m", simple_pdf(12), mime_type="application/pdf", filename=None, max_pages=5)
    assert (pages, body["pages"]) == (12, [0, 1, 2, 3, 4])
    body, pages = ocr_request("m", simple_pdf(5), mime_type="application/pdf", filename=None, max_pages=5)
    assert (pages, "pages" in body) == (5, False)
    compressed = (
        b"%PDF-1.7\n1 0 obj\n<< /Type /ObjStm /N 40 /Filter /FlateDecode >>\nstream\nx\x9c...\nendstream"
    )
    body, pages = ocr_request("m", compressed, mime_type="application/pdf", filename=None, max_pages=5)
    assert (pages, "pages" in body) == (
        None,
        False,
    )  # count not visible: never ask for pages that may not exist


def test_pdf_page_count() -> None:
    assert [pdf_page_count(simple_pdf(n)) for n in (1, 3, 30)] == [1, 3, 30]
    assert pdf_page_count(b"not a pdf") is None


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (401, False), (400, False)])
def test_ocr_failures_go_through_the_one_mistral_table(mistral: Any, status: int, retryable: bool) -> None:
    mistral.post("/ocr").respond(
        status, json={"object": "error", "message": "nope", "type": "x", "code": None}
    )
    with pytest.raises(MistralError) as failed:
        ocr().read(simple_pdf(1), mime_type="application/pdf")
    assert (failed.value.retryable, failed.value.status) == (retryable, status)
