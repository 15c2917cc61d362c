"""Parsing Meta's webhook into InboundMessage records and reports (no mocks: pure domain)."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

from tests.support import CORPUS, ROOT
from wa_assistant.records import (
    InboundMessage,
    Location,
    Media,
    Order,
    OrderItem,
    Referral,
    ReferredProduct,
    SharedContact,
    SharedContactPhone,
)
from wa_assistant.webhook.digest import WebhookDigest, digest_webhook, flow_reply_summary
from wa_assistant.webhook.payload import InvalidJsonError, parse_webhook

FIXTURES = ROOT / "tests" / "fixtures" / "webhook"
WEBHOOKS = CORPUS / "webhooks"
PHONE_NUMBER_ID = "106540352242922"
SENDER = "16505551234"


def digest_of(raw: bytes) -> WebhookDigest:
    return digest_webhook(parse_webhook(raw))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def every_type() -> dict[str, InboundMessage]:
    digest = digest_of(fixture("every_message_type.json"))
    assert not digest.skipped
    assert not digest.ignored
    return {message.message_id.removeprefix("wamid.FIXTURE"): message for message in digest.messages}


def test_every_message_becomes_one_record_in_order(every_type: dict[str, InboundMessage]) -> None:
    assert list(every_type) == [f"{n:03d}" for n in range(1, 22)]
    for number, message in every_type.items():
        assert message.phone_number_id == PHONE_NUMBER_ID
        assert message.display_phone_number == "15550001111"
        assert message.sender.wa_id == SENDER
        assert message.sender.user_id == "US.1000000000000000001"
        assert message.sender.profile_name == "Fixture Person"
        assert message.timestamp == 1760000000 + int(number)
        assert message.conversation_id == f"{PHONE_NUMBER_ID}:US.1000000000000000001"


EXPECTED_TYPE_AND_TEXT = {
    "001": ("text", "Hi, are you open on Sunday?"),
    "002": ("image", "Is this the right part?"),
    "003": ("audio", None),
    "004": ("video", "Noise at startup"),
    "005": ("document", "My invoice"),
    "006": ("sticker", None),
    "007": ("location", None),
    "008": ("contacts", None),
    "009": ("interactive", "Yes, please"),
    "010": ("interactive", "Tuesday 10:00"),
    "011": ("interactive", "Sent\nsize: M\nquantity: 2"),
    "012": ("button", "Stop promotions"),
    "013": ("reaction", None),
    "014": ("reaction", None),
    "015": ("order", None),
    "016": ("system", None),
    "017": ("text", "I saw your ad"),
    "018": ("unsupported", None),
    "019": ("hologram", None),
    "020": ("text", "Forwarded chain letter"),
    "021": ("text", "Quoting you"),
}


@pytest.mark.parametrize(("number", "expected"), EXPECTED_TYPE_AND_TEXT.items())
def test_type_and_user_visible_text(
    every_type: dict[str, InboundMessage], number: str, expected: tuple[str, str | None]
) -> None:
    message = every_type[number]
    assert (message.type, message.text) == expected


def test_media_fields(every_type: dict[str, InboundMessage]) -> None:
    assert every_type["002"].media == Media(
        id="900000000000002", mime_type="image/jpeg", caption="Is this the right part?", sha256="aW1hZ2Utc2hh"
    )
    assert every_type["003"].media == Media(
        id="900000000000003", mime_type="audio/ogg; codecs=opus", sha256="YXVkaW8tc2hh", voice=True
    )
    document = every_type["005"].media
    assert document is not None
    assert document.filename == "invoice-42.pdf"
    sticker = every_type["006"].media
    assert sticker is not None
    assert sticker.animated
    assert not sticker.voice
    non_media = ("001", "007", "008", "009", "012", "013", "015", "016", "018", "019")
    assert all(every_type[n].media is None for n in non_media)


def test_location_is_not_text_but_location(every_type: dict[str, InboundMessage]) -> None:
    assert every_type["007"].location == Location(
        latitude=47.3769,
        longitude=8.5417,
        name="Hauptbahnhof",
        address="8001 Zürich",
        url="https://example.com/hb",
    )
    assert all(m.location is None for n, m in every_type.items() if n != "007")


def test_reactions_and_removed_reactions(every_type: dict[str, InboundMessage]) -> None:
    assert (every_type["013"].reaction_emoji, every_type["013"].reacted_message_id) == (
        "❤️",
        "wamid.BUSINESS013",
    )
    assert (every_type["014"].reaction_emoji, every_type["014"].reacted_message_id) == (
        "",
        "wamid.BUSINESS014",
    )
    assert every_type["001"].reaction_emoji is None


def test_context_quoted_message_and_forwarded(every_type: dict[str, InboundMessage]) -> None:
    assert every_type["021"].context_message_id == "wamid.BUSINESS021"
    assert every_type["009"].context_message_id == "wamid.BUSINESS009"
    assert every_type["020"].forwarded
    assert every_type["020"].context_message_id is None
    assert not every_type["021"].forwarded


def test_contacts_order_and_ad_reach_the_record(every_type: dict[str, InboundMessage]) -> None:
    assert every_type["008"].contacts == (
        SharedContact(
            name="Ana Pérez",
            phones=(SharedContactPhone(phone="+34 600 000 000", wa_id="34600000000", type="CELL"),),
        ),
    )
    assert every_type["015"].order == Order(
        catalog_id="550000000000001",
        items=(OrderItem(product_retailer_id="sku-1", quantity=1, item_price=9.5, currency="EUR"),),
    )
    assert every_type["017"].referral == Referral(
        source_type="ad", source_url="https://fb.me/example", headline="Spring sale", media_type="image"
    )
    others = [m for n, m in every_type.items() if n not in ("008", "015", "017")]
    assert all(not m.contacts and m.order is None and m.referral is None for m in others)
    # Old records (written before these fields existed) still parse.
    new_fields = {"contacts", "order", "referral", "referred_product"}
    old = every_type["001"].model_dump(mode="json", exclude=new_fields)
    assert InboundMessage.model_validate(old) == every_type["001"]


@pytest.mark.skipif(not WEBHOOKS.is_dir(), reason="public corpus not present")
def test_corpus_contacts_order_referral_and_product_inquiry() -> None:
    [contacts] = digest_of((WEBHOOKS / "contacts.json").read_bytes()).messages
    assert contacts.contacts == (
        SharedContact(
            name="Lucía Gómez",
            company="Google",
            phones=(SharedContactPhone(phone="+1 (983) 555-2319", wa_id="19835552319", type="MOBILE"),),
        ),
    )
    [order] = digest_of((WEBHOOKS / "order.json").read_bytes()).messages
    assert order.order is not None
    assert order.order.text is None  # Meta sends "" when the user wrote no note
    assert [(i.product_retailer_id, i.quantity, i.item_price, i.currency) for i in order.order.items] == [
        ("di9ozbzfi4", 2, 30, "USD"),
        ("nqryix03ez", 1, 25, "USD"),
    ]
    [ad] = digest_of((WEBHOOKS / "referral_click_to_whatsapp_ad.json").read_bytes()).messages
    assert ad.referral is not None
    assert (ad.referral.headline, ad.referral.body, ad.referral.welcome_message) == (
        "Chat with us",
        "Summer Succulents are here!",
        "Hi there! Let us know how we can help!",
    )
    [inquiry] = digest_of((WEBHOOKS / "text_reply_context_product_inquiry.json").read_bytes()).messages
    assert inquiry.referred_product == ReferredProduct(
        catalog_id="194836987003835", product_retailer_id="di9ozbzfi4"
    )


def test_username_only_sender_uses_the_bsuid() -> None:
    digest = digest_of(fixture("username_only_sender.json"))
    [message] = digest.messages
    assert message.sender.wa_id is None
    assert message.sender.user_id == "US.2000000000000000002"
    assert message.sender.parent_user_id == "US.ENT.2000000000000000009"
    assert message.sender.username == "@nonumber"
    assert message.sender.profile_name == "No Number"
    assert message.conversation_id == f"{PHONE_NUMBER_ID}:US.2000000000000000002"
    assert InboundMessage.model_validate_json(message.model_dump_json()) == message


def test_statuses_are_reported_not_enqueued() -> None:
    digest = digest_of(fixture("statuses.json"))
    assert digest.messages == []
    assert [(s.message_id, s.status) for s in digest.statuses] == [
        ("wamid.OUT001", "sent"),
        ("wamid.OUT001", "delivered"),
        ("wamid.OUT001", "read"),
        ("wamid.OUT002", "failed"),
        ("wamid.OUT003", "deleted"),
    ]
    sent, _, read, failed, _ = digest.statuses
    assert (sent.conversation_category, sent.pricing_category, sent.pricing_model, sent.billable) == (
        "service",
        "service",
        "PMP",
        False,
    )
    assert read.recipient_user_id == "US.1000000000000000001"
    assert [(e.code, e.title) for e in failed.errors] == [(131047, "Re-engagement message")]
    assert failed.errors[0].details is not None
    assert "24 hours" in failed.errors[0].details


def test_value_errors_are_reported() -> None:
    digest = digest_of(fixture("value_errors.json"))
    assert digest.messages == []
    assert digest.statuses == []
    assert [(e.phone_number_id, e.error.code, e.error.details) for e in digest.errors] == [
        (PHONE_NUMBER_ID, 131000, "Unsupported webhook payload")
    ]


def test_malformed_messages_are_skipped_and_the_others_kept() -> None:
    digest = digest_of(fixture("partly_malformed.json"))
    assert [m.message_id for m in digest.messages] == ["wamid.FIXTURE031", "wamid.FIXTURE038"]
    skipped = {(s.kind, s.index): s for s in digest.skipped}
    assert set(skipped) == {
        ("contact", 1),
        ("message", 1),
        ("message", 2),
        ("message", 3),
        ("message", 4),
        ("message", 5),
        ("message", 6),
    }
    assert skipped["message", 1].item_id is None
    assert skipped["message", 1].problems == ("id: missing",)
    assert skipped["message", 2].item_id == "wamid.FIXTURE033"
    assert skipped["message", 4].problems == ("location.latitude: float_type",)
    # The contact list lost its bad item, the good one still names the sender.
    assert digest.messages[0].sender.profile_name == "Fixture Person"


def test_unknown_fields_and_future_types_parse() -> None:
    body = json.loads(fixture("every_message_type.json"))
    body["brand_new_top_level"] = {"a": 1}
    body["entry"][0]["time"] = 1760000000
    value = body["entry"][0]["changes"][0]["value"]
    value["new_value_field"] = [1, 2]
    value["messages"] = [value["messages"][18]]
    digest = digest_of(json.dumps(body).encode())
    assert [(m.type, m.text) for m in digest.messages] == [("hologram", None)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1, 2]", "not a webhook"),
        (b"null", "not a webhook"),
        (b"{}", "not a webhook"),
        (b'{"object": 5}', "not a webhook"),
        (b'{"object": "whatsapp_business_account", "entry": "x"}', "not a webhook"),
        (b'{"object": "page", "entry": []}', "object is 'page'"),
        (b'{"object": "whatsapp_business_account"}', "no entry"),
        (b'{"object": "whatsapp_business_account", "entry": []}', "no entry"),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "account_update",'
            b' "value": {"event": "x"}}]}]}',
            "field 'account_update'",
        ),
    ],
)
def test_json_that_is_not_a_messages_webhook_is_ignored(raw: bytes, reason: str) -> None:
    digest = digest_of(raw)
    assert digest.messages == []
    assert digest.statuses == []
    assert any(reason in line for line in digest.ignored), digest.ignored


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b'{"object": "whatsapp_business_account", "entry": [',
        b'{"object": "\xff\xfe"}',  # invalid UTF-8
        b'{"object": "\\ud800"}',  # lone surrogate: could not be enqueued as UTF-8
        b"[" * 10_000 + b"]" * 10_000,  # deeply nested
    ],
)
def test_bytes_that_are_not_json_raise_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJsonError):
        parse_webhook(raw)


def test_duplicate_keys_last_one_wins() -> None:
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":'
        b'{"metadata":{"phone_number_id":"1"},"messages":[{"from":"2","id":"wamid.A","id":"wamid.B",'
        b'"timestamp":"1","type":"text","text":{"body":"first"},"text":{"body":"second"}}]}}]}]}'
    )
    [message] = digest_of(body).messages
    assert (message.message_id, message.text) == ("wamid.B", "second")


def test_infinite_coordinates_skip_the_message_instead_of_breaking_the_queue_record() -> None:
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":'
        b'{"metadata":{"phone_number_id":"1"},"messages":[{"from":"2","id":"wamid.A","timestamp":"1",'
        b'"type":"location","location":{"latitude":1e999,"longitude":0}}]}}]}]}'
    )
    digest = digest_of(body)
    assert digest.messages == []
    assert [s.problems for s in digest.skipped] == [("location.latitude: finite_number",)]


def test_flow_reply_summary_handles_non_object_json() -> None:
    assert flow_reply_summary("Sent", "not json") == "Sent\nnot json"
    assert flow_reply_summary(None, '{"flow_token": "x"}') is None
    assert flow_reply_summary(None, '{"a": [1, "é"]}') == 'a: [1, "é"]'


# ----------------------------------------------------------------- the public corpus
def _corpus_rows() -> list[dict[str, str]]:
    index = WEBHOOKS / "INDEX.tsv"
    if not index.exists():
        return []
    return list(csv.DictReader(index.read_text().splitlines(), delimiter="\t"))


TEXT_TYPES = {"text", "button", "interactive"}
"""Types whose text the corpus' expected_text column states; media captions are checked below."""


