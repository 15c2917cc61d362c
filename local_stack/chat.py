"""`make chat`: be a WhatsApp user against a running `make local`.

Each line you type is posted as a signed webhook; replies are read back from
the local Graph sink (`/_messages`). Commands: /sticker, /location, /voice <words>,
/photo [caption], /quit, and /owner <text>: the business owner answers you from the
WhatsApp Business app (an `smb_message_echoes` webhook), which pauses the assistant
for HandoffPauseHours. A voice note or photo is registered with the local Graph sink
(which serves it as Meta serves media) and, for a voice note, what it "says" with
the stand-in model.
Configuration: the same WHATSAPP_APP_SECRET and LOCAL_PORT as `make local`;
CHAT_WA_ID and CHAT_NAME choose who you are.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from local_stack.__main__ import STATE_FILE
from local_stack.config import LocalConfig
from local_stack.media_samples import png, voice_note
from local_stack.webhooks import (
    audio_message,
    echo_webhook,
    image_message,
    location_message,
    message_webhook,
    signature,
    sticker_message,
    text_message,
)

REPLY_WAIT_SECONDS = 60
QUIET_SECONDS = 1.5
"""After a first reply, how long to wait for more parts before asking for the next line."""


def _state() -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return state


def _sink_messages(sink_url: str, wa_id: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{sink_url}/_messages", timeout=5) as response:
        messages: list[dict[str, Any]] = json.load(response)["messages"]
    return [m for m in messages if m.get("to") == wa_id]


def _post(webhook_url: str, body: bytes, app_secret: str) -> int:
    request = urllib.request.Request(
        webhook_url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature(body, app_secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _control(url: str, command: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{url}/_control",
        data=json.dumps(command).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def _register(sink_url: str | None, data: bytes, mime_type: str) -> tuple[str, str]:
    """Serve `data` from the local sink as a media; (media id, its sha256 as a webhook gives it)."""
    media_id = str(time.time_ns() // 1000)
    if sink_url:
        encoded = base64.b64encode(data).decode()
        _control(sink_url, {"media": [{"id": media_id, "mime_type": mime_type, "base64": encoded}]})
    return media_id, base64.b64encode(hashlib.sha256(data).digest()).decode()


def _message_for(line: str, sink_url: str | None = None, standin_url: str | None = None) -> dict[str, Any]:
    command, _, rest = line.partition(" ")
    if command == "/sticker":
        media_id, sha256 = _register(sink_url, png(32, 32, seed=int(time.time()) % 97), "image/png")
        return sticker_message(media_id=media_id, sha256=sha256)
    if command == "/location":
        return location_message(38.7075, -9.1364, "Praça do Comércio")
    if command == "/voice" and rest.strip():
        audio = voice_note(rest.strip())
        if standin_url:
            speech = {"base64": base64.b64encode(audio).decode(), "text": rest.strip()}
            _control(standin_url.removesuffix("/v1"), {"speech": [speech]})
        return audio_message(*_register(sink_url, audio, "audio/ogg; codecs=opus"))
    if command == "/photo":
        media_id, sha256 = _register(sink_url, png(seed=int(time.time()) % 251), "image/png")
        return image_message(media_id, sha256, rest.strip() or None, mime_type="image/png")
    return text_message(line)


def _show_replies(sink_url: str, wa_id: str, seen: int) -> int:
    deadline = time.monotonic() + REPLY_WAIT_SECONDS
    last_new = None
    while time.monotonic() < deadline:
        messages = _sink_messages(sink_url, wa_id)
        for message in messages[seen:]:
            print(f"bot ▸ {message.get('text') or '[' + str(message.get('type')) + ']'}", flush=True)
            last_new = time.monotonic()
        seen = len(messages)
        if last_new is not None and time.monotonic() - last_new > QUIET_SECONDS:
            return seen
        time.sleep(0.3)
    if last_new is None:
        print("(no reply within a minute: see the `make local` terminal)", flush=True)
    return seen


def main() -> int:
    config = LocalConfig.from_env(os.environ)
    state = _state()
    webhook_url = state.get("webhook_url") or f"http://127.0.0.1:{config.port}/webhook"
    sink_url = state.get("graph_sink_url") or os.environ.get("LOCAL_GRAPH_SINK_URL")
    wa_id = os.environ.get("CHAT_WA_ID", "16505550123")
    name = os.environ.get("CHAT_NAME", "You")
    standin_url = state.get("mistral_standin_url")
    print(
        f"Chatting as {name} (+{wa_id}) with {webhook_url}. "
        "/sticker, /location, /voice <words>, /photo [caption], /owner <text>, /quit."
    )
    if not sink_url:
        print("(no local Graph sink found: replies go to the real WhatsApp Cloud API and are not shown here)")
    try:
        seen = len(_sink_messages(sink_url, wa_id)) if sink_url else 0
    except (urllib.error.URLError, OSError):
        print(f"The local stack does not answer at {sink_url}: start it with `make local`.", file=sys.stderr)
        return 1
    while True:
        try:
            line = input("you ▸ ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line:
            continue
        if line == "/quit":
            return 0
        owner = line.startswith("/owner ")
        try:
            body = (
                echo_webhook(wa_id, line.removeprefix("/owner ").strip())
                if owner
                else message_webhook(wa_id, _message_for(line, sink_url, standin_url), name=name)
            )
            status = _post(webhook_url, body, config.app_secret)
        except (urllib.error.URLError, OSError) as error:
            print(f"(the webhook does not answer: {error}; is `make local` running?)")
            continue
        if status != 200:
            print(f"(the webhook answered HTTP {status})")
            continue
        if owner:
            print("owner ▸ (sent from the WhatsApp Business app: the assistant pauses here)")
        elif sink_url:
            seen = _show_replies(sink_url, wa_id, seen)


if __name__ == "__main__":
    sys.exit(main())
