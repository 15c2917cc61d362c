"""End to end on the local stack: webhook POST -> ... -> the Graph sink receiving the reply text.

The stand-in model answers after a fixed delay; the pipeline's own latency is
(sink receive time - POST start - that delay). Two phases: a paced phase below
the pipeline's capacity (latency without queueing behind one's own
conversation) and a burst (throughput). Baseline, same run: the raw round trip
of one HTTP POST to the sink. Every function invocation is timed at the local
stack's runtime boundary; those durations feed the cost model.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks.payloads import PHONE_NUMBER_ID, text_message, wamid
from benchmarks.stats import Summary, percentile, summarize

WEBHOOK_ATTEMPTS = 5
"""Meta redelivers a webhook that got a non-2xx answer; the poster does the same, up to this many tries."""
FIRST_INDEX = 100_000
"""wamid numbering of the end-to-end messages (apart from the other benchmarks' ids)."""


@dataclass
class InvocationLog:
    durations_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    records: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, function: str, duration_ms: float, records: int) -> None:
        with self._lock:
            self.durations_ms[function].append(duration_ms)
            self.records[function].append(records)


@dataclass(frozen=True)
class PhaseResult:
    name: str
    messages: int
    offered_rate: float | None
    seconds: float
    throughput: float
    latency_ms: Summary
    """Pipeline's own latency (stand-in delay subtracted)."""
    p50_ms: float
    p99_ms: float
    undelivered: int
    redeliveries: int
    """Webhook POSTs repeated after a non-2xx answer (as Meta would)."""


@dataclass(frozen=True)
class EndToEndResult:
    phases: list[PhaseResult]
    model_delay_ms: float
    sink_round_trip_ms: Summary
    invocation_ms: dict[str, Summary]
    records_per_invocation: dict[str, float]
    ms_per_record: dict[str, float]
    """Median over invocations of (invocation time / records in it)."""
    cpu_ms: dict[str, float]
    """CPU used by each function's workers during the phases (init of workers started meanwhile included)."""
    workers_started: dict[str, int]
    """Workers started during the phases (their init CPU is inside cpu_ms)."""
    records: dict[str, int]
    retries_logged: int
    """'Will retry' log lines: transient failures during the run (0 in a clean run)."""
    invocations_per_message: dict[str, float]
    log_bytes_per_message: dict[str, float]
    metric_names: list[str]
    messages_total: int


def time_invocations(stack: Any, log: InvocationLog) -> None:
    """Wrap each runtime's invoke: the pollers and the HTTP API look it up per call."""
    for logical_id, runtime in stack.runtimes.items():
        original: Callable[[Any], Any] = runtime.invoke

        def timed(event: Any, _original: Callable[[Any], Any] = original, _name: str = logical_id) -> Any:
            started = time.perf_counter()
            try:
                return _original(event)
            finally:
                is_batch = isinstance(event, dict) and "Records" in event
                records = len(event["Records"]) if is_batch else 1
                log.add(_name, (time.perf_counter() - started) * 1000, records)

        runtime.invoke = timed


def _cpu_ms(pid: int) -> float | None:
    """utime + stime of a live process, from /proc (Linux)."""
    try:
        fields = open(f"/proc/{pid}/stat", encoding="ascii").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def worker_cpu(stack: Any) -> dict[str, dict[int, float]]:
    """CPU milliseconds used so far by each warm worker process, per function.

    Reads FunctionRuntime's worker list (`_all`): the local stack has no public
    accessor for it (asked for one in the report to the lead).
    """
    usage: dict[str, dict[int, float]] = {}
    for logical_id, runtime in stack.runtimes.items():
        per_pid: dict[int, float] = {}
        for worker in list(getattr(runtime, "_all", [])):
            cpu = _cpu_ms(worker.process.pid)
            if cpu is not None:
                per_pid[worker.process.pid] = cpu
        usage[logical_id] = per_pid
    return usage


