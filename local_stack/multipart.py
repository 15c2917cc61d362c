"""multipart/form-data bodies read with the standard library's MIME parser (the `email` package).

The stand-in model needs the fields of a transcription request, and the tests
check them against Mistral's OpenAPI; the stdlib parser does the MIME work
(Python 3.13 has no `cgi` module), this module only shapes its result.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FormField:
    name: str
    value: bytes = field(repr=False)
    filename: str | None = None
    content_type: str | None = None
    """The part's own Content-Type (files); None for plain fields."""

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", errors="replace")


class MultipartError(ValueError):
    """The body is not a multipart/form-data body with named parts."""


def parse_form(content_type: str, body: bytes) -> dict[str, FormField]:
    """Every named part of a multipart/form-data body (the last one wins for a repeated name)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise MultipartError(f"not multipart/form-data: {content_type!r}")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise MultipartError("no parts found (boundary missing or wrong)")
    fields: dict[str, FormField] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise MultipartError("a part has no name")
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        fields[name] = FormField(
            name=name,
            value=payload if isinstance(payload, bytes) else b"",
            filename=filename,
            content_type=part.get_content_type()
            if filename is not None or part.get("Content-Type")
            else None,
        )
    return fields
