"""Services-only mode (for `sam local invoke`): the live resources are what events/env.json names."""

from __future__ import annotations

import json
import urllib.request

import pytest

from local_stack.http_server import free_port
from local_stack.services import LocalServices, ServiceAddresses, ServicesError, generate_env_json
from local_stack.topology import moto_client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_running_services_match_the_generated_env_file_and_answer() -> None:
    addresses = ServiceAddresses("127.0.0.1", free_port(), free_port(), free_port())
    with LocalServices(addresses, echo_logs=False) as services:
        assert services.env == json.loads(generate_env_json(addresses))
        sqs = moto_client("sqs", addresses.moto_url)
        ai_env = services.env["AiReplyFunction"]
        for variable in ("OUTBOUND_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"):
            name = ai_env[variable].rsplit("/", 1)[1]
            assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == ai_env[variable]
        secrets = moto_client("secretsmanager", addresses.moto_url)
        webhook_secret = secrets.get_secret_value(
            SecretId=services.env["WebhookFunction"]["WEBHOOK_SECRET_NAME"]
        )
        assert json.loads(webhook_secret["SecretString"]) == {
            "app_secret": "local-app-secret",
            "verify_token": "local-verify-token",
        }
        tables = moto_client("dynamodb", addresses.moto_url).list_tables()["TableNames"]
        assert ai_env["MEMORY_TABLE_NAME"] in tables
        request = urllib.request.Request(
            ai_env["MISTRAL_BASE_URL"] + "/chat/completions",
            data=json.dumps(
                {"model": "mistral-small-latest", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            headers={"Authorization": "Bearer local-mistral-key", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["choices"][0]["message"]["content"].startswith(
                "[stand-in model]"
            )
        with urllib.request.urlopen(
            services.env["SendReplyFunction"]["GRAPH_API_BASE_URL"] + "/_messages"
        ) as sink:
            assert json.loads(sink.read())["messages"] == []


def test_a_taken_port_is_a_clear_error() -> None:
    addresses = ServiceAddresses("127.0.0.1", free_port(), free_port(), free_port())
    taken = f"cannot listen on 127.0.0.1:{addresses.moto_port}"
    with (
        LocalServices(addresses, echo_logs=False),
        pytest.raises(ServicesError, match=taken),
        LocalServices(addresses, echo_logs=False),
    ):
        pass
