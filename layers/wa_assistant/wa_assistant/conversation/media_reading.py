"""The AI function's `MediaReader`: Graph download + Mistral transcription / OCR, metrics, once per wamid.

Turns adapter outcomes into the domain's terms (`conversation.understanding`):

- too large (refused from `file_size` before downloading, or stopped mid-download)
  -> `MediaNotReadable("too_large")`, metric MediaRefusedTooLarge;
- deleted / expired / unknown media (a permanent Graph failure: 404, code 100...),
  a foreign download host or a checksum mismatch -> `MediaNotReadable("unavailable")`,
  metric MediaUnavailable;
- the model API refusing the file or the model name (400/404/422 from the
  transcription or OCR endpoint) -> `MediaNotReadable("rejected")` and the
  MistralRequestRejected metric (alarmed): the user gets an honest reply at once,
  the operator fixes the model name (or switches the capability off);
- everything else propagates to the handler: transient Graph or Mistral failures
  (429, 5xx, timeouts: retried through SQS), an expired WhatsApp token (GraphAuthFailed
  alarm, parked), a refused Mistral key (401/403: parked), no time left (retried).

This module is imported on the first media message only (`understanding.LazyMediaReader`):
text-only containers never pay for it at cold start.

Transcripts and document texts are derived once per wamid: `once()` wraps the two
paid calls in Powertools idempotency (key = the wamid), storing the derived text —
never the bytes — so a redelivery, or a retry after a later failure (the chat call
rate-limited), never transcribes or reads the document again. Images are not
stored: the vision model reads them in the chat call, which is itself once per wamid.

Logs carry sizes, durations and counts; never bytes, data URLs or a transcript's text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.serialization.dataclass import DataclassSerializer

from wa_assistant.conversation.understanding import (
    PLAIN_TEXT_TYPES,
    DocumentText,
    ImageFile,
    MediaNotReadable,
    Transcription,
)
from wa_assistant.deadline import HasTime
from wa_assistant.model.chat import DEFAULT_BASE_URL, MistralError
from wa_assistant.model.ocr import DEFAULT_OCR_MODEL, DocumentOcr
from wa_assistant.model.transcription import DEFAULT_TRANSCRIPTION_MODEL, Transcriber
from wa_assistant.observability import logger, metrics
from wa_assistant.records import InboundMessage
from wa_assistant.whatsapp.graph import FailureKind, GraphRequestFailed, http_client
from wa_assistant.whatsapp.media import GraphMedia, MediaFile, MediaTooLarge, MediaUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

WHATSAPP_LIMITS = {
    "audio": 16 * 1024 * 1024,
    "image": 5 * 1024 * 1024,
    "sticker": 500 * 1024,
    "document": 100 * 1024 * 1024,
}
"""WhatsApp's own media limits: the caps when a variable is missing (the template sets each one)."""
KEY_REJECTED = frozenset({401, 403})
EXTENSIONS = {
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/wav": "wav",
    "audio/webm": "webm",
}


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Per-kind size caps in bytes (AudioMaxBytes, ImageMaxBytes, StickerMaxBytes, DocumentMaxBytes)."""

    audio: int = WHATSAPP_LIMITS["audio"]
    image: int = WHATSAPP_LIMITS["image"]
    sticker: int = WHATSAPP_LIMITS["sticker"]
    document: int = WHATSAPP_LIMITS["document"]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MediaLimits:
        env = os.environ if env is None else env
        return cls(
            **{
                kind: int(env.get(f"{kind.upper()}_MAX_BYTES") or limit)
                for kind, limit in WHATSAPP_LIMITS.items()
            }
        )

    def of(self, kind: str) -> int:
        return int(getattr(self, kind, self.document))


class MediaReading:
    """Implements `understanding.MediaReader` with the Graph media adapter and Mistral's media endpoints."""

    def __init__(
        self,
        *,
        media: GraphMedia,
        transcriber: Transcriber,
        ocr: DocumentOcr,
        limits: MediaLimits,
        max_text_chars: int = 100_000,
    ) -> None:
        self._media = media
        self._transcriber = transcriber
        self._ocr = ocr
        self._limits = limits
        self.max_text_chars = max_text_chars
        """Derived text kept (and stored) per message: the model never reads more than the prompt
        budget, and an idempotency record must stay far below DynamoDB's 400 KB item limit."""

    @classmethod
    def from_env(
        cls,
        *,
        access_token: Callable[[], str],
        api_key: Callable[[], str],
        mistral_http: httpx.Client,
        model_call_seconds: float,
        has_time: HasTime,
        max_text_chars: int,
        env: Mapping[str, str] | None = None,
    ) -> MediaReading:
        """The AI function's reader, configured by its environment (template parameters)."""
        env = os.environ if env is None else env
        graph_timeout = float(env.get("GRAPH_TIMEOUT_SECONDS") or "10")
        base_url = (env.get("MISTRAL_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        return cls(
            media=GraphMedia(
                base_url=env.get("GRAPH_API_BASE_URL") or "https://graph.facebook.com",
                api_version=env.get("GRAPH_API_VERSION") or "v23.0",
                access_token=access_token,
                http=http_client(graph_timeout),
                seconds_per_call=min(3.0, graph_timeout) + graph_timeout,  # connect + read
                has_time=has_time,
            ),
            transcriber=Transcriber(
                base_url=base_url,
                model=env.get("TRANSCRIPTION_MODEL") or DEFAULT_TRANSCRIPTION_MODEL,
                language=env.get("TRANSCRIPTION_LANGUAGE"),
                api_key=api_key,
                http=mistral_http,
                seconds_per_call=model_call_seconds,
                has_time=has_time,
            ),
            ocr=DocumentOcr(
                base_url=base_url,
                model=env.get("OCR_MODEL") or DEFAULT_OCR_MODEL,
                max_pages=int(env.get("OCR_MAX_PAGES") or "5"),
                api_key=api_key,
                http=mistral_http,
                seconds_per_call=model_call_seconds,
                has_time=has_time,
            ),
            limits=MediaLimits.from_env(env),
            max_text_chars=max_text_chars,
        )

    # ------------------------------------------------------------ the three readings
    def transcript(self, message: InboundMessage) -> Transcription:
        file = self._fetch(message)
        with _model_rejections("transcription"):
            transcript = self._transcriber.transcribe(
                file.data, mime_type=file.mime_type, filename=_filename(message, file, "voice-note")
            )
        if transcript.audio_seconds is not None:
            metrics.add_metric(name="AudioSecondsTranscribed", unit="Seconds", value=transcript.audio_seconds)
        metrics.add_metric(name="VoiceNotesTranscribed", unit="Count", value=1)
        logger.info(
            "Voice note transcribed",
            extra={
                "transcript_chars": len(transcript.text),
                "audio_seconds": transcript.audio_seconds,
                "language": transcript.language,
                "transcription_ms": round(transcript.latency_ms),
            },
        )
        return Transcription(text=self._cut(transcript.text), audio_seconds=transcript.audio_seconds)

    def document_text(self, message: InboundMessage) -> DocumentText:
        file = self._fetch(message)
        media_type = file.mime_type.split(";", 1)[0].strip().lower()
        if media_type in PLAIN_TEXT_TYPES:
            text = file.data.decode("utf-8", errors="replace")
            logger.info("Text document read", extra={"document_chars": len(text)})
            return DocumentText(text=self._cut(text))
        with _model_rejections("OCR"):
            result = self._ocr.read(
                file.data, mime_type=file.mime_type, filename=_filename(message, file, "document")
            )
        metrics.add_metric(name="OcrPagesRead", unit="Count", value=result.pages_processed)
        logger.info(
            "Document read by OCR",
            extra={
                "pages_processed": result.pages_processed,
                "pages_in_document": result.pages_in_document,
                "document_chars": len(result.text),
                "ocr_ms": round(result.latency_ms),
            },
        )
        return DocumentText(
            text=self._cut(result.text),
            pages_read=len(result.pages),
            pages_in_document=result.pages_in_document,
        )

    def image(self, message: InboundMessage) -> ImageFile:
        file = self._fetch(message)
        metrics.add_metric(name="ImagesRead", unit="Count", value=1)
        return ImageFile(data=file.data, mime_type=file.mime_type)

    def _cut(self, text: str) -> str:
        """One character over the cap is kept, so that the reader of the text still sees it was cut."""
        return text[: self.max_text_chars + 1]

    # ------------------------------------------------------------ download
    def _fetch(self, message: InboundMessage) -> MediaFile:
        media = message.media
        if media is None or not media.id:
            raise MediaNotReadable("unavailable", "the message has no media id")
        limit = self._limits.of(message.type)
        try:
            file = self._media.fetch(
                media.id,
                max_bytes=limit,
                phone_number_id=message.phone_number_id,
                webhook_sha256=media.sha256,
            )
        except MediaTooLarge as error:
            metrics.add_metric(name="MediaRefusedTooLarge", unit="Count", value=1)
            logger.warning(
                "Media over its size cap; not read",
                extra={
                    "media_type": message.type,
                    "media_bytes": error.size,
                    "cap_bytes": error.limit,
                    "refused_before_download": error.declared,
                },
            )
            raise MediaNotReadable("too_large", str(error)) from None
        except MediaUnavailable as error:
            raise _unavailable(message, {"reason": error.reason}) from None
        except GraphRequestFailed as failed:
            if failed.failure.kind is not FailureKind.PERMANENT:
                raise  # transient: retried; auth: alarmed and parked by the handler
            raise _unavailable(message, failed.failure.log_fields()) from None
        metrics.add_metric(name="MediaBytesDownloaded", unit="Bytes", value=file.size)
        logger.info(
            "Media downloaded",
            extra={
                "media_type": message.type,
                "mime_type": file.mime_type,
                "media_bytes": file.size,
                "download_ms": round(file.latency_ms),
            },
        )
        return file

    # ------------------------------------------------------------ once per wamid
    def once(self, persistence_store: BasePersistenceLayer, config: IdempotencyConfig) -> OnceMediaReading:
        return OnceMediaReading(self, persistence_store, config)


@contextmanager
def _model_rejections(endpoint: str) -> Iterator[None]:
    """A refused media request that is not about the key: an honest reply, and the operator alarm."""
    try:
        yield
    except MistralError as error:
        if error.retryable or error.status in KEY_REJECTED:
            raise  # transient or a bad key: the handler retries or parks, as for the chat call
        metrics.add_metric(name="MistralRequestRejected", unit="Count", value=1)
        logger.error(
            f"The model API rejected the {endpoint} request (model name or file); honest reply sent",
            extra=error.log_fields(),
        )
        raise MediaNotReadable("rejected", f"{endpoint} rejected: {error.status}") from None


def _unavailable(message: InboundMessage, fields: Mapping[str, Any]) -> MediaNotReadable:
    metrics.add_metric(name="MediaUnavailable", unit="Count", value=1)
    logger.warning(
        "Media unavailable; the user is asked to send it again", extra={"media_type": message.type, **fields}
    )
    return MediaNotReadable("unavailable", str(fields.get("reason", "Graph refused the media")))


def _filename(message: InboundMessage, file: MediaFile, stem: str) -> str:
    if message.media and message.media.filename:
        return message.media.filename
    media_type = file.mime_type.split(";", 1)[0].strip().lower()
    extension = EXTENSIONS.get(media_type) or media_type.rsplit("/", 1)[-1] or "bin"
    return f"{stem}.{extension}"


class OnceMediaReading:
    """`MediaReading` whose transcript and document text are derived at most once per wamid.

    Give it a persistence layer of its own: Powertools configures a layer with the key
    prefix of the call in progress, and these calls run inside the answer's idempotent
    call, whose record would otherwise be completed or deleted under the wrong key.
    """

    def __init__(
        self, reading: MediaReading, persistence_store: BasePersistenceLayer, config: IdempotencyConfig
    ) -> None:
        self._reading = reading

        def once(function: Callable[..., Any], prefix: str, model: type[Transcription | DocumentText]) -> Any:
            return idempotent_function(
                function,
                data_keyword_argument="message",
                persistence_store=persistence_store,
                config=config,
                key_prefix=prefix,  # fixed: stable across module and function renames
                output_serializer=DataclassSerializer(model),
            )

        self._transcript_once: Callable[..., Transcription] = once(
            self._transcript, "ai-reply.transcript", Transcription
        )
        self._document_once: Callable[..., DocumentText] = once(
            self._document_text, "ai-reply.document", DocumentText
        )

    def _transcript(self, *, message: InboundMessage) -> Transcription:
        return self._reading.transcript(message)

    def _document_text(self, *, message: InboundMessage) -> DocumentText:
        return self._reading.document_text(message)

    def transcript(self, message: InboundMessage) -> Transcription:
        return self._transcript_once(message=message)

    def document_text(self, message: InboundMessage) -> DocumentText:
        return self._document_once(message=message)

    def image(self, message: InboundMessage) -> ImageFile:
        return self._reading.image(message)
