"""Warm per-request cost of the webhook handler against a floor of HMAC-SHA256 + json.loads.

The handler runs in-process exactly as deployed (Powertools resolver, logger at
the template's level, metrics flush) with two stand-ins: Secrets Manager
returns fixed values (through Powertools' own cache) and SQS is an in-memory
recorder. Each request is timed on its own, alternating with one floor
computation over the same bytes, so both see the same machine state.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.inprocess import (
    ByteCounter,
    RecordingSqs,
    install_secrets,
    load_handler_module,
    replace_queues,
)
from benchmarks.payloads import APP_SECRET, text_message
from benchmarks.stats import Summary, paired_ratios, summarize
from wa_assistant.webhook.signature import expected_signature

VERIFY_TOKEN = "bench-verify-token"  # noqa: S105 - fake


@dataclass(frozen=True)
class WarmResult:
    handler_us: Summary
    floor_us: Summary
    ratio: Summary
    requests: int
    log_bytes_per_request: float
    log_lines_per_request: float


def http_api_event(body: bytes, signature: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2.0) POST /webhook as Meta's delivery produces it."""
    return {
        "version": "2.0",
        "routeKey": "POST /webhook",
        "rawPath": "/webhook",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "user-agent": "facebookexternalua",
            "x-hub-signature-256": signature,
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": "POST",
                "path": "/webhook",
                "protocol": "HTTP/1.1",
                "sourceIp": "173.252.1.1",
                "userAgent": "facebookexternalua",
            },
            "requestId": "bench",
            "routeKey": "POST /webhook",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def captured_stdout(counter: ByteCounter) -> Iterator[None]:
    saved = sys.stdout
    sys.stdout = counter
    try:
        yield
    finally:
        sys.stdout = saved


def floor(secret: bytes, body: bytes) -> object:
    """The least any verifier must do: one HMAC over the bytes and one JSON parse."""
    hmac.new(secret, body, hashlib.sha256).hexdigest()
    return json.loads(body)


def measure_webhook(env: Mapping[str, str], requests: int, context: Any) -> WarmResult:
    """`requests` signed one-message POSTs through the handler, each followed by one floor run."""
    body = text_message(1)
    event = http_api_event(body, expected_signature(APP_SECRET, body))
    secret = APP_SECRET.encode()
    counter = ByteCounter()
    sqs = RecordingSqs()
    with environment(env), captured_stdout(counter):
        module = load_handler_module("webhook")
        if replace_queues(module, sqs) != 1:
            raise RuntimeError("expected exactly one module-level MessageQueue in the webhook handler")
        credentials = json.dumps({"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN})
        install_secrets({env["WEBHOOK_SECRET_NAME"]: credentials})
        handler = module.lambda_handler
        first = handler(event, context)
        if first.get("statusCode") != 200 or sqs.sent != 1:
            raise RuntimeError(f"webhook did not accept the benchmark request: {first}")
        for _ in range(200):  # warm-up: caches, branch predictors, allocator
            handler(event, context)
            floor(secret, body)
        counter.bytes = counter.lines = 0
        sent_before = sqs.sent
        handler_ns: list[int] = []
        floor_ns: list[int] = []
        clock = time.perf_counter_ns
        gc.collect()
        for _ in range(requests):
            started = clock()
            handler(event, context)
            middle = clock()
            floor(secret, body)
            ended = clock()
            handler_ns.append(middle - started)
            floor_ns.append(ended - middle)
    if sqs.sent - sent_before != requests:
        raise RuntimeError(f"expected {requests} enqueued records, the recorder saw {sqs.sent - sent_before}")
    return WarmResult(
        handler_us=summarize(handler_ns).scaled(1 / 1000),
        floor_us=summarize(floor_ns).scaled(1 / 1000),
        ratio=paired_ratios(handler_ns, floor_ns),
        requests=requests,
        log_bytes_per_request=counter.bytes / requests,
        log_lines_per_request=counter.lines / requests,
    )
