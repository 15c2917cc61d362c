"""Logger, metrics and (optional) tracer shared by the three functions.

Each function runs in its own process, so module-level instances are one per
function; the service name comes from POWERTOOLS_SERVICE_NAME set in template.yaml.
The AI function handles conversations in threads (`aws.batch`): the correlation id
is a per-thread log key and metrics are added under a lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricResolution, MetricUnit

F = TypeVar("F", bound=Callable[..., Any])

CORRELATION_ID = "correlation_id"


class _LockedMetrics(Metrics):
    """Powertools' Metrics with add_metric under a lock: it checks the count, then flushes at 100."""

    _lock = threading.Lock()

    def add_metric(
        self,
        name: str,
        unit: MetricUnit | str,
        value: float,
        resolution: MetricResolution | int = 60,
    ) -> None:
        with self._lock:
            super().add_metric(name=name, unit=unit, value=value, resolution=resolution)


logger = Logger()
metrics: Metrics = _LockedMetrics()


def set_correlation_id(value: str | None) -> None:
    """The wamid on every log line of this thread (Powertools' thread-safe keys); None removes it."""
    if value:
        logger.thread_safe_append_keys(**{CORRELATION_ID: value})
    else:
        logger.thread_safe_remove_keys([CORRELATION_ID])


def correlation_id() -> str | None:
    value = logger.thread_safe_get_current_keys().get(CORRELATION_ID)
    return value if isinstance(value, str) else None


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
