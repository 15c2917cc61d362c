"""The local stack's own parts, without the whole stack: template reading, Lambda rules, workers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from local_stack.api_gateway import build_event, map_result
from local_stack.cfn import Resolver, TemplateError, load_template, resolve_parameters
from local_stack.config import TEMPLATE, LocalConfig
from local_stack.functions import FunctionError, FunctionRuntime, InvocationTimeout, WorkerDied
from local_stack.logs import LogSink
from local_stack.sqs_poller import failed_message_ids
from local_stack.topology import FunctionSpec, Route


def test_template_parameters_take_overrides_and_reject_unknown_ones() -> None:
    template = load_template(TEMPLATE)
    values = resolve_parameters(template, {"RetryBaseDelaySeconds": "1"})
    assert values["RetryBaseDelaySeconds"] == "1"
    assert values["MistralModel"] == template["Parameters"]["MistralModel"]["Default"]
    with pytest.raises(TemplateError):
        resolve_parameters(template, {"NoSuchParameter": "1"})
    with pytest.raises(TemplateError):
        resolve_parameters(template, {"TracingEnabled": "maybe"})


def test_resolver_evaluates_the_intrinsics_the_template_uses() -> None:
    template = load_template(TEMPLATE)
    resolver = Resolver(
        parameters=resolve_parameters(template, {}),
        conditions_source=template["Conditions"],
        pseudo={"AWS::Region": "us-east-1"},
        refs={"Api": "abc"},
    )
    assert resolver.resolve({"Fn::If": ["IsTracingEnabled", "Active", "PassThrough"]}) == "PassThrough"
    assert resolver.resolve({"Fn::Sub": "https://${Api}.${AWS::Region}/x"}) == "https://abc.us-east-1/x"
    assert resolver.resolve({"A": {"Fn::If": ["HasAlarmAction", ["x"], {"Ref": "AWS::NoValue"}]}}) == {}


def test_configuration_defaults_and_real_mistral_switch() -> None:
    local = LocalConfig.from_env({})
    assert (local.port, local.app_secret, local.parameter_overrides) == (3000, "local-app-secret", {})
    real = LocalConfig.from_env({"MISTRAL_API_KEY": "k", "GRAPH_API_VERSION": "v24.0"})
    assert real.parameter_overrides == {
        "MistralBaseUrl": "https://api.mistral.ai/v1",
        "GraphApiVersion": "v24.0",
    }
    stand_in = LocalConfig.from_env({"MISTRAL_API_KEY": "k", "MISTRAL_BASE_URL": "stand-in"})
    assert stand_in.parameter_overrides == {}


def test_batch_item_failures_follow_lambda_rules() -> None:
    ids = {"a", "b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, ids, True) == {"a"}
    assert failed_message_ids({"batchItemFailures": []}, ids, True) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids, True) == ids
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids, True) == ids
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, ids, False) == set()


def test_http_api_event_is_payload_format_2() -> None:
    from local_stack.api_gateway import BoundRoute, _path_pattern  # noqa: PLC0415

    bound = BoundRoute(Route("POST", "/webhook"), _path_pattern("/webhook"), runtime=None)  # type: ignore[arg-type]
    event = build_event(
        "POST",
        "/webhook",
        raw_query="a=1&a=2",
        headers=[("X-Hub-Signature-256", "sha256=1"), ("Host", "h")],
        body=b"\xff\x00",
        source_ip="127.0.0.1",
        bound=bound,
        path_parameters={},
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhook"
    assert event["headers"]["x-hub-signature-256"] == "sha256=1"
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert (event["body"], event["isBase64Encoded"]) == ("/wA=", True)
    assert event["requestContext"]["http"]["method"] == "POST"
    assert map_result({"statusCode": 403, "body": "no"})[0::3] == (403, b"no")
    assert map_result({"ok": True})[0] == 200


@pytest.fixture
def sleepy_function(tmp_path: Path) -> FunctionSpec:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(
        "import os, time\n"
        "STARTED_IN = os.getpid()\n"
        "def handler(event, context):\n"
        "    if event.get('raise'):\n"
        "        raise ValueError('boom')\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return {'pid': STARTED_IN, 'left_ms': context.get_remaining_time_in_millis()}\n"
    )
    return FunctionSpec(
        logical_id="Sleepy",
        code_uri=code,
        handler="app.handler",
        timeout_seconds=2,
        memory_mb=128,
        layer_paths=[],
        environment={},
        reserved_concurrency=None,
    )


def test_worker_stays_warm_times_out_and_can_be_killed(sleepy_function: FunctionSpec, tmp_path: Path) -> None:
    import os  # noqa: PLC0415

    runtime = FunctionRuntime(
        sleepy_function, {"PATH": os.environ["PATH"]}, LogSink(tmp_path / "l.jsonl", False), 2
    )
    try:
        first = runtime.invoke({})
        assert 0 < first["left_ms"] <= 2000
        assert runtime.invoke({})["pid"] == first["pid"]  # warm: same process, same module state
        with pytest.raises(FunctionError):
            runtime.invoke({"raise": True})
        assert runtime.invoke({})["pid"] == first["pid"]  # a handler error keeps the container
        with pytest.raises(InvocationTimeout):
            runtime.invoke({"sleep": 5})
        assert runtime.invoke({})["pid"] != first["pid"]  # timed out: killed and replaced

        outcome: list[BaseException] = []

        def long_call() -> None:
            try:
                runtime.invoke({"sleep": 1.5})
            except WorkerDied as died:
                outcome.append(died)

        caller = threading.Thread(target=long_call)
        caller.start()
        deadline = time.monotonic() + 10
        while not runtime.kill_busy_worker():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        caller.join()
        assert len(outcome) == 1
    finally:
        runtime.close()
