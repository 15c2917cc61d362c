"""Fixes to moto's SQS emulation that the local stack and the tests rely on.

moto 5.x bug: when several in-flight messages of one FIFO group time out
together, `receive_message` releases them one at a time while iterating, so the
group still looks "pending" when its first message is examined and the second
one is delivered first: FIFO order breaks exactly when a conversation is
retried. Real SQS delivers them in order. Releasing every timed-out message
before the scan restores the order. No moto release fixes it yet, so this patch
is hand-written; `apply()` is idempotent.
"""

from __future__ import annotations

from typing import Any

from moto.sqs.models import SQSBackend

_applied = False


def apply() -> None:
    """Patch moto's SQS backend in this process (in-process mocks and moto server alike)."""
    global _applied  # noqa: PLW0603 - a process-wide, once-only patch
    if _applied:
        return
    original = SQSBackend.receive_message

    def receive_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        for message in list(queue.pending_messages):
            if message.visible:
                queue.pending_messages.discard(message)
        return original(self, queue_name, *args, **kwargs)

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    _applied = True
