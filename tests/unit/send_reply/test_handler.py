"""SendReplyFunction end to end in-process: moto SQS/Secrets Manager/DynamoDB, respx for Graph."""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
import respx

from tests.unit.send_reply.conftest import (
    ACCESS_TOKEN,
    MESSAGES_URL,
    PHONE_NUMBER_ID,
    Output,
    Stack,
    graph_errors,
    invoke,
)
from wa_assistant.records import Recipient, TextReply, TypingIndicator

WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCNTg5RjY1MEMyRjlGMjRGNgA="
WA_ID = "16505551234"


def sent_ok(message_id: str = "wamid.SENT1") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": WA_ID, "wa_id": WA_ID}],
            "messages": [{"id": message_id}],
        },
    )


def graph_error(code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    error = graph_errors()[code]
    return httpx.Response(error["status"], json=error["body"], headers=headers)


def reply(
    text: str = "Yes, it comes in blue.", recipient: Recipient | None = None, wamid: str = WAMID
) -> str:
    return TextReply(
        phone_number_id=PHONE_NUMBER_ID,
        recipient=recipient or Recipient(wa_id=WA_ID),
        inbound_message_id=wamid,
        text=text,
    ).model_dump_json()


def typing() -> str:
    return TypingIndicator(phone_number_id=PHONE_NUMBER_ID, inbound_message_id=WAMID).model_dump_json()


def request_bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def retry_items(stack: Stack) -> list[dict[str, Any]]:
    """The attempt counts the function wrote (retry# items of the idempotency table)."""
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="idempotency")["Items"]
    return [item for item in items if item["id"]["S"].startswith("retry#")]


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# ------------------------------------------------------------------ success


def test_reply_is_sent_once_with_documented_body_and_bearer_token(
    app: ModuleType, stack: Stack, graph: respx.MockRouter, output: Output
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok("wamid.ACCEPTED"))
    stack.enqueue(reply())

    response = invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}
    assert route.call_count == 1
    request = route.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "context": {"message_id": WAMID},
        "type": "text",
        "text": {"body": "Yes, it comes in blue.", "preview_url": False},
    }
    accepted = output.logs("Reply part accepted by WhatsApp")
    assert [(e["graph_message_id"], e["correlation_id"]) for e in accepted] == [("wamid.ACCEPTED", WAMID)]
    counts = output.metrics()
    assert counts["RepliesSent"] == 1
    assert counts["PartsSent"] == 1
    assert counts["GraphLatency"] >= 0
    assert "GraphLatency" in output.text


