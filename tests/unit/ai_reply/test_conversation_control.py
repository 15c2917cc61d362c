"""Conversation control through the AI function's handler: moto for SQS/DynamoDB/SNS, respx for the model.

Each test plays a user's messages one invocation at a time, as the FIFO queue delivers them.
"""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from tests.support import load_function
from tests.unit.ai_reply.helpers import BASE_ENV, CONTROL_ENV, Captured, Stack, inbound, ok
from tests.unit.ai_reply.test_mistral import tool_call_json
from wa_assistant.conversation.memory import Turn
from wa_assistant.records import InboundMessage, OwnerEcho, Recipient, Sender, TextReply, TypingIndicator

OPT_OUT_REPLY = CONTROL_ENV["OPT_OUT_REPLY"]
OPT_IN_REPLY = CONTROL_ENV["OPT_IN_REPLY"]
HANDOFF_REPLY = CONTROL_ENV["HANDOFF_REPLY"]
USER_LIMIT_REPLY = CONTROL_ENV["USER_LIMIT_REPLY"]
BUSY_REPLY = CONTROL_ENV["BUSY_REPLY"]
CONTROL_TABLE = BASE_ENV["CONVERSATION_TABLE_NAME"]


def play(app: ModuleType, stack: Stack, *messages: InboundMessage | OwnerEcho) -> list[Any]:
    """Deliver each record in its own invocation; the outbound actions they produced, in order."""
    for message in messages:
        stack.enqueue(message)
        response = stack.invoke(app, stack.receive_event())
        assert response == {"batchItemFailures": []}
    return stack.outbound_actions()


def texts(actions: list[Any]) -> list[str]:
    return [action.text for action in actions if isinstance(action, TextReply)]


def echo(
    text: str, *, wa_id: str | None = "16505551234", user_id: str | None = None, **fields: Any
) -> OwnerEcho:
    return OwnerEcho(
        phone_number_id="106540352242922",
        recipient=Recipient(wa_id=wa_id, user_id=user_id),
        message_id=f"wamid.ECHO{time.perf_counter_ns()}",
        timestamp=int(time.time()),
        type="text",
        text=text,
        **fields,
    )


def memory_of(stack: Stack, app: ModuleType, message: InboundMessage | OwnerEcho) -> list[Turn]:
    loaded: list[Turn] = app.answerer.memory.load(message.conversation_id)
    return loaded


