"""Answer one inbound message, or a burst of them: typing indicator, understanding, model call, reply, memory.

This is the unit the AI function runs once per wamid (under Powertools
idempotency, in the handler). A *run* is one message, or consecutive messages of
one conversation that arrived together (a burst: "hi" / "I ordered yesterday" /
"it hasn't arrived"): they are answered by one model call whose user turn holds
all of them in order, and one reply that quotes the last. Order matters:

1. A `TypingIndicator` goes on the outbound FIFO queue first (same group as the
   reply, so the send function marks the message read and shows "typing…"
   before the answer arrives), before any (slower) media work. Honest and
   fallback replies get the same record: it is WhatsApp's read receipt (blue
   ticks; on the last message of a run, which marks the earlier ones read too)
   as much as a typing indicator, and a sticker or a video deserves to show as
   read like a text does; the "typing…" it adds is cleared by the reply right
   behind it. (A read-only receipt would need a new outbound record kind for no
   visible difference.)
2. The message is understood (`conversation.understanding`): a voice note is
   transcribed, a photo downloaded, a document read; a media that cannot be read
   gets its honest reply here.
3. The model is asked (memory turns + the message, within the prompt budget; a
   message with an image goes to the vision model).
4. The `TextReply` goes on the outbound queue (unless `hooks` take over: the
   model handed the conversation to a person, see `conversation.conductor`).
5. Memory is updated last and best-effort: the answer is already on its way, and
   failing now would make the redelivery ask the model again and, after SQS's
   5-minute deduplication window, send the user a second answer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from wa_assistant.aws.queue import MessageQueue, QueueItem
from wa_assistant.conversation.memory import ConversationMemory, Turn, remember, truncate
from wa_assistant.conversation.prompt import (
    ChatMessage,
    build_chat_messages,
    profile_name_note,
    render_system_prompt,
)
from wa_assistant.conversation.understanding import (
    MediaReader,
    Read,
    Reply,
    UnderstandingSettings,
    Understood,
    together,
    understand,
)
from wa_assistant.deadline import HasTime, ensure_time, unlimited
from wa_assistant.model.chat import DEFAULT_MODEL, ChatCompletion
from wa_assistant.observability import logger, metrics
from wa_assistant.records import InboundMessage, Recipient, TextReply, TypingIndicator, sqs_safe_id

Outcome = Literal["answered", "fallback", "honest_reply"]
Run = Sequence[tuple[InboundMessage, Read | Reply]]
"""Messages of one conversation answered together, oldest first, each with its plan."""


class ChatModel(Protocol):
    def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[Mapping[str, Any]] = (),
        model: str | None = None,
    ) -> ChatCompletion: ...


class AnswerHooks(Protocol):
    """What conversation control adds to a model answer (implemented by `conversation.conductor`)."""

    def tools(self) -> Sequence[Mapping[str, Any]]:
        """Functions the model may call."""
        ...

    def after_completion(
        self,
        message: InboundMessage,
        turns: list[Turn],
        question: str,
        completion: ChatCompletion,
        *,
        messages: int = 1,
    ) -> str | None:
        """Counts the answer (`messages` user messages, the last one `message`); returns an outcome
        when it handled the reply itself, else None."""
        ...


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """The operator's wording and limits (template parameters)."""

    system_prompt: str
    business_name: str
    prompt_budget_chars: int
    vision_model: str = DEFAULT_MODEL
    """The model that reads images (VisionModel); text-only messages go to MistralModel."""
    understanding: UnderstandingSettings = field(default_factory=UnderstandingSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AnswerSettings:
        env = os.environ if env is None else env
        return cls(
            system_prompt=env.get("SYSTEM_PROMPT", ""),
            business_name=env.get("BUSINESS_NAME", ""),
            prompt_budget_chars=int(env.get("PROMPT_BUDGET_CHARS") or "12000"),
            vision_model=env.get("VISION_MODEL") or env.get("MISTRAL_MODEL") or DEFAULT_MODEL,
            understanding=UnderstandingSettings.from_env(env),
        )

    @property
    def fallback_reply(self) -> str:
        return self.understanding.replies.fallback


class Answerer:
    """Turns a planned message into queue records, with the model's help when needed."""

    def __init__(
        self,
        *,
        settings: AnswerSettings,
        outbound: MessageQueue,
        model: ChatModel,
        memory: ConversationMemory,
        reader: MediaReader,
        model_call_seconds: float = 30.0,
        has_time: HasTime = unlimited,
        hooks: AnswerHooks | None = None,
    ) -> None:
        self.settings = settings
        self.outbound = outbound
        self.model = model
        self.memory = memory
        self.reader = reader
        self.model_call_seconds = model_call_seconds
        self.has_time = has_time
        self.hooks = hooks

    def answer_run(self, run: Run) -> Outcome | str:
        """Answer a run: one read receipt and typing indicator, one model call, one reply quoting the last."""
        last = run[-1][0]
        self._send_typing_indicator(last)  # before the media work; for a reply, the read receipt
        readings: list[tuple[InboundMessage, Understood]] = []
        for message, plan in run:
            understood = (
                plan
                if isinstance(plan, Reply)
                else understand(message, self.settings.understanding, self.reader)
            )
            if isinstance(understood, Reply):  # its own honest reply, quoting it
                self._honest_reply(message, understood)
            else:
                readings.append((message, understood))
        if not readings:
            only = run[0][1]
            if len(run) == 1 and isinstance(only, Reply) and only.text == self.settings.fallback_reply:
                return "fallback"
            return "honest_reply"
        message = readings[-1][0]
        understood = together([reading for _, reading in readings])
        turns = self.memory.load(message.conversation_id)
        chat, question = self._chat_messages(message, turns, understood)
        images = understood.images
        ensure_time(self.has_time, self.model_call_seconds, "the model")
        completion = self.model.complete(
            chat,
            self.hooks.tools() if self.hooks else (),
            model=self.settings.vision_model if images else None,
        )
        self._record_completion(completion, remembered_turns=sum(m.role == "assistant" for m in chat))
        if len(readings) > 1:
            logger.info("Answered a burst with one model call", extra={"messages": len(readings)})
            metrics.add_metric(name="BurstsCoalesced", unit="Count", value=1)
            metrics.add_metric(name="MessagesCoalesced", unit="Count", value=len(readings) - 1)
        if self.hooks is not None:
            handled = self.hooks.after_completion(
                message, turns, question, completion, messages=len(readings)
            )
            if handled is not None:
                return handled
        self._send_reply(message, completion.text)
        metrics.add_metric(name="MessagesAnswered", unit="Count", value=len(readings))
        remembered = understood.remembered
        if remembered is None:
            remembered = question  # what the model read, as cut to the budget
        else:  # short lines standing for images: never an image
            remembered = truncate(remembered, self.settings.understanding.document_chars)
        self._remember(message, turns, Turn(user=remembered, assistant=completion.text))
        return "answered"

    def _chat_messages(
        self, message: InboundMessage, turns: list[Turn], understood: Understood
    ) -> tuple[list[ChatMessage], str]:
        """System prompt, memory and the message within the budget; images go after the (cut) text."""
        system_prompt = render_system_prompt(
            self.settings.system_prompt, business_name=self.settings.business_name
        )
        return build_chat_messages(
            system_prompt=system_prompt,
            turns=turns,
            question=understood.text,
            budget_chars=self.settings.prompt_budget_chars,
            user_note=profile_name_note(self.settings.system_prompt, message.sender.profile_name),
            images=understood.images,
        )

    def _honest_reply(self, message: InboundMessage, reply: Reply) -> None:
        self._send_reply(message, reply.text)
        fallback = reply.text == self.settings.fallback_reply
        logger.info(
            "Sent the fallback reply" if fallback else "Sent an honest reply (no model call)",
            extra={"reason": reply.reason, "message_type": message.type},
        )
        metrics.add_metric(name="FallbackReplies" if fallback else "HonestReplies", unit="Count", value=1)
        if reply.remembered is not None:
            turns = self.memory.load(message.conversation_id) if self.memory.enabled else []
            self._remember(message, turns, Turn(user=reply.remembered, assistant=reply.text))

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
