"""Retry-After as Mistral and Graph may send it."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from wa_assistant.retry_after import MAX_RETRY_AFTER_SECONDS, retry_after_seconds

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_delta_seconds() -> None:
    assert retry_after_seconds("30") == 30
    assert retry_after_seconds("3.5") == 3.5
    assert retry_after_seconds("-5") == 0


def test_http_dates_count_from_now_and_never_go_negative() -> None:
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:45 GMT", now=NOW) == 45
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=NOW) == 0


def test_absent_or_unreadable_is_none() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("  ") is None
    assert retry_after_seconds("soon") is None


def test_absurd_values_are_clamped_never_raised() -> None:
    assert retry_after_seconds("inf") == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("Infinity") == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("1e309") == MAX_RETRY_AFTER_SECONDS  # float() makes it inf
    assert retry_after_seconds("99999999999999") == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("-inf") == 0
    assert retry_after_seconds("-1e309") == 0
    assert retry_after_seconds("nan") is None
    assert retry_after_seconds("NaN") is None


@given(st.text())
def test_any_header_value_is_none_or_a_finite_wait_within_sqs_limits(value: str) -> None:
    seconds = retry_after_seconds(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= MAX_RETRY_AFTER_SECONDS)
