"""Conversation control: whether a user message may be answered, decided before any model call.

Plain functions over pydantic models; no AWS (the state lives in DynamoDB, see
`control_store`). Everything is per conversation, the key of the FIFO group
(business number + the user's BSUID, else phone number).

What one user message gets, first match wins (`decide`):

==================================================  ===================================================
the conversation / the message                      what happens
==================================================  ===================================================
written in a WhatsApp group (`group_id`)            nothing; GroupMessagesIgnored (checked in the handler)
opted out, message = an OptInKeywords entry         opted in again; OptInReply
opted out, anything else                            nothing at all: no read receipt, no typing, no model
message = an OptOutKeywords entry                   opted out (durably); OptOutReply
paused (a person is handling it)                    remembered for the model, not answered
message = a HandoffKeywords entry                   operator notified, paused; HandoffReply
over UserDailyMessageLimit or UserDailyTokenLimit   UserLimitReply once per user per UTC day, then nothing
the number's DailyTokenBudget is spent              BusyReply once per user per UTC day, then nothing
anything else                                       answered (the model, or FallbackReply); the model may
                                                    hand off itself with the `handoff_to_human` tool
==================================================  ===================================================

Keywords match the whole message, trimmed, ignoring case, accents and surrounding
punctuation ("Stop!" and "arrêt" match STOP and ARRET). An empty reply text means
"send nothing" for that case.

Every step that changes state remembers the wamid that changed it, so a retry of
that same message (SQS redelivery after a failure half-way) takes the same path
again instead of reading its own effect as someone else's: a retried STOP sends
its confirmation, it is not silenced by the opt-out it just stored.
"""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

SECONDS_PER_DAY = 86_400
DAY_COUNTER_KEEP_DAYS = 2
"""Day counters expire (DynamoDB TTL) this many days after their UTC day ends."""


class Verdict(StrEnum):
    """What to do with one user message."""

    ANSWER = "answer"
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"
    SILENT_OPTED_OUT = "silent_opted_out"
    REMEMBER_PAUSED = "remember_paused"
    HAND_OFF = "hand_off"
    USER_LIMIT = "user_limit"
    USER_LIMIT_SILENT = "user_limit_silent"
    BUSY = "busy"
    BUSY_SILENT = "busy_silent"


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ConversationState(_State):
    """The durable part (no TTL): opt-out and pause of one conversation."""

    opted_out: bool = False
    opted_out_message_id: str | None = None
    """The wamid of the opt-out (its retry sends the confirmation again)."""
    opted_in_message_id: str | None = None
    paused_until: float = 0.0
    """Unix seconds; 0 = not paused."""
    pause_reason: str | None = None
    paused_by: str | None = None
    """owner (replied from the WhatsApp Business app), user (keyword), model (tool call), operator."""
    pause_message_id: str | None = None
    """The wamid whose handoff started the pause."""
    alias_of: str | None = None
    """On a phone-number key: the conversation id the same user has under their BSUID."""

    def paused(self, now: float) -> bool:
        return self.paused_until > now

    def merged_with(self, other: ConversationState) -> ConversationState:
        """The user's state under two keys (their BSUID and their phone number): the stricter wins."""
        return self.model_copy(
            update={
                "opted_out": self.opted_out or other.opted_out,
                "opted_out_message_id": self.opted_out_message_id or other.opted_out_message_id,
                "paused_until": max(self.paused_until, other.paused_until),
                "pause_reason": self.pause_reason or other.pause_reason,
                "paused_by": self.paused_by or other.paused_by,
            }
        )


class DayUsage(_State):
    """One user's use of one UTC day (an atomic counter item with a TTL)."""

    messages: int = 0
    """Messages the model answered."""
    tokens: int = 0
    """Prompt + completion tokens of those answers."""
    limit_notified: str | None = None
    """The wamid that got today's UserLimitReply."""
    busy_notified: str | None = None
    """The wamid that got today's BusyReply."""


class NumberUsage(_State):
    """The business number's use of one UTC day."""

    tokens: int = 0


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """The operator's keywords, replies, pause and limits (template parameters, via the environment).

    The defaults live in template.yaml only; a variable that is missing here means
    "off": no keywords, no reply text, 0 = unlimited.
    """

    handoff_keywords: frozenset[str]
    handoff_reply: str
    handoff_pause_hours: float
    handoff_tool: bool
    opt_out_keywords: frozenset[str]
    opt_out_reply: str
    opt_in_keywords: frozenset[str]
    opt_in_reply: str
    user_daily_message_limit: int
    user_daily_token_limit: int
    user_limit_reply: str
    daily_token_budget: int
    busy_reply: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ControlSettings:
        env = os.environ if env is None else env
        return cls(
            handoff_keywords=keyword_set(env.get("HANDOFF_KEYWORDS", "")),
            handoff_reply=env.get("HANDOFF_REPLY", "").strip(),
            handoff_pause_hours=float(env.get("HANDOFF_PAUSE_HOURS") or 0),
            handoff_tool=env.get("HANDOFF_TOOL_ENABLED", "").strip().lower() == "true",
            opt_out_keywords=keyword_set(env.get("OPT_OUT_KEYWORDS", "")),
            opt_out_reply=env.get("OPT_OUT_REPLY", "").strip(),
            opt_in_keywords=keyword_set(env.get("OPT_IN_KEYWORDS", "")),
            opt_in_reply=env.get("OPT_IN_REPLY", "").strip(),
            user_daily_message_limit=int(env.get("USER_DAILY_MESSAGE_LIMIT") or 0),
            user_daily_token_limit=int(env.get("USER_DAILY_TOKEN_LIMIT") or 0),
            user_limit_reply=env.get("USER_LIMIT_REPLY", "").strip(),
            daily_token_budget=int(env.get("DAILY_TOKEN_BUDGET") or 0),
            busy_reply=env.get("BUSY_REPLY", "").strip(),
        )

    @property
    def handoff_pause_seconds(self) -> float:
        return self.handoff_pause_hours * 3600


