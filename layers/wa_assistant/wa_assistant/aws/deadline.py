"""Is there time left in this invocation for one more outside call? One answer for both consumers.

Lambda kills an invocation at its timeout: a model or Graph call cut half-way
leaves the whole batch to come back only after the queue's visibility timeout
(minutes). Handing the record back before starting the call costs a short delay
instead, and is not counted as an attempt (nothing was tried).
"""

from __future__ import annotations

from typing import Protocol

from wa_assistant.aws.batch import RetryLater

SAFETY_MARGIN_SECONDS = 5.0
"""Time kept after the slowest possible call: the writes that complete it (idempotency record,
memory, the next queue's SendMessageBatch) and the batch's own bookkeeping (visibility changes)."""


class Invocation(Protocol):
    """What this check needs of Lambda's context object."""

    def get_remaining_time_in_millis(self) -> int: ...


def ensure_time_for_call(context: Invocation | None, call_seconds: float, call: str) -> None:
    """Raise an uncounted RetryLater unless a call taking up to `call_seconds` (connect + read
    timeouts) can finish with SAFETY_MARGIN_SECONDS to spare. Without a context (a test, a
    script) there is no deadline."""
    if context is None:
        return
    remaining = context.get_remaining_time_in_millis() / 1000
    if remaining < call_seconds + SAFETY_MARGIN_SECONDS:
        raise RetryLater(
            f"not enough time left in this invocation for {call} "
            f"({remaining:.1f} s left; the call may take {call_seconds:g} s, "
            f"plus {SAFETY_MARGIN_SECONDS:g} s of margin)",
            counts_as_attempt=False,
        )
