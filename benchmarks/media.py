"""The latency a voice note adds, on the local stack, with the transcription stand-in at a fixed delay.

Text messages and voice notes are posted alternately at a steady rate, each from a
user of its own (no queueing behind one's own conversation). A message's latency is
the time from the start of its webhook POST to the Graph sink receiving the reply
that quotes it. Both kinds wait for the stand-in model's fixed chat delay; a voice
note also waits for the transcription stand-in's fixed delay. So:

- added latency of a voice note = voice p50 - text p50 (what a user feels, stand-in delays included);
- the pipeline's own part = that minus the transcription delay: two Graph media calls
  (media URL, download), the idempotency record of the transcript, the multipart upload.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from benchmarks.stats import Summary, summarize

FIRST_USER = 16_505_700_000


@dataclass(frozen=True)
class VoiceLatencyResult:
    pairs: int
    rate: float
    chat_delay_ms: float
    transcription_delay_ms: float
    voice_note_bytes: int
    text_ms: Summary
    """POST to reply received, text messages (stand-in chat delay included)."""
    voice_ms: Summary
    """POST to reply received, voice notes (both stand-in delays included)."""
    undelivered: int

    @property
    def added_ms(self) -> float:
        return self.voice_ms.median - self.text_ms.median

    @property
    def pipeline_added_ms(self) -> float:
        return self.added_ms - self.transcription_delay_ms


def run(
    *, pairs: int, rate: float, chat_delay_s: float, transcription_delay_s: float, timeout_s: float
) -> VoiceLatencyResult:
    """`pairs` text messages and `pairs` voice notes, alternating, `rate` messages per second."""
    from local_stack.media_samples import voice_note  # noqa: PLC0415 - imported when this runs
    from local_stack.stack import LocalStack  # noqa: PLC0415
    from local_stack.webhooks import audio_message, message_webhook, text_message, wamid_of  # noqa: PLC0415

    audio = voice_note("benchmark voice note", seconds=10)
    posted: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()
    # env={}: never the real Mistral, whatever the shell has. No coalesce window: both kinds would wait
    # for it, in whole seconds (SQS's visibility), which would drown the difference measured here.
    with LocalStack(parameters={"CoalesceWindowSeconds": "0"}, env={}, port=0) as stack:
        stack.mistral.control({"reset": True, "latency_seconds": chat_delay_s})
        stack.mistral.media.transcription_latency_seconds = transcription_delay_s
        stack.mistral.media.speech(audio, "Do you have the blue lamp in stock?")
        media = [stack.sink.media.add(audio, "audio/ogg; codecs=opus") for _ in range(pairs)]

        def post(index: int) -> None:
            user = str(FIRST_USER + index)
            if index % 2:
                stored = media[index // 2]
                message = audio_message(stored.media_id, stored.sha256_base64)
            else:
                message = text_message(f"Question {index}?")
            body = message_webhook(user, message)
            started = time.time()
            status, answer = stack.post_webhook(body)
            if status != 200:
                raise RuntimeError(f"webhook answered {status}: {answer[:200]!r}")
            with lock:
                posted[wamid_of(body)] = ("voice" if index % 2 else "text", started)

        started = time.time()
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = []
            for index in range(2 * pairs):
                pause = started + index / rate - time.time()
                if pause > 0:
                    time.sleep(pause)
                futures.append(pool.submit(post, index))
            for future in futures:
                future.result()
        deadline = time.monotonic() + timeout_s
        received: dict[str, float] = {}
        while len(received) < len(posted) and time.monotonic() < deadline:
            time.sleep(0.2)
            for record in stack.sink.messages():
                quoted = record.get("context_message_id")
                if quoted in posted and quoted not in received:
                    received[quoted] = float(record["time"])
        stack.wait_until(stack.idle, timeout=timeout_s)
    latencies: dict[str, list[float]] = {"text": [], "voice": []}
    for wamid, (kind, at) in posted.items():
        if wamid in received:
            latencies[kind].append((received[wamid] - at) * 1000)
    if not latencies["text"] or not latencies["voice"]:
        raise RuntimeError("media benchmark: no reply reached the sink")
    return VoiceLatencyResult(
        pairs=pairs,
        rate=rate,
        chat_delay_ms=chat_delay_s * 1000,
        transcription_delay_ms=transcription_delay_s * 1000,
        voice_note_bytes=len(audio),
        text_ms=summarize(latencies["text"]),
        voice_ms=summarize(latencies["voice"]),
        undelivered=len(posted) - len(received),
    )
