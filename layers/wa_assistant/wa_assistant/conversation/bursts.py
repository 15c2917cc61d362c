"""Bursts: "hi" / "I ordered yesterday" / "it hasn't arrived", three messages in four seconds.

Messages of one conversation that wait in the queue while an earlier one is being
answered come to the AI function together (FIFO delivers a group's waiting
messages in one batch) and are answered as one run (`conversation.answering`).
A message that has just arrived may also wait a little for the rest of its burst:
`coalesce_wait` says how long, so that no message waits longer than the window
(CoalesceWindowSeconds) after it reached the queue. The wait is spent in the
queue (the record is handed back with that visibility timeout), not in an idle
invocation.
"""

from __future__ import annotations

from collections.abc import Sequence


def coalesce_wait(sent_at: Sequence[float], *, now: float, window: float) -> float:
    """Seconds left before a run whose messages reached the queue at `sent_at` is answered:
    until its oldest is `window` seconds old (0: answer now)."""
    if window <= 0 or not sent_at:
        return 0.0
    return max(0.0, min(sent_at) + window - now)
