"""Signature check + payload parsing: this project against pywa, same payloads, same process.

Compared, per payload (both sides get the same bytes and the same valid header):

- project: `check_signature` (the webhook's X-Hub-Signature-256 check) +
  `parse_webhook` (pydantic validation of the whole body) + `digest_webhook`
  (every user message of every entry/change -> an `InboundMessage` queue
  record; statuses and errors -> reports). This is what the webhook handler
  does between reading the body and sending to SQS.
- pywa, public path: `WhatsApp.webhook_update_validator` + `WhatsApp.webhook_update_handler`
  (what pywa documents for custom servers: HMAC check, JSON parse, handler
  dispatch, typed update construction, one registered no-op message callback);
  duplicate-update skipping off (the same body is fed repeatedly), pywa's
  logger silenced (the project side does not log either).
- pywa, minimal: `utils.webhook_updates_validator` + `RawUpdate` (json.loads) + the
  typed update's `from_update` for the handler pywa dispatches to; no dispatch
  bookkeeping. Note pywa builds one update from `entry[0].changes[0]` and only
  its first message; the project reads every message (the 3-message batch row).

pywa runs offline: a fake token, no server, no HTTP call is made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.payloads import APP_SECRET, PHONE_NUMBER_ID
from benchmarks.stats import Summary, paired_ratios, summarize
from wa_assistant.webhook.digest import digest_webhook
from wa_assistant.webhook.payload import parse_webhook
from wa_assistant.webhook.signature import SignatureVerdict, check_signature, expected_signature


@dataclass(frozen=True)
class PeerRow:
    payload: str
    project_us: Summary
    pywa_us: Summary
    pywa_minimal_us: Summary
    speedup: Summary
    """pywa public path time / project time, per interleaved pair."""
    speedup_minimal: Summary


@dataclass(frozen=True)
class PeerResult:
    set_name: str
    rows: list[PeerRow]
    round_speedup: Summary
    """Whole set per round: pywa public path / project."""
    round_speedup_minimal: Summary
    pywa_version: str
    excluded: dict[str, str]
    """Payloads left out because pywa fails on them (name -> exception type)."""


def project_verify_and_parse(body: bytes, header: str) -> int:
    if check_signature(APP_SECRET, body, header) is not SignatureVerdict.VALID:
        raise RuntimeError("project refused a validly signed body")
    return len(digest_webhook(parse_webhook(body)).messages)


class Pywa:
    """pywa's webhook side, offline."""

    def __init__(self) -> None:
        import pywa  # noqa: PLC0415 - a benchmark-only dependency, imported when this benchmark runs
        from pywa import WhatsApp, utils  # type: ignore[attr-defined]  # noqa: PLC0415
        from pywa._logging import get_update_hash  # noqa: PLC0415
        from pywa.types import Message  # type: ignore[attr-defined]  # noqa: PLC0415
        from pywa.types.base_update import RawUpdate  # noqa: PLC0415

        logging.getLogger("pywa").setLevel(logging.CRITICAL)
        self.version = str(pywa.__version__)
        self.client = WhatsApp(
            phone_id=PHONE_NUMBER_ID,
            token="bench-fake-token",  # noqa: S106 - never sent anywhere
            app_secret=APP_SECRET,
            verify_token="bench",  # noqa: S106
            validate_updates=True,
            skip_duplicate_updates=False,
        )
        self.messages_seen = 0

        def on_message(_: Any, message: Message) -> None:
            self.messages_seen += 1

        self.client.add_handlers(pywa.handlers.MessageHandler(on_message))
        self._validator: Callable[..., bool] = utils.webhook_updates_validator
        self._raw_update = RawUpdate
        self._hash = get_update_hash

    def public_path(self, body: bytes, header: str) -> None:
        if self.client.webhook_update_validator(body, header) is not None:
            raise RuntimeError("pywa refused a validly signed body")
        self.client.webhook_update_handler(body)

    def minimal(self, body: bytes, header: str) -> object:
        if not self._validator(APP_SECRET, body, header):
            raise RuntimeError("pywa refused a validly signed body")
        raw = self._raw_update(body, hmac_header=header, update_hash=self._hash(body))
        handler_type = self.client._get_handler_type(raw)
        if handler_type is None:
            return raw
        return self.client._handlers_to_updates[handler_type].from_update(client=self.client, update=raw)


def corpus_payloads(corpus: Path) -> dict[str, bytes]:
    """The corpus's well-formed webhook bodies (the malformed ones are not parsing work)."""
    folder = corpus / "webhooks"
    if not folder.is_dir():
        return {}
    return {
        path.stem: path.read_bytes()
        for path in sorted(folder.glob("*.json"))
        if not path.name.startswith("malformed")
    }


def compare(set_name: str, payloads: Mapping[str, bytes], rounds: int) -> PeerResult:
    """`rounds` rounds over every payload; in each, project / pywa / pywa-minimal run back to back."""
    peer = Pywa()
    headers = {name: expected_signature(APP_SECRET, body) for name, body in payloads.items()}
    excluded: dict[str, str] = {}
    for name, body in payloads.items():  # both sides must handle a payload before it is timed
        project_verify_and_parse(body, headers[name])
        try:  # the public path swallows pywa's errors; the minimal path shows them
            peer.minimal(body, headers[name])
        except Exception as error:  # any pywa failure excludes the payload
            excluded[name] = type(error).__name__
        peer.public_path(body, headers[name])
    payloads = {name: body for name, body in payloads.items() if name not in excluded}
    clock = time.perf_counter_ns
    per_payload: dict[str, tuple[list[int], list[int], list[int]]] = {name: ([], [], []) for name in payloads}
    round_totals: tuple[list[int], list[int], list[int]] = ([], [], [])
    for _ in range(rounds):
        totals = [0, 0, 0]
        for name, body in payloads.items():
            header = headers[name]
            t0 = clock()
            project_verify_and_parse(body, header)
            t1 = clock()
            peer.public_path(body, header)
            t2 = clock()
            peer.minimal(body, header)
            t3 = clock()
            samples = per_payload[name]
            for index, elapsed in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                samples[index].append(elapsed)
                totals[index] += elapsed
        for index, total in enumerate(totals):
            round_totals[index].append(total)
    rows = [
        PeerRow(
            payload=name,
            project_us=summarize(project).scaled(1 / 1000),
            pywa_us=summarize(public).scaled(1 / 1000),
            pywa_minimal_us=summarize(minimal).scaled(1 / 1000),
            speedup=paired_ratios(public, project),
            speedup_minimal=paired_ratios(minimal, project),
        )
        for name, (project, public, minimal) in per_payload.items()
    ]
    return PeerResult(
        set_name=set_name,
        rows=rows,
        round_speedup=paired_ratios(round_totals[1], round_totals[0]),
        round_speedup_minimal=paired_ratios(round_totals[2], round_totals[0]),
        pywa_version=peer.version,
        excluded=excluded,
    )