def _split(cell: str, count: int) -> list[str]:
    """A multi-valued INDEX cell; one value stands for all messages (one sender for a batch)."""
    values = cell.split("|") if count > 1 else [cell]
    return values * count if len(values) == 1 else values


@pytest.mark.skipif(not (WEBHOOKS / "INDEX.tsv").exists(), reason="public corpus not present")
def test_corpus_index_lists_all_44_files() -> None:
    rows = _corpus_rows()
    assert len(rows) == 44
    assert {row["file"] for row in rows} == {path.name for path in WEBHOOKS.glob("*.json")}


@pytest.mark.skipif(not (WEBHOOKS / "INDEX.tsv").exists(), reason="public corpus not present")
@pytest.mark.parametrize("row", _corpus_rows(), ids=lambda row: row["file"])
def test_corpus_webhook(row: dict[str, Any]) -> None:
    raw = (WEBHOOKS / row["file"]).read_bytes()
    count = int(row["expected_inbound_messages"])
    try:
        digest = digest_of(raw)
    except InvalidJsonError:
        assert row["file"] == "malformed_truncated.json"
        assert count == 0
        return
    messages = digest.messages
    assert len(messages) == count
    assert not digest.skipped
    if count == 0:
        assert digest.statuses or digest.errors or digest.ignored
        return
    senders = _split(row["expected_sender_wa_id"], count)
    ids = _split(row["expected_message_ids"], count)
    texts = _split(row["expected_text"], count)
    for message, sender, wamid, text in zip(messages, senders, ids, texts, strict=True):
        assert message.sender.wa_id == sender
        assert message.message_id == wamid
        assert message.phone_number_id == PHONE_NUMBER_ID
        if message.type in TEXT_TYPES:
            assert (message.text or "") == text
        elif message.media is not None:
            assert message.text == message.media.caption
        else:
            assert message.text is None
        # Every record survives the queue round trip.
        assert InboundMessage.model_validate_json(message.model_dump_json()) == message


