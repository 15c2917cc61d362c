"""Graph adapter: error classification, request bodies (checked against Meta's examples), the client."""

from __future__ import annotations

import csv
import json
import re
from typing import Any

import httpx
import pytest
import respx

from local_stack.graph_sink import GRAPH_ERRORS
from tests.support import CORPUS, ROOT
from tests.unit.send_reply.conftest import graph_errors
from wa_assistant.records import Recipient
from wa_assistant.whatsapp.graph import (
    GRAPH_ERROR_KINDS,
    REDACTED,
    FailureKind,
    GraphClient,
    GraphRequestFailed,
    classify_graph_error,
    text_message_body,
    typing_indicator_body,
)

GRAPH_CORPUS = CORPUS / "graph"
needs_corpus = pytest.mark.skipif(not GRAPH_CORPUS.is_dir(), reason="public corpus not present")


def corpus_json(name: str) -> Any:
    return json.loads((GRAPH_CORPUS / name).read_text())


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what two request bodies must share."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__


# ------------------------------------------------------------------ classification (own fixtures)

EXPECTED_KIND = {
    "131047": FailureKind.PERMANENT,
    "131026": FailureKind.PERMANENT,
    "131048": FailureKind.PERMANENT,
    "100": FailureKind.PERMANENT,
    "131051": FailureKind.PERMANENT,
    "0": FailureKind.AUTH,
    "3": FailureKind.AUTH,  # under an HTTP 500, as Meta documents it: the code decides, not the status
    "10": FailureKind.AUTH,
    "190": FailureKind.AUTH,
    "200": FailureKind.AUTH,
    "368": FailureKind.ACCOUNT_BLOCKED,
    "130497": FailureKind.ACCOUNT_BLOCKED,
    "131031": FailureKind.ACCOUNT_BLOCKED,
    "131042": FailureKind.ACCOUNT_BLOCKED,
    "133010": FailureKind.ACCOUNT_BLOCKED,
    "1": FailureKind.TRANSIENT,
    "2": FailureKind.TRANSIENT,
    "4": FailureKind.TRANSIENT,
    "130429": FailureKind.TRANSIENT,
    "131056": FailureKind.TRANSIENT,
    "131057": FailureKind.TRANSIENT,
}


@pytest.mark.parametrize(("code", "kind"), EXPECTED_KIND.items())
def test_each_documented_code_is_classified(code: str, kind: FailureKind) -> None:
    error = graph_errors()[code]
    failure = classify_graph_error(error["status"], json.dumps(error["body"]))
    assert failure.kind is kind
    assert failure.code == int(code)
    assert failure.fbtrace_id == error["body"]["error"]["fbtrace_id"]
    assert failure.details == error["body"]["error"].get("error_data", {}).get("details")


def test_code_decides_over_status_and_message_text_is_ignored() -> None:
    # A transient code under a 400, with a message that sounds permanent.
    body = {"error": {"message": "Invalid parameter, re-engagement required", "code": 131056}}
    assert classify_graph_error(400, json.dumps(body)).kind is FailureKind.TRANSIENT
    # A permanent code whose message sounds transient.
    body = {"error": {"message": "Rate limit hit, try again later", "code": 131047}}
    assert classify_graph_error(400, json.dumps(body)).kind is FailureKind.PERMANENT


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, "", FailureKind.TRANSIENT),
        (500, "<html>Internal error</html>", FailureKind.TRANSIENT),
        (502, None, FailureKind.TRANSIENT),
        (503, '{"error": {"truncated', FailureKind.TRANSIENT),
        (401, "Unauthorized", FailureKind.AUTH),
        (403, "Forbidden", FailureKind.AUTH),
        (403, '{"error": {"message": "(#131005) Access denied", "code": 131005}}', FailureKind.AUTH),
        (404, "", FailureKind.PERMANENT),
        (400, '{"error": {"message": "unknown", "code": 999999}}', FailureKind.PERMANENT),
        (None, None, FailureKind.TRANSIENT),
    ],
)
def test_status_decides_when_no_known_code(status: int | None, body: str | None, kind: FailureKind) -> None:
    assert classify_graph_error(status, body).kind is kind


