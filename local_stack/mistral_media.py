"""The stand-in model's media endpoints: `/v1/audio/transcriptions`, `/v1/ocr`, and images in chat.

Deterministic and labelled, so tests can assert on them and nobody mistakes them for a model:

- a transcript is what a test registered for those exact bytes (`speech(data, text)`: "the
  voice note says..."), else derived from the bytes' hash:
  `[stand-in transcript of voice note 3f2a9c01] (no words registered for these bytes)`;
- OCR returns the pages a test registered for those bytes (`document(data, pages)`), else one
  page per `/Type /Page` object of the PDF (one for an image), each naming its index and the
  bytes' hash; `pages` in the request limits what is read, as Mistral documents it;
- an image in a chat message is described by its media type, size and hash.

Requests are checked the way Mistral's API checks them (422 with the observed error body
for a missing `model` or `file`, a document that is not a data URL...), and every request is
recorded by the stand-in for tests that check them against Mistral's OpenAPI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local_stack.multipart import FormField, MultipartError, parse_form

TRANSCRIPT_LABEL = "[stand-in transcript"
OCR_LABEL = "[stand-in OCR"
BYTES_PER_AUDIO_SECOND = 2000
"""A WhatsApp voice note (Opus, ~16 kbit/s) is about 2 KB per second: the billed seconds reported."""
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)


def short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def decode_data_url(url: str) -> tuple[str, bytes] | None:
    """(media type, bytes) of a `data:<mime>;base64,...` URL; None when it is not one."""
    found = _DATA_URL.match(url)
    if found is None:
        return None
    try:
        return found["mime"], base64.b64decode(found["data"], validate=True)
    except (binascii.Error, ValueError):
        return None


def describe_image(url: str) -> str:
    decoded = decode_data_url(url)
    if decoded is None:
        return f"an image at {url[:60]}"
    mime, data = decoded
    return f"an image ({mime}, {len(data)} bytes, sha256 {short_hash(data)})"


TRANSCRIPTION_MODEL_PREFIXES = ("voxtral-", "stand-in")
OCR_MODEL_PREFIXES = ("mistral-ocr-", "stand-in")


def invalid_model(model: str) -> dict[str, Any]:
    """Mistral's answer to a model name it does not serve (as the chat stand-in gives it)."""
    return {
        "object": "error",
        "message": f"Invalid model: {model}",
        "type": "invalid_model",
        "param": None,
        "code": "1500",
    }


