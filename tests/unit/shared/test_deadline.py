"""The one answer to "is there time left for this call?" (wa_assistant.deadline)."""

from __future__ import annotations

import pytest

from tests.support import FakeLambdaContext
from wa_assistant.deadline import SAFETY_MARGIN_SECONDS, NoTimeLeft, ensure_time, for_context, time_left_for


def test_a_call_that_fits_with_the_margin_goes_ahead() -> None:
    millis = int((13 + SAFETY_MARGIN_SECONDS) * 1000)
    assert time_left_for(FakeLambdaContext(remaining_millis=millis), 13)
    ensure_time(for_context(FakeLambdaContext(remaining_millis=millis)), 13, "a Graph call")


def test_a_call_that_may_not_finish_is_not_started() -> None:
    millis = int((13 + SAFETY_MARGIN_SECONDS) * 1000) - 1
    assert not time_left_for(FakeLambdaContext(remaining_millis=millis), 13)
    with pytest.raises(NoTimeLeft) as raised:
        ensure_time(for_context(FakeLambdaContext(remaining_millis=millis)), 13, "a Graph call")
    assert "a Graph call" in str(raised.value)


def test_without_a_context_there_is_no_deadline() -> None:
    assert time_left_for(None, 10_000)
    ensure_time(for_context(None), 10_000, "a model call")
