"""One local stack per test session: moto server, the three functions in worker processes, stand-ins.

Short visibility timeouts and backoff (parameter overrides, as for a deploy) keep
fault tests within seconds; every secret is random so the log scan means something.
The AWS services a fault test takes away reach the functions through fault proxies
(`local_stack.fault_proxy`), which pass everything through until a test cuts one;
their lines go to the stack's log, which the last test scans for secrets.

IAM is enforced: each function calls AWS with its own role's credentials, and a test
during which any call was denied fails, unless it is marked `expect_access_denied`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from local_stack import LocalStack
from local_stack.fault_proxy import FaultProxies
from local_stack.mistral_standin import LISTED_MODELS

E2E_PARAMETERS = {
    "InboundVisibilityTimeout": "20",
    "OutboundVisibilityTimeout": "15",
    # Backoffs of 0.05-0.1 s doubling per attempt: eight failures in a row pass in ~20 s.
    "RetryBaseDelaySeconds": "0.1",
    # Parking after real attempts is tested on this stack; every other test fails a message at most 8 times.
    "RetryMaxAttempts": "10",
    "AiBatchSize": "10",
    # No waiting for the rest of a burst on the shared stack (each test would wait); messages
    # that arrive while an earlier one is answered still come together. The window itself is
    # tested on a stack of its own (tests/e2e/test_bursts.py).
    "CoalesceWindowSeconds": "0",
    "MistralTimeoutSeconds": "2",
    "GraphTimeoutSeconds": "3",
    # A warm function rereads its secret after 2 s, so an outage of Secrets Manager is felt at once.
    "SecretsMaxAgeSeconds": "2",
    # 18 s: long enough to see a paused conversation stay quiet, short enough to see the pause end.
    "HandoffPauseHours": "0.005",
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
def no_access_denied(request: pytest.FixtureRequest) -> Iterator[None]:
    """A call a function's role does not allow fails the test, as it would fail in AWS."""
    if "stack" not in request.fixturenames or request.node.get_closest_marker("expect_access_denied"):
        yield
        return
    stack: LocalStack = request.getfixturevalue("stack")
    before = len(stack.access_denials())
    yield
    denials = stack.access_denials()[before:]
    if denials:
        pytest.fail(
            "AWS would have denied calls of the functions (add the permission to the function's role in "
            "template.yaml, or mark the test expect_access_denied):\n"
            + "\n".join(f"  {d['function']}: {d['message']} ({d['detail']})" for d in denials),
            pytrace=False,
        )


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
    stack.mistral.models = list(LISTED_MODELS)
    stack.sink.media.clear_failures()
    stack.mistral.media.transcription_latency_seconds = 0.0
