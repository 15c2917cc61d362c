"""Graph media adapter: media URL, capped streamed download, checksums, errors by the one Graph table."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest
import respx

from tests.support import CORPUS
from wa_assistant.deadline import NoTimeLeft
from wa_assistant.whatsapp.graph import FailureKind, GraphRequestFailed
from wa_assistant.whatsapp.media import (
    GraphMedia,
    MediaTooLarge,
    MediaUnavailable,
    graph_digest_hex,
    webhook_digest_hex,
)

BASE = "https://graph.test"
TOKEN = "EAAG-media-token-NEVER-LOG"
MEDIA_ID = "1227829768162607"
DOWNLOAD = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1227829768162607&hash=x"
DATA = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
GRAPH_CORPUS = CORPUS / "graph"


def media_url_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "url": DOWNLOAD,
        "mime_type": "image/png",
        "sha256": hashlib.sha256(DATA).hexdigest(),
        "file_size": str(len(DATA)),
        "id": MEDIA_ID,
        "messaging_product": "whatsapp",
    }
    body.update(overrides)
    return body


def client(has_time: Any = None) -> GraphMedia:
    return GraphMedia(
        base_url=BASE,
        api_version="v23.0",
        access_token=lambda: TOKEN,
        http=httpx.Client(timeout=5),
        seconds_per_call=5,
        **({"has_time": has_time} if has_time else {}),
    )


@pytest.fixture
def graph() -> Any:
    with respx.mock(assert_all_called=False) as router:
        yield router


def test_fetches_with_the_token_on_both_calls_and_checks_both_digests(graph: Any) -> None:
    lookup = graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body())
    download = graph.get(DOWNLOAD).respond(content=DATA, headers={"Content-Type": "image/png"})
    webhook_sha = base64.b64encode(hashlib.sha256(DATA).digest()).decode()

    media = client().fetch(
        MEDIA_ID, max_bytes=len(DATA), phone_number_id="106540352242922", webhook_sha256=webhook_sha
    )

    assert (media.data, media.mime_type, media.sha256, media.size) == (
        DATA,
        "image/png",
        hashlib.sha256(DATA).hexdigest(),
        len(DATA),
    )
    assert lookup.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert lookup.calls.last.request.url.params["phone_number_id"] == "106540352242922"
    assert download.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert repr(DATA[:16])[2:-1] not in repr(media)  # the bytes never show in a repr


@pytest.mark.skipif(not GRAPH_CORPUS.is_dir(), reason="public corpus not present")
@pytest.mark.parametrize("name", ["response_media_url.json", "response_media_url_observed.json"])
def test_reads_metas_media_url_responses(graph: Any, name: str) -> None:
    """`file_size` as a string (Meta's spec) or a number (in the wild); placeholder digests are ignored."""
    example = json.loads((GRAPH_CORPUS / name).read_text())
    size = int(example["file_size"])
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json={**example, "url": DOWNLOAD})
    graph.get(DOWNLOAD).respond(content=DATA)
    with pytest.raises(MediaTooLarge) as refused:
        client().fetch(MEDIA_ID, max_bytes=size - 1)
    assert (refused.value.size, refused.value.declared) == (size, True)
    assert graph.calls.call_count == 1  # refused before any byte was downloaded
    if graph_digest_hex(example["sha256"]) is None:  # Meta's "<HASH>" placeholder: nothing to check
        assert client().fetch(MEDIA_ID, max_bytes=size).data == DATA
    else:  # a real digest of other bytes: the download does not match it
        with pytest.raises(MediaUnavailable, match="sha256"):
            client().fetch(MEDIA_ID, max_bytes=size)


def test_a_file_size_that_lies_is_stopped_at_the_cap(graph: Any) -> None:
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body(file_size=10, sha256=None))

    def endless(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b"x" * 100_000))

    graph.get(DOWNLOAD).mock(side_effect=endless)
    with pytest.raises(MediaTooLarge) as stopped:
        client().fetch(MEDIA_ID, max_bytes=4096)
    assert stopped.value.declared is False
    assert stopped.value.size > 4096


