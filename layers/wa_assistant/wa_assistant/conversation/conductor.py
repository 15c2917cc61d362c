"""Runs conversation control around the answerer: one user message (or a burst of them) or one owner echo.

The decision is `control.decide` (plain domain logic); this module reads what
it needs (one BatchGetItem), carries the verdict out, and keeps the order that
makes a retry harmless: state first, then the reply (each state change records
the wamid that made it, so a retried message takes the same path and SQS's
deduplication id on the reply keeps the user from seeing it twice).

A handoff notifies the operator *before* it pauses: a notice that cannot be
sent fails the message (retried through SQS, then the dead-letter queue and its
alarm) instead of leaving a user waiting for a person nobody told.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wa_assistant.aws.notify import Notifier
from wa_assistant.conversation.answering import Answerer, Run
from wa_assistant.conversation.control import (
    ControlSettings,
    Verdict,
    day_counter_expiry,
    decide,
    is_keyword,
    owner_pause_until,
    utc_day,
)
from wa_assistant.conversation.control_store import ControlStore, Identity
from wa_assistant.conversation.handoff import HANDOFF_TOOL, handoff_notice, handoff_reason
from wa_assistant.conversation.memory import (
    ConversationMemory,
    Turn,
    remember,
    remember_assistant_only,
    remember_user_only,
)
from wa_assistant.conversation.understanding import TEXT_TYPES, Read, Reply, describe
from wa_assistant.model.chat import ChatCompletion
from wa_assistant.observability import logger, metrics
from wa_assistant.records import InboundMessage, OwnerEcho, sqs_safe_id

OWNER_REPLY_REASON = "the owner replied from the WhatsApp Business app"

VERDICT_METRICS = {
    Verdict.OPT_IN: "OptIns",
    Verdict.OPT_OUT: "OptOuts",
    Verdict.SILENT_OPTED_OUT: "MessagesFromOptedOut",
    Verdict.REMEMBER_PAUSED: "MessagesWhilePaused",
    Verdict.USER_LIMIT: "UserLimitReached",
    Verdict.USER_LIMIT_SILENT: "UserLimitReached",
    Verdict.BUSY: "DailyTokenBudgetReached",
    Verdict.BUSY_SILENT: "DailyTokenBudgetReached",
}
"""One metric per verdict that is not an answer (handoffs count HandoffRequested when done)."""


def phone_key_id(message: InboundMessage) -> str | None:
    """The conversation id the user had before Meta sent their BSUID, when both are known."""
    sender = message.sender
    if sender.wa_id and sender.user_id:
        return sqs_safe_id(message.phone_number_id, sender.wa_id)
    return None


def identity_of(message: InboundMessage) -> Identity:
    sender = message.sender
    return Identity(
        phone_number_id=message.phone_number_id,
        wa_id=sender.wa_id,
        user_id=sender.user_id,
        name=sender.profile_name or sender.username,
    )


def keyword_text(message: InboundMessage) -> str | None:
    """What the user typed or tapped: only that can be STOP, START or a handoff keyword."""
    return message.text if message.type in TEXT_TYPES else None


def remembered_text(message: InboundMessage, plan: Read | Reply) -> str:
    """A message as memory keeps it when it is not answered (paused, handed off): what the model
    would have read when that needs no media work, or what kind of message it was."""
    if isinstance(plan, Read) and plan.kind == "text":
        return describe(message)
    if isinstance(plan, Reply) and plan.remembered:
        return plan.remembered
    return f"(sent a {message.type} message)"


ECHO_NOTES = {
    "image": "(sent an image)",
    "video": "(sent a video)",
    "document": "(sent a document)",
    "audio": "(sent a voice message)",
    "sticker": "(sent a sticker)",
}
"""What memory keeps of the owner's media messages (an echo carries no media we read)."""


def echo_text(echo: OwnerEcho) -> str:
    """The owner's message as memory keeps it (an assistant turn)."""
    note = ECHO_NOTES.get(echo.type)
    if echo.text and echo.type == "text":
        return echo.text
    if echo.text and note:
        return f"{echo.text}\n\n{note}"
    return note or f"(sent a {echo.type} message)"


