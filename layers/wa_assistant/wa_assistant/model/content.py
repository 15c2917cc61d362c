"""Content parts of a chat message: text and images, as Mistral's `ContentChunk` schema has them.

A user message's `content` is either a string or a list of parts
(`{"type": "text", "text": ...}`, `{"type": "image_url", "image_url": "data:<mime>;base64,..."}`).
Images travel as data URLs: the bytes never get a public URL, and nothing
outside the request holds them. Their repr shows the size, never the data, so
an image cannot reach a log line through an exception message or a debug print.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TextPart(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["image_url"] = "image_url"
    image_url: str
    """A `data:<mime>;base64,...` URL."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "image_url", f"<data URL, {len(self.image_url)} characters>"


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


def data_url(mime_type: str, data: bytes) -> str:
    """`data:<mime>;base64,<data>`; media type parameters (`; codecs=...`) are dropped."""
    media_type = mime_type.split(";", 1)[0].strip().lower() or "application/octet-stream"
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def text_of(parts: str | Sequence[TextPart | ImagePart]) -> str:
    """The text a message carries (image parts left out)."""
    if isinstance(parts, str):
        return parts
    return "\n\n".join(part.text for part in parts if isinstance(part, TextPart))