def test_a_content_length_over_the_cap_is_refused_before_reading(graph: Any) -> None:
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body(file_size=None))
    graph.get(DOWNLOAD).respond(content=b"x" * 5000)
    with pytest.raises(MediaTooLarge) as refused:
        client().fetch(MEDIA_ID, max_bytes=4999)
    assert refused.value.declared is True


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            404,
            {"error": {"message": "Unsupported get request", "type": "GraphMethodException", "code": 100}},
            FailureKind.PERMANENT,
        ),
        (
            401,
            {"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190}},
            FailureKind.AUTH,
        ),
        (
            500,
            {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1}},
            FailureKind.TRANSIENT,
        ),
        (
            429,
            {"error": {"message": "(#4) Application request limit reached", "code": 4}},
            FailureKind.TRANSIENT,
        ),
    ],
)
@pytest.mark.parametrize("which", ["media URL", "download"])
def test_failures_are_classified_by_the_graph_table(
    graph: Any, status: int, body: dict[str, Any], kind: FailureKind, which: str
) -> None:
    answer = httpx.Response(status, json=body, headers={"Retry-After": "7"})
    if which == "media URL":
        graph.get(f"{BASE}/v23.0/{MEDIA_ID}").mock(return_value=answer)
    else:
        graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body())
        graph.get(DOWNLOAD).mock(return_value=answer)
    with pytest.raises(GraphRequestFailed) as failed:
        client().fetch(MEDIA_ID, max_bytes=len(DATA))
    assert failed.value.failure.kind is kind
    assert failed.value.failure.code == body["error"]["code"]
    assert failed.value.failure.retry_after == 7


def test_a_timeout_is_transient(graph: Any) -> None:
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body())
    graph.get(DOWNLOAD).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(GraphRequestFailed) as failed:
        client().fetch(MEDIA_ID, max_bytes=len(DATA))
    assert (failed.value.failure.kind, failed.value.failure.status) == (FailureKind.TRANSIENT, None)


def test_the_token_goes_only_to_graph_and_metas_media_hosts(graph: Any) -> None:
    elsewhere = graph.get("https://attacker.example/file").respond(content=DATA)
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body(url="https://attacker.example/file"))
    with pytest.raises(MediaUnavailable, match=r"attacker\.example"):
        client().fetch(MEDIA_ID, max_bytes=len(DATA))
    assert not elsewhere.called
    plain = graph.get("http://lookaside.fbsbx.com/x").respond(content=DATA)
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body(url="http://lookaside.fbsbx.com/x"))
    with pytest.raises(MediaUnavailable):
        client().fetch(MEDIA_ID, max_bytes=len(DATA))
    assert not plain.called


def test_a_checksum_mismatch_makes_the_media_unavailable(graph: Any) -> None:
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body(sha256=None))
    graph.get(DOWNLOAD).respond(content=DATA)
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(MediaUnavailable, match="webhook"):
        client().fetch(MEDIA_ID, max_bytes=len(DATA), webhook_sha256=other)


def test_an_echoed_token_never_reaches_the_failure(graph: Any) -> None:
    graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(
        400, json={"error": {"message": f"Malformed access token {TOKEN}", "code": 190}}
    )
    with pytest.raises(GraphRequestFailed) as failed:
        client().fetch(MEDIA_ID, max_bytes=len(DATA))
    assert TOKEN not in json.dumps(failed.value.failure.log_fields())


def test_no_call_starts_without_time_for_it(graph: Any) -> None:
    lookup = graph.get(f"{BASE}/v23.0/{MEDIA_ID}").respond(json=media_url_body())
    with pytest.raises(NoTimeLeft):
        client(has_time=lambda seconds: False).fetch(MEDIA_ID, max_bytes=len(DATA))
    assert not lookup.called


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (base64.b64encode(bytes(32)).decode(), "00" * 32),
        ("E3dxS/PdYZE7ppA3pQ4mpCFaXBJ8pX4SRN/dsfvds/iPGA=", None),  # a fixture's 35-byte "digest"
        ("not base64!", None),
        (None, None),
    ],
)
def test_webhook_digests_are_read_only_when_they_are_digests(value: str | None, expected: str | None) -> None:
    assert webhook_digest_hex(value) == expected