class Conductor:
    """Conversation control for the AI function; also the answerer's hooks (tools, usage, model handoff)."""

    def __init__(
        self,
        *,
        settings: ControlSettings,
        store: ControlStore,
        answerer: Answerer,
        notifier: Notifier,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.answerer = answerer
        self.notifier = notifier
        self.clock = clock

    @property
    def memory(self) -> ConversationMemory:
        return self.answerer.memory

    # ------------------------------------------------------------ user messages
    def handle_run(self, run: Run) -> str:
        """Answer, or not, a run of user messages: one message, or a burst (none of them a keyword:
        see `is_keyword`) decided once as for its last message. Returns the outcome (kept by the
        idempotency records)."""
        message = run[-1][0]
        now = self.clock()
        day = utc_day(now)
        phone_key = phone_key_id(message)
        snapshot = self.store.snapshot(
            conversation_id=message.conversation_id,
            phone_key_id=phone_key,
            phone_number_id=message.phone_number_id,
            day=day,
        )
        if snapshot.alias_missing and phone_key is not None:
            self._best_effort(
                "AliasUpdateFailed",
                lambda: self.store.set_alias(phone_key, message.conversation_id, identity_of(message), now),
            )
        verdict = decide(
            message_id=message.message_id,
            text=keyword_text(message) if len(run) == 1 else None,
            state=snapshot.state,
            usage=snapshot.usage,
            number=snapshot.number,
            settings=self.settings,
            now=now,
        )
        if verdict is Verdict.ANSWER:
            return self.answerer.answer_run(run)
        logger.info(
            "Conversation control",
            extra={"verdict": verdict.value, "message_type": message.type, "messages": len(run)},
        )
        if verdict in VERDICT_METRICS:  # counts messages: a burst counts each of its own
            metrics.add_metric(name=VERDICT_METRICS[verdict], unit="Count", value=len(run))
        keys = [message.conversation_id, *([phone_key] if phone_key else [])]
        remembered = "\n\n".join(remembered_text(each, plan) for each, plan in run)
        match verdict:
            case Verdict.OPT_OUT | Verdict.OPT_IN:
                out = verdict is Verdict.OPT_OUT
                identity = identity_of(message)
                self.store.set_opted_out(
                    keys, opted_out=out, message_id=message.message_id, identity=identity, now=now
                )
                self._reply(message, self.settings.opt_out_reply if out else self.settings.opt_in_reply)
            case Verdict.REMEMBER_PAUSED:
                self._remember(
                    message.conversation_id,
                    lambda turns: remember_user_only(turns, remembered, self.memory.max_turns),
                )
            case Verdict.HAND_OFF:
                state = snapshot.state
                retried = state.pause_message_id == message.message_id
                return self._hand_off(
                    message,
                    question=remembered,
                    turns=None,
                    reason=(state.pause_reason or "") if retried else "the user asked for a person",
                    source="model" if retried and state.paused_by == "model" else "keyword",
                    now=now,
                )
            case Verdict.USER_LIMIT | Verdict.BUSY:
                flag = "limit_notified" if verdict is Verdict.USER_LIMIT else "busy_notified"
                self.store.mark_notified(
                    conversation_id=message.conversation_id,
                    day=day,
                    flag=flag,
                    message_id=message.message_id,
                    expires_at=day_counter_expiry(now),
                )
                limited = verdict is Verdict.USER_LIMIT
                self._reply(message, self.settings.user_limit_reply if limited else self.settings.busy_reply)
            case _:
                pass  # silence: no read receipt, no typing indicator, no model call
        return verdict.value

    def is_keyword(self, message: InboundMessage) -> bool:
        """STOP, START or a handoff keyword: such a message is handled on its own, never in a burst."""
        return self.changes_consent(message) or is_keyword(
            keyword_text(message), self.settings.handoff_keywords
        )

    def changes_consent(self, message: InboundMessage) -> bool:
        """An opt-out or opt-in keyword: recorded even when it arrives too late for any reply."""
        text = keyword_text(message)
        return is_keyword(text, self.settings.opt_out_keywords) or is_keyword(
            text, self.settings.opt_in_keywords
        )

    # ------------------------------------------------------------ answerer hooks
    def tools(self) -> Sequence[Mapping[str, Any]]:
        return [HANDOFF_TOOL] if self.settings.handoff_tool else []

    def after_completion(
        self,
        message: InboundMessage,
        turns: list[Turn],
        question: str,
        completion: ChatCompletion,
        *,
        messages: int = 1,
    ) -> str | None:
        """Count the answer (each message of a burst) against the day's limits; hand off when the
        model asked for a person."""
        now = self.clock()
        self._best_effort(
            "UsageUpdateFailed",
            lambda: self.store.add_usage(
                conversation_id=message.conversation_id,
                phone_number_id=message.phone_number_id,
                day=utc_day(now),
                tokens=completion.total_tokens,
                expires_at=day_counter_expiry(now),
                messages=messages,
            ),
        )
        reason = handoff_reason(completion) if self.settings.handoff_tool else None
        if reason is None:
            return None
        return self._hand_off(message, question=question, turns=turns, reason=reason, source="model", now=now)

    # ------------------------------------------------------------ handoff
    def _hand_off(
        self,
        message: InboundMessage,
        *,
        question: str,
        turns: list[Turn] | None,
        reason: str,
        source: str,
        now: float,
    ) -> str:
        """Notify the operator, pause, confirm to the user, remember the exchange."""
        if turns is None:
            turns = self.memory.load(message.conversation_id)
        until = now + self.settings.handoff_pause_seconds
        notice = handoff_notice(
            message=message,
            reason=reason,
            source=source,
            turns=turns,
            question=question,
            paused_until=until,
            business_name=self.answerer.settings.business_name,
        )
        notice_id = self.notifier.publish(notice.subject, notice.text)
        self.store.pause(
            message.conversation_id,
            until=until,
            reason=reason,
            by="user" if source == "keyword" else "model",
            now=now,
            identity=identity_of(message),
            message_id=message.message_id,
        )
        self._reply(message, self.settings.handoff_reply)
        logger.info(
            "Handed off to a person; the operator was notified",
            extra={"source": source, "paused_until": int(until), "sns_message_id": notice_id},
        )
        metrics.add_metric(name="HandoffRequested", unit="Count", value=1)
        exchange = Turn(user=question, assistant=self.settings.handoff_reply)
        self._remember(message.conversation_id, lambda _: remember(turns, exchange, self.memory.max_turns))
        return "handed_off"

    # ------------------------------------------------------------ owner echoes
    def handle_echo(self, echo: OwnerEcho) -> str:
        """The owner wrote from the WhatsApp Business app: pause the bot, remember what they said."""
        now = self.clock()
        conversation_id = echo.conversation_id
        state = self.store.conversation(conversation_id)
        if state.alias_of:  # the echo names the number; the user's messages carry their BSUID
            conversation_id = state.alias_of
            state = self.store.conversation(conversation_id)
        until = owner_pause_until(state, echo.timestamp, now, self.settings.handoff_pause_hours)
        self.store.pause(
            conversation_id,
            until=until,
            reason=OWNER_REPLY_REASON,
            by="owner",
            now=now,
            identity=Identity(
                phone_number_id=echo.phone_number_id,
                wa_id=echo.recipient.wa_id,
                user_id=echo.recipient.user_id,
            ),
        )
        logger.info(
            "The owner replied from the WhatsApp Business app; the assistant pauses",
            extra={"paused_until": int(until), "message_type": echo.type},
        )
        metrics.add_metric(name="OwnerReplies", unit="Count", value=1)
        text = echo_text(echo)
        self._remember(
            conversation_id, lambda turns: remember_assistant_only(turns, text, self.memory.max_turns)
        )
        return "owner_reply"

    # ------------------------------------------------------------ helpers
    def _reply(self, message: InboundMessage, text: str) -> None:
        if text:  # an empty reply parameter means "send nothing"
            self.answerer.send_reply(message, text)

    def _remember(self, conversation_id: str, update: Callable[[list[Turn]], list[Turn]]) -> None:
        """Memory is best-effort here as for answers: the user-visible part is already done."""
        if not self.memory.enabled:
            return

        def save() -> None:
            self.memory.save(conversation_id, update(self.memory.load(conversation_id)))

        self._best_effort("MemoryUpdateFailed", save)

    @staticmethod
    def _best_effort(metric: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # best-effort on purpose: the reply is on its way
            logger.exception("Could not update conversation control's records", extra={"failed": metric})
            metrics.add_metric(name=metric, unit="Count", value=1)
