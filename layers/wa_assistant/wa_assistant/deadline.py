"""Is there time left in this invocation for one more outside call? The one answer for both consumers.

Lambda kills an invocation at its timeout: a model, media or Graph call cut
half-way leaves the whole batch to come back only after the queue's visibility
timeout (minutes). A call not started costs a short delay instead: `NoTimeLeft`
is handed back by the FIFO batch (`aws.batch`) as a retry that is not counted as
an attempt (nothing was tried), and everything already derived (a transcript) is
kept. The AI function makes several outside calls per message (media URL,
download, transcription or OCR, the model), so the check is an injectable
callable, `HasTime`, built from the Lambda context by `for_context`: every check
goes through the same rule, `time_left_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

SAFETY_MARGIN_SECONDS = 5.0
"""Time kept after the slowest possible call: the writes that complete it (idempotency record,
memory, the next queue's SendMessageBatch) and the batch's own bookkeeping (visibility changes)."""

HasTime = Callable[[float], bool]
"""`has_time(seconds)`: True when a call that may take `seconds` can finish in this invocation."""


class Invocation(Protocol):
    """What this check needs of Lambda's context object."""

    def get_remaining_time_in_millis(self) -> int: ...


class NoTimeLeft(Exception):  # noqa: N818 - names the situation, like RetryLater
    """A call was not started: the invocation would end before it could finish."""

    def __init__(self, call: str, seconds: float) -> None:
        super().__init__(
            f"not enough time left in this invocation for {call} "
            f"(it may take {seconds:g} s, plus {SAFETY_MARGIN_SECONDS:g} s of margin)"
        )
        self.call = call
        self.seconds = seconds


def time_left_for(context: Invocation | None, call_seconds: float) -> bool:
    """The rule: a call taking up to `call_seconds` (connect + read timeouts) must finish with
    SAFETY_MARGIN_SECONDS to spare. Without a context (a test, a script) there is no deadline."""
    if context is None:
        return True
    return context.get_remaining_time_in_millis() / 1000 >= call_seconds + SAFETY_MARGIN_SECONDS


def for_context(context: Invocation | None) -> HasTime:
    """The `HasTime` of one invocation."""
    return lambda seconds: time_left_for(context, seconds)


def ensure_time(has_time: HasTime, seconds: float, call: str) -> None:
    """Raise NoTimeLeft unless a call of `seconds` fits in what is left."""
    if not has_time(seconds):
        raise NoTimeLeft(call, seconds)


def unlimited(seconds: float) -> bool:
    """No deadline (tests, tools): every call fits."""
    return True