def sink_round_trips(base_url: str, token: str, count: int) -> list[float]:
    """POST a text message straight to the sink and read the answer: the floor of any delivery."""
    body = json.dumps(
        {"messaging_product": "whatsapp", "to": "bench-baseline", "type": "text", "text": {"body": "ping"}}
    ).encode()
    url = f"{base_url.rstrip('/')}/v23.0/{PHONE_NUMBER_ID}/messages"
    samples = []
    for _ in range(count):
        request = urllib.request.Request(  # noqa: S310 - the local sink's http URL
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local sink
            response.read()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def run_phase(
    stack: Any,
    *,
    name: str,
    first_index: int,
    users: int,
    messages: int,
    rate: float | None,
    delay_s: float,
    timeout_s: float,
) -> PhaseResult:
    """Post `messages` (round robin over `users`) at `rate` per second (None: as fast as possible)."""
    posted_at: dict[str, float] = {}
    user_of: dict[str, str] = {}
    redeliveries = 0
    lock = threading.Lock()

    def post(index: int) -> None:
        nonlocal redeliveries
        user = f"1650555{index % users:04d}"
        body = text_message(first_index + index, f"Question {index} from {user}?", wa_id=user)
        started = time.time()
        for attempt in range(WEBHOOK_ATTEMPTS):
            status, answer = stack.post_webhook(body)
            if status == 200:
                break
            with lock:
                redeliveries += 1
            time.sleep(0.5 * 2**attempt)
        else:
            raise RuntimeError(f"webhook answered {status} {WEBHOOK_ATTEMPTS} times: {answer[:200]!r}")
        with lock:
            posted_at[wamid(first_index + index)] = started
            user_of[wamid(first_index + index)] = user

    started = time.time()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        for index in range(messages):
            if rate is not None:
                pause = started + index / rate - time.time()
                if pause > 0:
                    time.sleep(pause)
            futures.append(pool.submit(post, index))
        for future in futures:
            future.result()

    def delivered() -> dict[str, float]:
        """When each message was answered: by the first reply quoting it or, for a message answered
        in a burst, quoting a later message of the same user (the burst's reply quotes its last)."""
        by_user: dict[str, list[str]] = defaultdict(list)
        for posted in posted_at:
            by_user[user_of[posted]].append(posted)
        firsts: dict[str, float] = {}
        for record in sorted(stack.sink.messages(), key=lambda r: float(r["time"])):
            quoted = record.get("context_message_id")
            if quoted not in posted_at:
                continue
            for covered in by_user[user_of[quoted]]:
                if covered not in firsts and posted_at[covered] <= posted_at[quoted]:
                    firsts[covered] = float(record["time"])
        return firsts

    deadline = time.monotonic() + timeout_s
    received = delivered()
    while len(received) < messages and time.monotonic() < deadline:
        time.sleep(0.2)
        received = delivered()
    latencies = [(received[w] - posted_at[w] - delay_s) * 1000 for w in received]
    if not latencies:
        raise RuntimeError(f"{name}: no reply reached the sink")
    span = max(received.values()) - started
    return PhaseResult(
        name=name,
        messages=messages,
        offered_rate=rate,
        seconds=span,
        throughput=len(received) / span,
        latency_ms=summarize(latencies),
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        undelivered=messages - len(received),
        redeliveries=redeliveries,
    )


def _metric_names(lines: list[dict[str, Any]]) -> list[str]:
    """Distinct CloudWatch metrics (namespace/name/dimension values) found in EMF log lines."""
    names: set[str] = set()
    for entry in lines:
        try:
            document = json.loads(entry["line"])
        except (ValueError, TypeError):
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", []) or [[]]:
                dims = ",".join(f"{d}={document.get(d)}" for d in dimension_set)
                for metric in directive.get("Metrics", []):
                    names.add(f"{directive.get('Namespace')}/{metric['Name']}[{dims}]")
    return sorted(names)


def run(
    *,
    users: int,
    messages: int,
    paced_messages: int,
    paced_rate: float,
    delay_s: float,
    baseline_posts: int,
    timeout_s: float,
) -> EndToEndResult:
    """A paced phase (`paced_messages` at `paced_rate`/s), then `messages` from `users` as fast as posted."""
    from local_stack.stack import LocalStack  # noqa: PLC0415 - starts processes; imported when this runs

    log = InvocationLog()
    # env={}: never the real Mistral, whatever the shell has. No coalesce window: this measures the
    # pipeline's own latency; what the window adds (and saves) is section 8's.
    with LocalStack(parameters={"CoalesceWindowSeconds": "0"}, env={}, port=0) as stack:
        stack.mistral.control({"reset": True, "latency_seconds": delay_s})
        time_invocations(stack, log)
        token = stack.config.access_token
        cpu_before = worker_cpu(stack)
        before = sink_round_trips(stack.sink.base_url, token, baseline_posts)
        phases = [
            run_phase(
                stack,
                name="paced",
                first_index=FIRST_INDEX,
                users=users,
                messages=paced_messages,
                rate=paced_rate,
                delay_s=delay_s,
                timeout_s=timeout_s,
            ),
        ]
        stack.wait_until(stack.idle, timeout=timeout_s)
        middle = sink_round_trips(stack.sink.base_url, token, baseline_posts)
        phases.append(
            run_phase(
                stack,
                name="burst",
                first_index=FIRST_INDEX + paced_messages,
                users=users,
                messages=messages,
                rate=None,
                delay_s=delay_s,
                timeout_s=timeout_s,
            )
        )
        stack.wait_until(stack.idle, timeout=timeout_s)
        after = sink_round_trips(stack.sink.base_url, token, baseline_posts)
        cpu_after = worker_cpu(stack)
        lines = stack.log_lines()
    total = paced_messages + messages
    log_bytes: dict[str, float] = defaultdict(float)
    for entry in lines:
        if entry.get("source") in log.durations_ms and entry.get("stream") == "stdout":
            log_bytes[entry["source"]] += len(entry["line"].encode()) + 1
    return EndToEndResult(
        phases=phases,
        model_delay_ms=delay_s * 1000,
        sink_round_trip_ms=summarize(before + middle + after),
        invocation_ms={name: summarize(values) for name, values in log.durations_ms.items()},
        records_per_invocation={name: sum(r) / len(r) for name, r in log.records.items()},
        ms_per_record={
            name: statistics.median(d / r for d, r in zip(ms, log.records[name], strict=True))
            for name, ms in log.durations_ms.items()
        },
        cpu_ms={
            name: sum(cpu - cpu_before[name].get(pid, 0.0) for pid, cpu in per_pid.items())
            for name, per_pid in cpu_after.items()
        },
        workers_started={
            name: len(set(per_pid) - set(cpu_before[name])) for name, per_pid in cpu_after.items()
        },
        records={name: sum(r) for name, r in log.records.items()},
        retries_logged=sum(1 for entry in lines if '"Will retry"' in entry.get("line", "")),
        invocations_per_message={name: len(values) / total for name, values in log.durations_ms.items()},
        log_bytes_per_message={name: value / total for name, value in log_bytes.items()},
        metric_names=_metric_names(lines),
        messages_total=total,
    )
