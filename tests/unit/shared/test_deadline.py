"""ensure_time_for_call: the one answer to "is there time left for this call?"."""

from __future__ import annotations

import pytest

from tests.support import FakeLambdaContext
from wa_assistant.aws.batch import RetryLater
from wa_assistant.aws.deadline import SAFETY_MARGIN_SECONDS, ensure_time_for_call


def test_a_call_that_fits_with_the_margin_goes_ahead() -> None:
    millis = int((13 + SAFETY_MARGIN_SECONDS) * 1000)
    ensure_time_for_call(FakeLambdaContext(remaining_millis=millis), 13, "a Graph call")


def test_a_call_that_may_not_finish_is_handed_back_uncounted() -> None:
    millis = int((13 + SAFETY_MARGIN_SECONDS) * 1000) - 1
    with pytest.raises(RetryLater) as raised:
        ensure_time_for_call(FakeLambdaContext(remaining_millis=millis), 13, "a Graph call")
    assert raised.value.counts_as_attempt is False
    assert "a Graph call" in raised.value.reason


def test_without_a_context_there_is_no_deadline() -> None:
    ensure_time_for_call(None, 10_000, "a model call")