@pytest.mark.parametrize("code", [200, 250, 299])
def test_the_whole_api_permission_range_is_an_authorization_problem(code: int) -> None:
    body = json.dumps({"error": {"message": f"(#{code}) Permissions error", "code": code}})
    assert classify_graph_error(400, body).kind is FailureKind.AUTH


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (368, 403, FailureKind.ACCOUNT_BLOCKED),  # not the 403 = authorization rule
        (131031, 403, FailureKind.ACCOUNT_BLOCKED),
        (131047, 403, FailureKind.PERMANENT),
        (131042, 500, FailureKind.ACCOUNT_BLOCKED),  # not the 5xx = transient rule
    ],
)
def test_a_listed_code_decides_over_the_status(code: int, status: int, kind: FailureKind) -> None:
    body = json.dumps({"error": {"message": "whatever", "code": code}})
    assert classify_graph_error(status, body).kind is kind


README_OUTCOME_OF_KIND = {
    FailureKind.TRANSIENT: "retried through SQS",
    FailureKind.PERMANENT: "`GraphSendRejected`",
    FailureKind.AUTH: "`GraphAuthFailed`",
    FailureKind.ACCOUNT_BLOCKED: "`GraphAccountBlocked`",
}


def test_every_listed_code_is_documented_with_its_outcome_in_the_readme_failure_table() -> None:
    documented: dict[int, list[FailureKind]] = {}
    for row in (ROOT / "README.md").read_text().splitlines():
        if not row.startswith("| Send |"):
            continue
        _, failure, outcome = (cell.strip() for cell in row.strip().strip("|").split("|"))
        kinds = [kind for kind, marker in README_OUTCOME_OF_KIND.items() if marker in outcome]
        for code in re.findall(r"\b\d+\b", failure):
            documented.setdefault(int(code), []).extend(kinds)
    listed = {code: [kind] for code, kind in GRAPH_ERROR_KINDS.items() if not 200 <= code <= 299}
    assert {code: documented.get(code) for code in listed} == listed


def test_retry_after_is_kept() -> None:
    assert classify_graph_error(429, "", retry_after=12).retry_after == 12


def test_log_fields_name_code_details_and_trace() -> None:
    error = graph_errors()["131047"]
    fields = classify_graph_error(400, json.dumps(error["body"])).log_fields()
    assert fields["graph_code"] == 131047
    assert fields["graph_kind"] == "permanent"
    assert fields["graph_fbtrace_id"] == "TestTrace131047"
    assert "graph_subcode" not in fields  # absent values are left out


# ------------------------------------------------------------------ classification (public examples)


def corpus_errors() -> list[tuple[str, int, dict[str, Any]]]:
    if not GRAPH_CORPUS.is_dir():
        return []
    rows = csv.DictReader((GRAPH_CORPUS / "INDEX.tsv").open(encoding="utf-8"), delimiter="\t")
    return [
        (row["file"], int(row["http"].split()[0]), corpus_json(row["file"]))
        for row in rows
        if row["file"].startswith("error_")
    ]


PUBLIC_EXPECTED = {
    100: FailureKind.PERMANENT,
    130429: FailureKind.TRANSIENT,
    131026: FailureKind.PERMANENT,
    131047: FailureKind.PERMANENT,
    131056: FailureKind.TRANSIENT,
    190: FailureKind.AUTH,
}


@needs_corpus
def test_public_error_examples_are_all_covered() -> None:
    assert {body["error"]["code"] for _, _, body in corpus_errors()} == set(PUBLIC_EXPECTED)


@needs_corpus
@pytest.mark.parametrize(("name", "status", "body"), corpus_errors())
def test_public_error_examples_are_classified(name: str, status: int, body: dict[str, Any]) -> None:
    failure = classify_graph_error(status, json.dumps(body))
    error = body["error"]
    assert failure.kind is PUBLIC_EXPECTED[error["code"]], name
    assert failure.code == error["code"]
    assert failure.subcode == error.get("error_subcode")
    assert failure.fbtrace_id == error["fbtrace_id"]
    assert failure.details == error.get("error_data", {}).get("details")


