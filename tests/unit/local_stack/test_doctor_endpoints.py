"""The stand-ins answer what `make doctor` asks, as Meta's Graph API and Mistral's API do."""

from __future__ import annotations

import json

import httpx

from local_stack.graph_sink import LOCAL_APP, GraphSink
from local_stack.mistral_standin import LISTED_MODELS, MistralStandIn
from local_stack.webhooks import BUSINESS_ACCOUNT_ID, PHONE_NUMBER_ID
from tests.support import CORPUS, STANDIN_KEY, STANDIN_TOKEN

TOKEN = STANDIN_TOKEN
KEY = STANDIN_KEY


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_phone_number_lookup_returns_default_fields_or_the_requested_ones(sink: GraphSink) -> None:
    url = f"{sink.base_url}/v23.0/{PHONE_NUMBER_ID}"
    default = httpx.get(url, headers=bearer(TOKEN))
    assert default.status_code == 200
    assert set(default.json()) == {"id", "display_phone_number", "verified_name", "quality_rating"}
    assert default.json()["id"] == PHONE_NUMBER_ID
    fields = httpx.get(
        url, params={"fields": "verified_name,throughput,platform_type"}, headers=bearer(TOKEN)
    )
    assert fields.json() == {
        "id": PHONE_NUMBER_ID,
        "verified_name": "Local Test Business",
        "throughput": {"level": "STANDARD"},
        "platform_type": "CLOUD_API",
    }


def test_phone_number_lookup_refuses_what_graph_refuses(sink: GraphSink) -> None:
    url = f"{sink.base_url}/v23.0/{PHONE_NUMBER_ID}"
    expired = httpx.get(url, headers=bearer("another-token"))
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, 190)
    nonexisting = httpx.get(url, params={"fields": "no_such_field"}, headers=bearer(TOKEN))
    assert (nonexisting.status_code, nonexisting.json()["error"]["code"]) == (400, 100)
    assert "nonexisting field (no_such_field)" in nonexisting.json()["error"]["message"]
    unknown = httpx.get(f"{sink.base_url}/v23.0/15550001111", headers=bearer(TOKEN))
    error = unknown.json()["error"]
    assert (unknown.status_code, error["code"], error["error_subcode"]) == (400, 100, 33)
    assert "Object with ID '15550001111' does not exist" in error["message"]


def test_subscribed_apps_list_and_subscribe(sink: GraphSink) -> None:
    url = f"{sink.base_url}/v23.0/{BUSINESS_ACCOUNT_ID}/subscribed_apps"
    assert httpx.get(url, headers=bearer(TOKEN)).json() == {
        "data": [{"whatsapp_business_api_data": LOCAL_APP}]
    }
    sink.subscribed_apps[BUSINESS_ACCOUNT_ID] = []
    assert httpx.get(url, headers=bearer(TOKEN)).json() == {"data": []}
    assert httpx.post(url, headers=bearer("wrong")).status_code == 401
    subscribed = httpx.post(url, headers=bearer(TOKEN))
    assert (subscribed.status_code, subscribed.json()) == (200, {"success": True})
    assert httpx.get(url, headers=bearer(TOKEN)).json()["data"] == [{"whatsapp_business_api_data": LOCAL_APP}]
    other = httpx.get(f"{sink.base_url}/v23.0/999/subscribed_apps", headers=bearer(TOKEN))
    assert (other.status_code, other.json()["error"]["error_subcode"]) == (400, 33)


def test_lookups_are_not_counted_as_send_attempts(sink: GraphSink) -> None:
    httpx.get(f"{sink.base_url}/v23.0/{PHONE_NUMBER_ID}", headers=bearer("wrong"))
    assert sink.attempts() == []


def test_model_list_has_mistral_shape_and_follows_the_test(standin: MistralStandIn) -> None:
    root = standin.base_url.removesuffix("/v1")
    for path in ("/v1/models", "/models"):
        listed = httpx.get(root + path, headers=bearer(KEY))
        assert listed.status_code == 200
        body = listed.json()
        assert body["object"] == "list"
        assert [card["id"] for card in body["data"]] == list(LISTED_MODELS)
        assert all({"id", "capabilities", "object", "aliases"} <= set(card) for card in body["data"])
    chat = {card["id"]: card["capabilities"]["completion_chat"] for card in body["data"]}
    assert chat["mistral-small-latest"] is True
    assert chat["mistral-embed"] is False
    standin.models = ["mistral-large-latest"]
    assert [c["id"] for c in httpx.get(f"{standin.base_url}/models", headers=bearer(KEY)).json()["data"]] == [
        "mistral-large-latest"
    ]


def test_model_list_needs_the_key_and_answers_mistral_401(standin: MistralStandIn) -> None:
    refused = httpx.get(f"{standin.base_url}/models", headers=bearer("not-the-key"))
    assert refused.status_code == 401
    observed = CORPUS / "mistral" / "error_401_unauthorized.json"
    if observed.exists():
        assert set(refused.json()) == set(json.loads(observed.read_text()))
    assert standin.calls() == []  # listing is not a model call
