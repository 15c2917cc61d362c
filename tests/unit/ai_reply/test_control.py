"""Conversation control's domain: keywords, the decision table, days and pauses (no AWS, no mocks)."""

from __future__ import annotations

import calendar
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.ai_reply.helpers import CONTROL_ENV
from wa_assistant.conversation.control import (
    ControlSettings,
    ConversationState,
    DayUsage,
    NumberUsage,
    Verdict,
    day_counter_expiry,
    decide,
    is_keyword,
    keyword_set,
    normalize,
    owner_pause_until,
    utc_day,
)

NOW = 1_780_000_000.0
SETTINGS = ControlSettings.from_env(CONTROL_ENV)
"""The template's defaults."""


def verdict(
    text: str | None,
    *,
    state: ConversationState | None = None,
    usage: DayUsage | None = None,
    number: NumberUsage | None = None,
    settings: ControlSettings = SETTINGS,
    message_id: str = "wamid.NEW",
) -> Verdict:
    return decide(
        message_id=message_id,
        text=text,
        state=state or ConversationState(),
        usage=usage or DayUsage(),
        number=number or NumberUsage(),
        settings=settings,
        now=NOW,
    )


def limited(**changes: object) -> ControlSettings:
    return dataclasses.replace(SETTINGS, **changes)  # type: ignore[arg-type]


# ------------------------------------------------------------------ keywords


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("STOP", "stop"),
        ("  Stop!  ", "stop"),
        ("¡Baja!", "baja"),
        ("Arrêt.", "arret"),
        ("ARRÊT", "arret"),
        ("darse   de\tbaja", "darse de baja"),
        ("🙏 stop 🙏", "stop"),
        ("Straße", "strasse"),
        ("...", ""),
        ("stop, please", "stop, please"),
    ],
)
def test_normalize_ignores_case_accents_spacing_and_surrounding_punctuation(
    text: str, normalized: str
) -> None:
    assert normalize(text) == normalized


def test_keyword_lists_come_from_comma_separated_parameters() -> None:
    assert keyword_set(" STOP , Arrêt,,darse de baja, ") == frozenset({"stop", "arret", "darse de baja"})
    assert keyword_set("") == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", True),
        ("stop", True),
        ("Stop.", True),
        ("arret", True),
        ("BAJA", True),
        ("Parar", True),
        ("unsubscribe", True),
        ("please stop", False),  # whole messages only
        ("stop sending me offers", False),
        ("stopped", False),
        ("", False),
        (None, False),
    ],
)
def test_opt_out_keywords_match_whole_messages_only(text: str | None, expected: bool) -> None:
    assert is_keyword(text, SETTINGS.opt_out_keywords) is expected


@pytest.mark.parametrize(
    "text", ["human", "Human!", "talk to a human", "Hablar con una persona", "parler à un humain", "Mensch"]
)
def test_default_handoff_keywords_cover_common_languages(text: str) -> None:
    assert is_keyword(text, SETTINGS.handoff_keywords)


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


# ------------------------------------------------------------------ the decision table


def test_an_ordinary_message_is_answered() -> None:
    assert verdict("Do you ship to Lisbon?") is Verdict.ANSWER
    assert verdict(None) is Verdict.ANSWER  # a sticker: answered (by the fallback reply)


def test_stop_opts_out_and_then_everything_is_silence_until_start() -> None:
    assert verdict("STOP") is Verdict.OPT_OUT
    opted_out = ConversationState(opted_out=True, opted_out_message_id="wamid.STOP")
    for text in ("hello?", "STOP", "human", None):
        assert verdict(text, state=opted_out) is Verdict.SILENT_OPTED_OUT
    assert verdict("start", state=opted_out) is Verdict.OPT_IN


def test_start_is_an_ordinary_message_for_a_user_who_never_opted_out() -> None:
    assert verdict("START") is Verdict.ANSWER


def test_a_retried_opt_out_or_opt_in_takes_the_same_path() -> None:
    opted_out = ConversationState(opted_out=True, opted_out_message_id="wamid.STOP")
    assert verdict("STOP", state=opted_out, message_id="wamid.STOP") is Verdict.OPT_OUT
    opted_in = ConversationState(opted_out=False, opted_in_message_id="wamid.START")
    assert verdict("START", state=opted_in, message_id="wamid.START") is Verdict.OPT_IN
    assert verdict("START", state=opted_in, message_id="wamid.LATER") is Verdict.ANSWER


def test_opt_out_wins_over_pause_handoff_and_limits() -> None:
    paused = ConversationState(paused_until=NOW + 60)
    assert verdict("stop", state=paused) is Verdict.OPT_OUT
    over = DayUsage(messages=10_000, limit_notified="wamid.OLD")
    assert verdict("stop", usage=over) is Verdict.OPT_OUT


def test_a_paused_conversation_remembers_without_answering_until_the_pause_ends() -> None:
    paused = ConversationState(paused_until=NOW + 1)
    assert verdict("are you there?", state=paused) is Verdict.REMEMBER_PAUSED
    assert verdict("human", state=paused) is Verdict.REMEMBER_PAUSED
    ended = ConversationState(paused_until=NOW)
    assert verdict("are you there?", state=ended) is Verdict.ANSWER