def validation_error(location: list[str], message: str) -> dict[str, Any]:
    """Mistral's 422 body (observed shape, see the corpus' mistral/error_422_validation.json)."""
    return {
        "object": "error",
        "message": {"detail": [{"type": "value_error", "loc": ["body", *location], "msg": message}]},
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


@dataclass
class MediaModels:
    """What the media endpoints answer; registries filled by tests, all thread-safe."""

    transcription_latency_seconds: float = 0.0
    """Fixed extra time a transcription takes (benchmarks measure a voice note's added latency with it)."""
    _speech: dict[str, str] = field(default_factory=dict)
    _documents: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def speech(self, data: bytes, text: str) -> None:
        """What a voice note with these exact bytes "says"."""
        with self._lock:
            self._speech[hashlib.sha256(data).hexdigest()] = text

    def document(self, data: bytes, pages: list[str]) -> None:
        """The markdown of each page of a document with these exact bytes."""
        with self._lock:
            self._documents[hashlib.sha256(data).hexdigest()] = list(pages)

    def reset(self) -> None:
        with self._lock:
            self._speech.clear()
            self._documents.clear()
            self.transcription_latency_seconds = 0.0

    def control(self, command: dict[str, Any]) -> None:
        """The stand-in's `/_control` body, media part.

        `{"speech": [{"base64", "text"}], "documents": [{"base64", "pages"}],
        "transcription_latency_seconds": 0.5}`
        """
        for item in command.get("speech", []):
            self.speech(base64.b64decode(item["base64"]), str(item["text"]))
        for item in command.get("documents", []):
            self.document(base64.b64decode(item["base64"]), [str(p) for p in item["pages"]])
        if "transcription_latency_seconds" in command:
            self.transcription_latency_seconds = float(command["transcription_latency_seconds"])

    # ------------------------------------------------------------ /v1/audio/transcriptions
    def read_transcription_request(
        self, content_type: str, raw: bytes
    ) -> tuple[dict[str, Any], FormField | None]:
        """The form as recorded (a file as its name, type, size and hash) and the file part."""
        try:
            fields = parse_form(content_type, raw)
        except MultipartError as error:
            return {"error": str(error)}, None
        form: dict[str, Any] = {}
        for name, part in fields.items():
            if part.filename is not None:
                form[name] = {
                    "filename": part.filename,
                    "content_type": part.content_type,
                    "size": len(part.value),
                    "sha256": hashlib.sha256(part.value).hexdigest(),
                }
            else:
                form[name] = part.text
        return form, fields.get("file")

    def transcription(self, form: dict[str, Any], file: FormField | None) -> tuple[int, dict[str, Any]]:
        if "error" in form:
            return 422, validation_error([], f"Invalid multipart body: {form['error']}")
        model = form.get("model")
        if not isinstance(model, str) or not model:
            return 422, validation_error(["model"], "Field required")
        if not model.startswith(TRANSCRIPTION_MODEL_PREFIXES):
            return 400, invalid_model(model)
        if file is None or file.filename is None:
            return 422, validation_error(["file"], "One of file, file_url or file_id is required")
        language = form.get("language")
        if language is not None and not re.fullmatch(r"\w{2}", str(language)):
            return 422, validation_error(["language"], "String should match pattern '^\\w{2}$'")
        if self.transcription_latency_seconds:
            time.sleep(self.transcription_latency_seconds)
        digest = hashlib.sha256(file.value).hexdigest()
        with self._lock:
            said = self._speech.get(digest)
        text = (
            f"{TRANSCRIPT_LABEL} {digest[:8]}] {said}"
            if said
            else f"{TRANSCRIPT_LABEL} of voice note {digest[:8]}] (no words registered for these bytes)"
        )
        if said == "":
            text = ""  # a registered silence: nothing was said
        seconds = max(1, len(file.value) // BYTES_PER_AUDIO_SECOND)
        return 200, {
            "model": model,
            "text": text,
            "language": language or None,
            "segments": [],
            "usage": {
                "prompt_audio_seconds": seconds,
                "prompt_tokens": 4,
                "completion_tokens": len(text.split()),
                "total_tokens": 4 + len(text.split()),
            },
        }

    # ------------------------------------------------------------ /v1/ocr
    def ocr(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return 422, validation_error([], "Input should be a valid dictionary")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return 422, validation_error(["model"], "Field required")
        if not model.startswith(OCR_MODEL_PREFIXES):
            return 400, invalid_model(model)
        document = body.get("document")
        if not isinstance(document, dict) or document.get("type") not in ("document_url", "image_url"):
            return 422, validation_error(["document"], "Input tag does not match any of the expected tags")
        url = document.get(document["type"])
        decoded = decode_data_url(url) if isinstance(url, str) else None
        if decoded is None:
            return 422, validation_error(["document", document["type"]], "Expected a base64 data URL")
        mime, data = decoded
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            registered = self._documents.get(digest)
        if registered is None:
            count = max(1, len(_PAGE_OBJECT.findall(data))) if mime == "application/pdf" else 1
            registered = [
                f"{OCR_LABEL} of {mime} {digest[:8]}, page {i + 1} of {count}]" for i in range(count)
            ]
        wanted = body.get("pages")
        indexes = (
            [i for i in wanted if isinstance(i, int)] if isinstance(wanted, list) else range(len(registered))
        )
        pages = [
            {
                "index": i,
                "markdown": registered[i],
                "images": [],
                "dimensions": {"dpi": 200, "height": 2200, "width": 1700},
            }
            for i in indexes
            if 0 <= i < len(registered)
        ]
        return 200, {
            "pages": pages,
            "model": f"{model}-stand-in",
            "document_annotation": None,
            "usage_info": {"pages_processed": len(pages), "doc_size_bytes": len(data)},
        }
