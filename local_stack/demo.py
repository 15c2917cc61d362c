"""`make demo`: a short scripted WhatsApp conversation through the local stack, as a transcript.

Plays signed webhooks (a greeting, a follow-up that needs memory, a sticker, a
location, a voice note, a photo, three messages typed in a row and answered once,
and Meta redelivering the first webhook), then
conversation control: a STOP (one confirmation, then silence) and a START, a
request for a person (the operator's notice, as SNS delivers it) and the owner
answering from the WhatsApp Business app (the assistant stays quiet). Prints the
transcript, stops everything, exits 0. The voice note and the photo are served by
the local Graph sink as Meta serves media; the stand-in model transcribes the
voice note (what it "says" is registered with the stand-in) and describes the
photo it was shown. With MISTRAL_API_KEY set, the replies come from the real
Mistral API (the demo's voice note is synthetic, so the real transcription finds
no words in it).
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from dataclasses import dataclass

from local_stack.media_samples import png, voice_note
from local_stack.stack import LocalStack, StackError
from local_stack.webhooks import (
    audio_message,
    echo_webhook,
    image_message,
    location_message,
    message_webhook,
    sticker_message,
    text_message,
    wamid_of,
)

USER_WA_ID = "16505550100"
USER_NAME = "Ana"
REPLY_TIMEOUT_SECONDS = 90
VOICE_NOTE_WORDS = "Do you have the blue lamp in stock?"


@dataclass(frozen=True)
class Step:
    shown_as: str
    body: bytes
    silent: str = ""
    """Why no reply is expected (shown instead of one); empty = a reply is expected."""
    who: str = USER_NAME


def _wait_for_replies(stack: LocalStack, already: int, via_sink: bool) -> list[str]:
    """New texts to the user once the stack has gone quiet (all queues empty, nothing running)."""

    def to_user() -> list[str]:
        return [m["text"] or f"[{m['type']}]" for m in stack.sink.messages() if m["to"] == USER_WA_ID]

    if via_sink:
        stack.wait_until(lambda: len(to_user()) > already, timeout=REPLY_TIMEOUT_SECONDS)
    stack.wait_until(stack.idle, timeout=REPLY_TIMEOUT_SECONDS)
    return to_user()[already:]


def _user(text: str) -> bytes:
    return message_webhook(USER_WA_ID, text_message(text), name=USER_NAME)


def _play_steps(stack: LocalStack, steps: list[Step], answered: int, via_sink: bool) -> tuple[bool, int]:
    """Post each step and show what came back; False when a reply is missing or unexpected."""
    ok = True
    for step in steps:
        _say(step.who, step.shown_as)
        status, _ = stack.post_webhook(step.body)
        if status != 200:
            print(f"         (the webhook answered HTTP {status})")
            ok = False
            continue
        replies = _wait_for_replies(stack, answered, via_sink and not step.silent)
        answered += len(replies)
        for reply in replies:
            _say("Bot", reply)
        if step.silent:
            print(f"         ({step.silent})")
            ok = ok and not replies
        elif via_sink and not replies:
            ok = False
        elif not via_sink:
            assert stack.topology is not None
            _say("Bot", f"(sent to {stack.topology.parameters['GraphApiBaseUrl']})")
    return ok, answered


def _say(who: str, text: str) -> None:
    lines = textwrap.wrap(text, width=88) or [""]
    print(f"  {who:<5}▸ {lines[0]}")
    for line in lines[1:]:
        print(f"  {'':<5}  {line}")


def play(stack: LocalStack) -> bool:
    """Plays the script; False when something did not happen as it should."""
    assert stack.topology is not None
    parameters = stack.topology.parameters
    via_sink = parameters["GraphApiBaseUrl"] == stack.sink.base_url
    model = (
        "the stand-in model"
        if parameters["MistralBaseUrl"] == stack.mistral.base_url
        else (f"{parameters['MistralModel']} at {parameters['MistralBaseUrl']}")
    )
    print(f"\nA WhatsApp conversation with {parameters['BusinessName']} (replies by {model})\n")
    greeting = message_webhook(USER_WA_ID, text_message("Hi! Do you ship to Lisbon?"), name=USER_NAME)
    sticker = stack.sink.media.add(png(width=32, height=32, seed=3), "image/png")
    audio = voice_note(VOICE_NOTE_WORDS)
    voice = stack.sink.media.add(audio, "audio/ogg; codecs=opus")
    stack.mistral.media.speech(audio, VOICE_NOTE_WORDS)
    photo = stack.sink.media.add(png(seed=11), "image/png")
    steps = [
        Step("Hi! Do you ship to Lisbon?", greeting),
        Step(
            "Sorry, what was my first question?",
            _user("Sorry, what was my first question?"),
        ),
        Step(
            "[sends a sticker]",
            message_webhook(
                USER_WA_ID,
                sticker_message(media_id=sticker.media_id, sha256=sticker.sha256_base64),
                name=USER_NAME,
            ),
        ),
        Step(
            "[shares a location: Praça do Comércio, Lisbon]",
            message_webhook(
                USER_WA_ID, location_message(38.7075, -9.1364, "Praça do Comércio"), name=USER_NAME
            ),
        ),
        Step(
            f"[sends a voice note, {len(audio) // 2000} s: “{VOICE_NOTE_WORDS}”]",
            message_webhook(USER_WA_ID, audio_message(voice.media_id, voice.sha256_base64), name=USER_NAME),
        ),
        Step(
            "[sends a photo] Is this one in stock?",
            message_webhook(
                USER_WA_ID,
                image_message(
                    photo.media_id, photo.sha256_base64, "Is this one in stock?", mime_type="image/png"
                ),
                name=USER_NAME,
            ),
        ),
    ]
    ok, answered = _play_steps(stack, steps, 0, via_sink)
    burst_ok, answered = _play_burst(stack, answered, via_sink)
    ok = ok and burst_ok

    calls_before = len(stack.mistral.calls())
    print(f"\n  Meta redelivers the webhook of {wamid_of(greeting)} (same body, same signature):")
    status, _ = stack.post_webhook(greeting)
    time.sleep(2)  # give a duplicate every chance to show up
    duplicates = _wait_for_replies(stack, answered, via_sink=False)
    if status == 200 and not duplicates and len(stack.mistral.calls()) == calls_before:
        print(f"         HTTP {status}; no second model call, no second reply (deduplicated)\n")
    else:
        print(f"         HTTP {status}; {len(duplicates)} extra replies: NOT deduplicated\n")
        ok = False
    return _play_control(stack, answered, via_sink) and ok


BURST = ["One more thing", "my order is A-1042", "can it arrive before Friday?"]
BURST_GAP_SECONDS = 0.4


def _play_burst(stack: LocalStack, answered: int, via_sink: bool) -> tuple[bool, int]:
    """Three messages typed in a row: one model call, one reply quoting the last (CoalesceWindowSeconds)."""
    print("\n  Three messages typed in a row:")
    calls_before = len(stack.mistral.calls())
    for index, text in enumerate(BURST):
        if index:
            time.sleep(BURST_GAP_SECONDS)
        _say(USER_NAME, text)
        status, _ = stack.post_webhook(_user(text))
        if status != 200:
            print(f"         (the webhook answered HTTP {status})")
            return False, answered
    replies = _wait_for_replies(stack, answered, via_sink)
    for reply in replies:
        _say("Bot", reply)
    calls = len(stack.mistral.calls()) - calls_before
    if calls:  # the stand-in model counts its calls; a real model server is not watched
        print(f"         ({len(BURST)} messages, {calls} model call, {len(replies)} reply)")
    return (not via_sink or len(replies) == 1), answered + len(replies)


def _play_control(stack: LocalStack, answered: int, via_sink: bool) -> bool:
    """Opt-out and opt-in, then a handoff to a person and the owner answering from the app."""
    print("  Opting out and back in:")
    ok, answered = _play_steps(
        stack,
        [
            Step("STOP", _user("STOP")),
            Step(
                "Hello? Are you there?",
                _user("Hello? Are you there?"),
                silent="opted out: no reply, not even read",
            ),
            Step("START", _user("START")),
        ],
        answered,
        via_sink,
    )
    print("\n  Asking for a person, who answers from the WhatsApp Business app:")
    handed_off, answered = _play_steps(
        stack, [Step("Talk to a human", _user("Talk to a human"))], answered, via_sink
    )
    try:
        stack.wait_until(lambda: bool(stack.notices()), timeout=REPLY_TIMEOUT_SECONDS)
    except StackError:
        print("         (no operator notice arrived)")
        return False
    notice = stack.notices()[-1]
    print(f"         operator notified (SNS {notice.topic}): {notice.subject}")
    for line in [line for line in notice.message.splitlines() if line.strip()][:2]:
        print(f"           {line}")
    owner_text = f"Hi {USER_NAME}, Rui from the shop here: yes, we ship to Lisbon in 2 days."
    quiet, _ = _play_steps(
        stack,
        [
            Step(owner_text, echo_webhook(USER_WA_ID, owner_text), silent="sent from the app", who="Owner"),
            Step(
                "Perfect, thank you!",
                _user("Perfect, thank you!"),
                silent="the assistant stays quiet: a person is on it",
            ),
        ],
        answered,
        via_sink,
    )
    print()
    return ok and handed_off and quiet


def main() -> int:
    verbose = "-v" in sys.argv[1:] or "--verbose" in sys.argv[1:]
    print("Starting the local stack from template.yaml (moto, three functions, stand-ins)...", flush=True)
    try:
        with LocalStack(env=os.environ, port=0, echo_logs=verbose) as stack:
            ok = play(stack)
            print(f"Every log line of this run: {stack.logs.path}")
    except StackError as error:
        print(f"The demo did not complete: {error}", file=sys.stderr)
        return 1
    print("Demo " + ("complete." if ok else "FAILED: see the transcript above."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
