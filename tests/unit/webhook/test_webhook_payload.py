"""The two parse paths: the one-pass happy path and the tolerant path that drops malformed items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import from_json

from tests.support import CORPUS, ROOT
from wa_assistant.webhook import payload as webhook_payload
from wa_assistant.webhook.payload import DROPPABLE_LISTS, SkippedItem, parse_webhook

FIXTURES = ROOT / "tests" / "fixtures" / "webhook"


def _bodies() -> list[Path]:
    own = sorted(FIXTURES.glob("*.json"))
    corpus = sorted((CORPUS / "webhooks").glob("*.json")) if (CORPUS / "webhooks").is_dir() else []
    return own + [path for path in corpus if not path.name.startswith("malformed")]


def _webhook(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": field, "value": value}]}]}


def _message(wamid: str, **content: Any) -> dict[str, Any]:
    return {"from": "1", "id": wamid, "timestamp": "1", "type": "text", "text": {"body": "hi"}, **content}


METADATA = {"phone_number_id": "1"}


def test_droppable_lists_are_derived_from_the_model_markers() -> None:
    assert DROPPABLE_LISTS == {
        ("entry",): "entry",
        ("entry", "changes"): "change",
        ("entry", "changes", "value", "contacts"): "contact",
        ("entry", "changes", "value", "messages"): "message",
        ("entry", "changes", "value", "statuses"): "status",
        ("entry", "changes", "value", "errors"): "error",
        ("entry", "changes", "value", "message_echoes"): "echo",
    }


@pytest.mark.parametrize("path", _bodies(), ids=lambda path: path.name)
def test_the_tolerant_path_builds_the_same_payload_as_the_one_pass_path(path: Path) -> None:
    """JSON-mode and Python-mode validation must agree, or a payload would change with a sibling's health."""
    raw = path.read_bytes()
    parsed = parse_webhook(raw)
    tolerant = webhook_payload._parse_dropping_invalid_items(from_json(raw))
    assert tolerant.payload is not None
    assert parsed.payload is not None
    assert tolerant.payload.model_dump() == parsed.payload.model_dump()
    assert (tolerant.skipped, tolerant.rejection) == (parsed.skipped, parsed.rejection)


def test_a_failing_item_is_reported_once_even_when_items_inside_it_fail_too() -> None:
    broken_change = {
        "field": "messages",
        "value": {"metadata": METADATA, "messages": [{"id": "wamid.INNER"}], "statuses": "not a list"},
    }
    body = _webhook({"metadata": METADATA, "messages": [_message("wamid.KEPT"), {"id": 5}]})
    body["entry"][0]["changes"].append(broken_change)
    parsed = parse_webhook(json.dumps(body).encode())
    assert parsed.skipped == (
        SkippedItem("message", 1, None, ("id: string_type", "timestamp: missing", "type: missing")),
        SkippedItem("change", 1, None, ("value.statuses: list_type",)),
    )
    assert parsed.payload is not None
    [entry] = parsed.payload.entry or []
    [change] = entry.changes or []
    assert change.value is not None
    assert [m.id for m in change.value.messages or []] == ["wamid.KEPT"]


def test_a_list_that_is_not_a_list_drops_the_item_holding_it() -> None:
    body = {"object": "whatsapp_business_account", "entry": [{"changes": "x"}, {"changes": []}]}
    parsed = parse_webhook(json.dumps(body).encode())
    assert parsed.skipped == (SkippedItem("entry", 0, None, ("changes: list_type",)),)
    assert parsed.payload is not None
    assert len(parsed.payload.entry or []) == 1


def test_an_error_outside_every_droppable_item_rejects_the_payload_without_skips() -> None:
    body = _webhook({"metadata": METADATA, "messages": [{"id": 5}]})
    del body["object"]
    parsed = parse_webhook(json.dumps(body).encode())
    assert parsed.payload is None
    assert parsed.skipped == ()
    assert parsed.rejection == "not a webhook payload (object: missing)"


@pytest.mark.parametrize(
    "value",
    [
        {"event": "APPROVED"},  # fails as a messages value: goes through the tolerant path
        {"metadata": METADATA, "messages": [_message("wamid.NOT_A_MESSAGE")]},  # valid as one: one pass
    ],
)
def test_the_value_of_another_field_is_never_kept(value: dict[str, Any]) -> None:
    parsed = parse_webhook(json.dumps(_webhook(value, field="message_template_status_update")).encode())
    assert parsed.skipped == ()
    assert parsed.payload is not None
    [entry] = parsed.payload.entry or []
    [change] = entry.changes or []
    assert (change.field, change.value) == ("message_template_status_update", None)
