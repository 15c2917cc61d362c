"""Answer one inbound message: typing indicator, model call, reply, memory.

This is the unit the AI function runs once per wamid (under Powertools
idempotency, in the handler). Order matters:

1. A `TypingIndicator` goes on the outbound FIFO queue first (same group as the
   reply, so the send function marks the message read and shows "typing…"
   before the answer arrives). Fallback replies get the same record: it is
   WhatsApp's read receipt (blue ticks) as much as a typing indicator, and a
   sticker or voice note deserves to show as read like a text does; the
   "typing…" it adds is cleared by the reply right behind it. (A read-only
   receipt would need a new outbound record kind for no visible difference.)
2. The model is asked (memory turns + question, within the prompt budget).
3. The `TextReply` goes on the outbound queue (unless `hooks` take over: the
   model handed the conversation to a person, see `conversation.conductor`).
4. Memory is updated last and best-effort: the answer is already on its way, and
   failing now would make the redelivery ask the model again and, after SQS's
   5-minute deduplication window, send the user a second answer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from wa_assistant.aws.queue import MessageQueue, QueueItem
from wa_assistant.conversation.memory import ConversationMemory, Turn, remember
from wa_assistant.conversation.prompt import (
    AskModel,
    ChatMessage,
    SendFallback,
    build_chat_messages,
    profile_name_note,
    render_system_prompt,
)
from wa_assistant.model.chat import ChatCompletion
from wa_assistant.observability import logger, metrics
from wa_assistant.records import InboundMessage, Recipient, TextReply, TypingIndicator, sqs_safe_id

Outcome = Literal["answered", "fallback"]


class ChatModel(Protocol):
    def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[Mapping[str, Any]] = ()
    ) -> ChatCompletion: ...


class AnswerHooks(Protocol):
    """What conversation control adds to a model answer (implemented by `conversation.conductor`)."""

    def tools(self) -> Sequence[Mapping[str, Any]]:
        """Functions the model may call."""
        ...

    def after_completion(
        self, message: InboundMessage, turns: list[Turn], question: str, completion: ChatCompletion
    ) -> str | None:
        """Counts the answer; returns an outcome when it handled the reply itself, else None."""
        ...


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """The operator's wording and limits (template parameters)."""

    system_prompt: str
    business_name: str
    fallback_reply: str
    prompt_budget_chars: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AnswerSettings:
        env = os.environ if env is None else env
        return cls(
            system_prompt=env.get("SYSTEM_PROMPT", ""),
            business_name=env.get("BUSINESS_NAME", ""),
            fallback_reply=env.get("FALLBACK_REPLY", "").strip()
            or "Thanks! I can only read text messages for now. Could you type your question?",
            prompt_budget_chars=int(env.get("PROMPT_BUDGET_CHARS") or "12000"),
        )


class Answerer:
    """Turns a planned message into queue records, with the model's help when needed."""

    def __init__(
        self,
        *,
        settings: AnswerSettings,
        outbound: MessageQueue,
        model: ChatModel,
        memory: ConversationMemory,
        hooks: AnswerHooks | None = None,
    ) -> None:
        self.settings = settings
        self.outbound = outbound
        self.model = model
        self.memory = memory
        self.hooks = hooks

    def answer(self, message: InboundMessage, plan: AskModel | SendFallback) -> Outcome | str:
        if isinstance(plan, SendFallback):
            self._send_typing_indicator(message)  # marks it read: see the module docstring
            self._send_reply(message, self.settings.fallback_reply)
            logger.info(
                "Sent the fallback reply", extra={"reason": plan.reason, "message_type": message.type}
            )
            metrics.add_metric(name="FallbackReplies", unit="Count", value=1)
            return "fallback"
        self._send_typing_indicator(message)
        turns = self.memory.load(message.conversation_id)
        system_prompt = render_system_prompt(
            self.settings.system_prompt, business_name=self.settings.business_name
        )
        chat, question = build_chat_messages(
            system_prompt=system_prompt,
            turns=turns,
            question=plan.question,
            budget_chars=self.settings.prompt_budget_chars,
            user_note=profile_name_note(self.settings.system_prompt, message.sender.profile_name),
        )
        completion = self.model.complete(chat, self.hooks.tools() if self.hooks else ())
        self._record_completion(completion, remembered_turns=sum(m.role == "assistant" for m in chat))
        if self.hooks is not None:
            handled = self.hooks.after_completion(message, turns, question, completion)
            if handled is not None:
                return handled
        self._send_reply(message, completion.text)
        metrics.add_metric(name="MessagesAnswered", unit="Count", value=1)
        self._remember(message, turns, Turn(user=question, assistant=completion.text))
        return "answered"

    def send_reply(self, message: InboundMessage, text: str) -> None:
        """A reply that is not the model's (conversation control's confirmations), quoting the message."""
        self._send_reply(message, text)

    def _send_typing_indicator(self, message: InboundMessage) -> None:
        typing = TypingIndicator(
            phone_number_id=message.phone_number_id, inbound_message_id=message.message_id
        )
        self.outbound.send(
            [
                QueueItem(
                    body=typing.model_dump_json(ensure_ascii=True),
                    group_id=message.conversation_id,
                    deduplication_id=sqs_safe_id(message.message_id, "typing"),
                )
            ]
        )

    def _send_reply(self, message: InboundMessage, text: str) -> None:
        reply = TextReply(
            phone_number_id=message.phone_number_id,
            recipient=Recipient.of(message.sender),
            inbound_message_id=message.message_id,
            text=text,
        )
        self.outbound.send(
            [
                QueueItem(
                    body=reply.model_dump_json(ensure_ascii=True),  # SQS refuses U+FFFE, U+FFFF
                    group_id=message.conversation_id,
                    deduplication_id=sqs_safe_id(message.message_id, "reply"),
                )
            ]
        )

    def _record_completion(self, completion: ChatCompletion, remembered_turns: int) -> None:
        fields = {
            "finish_reason": completion.finish_reason,
            "model": completion.model,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_ms": round(completion.latency_ms),
            "memory_turns_sent": remembered_turns,
        }
        if completion.finish_reason == "length":
            logger.warning("The reply was cut at the token limit; sending it anyway", extra=fields)
        else:
            logger.info("The model replied", extra=fields)
        metrics.add_metric(name="MistralLatency", unit="Milliseconds", value=completion.latency_ms)
        if completion.prompt_tokens is not None:
            metrics.add_metric(name="PromptTokens", unit="Count", value=completion.prompt_tokens)
        if completion.completion_tokens is not None:
            metrics.add_metric(name="CompletionTokens", unit="Count", value=completion.completion_tokens)

    def _remember(self, message: InboundMessage, turns: list[Turn], new_turn: Turn) -> None:
        if not self.memory.enabled:
            return
        try:
            self.memory.save(message.conversation_id, remember(turns, new_turn, self.memory.max_turns))
        except Exception:  # best-effort on purpose, see the module docstring
            logger.exception("Could not update the conversation memory; the reply was sent")
            metrics.add_metric(name="MemoryUpdateFailed", unit="Count", value=1)
