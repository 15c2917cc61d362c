"""The owner's own messages (`smb_message_echoes`) and group messages: parsed, validated, enqueued."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_stack.webhooks import echo_webhook, message_webhook, text_message
from tests.support import CORPUS
from tests.unit.webhook.harness import WebhookHarness
from wa_assistant.records import InboundMessage, OwnerEcho, Recipient, inbound_record_adapter
from wa_assistant.webhook.digest import digest_webhook
from wa_assistant.webhook.payload import parse_webhook

MORE = CORPUS / "webhooks_more"
needs_corpus = pytest.mark.skipif(not MORE.is_dir(), reason="public corpus not present")
GROUP_ID = "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD"


def echoes_webhook(*echoes: dict[str, Any]) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "message_echoes": list(echoes),
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"value": value, "field": "smb_message_echoes"}]}],
    }
    return json.dumps(payload).encode()


def an_echo(**fields: Any) -> dict[str, Any]:
    return {"from": "15550783881", "id": "wamid.E1", "timestamp": "1739321024", "type": "text", **fields}


@needs_corpus
def test_metas_echo_example_becomes_one_owner_echo_in_the_users_conversation() -> None:
    digest = digest_webhook(parse_webhook((MORE / "smb_message_echoes_text.json").read_bytes()))
    assert digest.messages == []
    assert digest.echoes == [
        OwnerEcho(
            phone_number_id="106540352242922",
            display_phone_number="15550783881",
            recipient=Recipient(wa_id="16505551234"),
            message_id="wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA",
            timestamp=1739321024,
            type="text",
            text="Here's the info you requested! https://www.meta.com/quest/quest-3/",
        )
    ]
    user_message = digest_webhook(parse_webhook(message_webhook("16505551234", text_message("hi")))).messages[
        0
    ]
    assert digest.echoes[0].conversation_id == user_message.conversation_id


@pytest.mark.parametrize(
    ("fields", "recipient"),
    [
        ({"to": "+1 (650) 555-1234"}, Recipient(wa_id="16505551234")),  # the number as the app dialled it
        ({"to_user_id": "US.134912"}, Recipient(user_id="US.134912")),  # a user who hides their number
        (
            {"to": "+16505551234", "to_user_id": "US.134912"},
            Recipient(wa_id="16505551234", user_id="US.134912"),
        ),
    ],
)
def test_the_echo_is_addressed_like_the_users_messages(fields: dict[str, Any], recipient: Recipient) -> None:
    [echo] = digest_webhook(parse_webhook(echoes_webhook(an_echo(**fields, text={"body": "hi"})))).echoes
    assert echo.recipient == recipient


def test_captions_are_kept_and_other_types_carry_no_text() -> None:
    digest = digest_webhook(
        parse_webhook(
            echoes_webhook(
                an_echo(id="wamid.A", to="1", type="image", image={"id": "9", "caption": "Your receipt"}),
                an_echo(id="wamid.B", to="1", type="sticker", sticker={"id": "9"}),
            )
        )
    )
    assert [(e.type, e.text) for e in digest.echoes] == [("image", "Your receipt"), ("sticker", None)]


@pytest.mark.parametrize(
    "broken",
    [
        an_echo(),  # no recipient at all
        an_echo(to="+"),  # no digit in the number
        an_echo(to="1", timestamp="yesterday"),
        {"to": "1", "type": "text"},  # no id
    ],
)
def test_a_malformed_echo_is_skipped_and_its_siblings_kept(broken: dict[str, Any]) -> None:
    good = an_echo(id="wamid.GOOD", to="16505551234", text={"body": "fine"})
    digest = digest_webhook(parse_webhook(echoes_webhook(broken, good)))
    assert [e.message_id for e in digest.echoes] == ["wamid.GOOD"]
    assert [s.kind for s in digest.skipped] == ["echo"]


def test_group_messages_keep_their_group_id() -> None:
    body = message_webhook("16505551234", {**text_message("hi all"), "group_id": GROUP_ID})
    [message] = digest_webhook(parse_webhook(body)).messages
    assert message.group_id == GROUP_ID
    assert (
        digest_webhook(parse_webhook(message_webhook("1", text_message("hi")))).messages[0].group_id is None
    )


@needs_corpus
@pytest.mark.parametrize(
    "name",
    [
        "group_lifecycle_update_create.json",
        "group_settings_update.json",
        "group_participants_update_remove.json",
    ],
)
def test_group_lifecycle_webhooks_are_ignored(name: str) -> None:
    digest = digest_webhook(parse_webhook((MORE / name).read_bytes()))
    assert (digest.messages, digest.echoes, digest.skipped) == ([], [], [])
    assert digest.ignored == [
        f"field {json.loads((MORE / name).read_bytes())['entry'][0]['changes'][0]['field']!r} is not handled"
    ]


def test_records_without_a_kind_are_user_messages_and_unknown_kinds_are_refused() -> None:
    message = digest_webhook(parse_webhook(message_webhook("1", text_message("hi")))).messages[0]
    body = message.model_dump_json()
    assert "kind" not in json.loads(body)  # v1 as every consumer already reads it
    assert inbound_record_adapter.validate_json(body) == message
    echo = OwnerEcho(
        phone_number_id="1", recipient=Recipient(wa_id="2"), message_id="w", timestamp=1, type="text"
    )
    assert inbound_record_adapter.validate_json(echo.model_dump_json()) == echo
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        inbound_record_adapter.validate_json(json.dumps({**json.loads(body), "kind": "future"}))
    assert isinstance(inbound_record_adapter.validate_json(body), InboundMessage)


def test_the_webhook_enqueues_echoes_in_the_users_fifo_group(webhook: WebhookHarness) -> None:
    user = message_webhook("16505551234", text_message("hi", wamid="wamid.USER"))
    owner = echo_webhook("16505551234", "Hello from the shop", wamid="wamid.OWNER")
    assert webhook.post(user)["statusCode"] == 200
    assert webhook.post(owner)["statusCode"] == 200

    queued = webhook.queued()
    assert [(q.body.get("kind"), q.deduplication_id) for q in queued] == [
        (None, "wamid.USER"),
        ("owner_echo", "wamid.OWNER"),
    ]
    assert queued[0].group_id == queued[1].group_id == "106540352242922:16505551234"
    assert OwnerEcho.model_validate(queued[1].body).text == "Hello from the shop"
    lines = [line["message"] for line in webhook.log_lines()]
    assert "Owner's message (WhatsApp Business app) enqueued" in lines