def test_the_message_that_started_a_handoff_hands_off_again_when_retried() -> None:
    paused = ConversationState(paused_until=NOW + 60, pause_message_id="wamid.HUMAN", paused_by="user")
    assert verdict("human", state=paused, message_id="wamid.HUMAN") is Verdict.HAND_OFF


def test_a_handoff_keyword_hands_off_even_over_the_limits() -> None:
    assert verdict("human") is Verdict.HAND_OFF
    assert verdict("human", usage=DayUsage(messages=10_000)) is Verdict.HAND_OFF
    assert verdict("human", settings=limited(handoff_keywords=frozenset())) is Verdict.ANSWER


def test_the_user_limit_gets_one_reply_a_day_then_silence() -> None:
    settings = limited(user_daily_message_limit=3)
    assert verdict("4th", usage=DayUsage(messages=2), settings=settings) is Verdict.ANSWER
    assert verdict("4th", usage=DayUsage(messages=3), settings=settings) is Verdict.USER_LIMIT
    notified = DayUsage(messages=3, limit_notified="wamid.4TH")
    assert verdict("5th", usage=notified, settings=settings) is Verdict.USER_LIMIT_SILENT
    assert verdict("4th", usage=notified, settings=settings, message_id="wamid.4TH") is Verdict.USER_LIMIT


def test_the_token_limit_counts_prompt_and_completion_tokens() -> None:
    settings = limited(user_daily_message_limit=0, user_daily_token_limit=1000)
    assert verdict("hi", usage=DayUsage(messages=500, tokens=999), settings=settings) is Verdict.ANSWER
    assert verdict("hi", usage=DayUsage(tokens=1000), settings=settings) is Verdict.USER_LIMIT


def test_zero_means_unlimited() -> None:
    settings = limited(user_daily_message_limit=0, user_daily_token_limit=0, daily_token_budget=0)
    heavy = DayUsage(messages=10**9, tokens=10**12)
    assert verdict("hi", usage=heavy, number=NumberUsage(tokens=10**15), settings=settings) is Verdict.ANSWER


def test_a_spent_budget_gets_one_busy_reply_per_user_a_day() -> None:
    settings = limited(daily_token_budget=5000)
    assert verdict("hi", number=NumberUsage(tokens=4999), settings=settings) is Verdict.ANSWER
    assert verdict("hi", number=NumberUsage(tokens=5000), settings=settings) is Verdict.BUSY
    told = DayUsage(busy_notified="wamid.EARLIER")
    assert (
        verdict("hi", usage=told, number=NumberUsage(tokens=5000), settings=settings) is Verdict.BUSY_SILENT
    )


def test_a_user_over_their_own_limit_gets_the_limit_reply_not_the_busy_one() -> None:
    settings = limited(user_daily_message_limit=1, daily_token_budget=1)
    over = verdict("hi", usage=DayUsage(messages=1), number=NumberUsage(tokens=1), settings=settings)
    assert over is Verdict.USER_LIMIT


# ------------------------------------------------------------------ state merging, days, pauses


def test_a_users_two_keys_merge_to_the_stricter_state() -> None:
    bsuid = ConversationState(paused_until=NOW + 10)
    phone = ConversationState(opted_out=True, opted_out_message_id="wamid.OLD", paused_until=NOW + 99)
    merged = bsuid.merged_with(phone)
    assert (merged.opted_out, merged.opted_out_message_id, merged.paused_until) == (
        True,
        "wamid.OLD",
        NOW + 99,
    )


def test_days_are_utc_calendar_days_and_counters_expire_after_them() -> None:
    midnight = calendar.timegm((2026, 3, 31, 0, 0, 0))
    assert utc_day(midnight - 1) == "2026-03-30"
    assert utc_day(midnight) == "2026-03-31"
    assert day_counter_expiry(midnight) == midnight + 3 * 86_400
    assert day_counter_expiry(midnight + 86_399) == midnight + 3 * 86_400


def test_the_owners_activity_extends_the_pause_and_never_shortens_it() -> None:
    assert owner_pause_until(ConversationState(), NOW - 60, NOW, 0.5) == NOW - 60 + 1800
    longer = ConversationState(paused_until=NOW + 86_400)
    assert owner_pause_until(longer, NOW, NOW, 0.5) == NOW + 86_400
    assert owner_pause_until(ConversationState(), NOW + 3600, NOW, 1) == NOW + 3600  # future stamp = now


def test_settings_read_the_environment_and_missing_means_off() -> None:
    assert ControlSettings.from_env({}) == ControlSettings(
        handoff_keywords=frozenset(),
        handoff_reply="",
        handoff_pause_hours=0.0,
        handoff_tool=False,
        opt_out_keywords=frozenset(),
        opt_out_reply="",
        opt_in_keywords=frozenset(),
        opt_in_reply="",
        user_daily_message_limit=0,
        user_daily_token_limit=0,
        user_limit_reply="",
        daily_token_budget=0,
        busy_reply="",
    )
    assert SETTINGS.handoff_tool is True
    assert SETTINGS.handoff_pause_seconds == float(CONTROL_ENV["HANDOFF_PAUSE_HOURS"]) * 3600
    assert ControlSettings.from_env({"HANDOFF_PAUSE_HOURS": "0.25"}).handoff_pause_seconds == 900
