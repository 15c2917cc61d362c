"""Time left in this invocation: "is there time for a call of N seconds?", asked before every outside call.

The AI function makes several outside calls per message (the media URL, the
download, a transcription or OCR, the model). A call that Lambda kills half-way
wastes the whole batch's visibility timeout; a call not started costs a short
SQS backoff, and everything already derived (a transcript) is kept. The answer
comes from one injectable callable (the handler builds it from the Lambda
context), so that every check goes through the same rule.
"""

from __future__ import annotations

from collections.abc import Callable

HasTime = Callable[[float], bool]
"""`has_time(seconds)`: True when a call that may take `seconds` can finish in this invocation."""


class NoTimeLeft(Exception):  # noqa: N818 - names the situation, like RetryLater
    """A call was not started: the invocation would end before it could finish."""

    def __init__(self, call: str, seconds: float) -> None:
        super().__init__(f"not enough time left in this invocation for {call} (up to {seconds:g} s)")
        self.call = call
        self.seconds = seconds


def ensure_time(has_time: HasTime, seconds: float, call: str) -> None:
    """Raise NoTimeLeft unless a call of `seconds` fits in what is left."""
    if not has_time(seconds):
        raise NoTimeLeft(call, seconds)


def unlimited(seconds: float) -> bool:
    """No deadline (tests, tools): every call fits."""
    return True