@needs_corpus
@pytest.mark.parametrize("code", sorted(GRAPH_ERRORS))
def test_the_local_graph_sink_answers_each_scripted_code_as_meta_documents_it(code: int) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec = corpus_json("openapi_messages_and_webhooks_subset.json")
    status, error = GRAPH_ERRORS[code]
    body = {"error": error}
    jsonschema.Draft202012Validator(
        {**spec["components"]["schemas"]["GraphAPIError"], "components": spec["components"]}
    ).validate(body)
    failure = classify_graph_error(status, json.dumps(body))
    assert failure.code == code
    assert failure.kind is GRAPH_ERROR_KINDS[code]


# ------------------------------------------------------------------ request bodies


@needs_corpus
def test_text_body_matches_meta_send_text_example() -> None:
    example = corpus_json("request_send_text.json")
    ours = text_message_body(Recipient(wa_id=example["to"]), example["text"]["body"])
    assert ours == example


@needs_corpus
def test_reply_body_has_the_shape_of_meta_reply_example() -> None:
    example = corpus_json("request_reply_context_verbatim_openapi.json")
    ours = text_message_body(Recipient(wa_id="16505551234"), "hi", quoted_message_id="wamid.X")
    assert shape(ours) == shape(example)
    assert ours["context"] == {"message_id": "wamid.X"}


@needs_corpus
def test_reply_body_carries_the_context_of_meta_docs_example() -> None:
    example = corpus_json("request_reply_context.json")
    ours = text_message_body(
        Recipient(wa_id=example["to"]), example["text"]["body"], example["context"]["message_id"]
    )
    assert {key: ours[key] for key in example} == {
        **example,
        "text": {**example["text"], "preview_url": False},
    }


@needs_corpus
def test_typing_indicator_body_matches_meta_example() -> None:
    example = corpus_json("request_mark_as_read_with_typing_indicator.json")
    assert typing_indicator_body(example["message_id"]) == example
    read_only = corpus_json("request_mark_as_read.json")
    assert {key: typing_indicator_body(read_only["message_id"])[key] for key in read_only} == read_only


def test_bsuid_recipient_uses_recipient_not_to() -> None:
    body = text_message_body(Recipient(user_id="US.1234"), "hi")
    assert body["recipient"] == "US.1234"
    assert "to" not in body


def test_phone_number_is_used_when_both_are_known() -> None:
    body = text_message_body(Recipient(wa_id="16505551234", user_id="US.1234"), "hi")
    assert body["to"] == "16505551234"
    assert "recipient" not in body


# ------------------------------------------------------------------ client

URL = "https://graph.test/v23.0/123/messages"
TOKEN = "EAAGsecretTOKEN"


def client(http: httpx.Client | None = None) -> GraphClient:
    return GraphClient(
        base_url="https://graph.test/",
        api_version="v23.0",
        access_token=lambda: TOKEN,
        http=http or httpx.Client(),
    )


@respx.mock
def test_client_returns_the_accepted_message_id() -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json={"messages": [{"id": "wamid.OK"}]}))
    assert client().post_message("123", {"a": 1}) == "wamid.OK"


@respx.mock
def test_client_returns_none_for_a_read_receipt() -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json={"success": True}))
    assert client().post_message("123", {"a": 1}) is None


@respx.mock
def test_client_redacts_a_token_echoed_by_graph() -> None:
    body = {"error": {"message": f"Malformed access token {TOKEN}", "code": 190, "fbtrace_id": "T"}}
    respx.post(URL).mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(GraphRequestFailed) as raised:
        client().post_message("123", {})
    failure = raised.value.failure
    assert failure.kind is FailureKind.AUTH
    assert failure.message == f"Malformed access token {REDACTED}"
    assert TOKEN not in repr(failure)
    assert TOKEN not in str(raised.value)


@respx.mock
def test_client_reads_retry_after() -> None:
    respx.post(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "9"}))
    with pytest.raises(GraphRequestFailed) as raised:
        client().post_message("123", {})
    assert (raised.value.failure.kind, raised.value.failure.retry_after) == (FailureKind.TRANSIENT, 9)


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")],
)
def test_client_turns_transport_errors_into_transient_failures(error: Exception) -> None:
    with respx.mock:
        respx.post(URL).mock(side_effect=error)
        with pytest.raises(GraphRequestFailed) as raised:
            client().post_message("123", {})
    assert raised.value.failure.kind is FailureKind.TRANSIENT
    assert raised.value.failure.status is None
