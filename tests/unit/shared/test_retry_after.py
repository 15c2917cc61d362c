"""Retry-After as Mistral and Graph may send it."""

from __future__ import annotations

from datetime import UTC, datetime

from wa_assistant.retry_after import retry_after_seconds

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
