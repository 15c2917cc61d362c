"""The Retry-After header, as both outside APIs (Mistral, Graph) may send it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_SECONDS = 12 * 3600.0
"""SQS's longest visibility timeout: no wait a server asks for can be honoured beyond it."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait: delta-seconds or an HTTP date (RFC 9110); None when absent or unreadable.

    Whatever the server sends, the result is a finite number in [0, MAX_RETRY_AFTER_SECONDS]
    or None: `inf`, `1e309` (inf once parsed) and dates centuries ahead are clamped, `nan` is
    unreadable, negative values and past dates mean "now". A header is no reason to crash.
    """
    if value is None or not value.strip():
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until_date(value, now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def _seconds_until_date(value: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - (now or datetime.now(UTC))).total_seconds()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
