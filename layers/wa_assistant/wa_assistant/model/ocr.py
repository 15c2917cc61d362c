"""Mistral OCR adapter (Document AI): `POST {MISTRAL_BASE_URL}/ocr` -> the document's text as markdown.

The file travels as a data URL, as Mistral's OpenAPI `OCRRequest` allows: a
`document_url` chunk for a PDF, an `image_url` chunk for a photo sent as a
document. Pages beyond the operator's cap are not read: when the PDF shows more
pages than the cap, only pages 0..cap-1 are asked for (`pages`); a PDF whose
page count cannot be seen (compressed object streams) is sent whole and is then
bounded by the document size cap. Failures go through
`model.chat.classify_mistral_error`, the one table for every Mistral endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from wa_assistant.deadline import HasTime, ensure_time, unlimited
from wa_assistant.model.chat import post_to_mistral, unusable_reply
from wa_assistant.model.content import data_url

DEFAULT_OCR_MODEL = "mistral-ocr-latest"
PDF = "application/pdf"
# `/Type /Page` objects (not `/Pages`) and the page tree's `/Count`: enough to see the
# page count of an uncompressed PDF. No PDF library is in the layer for this one number.
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_PAGE_COUNT = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b")


@dataclass(frozen=True, slots=True)
class OcrResult:
    pages: tuple[str, ...] = field(repr=False)
    """Markdown of each page read, in order."""
    pages_processed: int
    """What Mistral billed (`usage_info.pages_processed`), else the pages returned."""
    pages_in_document: int | None = None
    """The PDF's page count when it could be seen; None otherwise."""
    latency_ms: float = 0.0

    @property
    def text(self) -> str:
        return "\n\n".join(page.strip() for page in self.pages if page.strip())


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    markdown: str = ""


class _UsageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    pages_processed: int | None = None


class _OcrBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    pages: list[_Page]
    usage_info: _UsageInfo | None = None


def pdf_page_count(data: bytes) -> int | None:
    """The page count an uncompressed PDF shows, or None when it cannot be seen."""
    counts = [int(a or b) for a, b in _PAGE_COUNT.findall(data)]
    objects = len(_PAGE_OBJECT.findall(data))
    found = max([*counts, objects])
    return found or None


def ocr_request(
    model: str, data: bytes, *, mime_type: str, filename: str | None, max_pages: int
) -> tuple[dict[str, Any], int | None]:
    """The JSON body of one OCR call, and the PDF's page count when known."""
    document: dict[str, Any]
    pages_in_document = None
    if mime_type.split(";", 1)[0].strip().lower() == PDF:
        document = {"type": "document_url", "document_url": data_url(PDF, data)}
        if filename:
            document["document_name"] = filename
        pages_in_document = pdf_page_count(data)
    else:
        document = {"type": "image_url", "image_url": data_url(mime_type, data)}
    body: dict[str, Any] = {"model": model, "document": document, "include_image_base64": False}
    if pages_in_document is not None and pages_in_document > max_pages:
        body["pages"] = list(range(max_pages))
    return body, pages_in_document


class DocumentOcr:
    """Reads a PDF or an image; raises `MistralError` when there is no result."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        max_pages: int,
        api_key: Callable[[], str],
        http: httpx.Client,
        seconds_per_call: float = 30.0,
        has_time: HasTime = unlimited,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/ocr"
        self.model = model
        self.max_pages = max(1, max_pages)
        self._api_key = api_key
        self._http = http
        self._seconds_per_call = seconds_per_call
        self.has_time = has_time

    def read(self, data: bytes, *, mime_type: str, filename: str | None = None) -> OcrResult:
        key = self._api_key()
        body, pages_in_document = ocr_request(
            self.model, data, mime_type=mime_type, filename=filename, max_pages=self.max_pages
        )
        ensure_time(self.has_time, self._seconds_per_call, "the OCR")
        response, latency_ms = post_to_mistral(self._http, self.url, key, json=body)
        if response.is_success:
            try:
                parsed = _OcrBody.model_validate_json(response.content)
            except ValidationError:
                pass  # classified below like any reply without text
            else:
                pages = tuple(page.markdown for page in parsed.pages[: self.max_pages])
                usage = parsed.usage_info or _UsageInfo()
                return OcrResult(
                    pages=pages,
                    pages_processed=usage.pages_processed
                    if usage.pages_processed is not None
                    else len(parsed.pages),
                    pages_in_document=pages_in_document,
                    latency_ms=latency_ms,
                )
        raise unusable_reply(response, key)