def test_redelivered_reply_sends_nothing_twice(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(reply())
    event = stack.receive_event()

    invoke(app, event)
    again = invoke(app, event)  # SQS delivers at least once

    assert again == {"batchItemFailures": []}
    assert route.call_count == 1


def test_quoting_can_be_turned_off(
    stack: Stack, graph: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import load_function  # noqa: PLC0415 - after the environment change

    monkeypatch.setenv("QUOTE_INBOUND_MESSAGE", "false")
    app = load_function("send_reply")
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(reply())

    invoke(app, stack.receive_event())

    assert "context" not in request_bodies(route)[0]


def test_bsuid_only_recipient_is_addressed_with_recipient(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(reply(recipient=Recipient(user_id="US.13491208655302741918")))

    invoke(app, stack.receive_event())

    body = request_bodies(route)[0]
    assert body["recipient"] == "US.13491208655302741918"
    assert "to" not in body


def test_phone_number_wins_when_both_addresses_are_known(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(reply(recipient=Recipient(wa_id=WA_ID, user_id="US.13491208655302741918")))

    invoke(app, stack.receive_event())

    body = request_bodies(route)[0]
    assert body["to"] == WA_ID
    assert "recipient" not in body


def test_long_reply_goes_in_order_and_only_the_first_part_quotes(
    app: ModuleType, stack: Stack, graph: respx.MockRouter, output: Output
) -> None:
    paragraphs = ["A" * 4000, "B" * 4000, "C" * 100]
    route = graph.post(MESSAGES_URL).mock(side_effect=[sent_ok("w1"), sent_ok("w2"), sent_ok("w3")])
    stack.enqueue(reply("\n\n".join(paragraphs)))

    invoke(app, stack.receive_event())

    bodies = request_bodies(route)
    assert [b["text"]["body"] for b in bodies] == paragraphs
    assert [("context" in b) for b in bodies] == [True, False, False]
    counts = output.metrics()
    assert (counts["PartsSent"], counts["RepliesSent"]) == (3, 1)


def test_a_reply_of_three_thousand_flags_goes_out_in_parts_within_4096_utf16_units(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    flags = "\U0001f1ee\U0001f1f3" * 3000  # 6,000 code points, 12,000 UTF-16 code units
    route = graph.post(MESSAGES_URL).mock(side_effect=[sent_ok("w1"), sent_ok("w2"), sent_ok("w3")])
    stack.enqueue(reply(flags))

    assert invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    sent = [body["text"]["body"] for body in request_bodies(route)]
    assert [len(text.encode("utf-16-le")) // 2 for text in sent] == [4096, 4096, 3808]
    assert "".join(sent) == flags


# ------------------------------------------------------------------ typing indicator


def test_typing_indicator_marks_read_and_types_before_the_reply(
    app: ModuleType, stack: Stack, graph: respx.MockRouter, output: Output
) -> None:
    route = graph.post(MESSAGES_URL).mock(
        side_effect=[httpx.Response(200, json={"success": True}), sent_ok()]
    )
    stack.enqueue(typing(), reply())

    response = invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}
    bodies = request_bodies(route)
    assert bodies[0] == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID,
        "typing_indicator": {"type": "text"},
    }
    assert bodies[1]["type"] == "text"
    assert output.metrics()["TypingIndicatorsSent"] == 1


@pytest.mark.parametrize(
    "failure",
    [
        graph_error("130429"),
        httpx.Response(500, text="<html>oops</html>"),
        httpx.ReadTimeout("read timed out"),
        graph_error("100"),
    ],
    ids=["rate-limit", "500", "timeout", "invalid-parameter"],
)
def test_typing_indicator_failure_does_not_block_the_reply(
    app: ModuleType, stack: Stack, graph: respx.MockRouter, output: Output, failure: Any
) -> None:
    route = graph.post(MESSAGES_URL).mock(side_effect=[failure, sent_ok()])
    stack.enqueue(typing(), reply())

    response = invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}
    assert route.call_count == 2
    assert request_bodies(route)[1]["type"] == "text"
    assert output.logs("Typing indicator not sent; going on")
    counts = output.metrics()
    assert counts["TypingIndicatorFailed"] == 1
    assert counts["RepliesSent"] == 1


@pytest.mark.parametrize(
    ("code", "metric"),
    [("190", "GraphAuthFailed"), ("10", "GraphAuthFailed"), ("131042", "GraphAccountBlocked")],
)
def test_typing_indicator_auth_or_account_failure_alarms_but_is_acknowledged(  # noqa: PLR0917 - fixtures
    app: ModuleType, stack: Stack, graph: respx.MockRouter, output: Output, code: str, metric: str
) -> None:
    graph.post(MESSAGES_URL).mock(return_value=graph_error(code))
    stack.enqueue(typing())

    response = invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}
    assert stack.dead_letters() == []  # best-effort: never parked
    counts = output.metrics()
    assert counts[metric] == 1
    assert counts["TypingIndicatorFailed"] == 1
    assert counts["MessagesParked"] == 0


# ------------------------------------------------------------------ transient failures


@pytest.mark.parametrize(
    ("failure", "retry_after"),
    [
        (httpx.Response(429, json={}, headers={"Retry-After": "7"}), 7),
        (httpx.Response(500, text="Internal Server Error"), None),
        (httpx.ConnectTimeout("connect timed out"), None),
        (graph_error("130429"), None),
        (graph_error("131056"), None),
        (graph_error("131057"), None),
    ],
    ids=["429-retry-after", "500", "timeout", "130429", "131056", "131057"],
)
def test_transient_failure_is_retried_then_sent_exactly_once(  # noqa: PLR0917 - pytest fixtures
    app: ModuleType,
    stack: Stack,
    graph: respx.MockRouter,
    output: Output,
    failure: Any,
    retry_after: int | None,
) -> None:
    route = graph.post(MESSAGES_URL).mock(side_effect=[failure, sent_ok()])
    stack.enqueue(reply())
    first = stack.receive_event()

    response = invoke(app, first)

    assert failed_ids(response) == [first["Records"][0]["messageId"]]
    assert [change["VisibilityTimeout"] for change in stack.visibility_changes] == [retry_after or 0]
    assert [item["attempts"]["N"] for item in retry_items(stack)] == ["1"]
    assert output.metrics()["GraphTransientError"] == 1
    if retry_after:  # let it come back now rather than wait
        stack.sqs.change_message_visibility(
            QueueUrl=stack.outbound_url,
            ReceiptHandle=first["Records"][0]["receiptHandle"],
            VisibilityTimeout=0,
        )

    second = stack.receive_event()
    assert second["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert invoke(app, second, stack=stack) == {"batchItemFailures": []}
    assert invoke(app, second) == {"batchItemFailures": []}  # a third, duplicate delivery

    assert route.call_count == 2
    assert output.metrics()["PartsSent"] == 1


def test_three_part_reply_failing_on_part_two_resends_only_parts_two_and_three(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    paragraphs = ["one " * 1000, "two " * 1000, "three " * 600]
    route = graph.post(MESSAGES_URL).mock(
        side_effect=[sent_ok("w1"), httpx.Response(503), sent_ok("w2"), sent_ok("w3")]
    )
    stack.enqueue(reply("\n\n".join(paragraphs)))

    first = invoke(app, stack.receive_event())
    assert len(first["batchItemFailures"]) == 1
    second = invoke(app, stack.receive_event())
    assert second == {"batchItemFailures": []}

    sent = [body["text"]["body"] for body in request_bodies(route)]
    expected = [p.strip() for p in paragraphs]
    assert sent == [expected[0], expected[1], expected[1], expected[2]]


def test_failed_record_holds_back_the_rest_of_its_conversation(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).mock(side_effect=[graph_error("130429"), sent_ok(), sent_ok()])
    stack.enqueue(reply("first"), reply("second", wamid="wamid.SECOND"))
    event = stack.receive_event()

    response = invoke(app, event)

    assert failed_ids(response) == [record["messageId"] for record in event["Records"]]
    assert route.call_count == 1


def test_too_little_time_left_hands_the_record_back_without_calling_graph(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(reply())

    response = invoke(app, stack.receive_event(), remaining_millis=2_000)

    assert len(response["batchItemFailures"]) == 1
    assert route.call_count == 0
    assert retry_items(stack) == []  # nothing was tried: not an attempt


def test_the_longest_allowed_graph_timeout_still_sends_a_record_started_early(
    stack: Stack, graph: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local_stack.cfn import load_template  # noqa: PLC0415
    from tests.support import ROOT, load_function  # noqa: PLC0415

    template = load_template(ROOT / "template.yaml")
    longest = template["Parameters"]["GraphTimeoutSeconds"]["MaxValue"]
    function_timeout = template["Resources"]["SendReplyFunction"]["Properties"]["Timeout"]
    monkeypatch.setenv("GRAPH_TIMEOUT_SECONDS", str(longest))
    app = load_function("send_reply")
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(reply())

    # Five seconds into an invocation (secret, idempotency records and earlier records' calls).
    response = invoke(app, stack.receive_event(), remaining_millis=(function_timeout - 5) * 1000)

    assert response == {"batchItemFailures": []}
    assert route.call_count == 1


# ------------------------------------------------------------------ permanent failures


@pytest.mark.parametrize("code", ["131047", "131026", "131048", "100", "131051"])
def test_permanent_rejection_is_logged_counted_and_not_retried(
    app: ModuleType, stack: Stack, graph: respx.MockRouter, output: Output, code: str
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=graph_error(code))
    stack.enqueue(reply())

    response = invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}
    assert route.call_count == 1
    assert stack.dead_letters() == []
    [line] = output.logs("WhatsApp rejected the reply; not retrying")
    body = graph_errors()[code]["body"]["error"]
    assert line["graph_code"] == int(code)
    assert line["graph_fbtrace_id"] == body["fbtrace_id"]
    assert line.get("graph_details") == body.get("error_data", {}).get("details")
    assert line["correlation_id"] == WAMID
    counts = output.metrics()
    assert counts["GraphSendRejected"] == 1
    assert counts["GraphSendRejectedByCode"] == 1
    assert counts["RepliesSent"] == 0


def test_permanent_rejection_of_a_part_stops_the_rest(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).mock(side_effect=[sent_ok(), graph_error("131047"), sent_ok()])
    stack.enqueue(reply("\n\n".join(["a" * 4000, "b" * 4000, "c"])))

    assert invoke(app, stack.receive_event()) == {"batchItemFailures": []}
    assert route.call_count == 2


# ------------------------------------------------------------------ auth failures


@pytest.mark.parametrize(
    ("failure", "metric"),
    [
        (graph_error("190"), "GraphAuthFailed"),
        (httpx.Response(401, text="Unauthorized"), "GraphAuthFailed"),
        (graph_error("0"), "GraphAuthFailed"),
        (graph_error("3"), "GraphAuthFailed"),
        (graph_error("10"), "GraphAuthFailed"),
        (graph_error("200"), "GraphAuthFailed"),
        (httpx.Response(403, text="Forbidden"), "GraphAuthFailed"),
        (graph_error("368"), "GraphAccountBlocked"),
        (graph_error("130497"), "GraphAccountBlocked"),
        (graph_error("131031"), "GraphAccountBlocked"),
        (graph_error("131042"), "GraphAccountBlocked"),
        (graph_error("133010"), "GraphAccountBlocked"),
    ],
    ids=[
        "code-190",
        "http-401",
        "code-0",
        "code-3-http-500",
        "code-10",
        "code-200",
        "http-403",
        "code-368",
        "code-130497",
        "code-131031",
        "code-131042",
        "code-133010",
    ],
)
def test_auth_and_account_failures_alarm_and_park_the_reply_in_the_dead_letter_queue(  # noqa: PLR0917
    app: ModuleType,
    stack: Stack,
    graph: respx.MockRouter,
    output: Output,
    failure: httpx.Response,
    metric: str,
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=failure)
    body = reply()
    stack.enqueue(body)

    response = invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}  # removed from the source queue: no retry loop
    assert stack.dead_letters() == [body]
    assert route.call_count == 1
    counts = output.metrics()
    assert counts[metric] == 1
    assert counts["MessagesParked"] == 1
    assert counts["GraphSendRejected"] == counts["GraphTransientError"] == counts["RepliesSent"] == 0
    blob = next(line for line in output.lines if metric in line)
    assert blob["service"] == "send-reply"  # the dimension the alarm in template.yaml watches
    [logged] = [line for line in output.logs() if line.get("level") == "ERROR" and "graph_kind" in line]
    assert logged["correlation_id"] == WAMID


# ------------------------------------------------------------------ bad records and secrets


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(
            {"schema_version": 2, "kind": "text", "phone_number_id": "1", "inbound_message_id": WAMID}
        ),
        json.dumps({"schema_version": 1, "kind": "sticker", "phone_number_id": "1"}),
    ],
    ids=["not-json", "unknown-version", "unknown-kind"],
)
def test_undecodable_record_is_parked(
    app: ModuleType, stack: Stack, graph: respx.MockRouter, output: Output, body: str
) -> None:
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(body)

    response = invoke(app, stack.receive_event())

    assert response == {"batchItemFailures": []}
    assert stack.dead_letters() == [body]
    assert route.call_count == 0
    assert output.metrics()["MessagesParked"] == 1


def test_access_token_never_reaches_the_logs(
    app: ModuleType,
    stack: Stack,
    graph: respx.MockRouter,
    output: Output,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wa_assistant.observability import logger  # noqa: PLC0415

    logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)  # every library logger too (httpx/httpcore are pinned to WARNING)
    echoed = {
        "error": {"message": f"Malformed access token {ACCESS_TOKEN}", "type": "OAuthException", "code": 190}
    }
    graph.post(MESSAGES_URL).mock(
        side_effect=[
            httpx.Response(200, json={"success": True}),
            sent_ok(),
            httpx.Response(400, json=echoed),
        ]
    )
    stack.enqueue(typing(), reply(), reply("another", wamid="wamid.SECOND"))

    try:
        invoke(app, stack.receive_event())
    finally:
        logger.setLevel("INFO")

    assert output.logs("Marked read, typing indicator shown")  # the logs were captured
    assert output.logs("WhatsApp refused the access token or its permissions; fix the Graph secret")
    assert ACCESS_TOKEN not in output.read().text
    assert caplog.records  # the library loggers were captured
    assert ACCESS_TOKEN not in caplog.text
    assert ACCESS_TOKEN not in "".join(stack.dead_letters())


def test_no_log_state_of_one_invocation_reaches_the_next(
    app: ModuleType, stack: Stack, graph: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wa_assistant.observability import correlation_id, logger  # noqa: PLC0415

    graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    at_start: list[tuple[str | None, bool]] = []
    process = app.batch.process

    def spy(event: dict[str, Any], context: Any, handler: Any) -> Any:
        # Before any record sets its own correlation id: what the invocation inherited.
        at_start.append((correlation_id(), "leftover" in logger.get_current_keys()))
        logger.append_keys(leftover="appended during this invocation")
        return process(event, context, handler)

    monkeypatch.setattr(app.batch, "process", spy)
    try:
        stack.enqueue(reply())
        invoke(app, stack.receive_event(), stack=stack)
        stack.enqueue(reply("second", wamid="wamid.SECOND"))
        invoke(app, stack.receive_event(), stack=stack)
    finally:
        logger.remove_keys(["leftover"])

    assert at_start == [(None, False), (None, False)]  # the first reply's wamid and keys did not carry over


def test_access_token_is_fetched_on_first_use_then_cached(stack: Stack, graph: respx.MockRouter) -> None:
    import boto3  # noqa: PLC0415

    from tests.support import load_function  # noqa: PLC0415

    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.delete_secret(SecretId="graph-access-token", ForceDeleteWithoutRecovery=True)
    app = load_function("send_reply")  # a cold start does not need the secret yet
    secrets.create_secret(Name="graph-access-token", SecretString=ACCESS_TOKEN)
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())
    stack.enqueue(reply("one"))
    invoke(app, stack.receive_event(), stack=stack)

    secrets.delete_secret(SecretId="graph-access-token", ForceDeleteWithoutRecovery=True)
    stack.enqueue(reply("two", wamid="wamid.SECOND"))
    assert invoke(app, stack.receive_event()) == {"batchItemFailures": []}

    assert [call.request.headers["Authorization"] for call in route.calls] == [f"Bearer {ACCESS_TOKEN}"] * 2


def test_sample_event_is_a_reply_the_function_sends(
    app: ModuleType, stack: Stack, graph: respx.MockRouter
) -> None:
    from tests.support import ROOT  # noqa: PLC0415

    event = json.loads((ROOT / "events" / "send_reply_outbound.json").read_text())
    route = graph.post(MESSAGES_URL).mock(return_value=sent_ok())

    assert invoke(app, event) == {"batchItemFailures": []}

    body = request_bodies(route)[0]
    assert (body["to"], body["context"]["message_id"]) == (WA_ID, WAMID)
