"""Bursts on the local stack: the AI function's GB-seconds per message, model calls and latency.

One workload, run on a fresh local stack per configuration, the stand-in model
answering after a fixed delay: `users` people write at the same time; half send a
burst of `burst` messages `gap_s` apart, half a single message. Configurations:

- before: AiBatchSize=1 and CoalesceWindowSeconds=0, i.e. one message per
  invocation and one model call per message (what the AI function did before bursts);
- after, for each CoalesceWindowSeconds in `windows`: the template's AiBatchSize.

Measured per configuration:
- AI GB-seconds per message: every AiReplyFunction invocation's wall time (timed at the
  local runtime's boundary, as Lambda bills it), times the template's MemorySize, over
  the messages sent; the ratio after/before is the cost model's saving;
- model calls per message (chat requests the stand-in received);
- latency: a single message, post to reply; a burst, its last message's post to the reply
  that covers it (how long the user waits once they stop typing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from benchmarks.end_to_end import InvocationLog, time_invocations
from benchmarks.stats import Summary, summarize

FIRST_USER = 16_505_800_000
AI_FUNCTION = "AiReplyFunction"


@dataclass(frozen=True)
class BurstRun:
    name: str
    parameters: dict[str, str]
    messages: int
    ai_invocations: int
    ai_gb_s_per_message: float
    model_calls_per_message: float
    single_ms: Summary
    """A single message: webhook POST to its reply at the Graph sink (stand-in delay included)."""
    burst_ms: Summary
    """A burst: its last message's POST to the reply quoting it."""
    replies_per_burst: float
    undelivered: int


@dataclass(frozen=True)
class BurstsResult:
    users: int
    burst: int
    gap_s: float
    model_delay_ms: float
    memory_mb: int
    runs: list[BurstRun]

    @property
    def before(self) -> BurstRun:
        return self.runs[0]

    def ratio(self, run: BurstRun) -> float:
        return run.ai_gb_s_per_message / self.before.ai_gb_s_per_message


def _one_run(
    name: str,
    parameters: Mapping[str, str],
    *,
    users: int,
    burst: int,
    gap_s: float,
    delay_s: float,
    memory_mb: int,
    timeout_s: float,
) -> BurstRun:
    from local_stack.stack import LocalStack  # noqa: PLC0415 - starts processes; imported when this runs
    from local_stack.webhooks import message_webhook, text_message, wamid_of  # noqa: PLC0415

    log = InvocationLog()
    posted: dict[str, tuple[str, int, int, float]] = {}  # wamid -> user, index, size of its burst, time
    lock = threading.Lock()
    with LocalStack(parameters=dict(parameters), env={}, port=0) as stack:
        # Warm-up, not measured: as many conversations at once as the run has, so that every
        # worker the run needs has started (a cold start would weigh on one configuration only).
        with ThreadPoolExecutor(max_workers=users) as pool:
            bodies = [message_webhook(str(FIRST_USER - 1 - i), text_message("warm-up")) for i in range(users)]
            for status, _ in pool.map(stack.post_webhook, bodies):
                if status != 200:
                    raise RuntimeError(f"webhook answered {status} during the warm-up")
        stack.wait_until(stack.idle, timeout=timeout_s)
        stack.mistral.control({"reset": True, "latency_seconds": delay_s})
        time_invocations(stack, log)

        def write(user_index: int) -> None:
            user = str(FIRST_USER + user_index)
            size = burst if user_index % 2 == 0 else 1
            for index in range(size):
                if index:
                    time.sleep(gap_s)
                body = message_webhook(user, text_message(f"Part {index + 1} of my question, {user}."))
                at = time.time()
                status, answer = stack.post_webhook(body)
                if status != 200:
                    raise RuntimeError(f"webhook answered {status}: {answer[:200]!r}")
                with lock:
                    posted[wamid_of(body)] = (user, index, size, at)

        with ThreadPoolExecutor(max_workers=users) as pool:
            for future in [pool.submit(write, index) for index in range(users)]:
                future.result()
        stack.wait_until(stack.idle, timeout=timeout_s)
        replies = [r for r in stack.sink.messages() if r.get("context_message_id") in posted]
        chat_calls = [
            c for c in stack.mistral.calls() if str(c.get("path", "")).endswith("/chat/completions")
        ]
    received = {r["context_message_id"]: float(r["time"]) for r in replies}
    single: list[float] = []
    last_of_burst: list[float] = []
    for wamid, (_, index, size, at) in posted.items():
        if index == size - 1 and wamid in received:
            (single if size == 1 else last_of_burst).append((received[wamid] - at) * 1000)
    bursts = sum(1 for _, index, size, _ in posted.values() if size > 1 and index == 0)
    burst_replies = sum(1 for r in replies if posted[r["context_message_id"]][2] > 1)
    durations = log.durations_ms.get(AI_FUNCTION, [])
    messages = len(posted)
    return BurstRun(
        name=name,
        parameters=dict(parameters),
        messages=messages,
        ai_invocations=len(durations),
        ai_gb_s_per_message=sum(durations) / 1000 * memory_mb / 1024 / messages,
        model_calls_per_message=len(chat_calls) / messages,
        single_ms=summarize(single or [float("nan")]),
        burst_ms=summarize(last_of_burst or [float("nan")]),
        replies_per_burst=burst_replies / bursts if bursts else 0.0,
        undelivered=sum(
            1 for wamid, (_, index, size, _) in posted.items() if index == size - 1 and wamid not in received
        ),
    )


def run(
    *,
    users: int,
    burst: int,
    gap_s: float,
    delay_s: float,
    windows: list[float],
    memory_mb: int,
    timeout_s: float,
) -> BurstsResult:
    configurations: list[tuple[str, dict[str, str]]] = [
        ("before: AiBatchSize 1, no window", {"AiBatchSize": "1", "CoalesceWindowSeconds": "0"})
    ]
    configurations += [
        (f"after: CoalesceWindowSeconds {window:g}", {"CoalesceWindowSeconds": f"{window:g}"})
        for window in windows
    ]
    runs = [
        _one_run(
            name,
            parameters,
            users=users,
            burst=burst,
            gap_s=gap_s,
            delay_s=delay_s,
            memory_mb=memory_mb,
            timeout_s=timeout_s,
        )
        for name, parameters in configurations
    ]
    return BurstsResult(
        users=users, burst=burst, gap_s=gap_s, model_delay_ms=delay_s * 1000, memory_mb=memory_mb, runs=runs
    )