@pytest.fixture
def limited_app(
    stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> ModuleType:
    """The function with the environment a test's `limits` marker asks for."""
    for name, value in request.param.items():
        monkeypatch.setenv(name, value)
    return load_function("ai_reply")


# ------------------------------------------------------------------ opt-out


def test_stop_confirms_once_then_nothing_of_any_kind_until_start(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok("Sure.")
    stop = inbound("Stop!")
    actions = play(app, stack, stop)
    assert actions == [  # no typing indicator (it would mark the message read), no model call
        TextReply(
            phone_number_id=stop.phone_number_id,
            recipient=Recipient.of(stop.sender),
            inbound_message_id=stop.message_id,
            text=OPT_OUT_REPLY,
        )
    ]
    assert (
        play(app, stack, inbound("hello?"), inbound("STOP"), inbound("human"), inbound(None, type_="sticker"))
        == []
    )
    assert mistral.call_count == 0

    assert texts(play(app, stack, inbound("start"))) == [OPT_IN_REPLY]
    after = play(app, stack, inbound("What are your hours?"))
    assert [type(action) for action in after] == [TypingIndicator, TextReply]
    assert mistral.call_count == 1
    metrics = captured.metric_names()
    assert (metrics.count("OptOuts"), metrics.count("MessagesFromOptedOut"), metrics.count("OptIns")) == (
        1,
        4,
        1,
    )


def test_a_redelivered_stop_is_not_confirmed_twice(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    stop = inbound("STOP")
    assert texts(play(app, stack, stop)) == [OPT_OUT_REPLY]
    assert play(load_function("ai_reply"), stack, stop) == []  # Meta redelivers; a fresh container
    assert "DuplicateDeliveries" in captured.metric_names()


def test_an_opt_out_stored_under_the_users_number_holds_once_meta_sends_their_bsuid(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok()
    assert texts(play(app, stack, inbound("STOP", wa_id="16505557777"))) == [OPT_OUT_REPLY]
    with_bsuid = inbound("hello again", wa_id="16505557777").model_copy(
        update={"sender": Sender(wa_id="16505557777", user_id="US.77", profile_name="Sheena")}
    )
    assert play(app, stack, with_bsuid) == []
    assert mistral.call_count == 0


# ------------------------------------------------------------------ human takeover


def test_the_owners_reply_pauses_the_bot_and_is_remembered_until_the_pause_ends(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok("Bot answer.")
    question = inbound("Can I pay on delivery?")
    assert texts(play(app, stack, question)) == ["Bot answer."]

    owner = echo("Yes, cash or card. I'll handle your order myself.")
    waiting = inbound("Great, thanks! Tomorrow at 10?")
    assert play(app, stack, owner, waiting) == []  # paused: no read receipt, no typing, no reply
    assert mistral.call_count == 1
    assert memory_of(stack, app, question) == [
        Turn(user="Can I pay on delivery?", assistant="Bot answer."),
        Turn(assistant="Yes, cash or card. I'll handle your order myself."),
        Turn(user="Great, thanks! Tomorrow at 10?"),
    ]
    assert {"OwnerReplies", "MessagesWhilePaused"} <= set(captured.metric_names())

    pause_seconds = float(CONTROL_ENV["HANDOFF_PAUSE_HOURS"]) * 3600
    started = time.time()
    app.conductor.clock = lambda: started + pause_seconds + 1
    assert texts(play(app, stack, inbound("Hello? Anyone?"))) == ["Bot answer."]
    sent = json.loads(mistral.calls.last.request.content)["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "Can I pay on delivery?"),
        ("assistant", "Bot answer.\n\nYes, cash or card. I'll handle your order myself."),
        # The profile-name note (helpers' SYSTEM_PROMPT uses {user_name}) opens the whole user turn.
        (
            "user",
            "(The customer's WhatsApp profile name is: Sheena Nelson)\n\n"
            "Great, thanks! Tomorrow at 10?\n\nHello? Anyone?",
        ),
    ]


def test_a_handoff_keyword_confirms_notifies_with_the_last_messages_and_pauses(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok("We ship in 2 days.")
    first = inbound("When do you ship?", profile_name="Sheena Nelson")
    human = inbound("Talk to a human!", profile_name="Sheena Nelson")
    assert texts(play(app, stack, first, human)) == ["We ship in 2 days.", HANDOFF_REPLY]
    assert mistral.call_count == 1  # the keyword needs no model

    [notice] = stack.notices()
    assert notice["Subject"] == "WhatsApp: Sheena Nelson needs a person"
    assert notice["Message"].startswith("Sheena Nelson (+16505551234) needs a person from Acme Store.")
    assert "Reason: the user asked for a person" in notice["Message"]
    assert notice["Message"].endswith(
        "  User: When do you ship?\n  Assistant: We ship in 2 days.\n  User: Talk to a human!"
    )
    assert play(app, stack, inbound("hello?")) == []  # paused
    assert mistral.call_count == 1
    assert memory_of(stack, app, first)[-2:] == [
        Turn(user="Talk to a human!", assistant=HANDOFF_REPLY),
        Turn(user="hello?"),
    ]
    assert "HandoffRequested" in captured.metric_names()


def test_the_model_hands_off_through_its_tool(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = httpx.Response(
        200, json=tool_call_json("handoff_to_human", '{"reason": "refund over 500"}')
    )
    message = inbound("My parcel arrived broken, I want my money back")
    actions = play(app, stack, message)
    assert [type(a) for a in actions] == [
        TypingIndicator,
        TextReply,
    ]  # read and "typing…" while the model ran
    assert texts(actions) == [HANDOFF_REPLY]
    [notice] = stack.notices()
    assert "Reason: refund over 500" in notice["Message"]
    assert "The assistant handed off." in notice["Message"]
    assert play(app, stack, inbound("??")) == []  # paused
    store = app.conductor.store
    assert store.conversation(message.conversation_id).paused_by == "model"


def test_a_handoff_whose_notice_cannot_be_sent_is_retried_and_the_user_told_nothing_yet(
    stack: Stack, mistral: respx.Route, monkeypatch: pytest.MonkeyPatch, captured: Captured
) -> None:
    monkeypatch.setenv("HANDOFF_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:deleted-topic")
    app = load_function("ai_reply")
    message = inbound("human")
    stack.enqueue(message)
    event = stack.receive_event()

    response = stack.invoke(app, event)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == [
        event["Records"][0]["messageId"]
    ]
    assert stack.outbound_actions() == []
    assert not app.conductor.store.conversation(message.conversation_id).paused(time.time())


# ------------------------------------------------------------------ budgets


@pytest.mark.parametrize("limited_app", [{"USER_DAILY_MESSAGE_LIMIT": "3"}], indirect=True)
def test_the_fourth_message_gets_the_limit_reply_and_the_fifth_nothing(
    limited_app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok("Answer.")
    answered = play(limited_app, stack, *(inbound(f"question {n}") for n in range(3)))
    assert texts(answered) == ["Answer."] * 3
    assert texts(play(limited_app, stack, inbound("question 4"))) == [USER_LIMIT_REPLY]
    assert play(limited_app, stack, inbound("question 5")) == []
    assert mistral.call_count == 3
    assert captured.metric_names().count("UserLimitReached") == 2
    assert texts(play(limited_app, stack, inbound("human"))) == [HANDOFF_REPLY]  # a person is still reachable


@pytest.mark.parametrize("limited_app", [{"USER_DAILY_TOKEN_LIMIT": "100"}], indirect=True)
def test_the_token_limit_counts_what_the_model_reported(
    limited_app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok("Answer.")  # the fixture reports 42 prompt + 15 completion tokens
    assert texts(play(limited_app, stack, inbound("one"), inbound("two"))) == ["Answer."] * 2
    assert texts(play(limited_app, stack, inbound("three"))) == [USER_LIMIT_REPLY]


@pytest.mark.parametrize("limited_app", [{"DAILY_TOKEN_BUDGET": "100"}], indirect=True)
def test_a_spent_daily_budget_gets_each_user_one_busy_reply_and_the_alarm_metric(
    limited_app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok("Answer.")
    play(limited_app, stack, inbound("a", wa_id="16505550001"), inbound("b", wa_id="16505550002"))
    assert mistral.call_count == 2  # 114 tokens: the budget is spent
    assert texts(play(limited_app, stack, inbound("c", wa_id="16505550003"))) == [BUSY_REPLY]
    assert play(limited_app, stack, inbound("d", wa_id="16505550003")) == []
    assert texts(play(limited_app, stack, inbound("e", wa_id="16505550001"))) == [BUSY_REPLY]
    assert mistral.call_count == 2
    assert captured.metric_names().count("DailyTokenBudgetReached") == 3

    tomorrow = time.time() + 86_400
    limited_app.conductor.clock = lambda: tomorrow
    assert texts(play(limited_app, stack, inbound("f", wa_id="16505550003"))) == ["Answer."]


def test_one_read_and_two_counter_updates_per_answered_message(
    app: ModuleType,
    stack: Stack,
    mistral: respx.Route,
    aws_calls: list[tuple[str, dict[str, Any]]],
    captured: Captured,
) -> None:
    mistral.return_value = ok()
    message = inbound("hello")
    play(app, stack, message)
    table = CONTROL_TABLE

    def on_table(params: dict[str, Any]) -> bool:
        return params.get("TableName") == table or table in params.get("RequestItems", {})

    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert [(name, params.get("Key")) for name, params in aws_calls if on_table(params)] == [
        ("BatchGetItem", None),
        ("UpdateItem", {"pk": {"S": f"day#{day}#user#{message.conversation_id}"}}),
        ("UpdateItem", {"pk": {"S": f"day#{day}#number#{message.phone_number_id}"}}),
    ]


# ------------------------------------------------------------------ groups and BSUID-only users


def test_group_messages_are_not_answered_but_counted(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    in_group = inbound("hi all", group_id="Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD")
    assert play(app, stack, in_group) == []
    assert mistral.call_count == 0
    assert "GroupMessagesIgnored" in captured.metric_names()


def test_an_echo_to_a_bsuid_only_user_pauses_their_conversation(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok()
    hidden = Sender(user_id="US.13491208655302741918", username="@sheena")
    message = inbound("hi").model_copy(update={"sender": hidden})
    owner = echo("Hi Sheena, it's Ana from the shop.", wa_id=None, user_id="US.13491208655302741918")
    assert owner.conversation_id == message.conversation_id
    assert play(app, stack, owner, message) == []
    assert mistral.call_count == 0


def test_an_echo_naming_only_the_number_reaches_the_users_bsuid_conversation(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    mistral.return_value = ok("Hello!")
    both = Sender(wa_id="16505551234", user_id="US.13491208655302741918", profile_name="Sheena")
    first = inbound("hi").model_copy(update={"sender": both})
    assert texts(play(app, stack, first)) == ["Hello!"]  # and the number now points at this conversation

    owner = echo("I'll take it from here.", wa_id="16505551234")
    assert owner.conversation_id != first.conversation_id
    second = inbound("ok").model_copy(update={"sender": both})
    assert play(app, stack, owner, second) == []
    assert memory_of(stack, app, first)[-2:] == [Turn(assistant="I'll take it from here."), Turn(user="ok")]


def test_a_stop_that_arrives_after_the_service_window_is_still_recorded(
    app: ModuleType, stack: Stack, mistral: respx.Route, captured: Captured
) -> None:
    """A message redriven from the dead-letter queue a day later: no free-form reply is allowed any more
    (Graph refuses it with 131047, which the send function counts), but the opt-out must hold."""
    a_day_ago = int(time.time()) - 25 * 3600
    late_stop = inbound("STOP", timestamp=a_day_ago)
    late_question = inbound("hours?", timestamp=a_day_ago)
    play(app, stack, late_question, late_stop)
    assert app.conductor.store.conversation(late_stop.conversation_id).opted_out
    assert captured.metric_names().count("OutsideServiceWindow") == 1  # the question only
    assert play(app, stack, inbound("hello")) == []
    assert mistral.call_count == 0
