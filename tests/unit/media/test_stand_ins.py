"""The local stand-ins' media endpoints, reached over HTTP by the project's own adapters (no stubs)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from local_stack.graph_sink import GraphSink
from local_stack.media_samples import pdf, png, voice_note
from local_stack.mistral_standin import MistralStandIn
from tests.support import STANDIN_KEY, STANDIN_TOKEN
from wa_assistant.model.chat import MistralError
from wa_assistant.model.ocr import DocumentOcr
from wa_assistant.model.transcription import Transcriber
from wa_assistant.whatsapp.graph import FailureKind, GraphRequestFailed
from wa_assistant.whatsapp.media import GraphMedia, MediaTooLarge

TOKEN = STANDIN_TOKEN
KEY = STANDIN_KEY


def graph_media(sink: GraphSink, token: str = TOKEN) -> GraphMedia:
    return GraphMedia(
        base_url=sink.base_url,
        api_version="v23.0",
        access_token=lambda: token,
        http=httpx.Client(timeout=5),
        seconds_per_call=5,
    )


def test_the_sink_serves_media_as_meta_does(sink: GraphSink) -> None:
    photo = png(seed=1)
    stored = sink.media.add(photo, "image/png")

    fetched = graph_media(sink).fetch(
        stored.media_id, max_bytes=len(photo), webhook_sha256=stored.sha256_base64
    )

    assert (fetched.data, fetched.mime_type) == (photo, "image/png")
    lookup, download = sink.media.requests()
    assert (lookup["kind"], lookup["status"], download["kind"], download["status"]) == (
        "lookup",
        200,
        "download",
        200,
    )
    assert TOKEN not in str(sink.media.requests())  # recorded with the token replaced


@pytest.mark.parametrize(
    ("state", "kind", "requests"),
    [
        ("missing", FailureKind.PERMANENT, ["lookup"]),
        ("url_expired", FailureKind.PERMANENT, ["lookup", "download"]),
    ],
)
def test_missing_and_expired_media(
    sink: GraphSink, state: str, kind: FailureKind, requests: list[str]
) -> None:
    stored = sink.media.add(b"gone", "audio/ogg", state=state)
    with pytest.raises(GraphRequestFailed) as failed:
        graph_media(sink).fetch(stored.media_id, max_bytes=100)
    assert failed.value.failure.kind is kind
    # Graph answers an unknown media id with 400 (code 100/33); the download URL, once gone, with 404.
    assert failed.value.failure.status == (400 if state == "missing" else 404)
    assert [r["kind"] for r in sink.media.requests()] == requests


def test_an_oversized_declaration_is_refused_and_a_wrong_token_is_190(sink: GraphSink) -> None:
    stored = sink.media.add(b"x" * 10, "audio/ogg", declared_size=17 * 1024 * 1024, file_size_as_number=True)
    with pytest.raises(MediaTooLarge):
        graph_media(sink).fetch(stored.media_id, max_bytes=16 * 1024 * 1024)
    with pytest.raises(GraphRequestFailed) as refused:
        graph_media(sink, token="wrong").fetch(stored.media_id, max_bytes=100)
    assert (refused.value.failure.kind, refused.value.failure.code) == (FailureKind.AUTH, 190)


def test_a_download_url_expires_after_five_minutes(sink: GraphSink, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = sink.media.add(b"voice", "audio/ogg")
    status, body, _ = sink.media.get(f"/v23.0/{stored.media_id}", {"Authorization": f"Bearer {TOKEN}"})
    url = httpx.URL(json.loads(body)["url"])
    later = time.time() + 301
    monkeypatch.setattr(time, "time", lambda: later)
    status, _, _ = sink.media.get(f"{url.path}?{url.query.decode()}", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 404


def test_the_stand_in_transcribes_what_was_registered_and_labels_the_rest(standin: MistralStandIn) -> None:
    transcriber = Transcriber(
        base_url=standin.base_url,
        model="voxtral-mini-latest",
        language="en",
        api_key=lambda: KEY,
        http=httpx.Client(),
    )
    audio = voice_note("hello")
    standin.media.speech(audio, "Do you open on Sundays?")
    transcript = transcriber.transcribe(audio, mime_type="audio/ogg", filename="voice.ogg")
    assert transcript.text.endswith("] Do you open on Sundays?")
    assert transcript.text.startswith("[stand-in transcript")
    assert transcript.audio_seconds == len(audio) // 2000
    unknown = transcriber.transcribe(b"other bytes", mime_type="audio/ogg", filename="voice.ogg")
    assert "no words registered" in unknown.text
    [call, _] = standin.calls()
    assert call["body"]["file"]["size"] == len(audio)
    assert call["body"]["language"] == "en"


def test_the_stand_in_refuses_an_unknown_transcription_model(standin: MistralStandIn) -> None:
    transcriber = Transcriber(
        base_url=standin.base_url, model="whisper-1", language=None, api_key=lambda: KEY, http=httpx.Client()
    )
    with pytest.raises(MistralError) as refused:
        transcriber.transcribe(b"x", mime_type="audio/ogg", filename="v.ogg")
    assert (refused.value.status, refused.value.retryable) == (400, False)


def test_the_stand_in_reads_pdf_pages_within_the_cap(standin: MistralStandIn) -> None:
    ocr = DocumentOcr(
        base_url=standin.base_url,
        model="mistral-ocr-latest",
        max_pages=2,
        api_key=lambda: KEY,
        http=httpx.Client(),
    )
    document = pdf(["one", "two", "three"])
    result = ocr.read(document, mime_type="application/pdf", filename="three.pdf")
    assert (result.pages_processed, result.pages_in_document, len(result.pages)) == (2, 3, 2)
    assert result.pages[0].startswith("[stand-in OCR of application/pdf")
    standin.media.document(document, ["# One", "# Two", "# Three"])
    assert ocr.read(document, mime_type="application/pdf").text == "# One\n\n# Two"
