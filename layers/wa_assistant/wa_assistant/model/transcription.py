"""Mistral audio transcription adapter (Voxtral): `POST {MISTRAL_BASE_URL}/audio/transcriptions`.

Multipart form, as Mistral's OpenAPI has it (`AudioTranscriptionRequest`): `model`,
`file` (the bytes, with a file name and media type), and `language` only when the
operator configured one (Mistral detects it otherwise). Failures go through
`model.chat.classify_mistral_error`, the one table for every Mistral endpoint.
The transcript is user content: callers log its length, never its text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from wa_assistant.deadline import HasTime, ensure_time, unlimited
from wa_assistant.model.chat import post_to_mistral, unusable_reply

DEFAULT_TRANSCRIPTION_MODEL = "voxtral-mini-latest"


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str = field(repr=False)
    """What was said; may be empty (silence, noise)."""
    language: str | None = None
    audio_seconds: float | None = None
    """Audio length Mistral billed (`usage.prompt_audio_seconds`), when it says."""
    latency_ms: float = 0.0


class _Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt_audio_seconds: float | None = None


class _TranscriptionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    language: str | None = None
    usage: _Usage | None = None


def transcription_form(model: str, language: str | None) -> dict[str, str]:
    """The form fields besides `file`."""
    form = {"model": model}
    if language:
        form["language"] = language
    return form


class Transcriber:
    """Turns an audio file into text; raises `MistralError` when there is no transcript."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        language: str | None,
        api_key: Callable[[], str],
        http: httpx.Client,
        seconds_per_call: float = 30.0,
        has_time: HasTime = unlimited,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/audio/transcriptions"
        self.model = model
        self.language = (language or "").strip() or None
        self._api_key = api_key
        self._http = http
        self._seconds_per_call = seconds_per_call
        self.has_time = has_time

    def transcribe(self, data: bytes, *, mime_type: str, filename: str) -> Transcript:
        key = self._api_key()
        ensure_time(self.has_time, self._seconds_per_call, "the transcription")
        response, latency_ms = post_to_mistral(
            self._http,
            self.url,
            key,
            data=transcription_form(self.model, self.language),
            files={"file": (filename, data, mime_type)},
        )
        if response.is_success:
            try:
                body = _TranscriptionBody.model_validate_json(response.content)
            except ValidationError:
                pass  # classified below like any reply without text
            else:
                usage = body.usage or _Usage()
                return Transcript(
                    text=body.text.strip(),
                    language=body.language,
                    audio_seconds=usage.prompt_audio_seconds,
                    latency_ms=latency_ms,
                )
        raise unusable_reply(response, key)