@pytest.mark.skipif(not WEBHOOKS.exists(), reason="public corpus not present")
def test_corpus_statuses_and_errors() -> None:
    failed = digest_of((WEBHOOKS / "status_failed_131047.json").read_bytes())
    assert [(s.status, s.message_id, s.recipient_id) for s in failed.statuses] == [
        ("failed", "wamid.xyzxyz", SENDER)
    ]
    assert failed.statuses[0].errors[0].code == 131047
    pmp = digest_of((WEBHOOKS / "status_sent_pmp.json").read_bytes()).statuses[0]
    assert (pmp.pricing_model, pmp.conversation_category, pmp.recipient_user_id) == (
        "PMP",
        "marketing",
        "US.13491208655302741918",
    )
    errors = digest_of((WEBHOOKS / "errors_only_130429.json").read_bytes()).errors
    assert [e.error.code for e in errors] == [130429]
    unsupported = digest_of((WEBHOOKS / "unsupported.json").read_bytes())
    assert [e.code for r in unsupported.message_errors for e in r.errors] == [131051]


@pytest.mark.skipif(not WEBHOOKS.exists(), reason="public corpus not present")
def test_corpus_unicode_twins_parse_to_the_same_record() -> None:
    raw_utf8 = digest_of((WEBHOOKS / "text_unicode_emoji_hindi.json").read_bytes()).messages
    escaped = digest_of((WEBHOOKS / "text_unicode_emoji_hindi__meta_escaped.json").read_bytes()).messages
    assert raw_utf8 == escaped
    assert raw_utf8[0].text is not None
    assert raw_utf8[0].text.endswith("🙏😊 Ça coûte combien?")


@pytest.mark.skipif(not WEBHOOKS.exists(), reason="public corpus not present")
def test_corpus_bsuid_and_username_are_kept() -> None:
    [message] = digest_of((WEBHOOKS / "text_dashboard_test_sample.json").read_bytes()).messages
    assert message.sender.user_id == "US.13491208655302741918"
    assert message.sender.parent_user_id == "US.11815799212886844830"
    assert message.sender.username == "@testusername"
    assert message.conversation_id == f"{PHONE_NUMBER_ID}:US.13491208655302741918"