# ------------------------------------------------------------------ keywords


def normalize(text: str) -> str:
    """Casefolded, accents removed, whitespace collapsed, punctuation and symbols trimmed at both ends."""
    # Unicode's compatibility caseless match (NFKD, casefold, NFKD): casefolding alone misses
    # letters that only decompose to a cased one, such as U+2130 SCRIPT CAPITAL E -> "E".
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = " ".join(bare.split())
    start, end = 0, len(words)
    while start < end and _trimmed(words[start]):
        start += 1
    while end > start and _trimmed(words[end - 1]):
        end -= 1
    return words[start:end]


def _trimmed(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in "PS"


def keyword_set(csv: str | Iterable[str]) -> frozenset[str]:
    """Keywords from a comma-separated parameter, normalized; empty entries dropped."""
    items = csv.split(",") if isinstance(csv, str) else csv
    return frozenset(word for word in (normalize(item) for item in items) if word)


def is_keyword(text: str | None, keywords: frozenset[str]) -> bool:
    """True when the whole message is one of the keywords."""
    return bool(text) and normalize(text or "") in keywords


# ------------------------------------------------------------------ days


def utc_day(now: float) -> str:
    """The UTC calendar day of a Unix time, e.g. 2026-03-31: the key of the day counters."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def day_counter_expiry(now: float) -> int:
    """TTL of the counters of `now`'s UTC day: DAY_COUNTER_KEEP_DAYS after that day ends."""
    next_day = (int(now) // SECONDS_PER_DAY + 1) * SECONDS_PER_DAY
    return next_day + DAY_COUNTER_KEEP_DAYS * SECONDS_PER_DAY


# ------------------------------------------------------------------ decisions


def over_user_limit(usage: DayUsage, settings: ControlSettings) -> bool:
    messages, tokens = settings.user_daily_message_limit, settings.user_daily_token_limit
    return (messages > 0 and usage.messages >= messages) or (tokens > 0 and usage.tokens >= tokens)


def budget_spent(number: NumberUsage, settings: ControlSettings) -> bool:
    return settings.daily_token_budget > 0 and number.tokens >= settings.daily_token_budget


def decide(  # noqa: PLR0911 - one return per row of the decision table
    *,
    message_id: str,
    text: str | None,
    state: ConversationState,
    usage: DayUsage,
    number: NumberUsage,
    settings: ControlSettings,
    now: float,
) -> Verdict:
    """The verdict for one user message (the table in the module docstring).

    `text` is what the user typed or tapped (None for media, locations...): only it
    can be a keyword.
    """
    if state.opted_in_message_id == message_id:
        return Verdict.OPT_IN  # a retry of the opt-in itself
    if state.opted_out:
        if is_keyword(text, settings.opt_in_keywords):
            return Verdict.OPT_IN
        if state.opted_out_message_id == message_id:
            return Verdict.OPT_OUT  # a retry of the opt-out itself
        return Verdict.SILENT_OPTED_OUT
    if is_keyword(text, settings.opt_out_keywords):
        return Verdict.OPT_OUT
    if state.paused(now):
        return Verdict.HAND_OFF if state.pause_message_id == message_id else Verdict.REMEMBER_PAUSED
    if is_keyword(text, settings.handoff_keywords):
        return Verdict.HAND_OFF
    if over_user_limit(usage, settings):
        first = usage.limit_notified in (None, message_id)
        return Verdict.USER_LIMIT if first else Verdict.USER_LIMIT_SILENT
    if budget_spent(number, settings):
        first = usage.busy_notified in (None, message_id)
        return Verdict.BUSY if first else Verdict.BUSY_SILENT
    return Verdict.ANSWER


def owner_pause_until(state: ConversationState, activity_at: float, now: float, hours: float) -> float:
    """The end of the pause after the owner wrote at `activity_at`: never earlier than it already was.

    A timestamp from the future (clock skew) counts as now.
    """
    return max(state.paused_until, min(activity_at, now) + hours * 3600)
