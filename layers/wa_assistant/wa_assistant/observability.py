"""Logger, metrics and (optional) tracer shared by the three functions.

Each function runs in its own process, so module-level instances are one per
function; the service name comes from POWERTOOLS_SERVICE_NAME set in template.yaml.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Metrics

F = TypeVar("F", bound=Callable[..., Any])

logger = Logger()
metrics = Metrics()


class TracerLike(Protocol):
    def capture_lambda_handler(self, lambda_handler: Any) -> Any: ...
    def capture_method(self, method: Any) -> Any: ...


class _NoTracer:
    """Stands in for Powertools' Tracer when tracing is off.

    Powertools' Tracer imports the X-Ray SDK even when disabled (~240 ms of cold
    start, measured in docs/benchmarks.md); no library offers a lazy variant, so
    this pass-through is written by hand.
    """

    def capture_lambda_handler(self, lambda_handler: F) -> F:
        return lambda_handler

    def capture_method(self, method: F) -> F:
        return method


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() not in {"1", "true"}


def make_tracer() -> TracerLike:
    """Powertools' Tracer when TracingEnabled=true, else a pass-through."""
    if tracing_enabled():
        from aws_lambda_powertools import Tracer  # noqa: PLC0415 - lazy on purpose, see _NoTracer

        return Tracer()
    return _NoTracer()


tracer = make_tracer()
