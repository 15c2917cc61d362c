"""One local stack per test session: moto server, the three functions in worker processes, stand-ins.

Short visibility timeouts and backoff (parameter overrides, as for a deploy) keep
fault tests within seconds; every secret is random so the log scan means something.
The AWS services a fault test takes away reach the functions through fault proxies
(`local_stack.fault_proxy`), which pass everything through until a test cuts one;
their lines go to the stack's log, which the last test scans for secrets.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from local_stack import LocalStack
from local_stack.fault_proxy import FaultProxies

E2E_PARAMETERS = {
    "InboundVisibilityTimeout": "20",
    "OutboundVisibilityTimeout": "15",
    "RetryBaseDelaySeconds": "1",
    "MaxReceiveCount": "10",
    "MistralTimeoutSeconds": "2",
    "GraphTimeoutSeconds": "3",
    # A warm function rereads its secret after 2 s, so an outage of Secrets Manager is felt at once.
    "SecretsMaxAgeSeconds": "2",
}
PROXIED_SERVICES = {
    "WebhookFunction": ("sqs",),
    "AiReplyFunction": ("secretsmanager", "dynamodb"),
    "SendReplyFunction": ("secretsmanager", "dynamodb"),
}
"""The (function, AWS service) pairs a test can make unavailable."""


@pytest.fixture(scope="session")
def outages() -> Iterator[FaultProxies]:
    proxies = FaultProxies(PROXIED_SERVICES)
    yield proxies
    proxies.stop()


@pytest.fixture(scope="session")
def stack(outages: FaultProxies) -> Iterator[LocalStack]:
    env = {
        "WHATSAPP_APP_SECRET": "e2e-app-secret-" + secrets.token_hex(12),
        "WHATSAPP_VERIFY_TOKEN": "e2e-verify-token-" + secrets.token_hex(8),
        "WHATSAPP_ACCESS_TOKEN": "e2e-access-token-" + secrets.token_hex(16),
        "MISTRAL_API_KEY": "e2e-mistral-key-" + secrets.token_hex(12),
        "MISTRAL_BASE_URL": "stand-in",  # the key alone would point the stack at the real API
    }
    with LocalStack(
        parameters=E2E_PARAMETERS, env=env, port=0, function_env=outages.function_env()
    ) as running:
        outages.start(running.moto_url, log=lambda line: running.logs.emit("fault-proxy", line))
        yield running


@pytest.fixture(autouse=True)
def clean_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with unscripted stand-ins; tests that change a key put it back."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: LocalStack = request.getfixturevalue("stack")
    key, token = stack.mistral.api_key, stack.sink.access_token
    yield
    stack.mistral.clear_script()
    stack.sink.clear_script()
    stack.mistral.api_key = key
    stack.mistral.latency_seconds = 0.0
    stack.sink.access_token = token
    stack.sink.media.clear_failures()
    stack.mistral.media.transcription_latency_seconds = 0.0
