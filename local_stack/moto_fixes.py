"""Fixes to moto's SQS FIFO emulation that the local stack and the tests rely on.

Runs moto's server (its own process, so it gets its own CPU) with SQS FIFO made faithful.

moto 5 deduplicates a FIFO message only against messages still in the queue, so
a duplicate sent after the first was processed and deleted is accepted; real SQS
deduplicates for 5 minutes whatever happened to the first, per message group when
DeduplicationScope=messageGroup. Its sequence numbers are also random digits,
not increasing. And its server is threaded but a queue's state is not locked:
two concurrent ReceiveMessage calls can both take messages of one FIFO group
(breaking order), a group's messages that return from a failure a few ms apart
can be delivered out of order, and a DeleteMessage racing a SendMessage can lose the new
message. moto has no setting for any of this, so `_patch_sqs_fifo` fixes them
(moto stays the implementation; this serialises and completes it).

moto also reads the clock anew for each message of a scan: a message of a group whose
visibility ran out *during* a ReceiveMessage was delivered alone, ahead of the earlier messages
of its group that the same scan had already passed over as locked (seen in the worker-crash
e2e test). Each locked scan therefore runs on one reading of the clock (`wall_clock_ms`, frozen
per thread for the scan).

`apply()` patches the process it runs in (moto server or in-process `mock_aws`); it is idempotent.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

_applied = False

DEDUPLICATION_WINDOW_MS = 5 * 60 * 1000
_scan = threading.local()
"""The clock reading of the receive scan this thread is running, if any."""


def wall_clock_ms() -> float:
    """The time moto's SQS models see, in milliseconds (tests replace it with a moving clock)."""
    from moto.core import utils  # noqa: PLC0415

    return float(utils.unix_time_millis())


def _sqs_clock() -> float:
    """What moto's SQS models read as the time: the scan's one reading during a receive, else the wall."""
    frozen: float | None = getattr(_scan, "now", None)
    return wall_clock_ms() if frozen is None else frozen


def apply() -> None:  # noqa: PLR0915 - one patch, kept together so it reads as one
    """Patch moto's SQS backend in this process."""
    global _applied  # noqa: PLW0603 - a process-wide, once-only patch
    if _applied:
        return
    _applied = True
    from moto.sqs import models  # noqa: PLC0415 - patch before the server imports the backends

    # Every clock read of moto's SQS models goes through it (moto calls it without an argument).
    models.unix_time_millis = _sqs_clock  # type: ignore[attr-defined,assignment]

    original_add_message = models.Queue.add_message
    lock = threading.Lock()
    sequence = itertools.count(10_000_000_000_000_000_000)

    def add_message(self: Any, message: Any) -> None:
        if self.fifo_queue and message.deduplication_id:
            scope_group = (
                message.group_id if self.attributes.get("DeduplicationScope") == "messageGroup" else None
            )
            key = (scope_group, message.deduplication_id)
            with lock:
                # Kept on the queue object, so that a queue re-created (a new mock_aws) starts afresh.
                seen: dict[tuple[str | None, str], float] = self.__dict__.setdefault("_local_stack_seen", {})
                first_sent = seen.get(key)
                if first_sent is not None and message.sent_timestamp - first_sent < DEDUPLICATION_WINDOW_MS:
                    return  # a duplicate within the window: accepted by the API, never delivered
                seen[key] = message.sent_timestamp
                message.sequence_number = str(next(sequence))
        original_add_message(self, message)

    def queue_lock(queue: Any) -> threading.RLock:
        with lock:
            existing: threading.RLock | None = getattr(queue, "_local_stack_lock", None)
            if existing is None:
                existing = queue._local_stack_lock = threading.RLock()
            return existing

    def locked_add_message(self: Any, message: Any) -> None:
        with queue_lock(self):
            add_message(self, message)

    original_delete_message = models.Queue.delete_message

    def delete_message(self: Any, receipt_handle: str) -> None:
        with queue_lock(self):
            original_delete_message(self, receipt_handle)

    original_change_visibility = models.SQSBackend.change_message_visibility

    def change_message_visibility(
        self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        with queue_lock(self.get_queue(queue_name)):
            original_change_visibility(self, queue_name, receipt_handle, visibility_timeout)

    original_receive = models.SQSBackend.receive_message

    def receive_message(  # noqa: PLR0917 - moto calls it positionally
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        """One locked scan at a time per queue; the long-poll wait happens outside the lock."""
        queue = self.get_queue(queue_name)
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with queue_lock(queue):
                _scan.now = wall_clock_ms()  # one reading for the whole scan, see the module docstring
                try:
                    # A message whose visibility expired is no longer in flight. moto forgets it lazily,
                    # one message at a time during the scan, so a group whose two failed messages come
                    # back a few ms apart would deliver the second first; forget them all first.
                    for message in [m for m in queue.pending_messages if m.visible]:
                        queue.pending_messages.discard(message)
                    result: list[Any] = original_receive(
                        self, queue_name, count, 0, visibility_timeout, message_attribute_names
                    )
                finally:
                    _scan.now = None
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            queue.wait_for_messages(min(1.0, remaining))
            time.sleep(0.05)  # visible messages of a busy group wake the wait at once: don't spin

    models.Queue.add_message = locked_add_message  # type: ignore[method-assign]
    models.Queue.delete_message = delete_message  # type: ignore[method-assign]
    models.SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]
    models.SQSBackend.receive_message = receive_message  # type: ignore[method-assign]

    # moto asks every message for the clock (`Message.visible`/`.delayed`) each time it counts a
    # queue's messages, and it counts them (through `Queue.attributes`) several times per message
    # sent: sends get quadratic, 0.6 s per batch at 1,000 queued messages. Same answers, one clock read.
    def _split(queue: Any) -> tuple[int, int, int, list[Any]]:
        now = _sqs_clock()
        visible: list[Any] = []
        not_visible = delayed = 0
        for message in queue._messages:
            is_visible = now > message.visible_at
            is_delayed = now < message.delayed_until
            not_visible += not is_visible
            delayed += is_delayed
            if is_visible and not is_delayed:
                visible.append(message)
        return len(visible), not_visible, delayed, visible

    models.Queue.messages = property(lambda self: _split(self)[3])  # type: ignore[method-assign,assignment]
    models.Queue.approximate_number_of_messages = property(lambda self: _split(self)[0])  # type: ignore[method-assign,assignment]
    models.Queue.approximate_number_of_messages_not_visible = property(lambda self: _split(self)[1])  # type: ignore[method-assign,assignment]
    models.Queue.approximate_number_of_messages_delayed = property(lambda self: _split(self)[2])  # type: ignore[method-assign,assignment]
