# ruff: noqa: E501 - Markdown table rows and prose read better unbroken
"""docs/benchmarks.md from the measurements: headline first, then one section per benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from benchmarks import cost
from benchmarks.stats import Summary, fmt_ratio, fmt_summary, paired_ratios, summarize

if TYPE_CHECKING:
    from benchmarks.bursts import BurstRun, BurstsResult
    from benchmarks.cold_start import Samples
    from benchmarks.end_to_end import EndToEndResult
    from benchmarks.machine import Machine
    from benchmarks.media import VoiceLatencyResult
    from benchmarks.peer import PeerResult
    from benchmarks.sizes import ArtifactSize
    from benchmarks.template_functions import FunctionInfo
    from benchmarks.warm import WarmResult

COLD_TARGET = 1.5
WARM_TARGET = 20.0
PEER_TARGET = 2.0
FUNCTION_SIZE_LIMIT = 100 * 1024
LAYER_SIZE_LIMIT = 10 * 1024 * 1024


@dataclass(frozen=True)
class Assumptions:
    """What the cost model cannot measure here; each one is printed with the result."""

    statuses_per_reply: int = 3
    """Meta posts sent, delivered and read statuses for each reply: 3 more webhook calls per message."""
    outbound_records_per_message: int = 2
    """A typing indicator and one text reply (replies over 4,096 characters add parts: ignored)."""
    records_per_sqs_batch: float = 1.0
    """At ~0.4 messages/s (1M a month) the event source mostly receives one record at a time."""
    sqs_sends_per_message: int = 3
    """Webhook: 1 SendMessageBatch; AI function: 1 for the typing indicator, 1 for the reply."""
    idle_pollers_per_queue: int = 5
    """Lambda's SQS event source long-polls (20 s) even when idle; 2 source queues."""
    memory_item_kb: int = 3
    """Conversation memory item (10 turns of short messages): 3 WRU per write, 1 RRU per read."""
    idempotency_wru_per_record: int = 2
    """Powertools idempotency: a conditional put, then an update with the result."""
    control_rru_per_message: int = 3
    """Conversation control: one strongly consistent BatchGetItem of 3 small items (state, user day, number day)."""
    control_wru_per_message: int = 2
    """Conversation control: the user's and the number's day counters (UpdateItem ADD) after an answer."""
    model_wait_ms: float = 1000.0
    """Time the AI function waits for the real model per message (the stand-in waited 300 ms)."""
    graph_wait_ms: float = 150.0
    """One Graph API call from us-east-1 (the local sink answers in about 1 ms)."""
    aws_call_wait_ms: float = 10.0
    """One SQS / DynamoDB call from inside AWS."""
    aws_calls_per_record: tuple[tuple[str, int], ...] = (
        ("WebhookFunction", 1),
        ("AiReplyFunction", 9),
        ("SendReplyFunction", 2),
    )
    """Webhook: 1 SendMessageBatch per message; AI: idempotency put + update, control BatchGetItem,
    memory get + put, 2 sends, 2 counter updates; send: idempotency put + update (secrets are cached)."""
    cold_start_fraction: float = 0.01
    """Share of invocations that start a container."""
    warm_containers_per_function: float = 1.0
    """Average warm containers per function at 1M messages a month (~0.4 messages/s)."""
    platform_log_bytes_per_invocation: int = 320
    """START, END and REPORT lines Lambda writes per invocation."""
    access_log_bytes_per_request: int = 240
    """The HTTP API access-log line of template.yaml's format."""
    max_init_ms: tuple[tuple[str, float], ...] = (
        ("WebhookFunction", 2000.0),
        ("AiReplyFunction", 5000.0),
        ("SendReplyFunction", 5000.0),
    )
    """Cold-start limit used to choose memory: Meta waits for the webhook; the queues can wait longer."""


@dataclass
class Report:
    machine: Machine
    end_machine: Machine
    interpreter: str
    boto3_version: str
    functions: list[FunctionInfo]
    artifacts: list[ArtifactSize]
    layer: ArtifactSize
    layer_top: list[tuple[str, int]]
    cold_off: dict[str, Samples]
    cold_on: dict[str, Samples]
    xray_in_layer: bool
    import_profiles: dict[str, list[tuple[str, float]]]
    warm: WarmResult
    peers: list[PeerResult]
    e2e: EndToEndResult
    assumptions: Assumptions
    prices: cost.Prices
    quick: bool
    runtime_s: float
    voice: VoiceLatencyResult | None = None
    bursts: BurstsResult | None = None
    media_prices: cost.MediaPrices = field(default_factory=cost.MediaPrices)
    media_mix: cost.MediaMix = field(default_factory=cost.MediaMix)


def _met(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def _kb(size: int) -> str:
    return f"{size / 1024:,.1f} KB"


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:,.2f} MB"


def cold_ratios(samples: dict[str, Samples], baseline: str) -> dict[str, Summary]:
    base = samples[baseline].import_ms
    return {name: paired_ratios(s.import_ms, base) for name, s in samples.items() if name != baseline}


def _cost_model(
    report: Report,
) -> tuple[list[cost.CostLine], dict[str, list[cost.MemoryChoice]], dict[str, cost.MemoryChoice], list[str]]:
    a = report.assumptions
    e2e = report.e2e
    memory = {f.logical_id: f.memory_mb for f in report.functions}
    init = {name: summarize(s.import_cpu_ms).median for name, s in report.cold_off.items()}
    calls = dict(a.aws_calls_per_record)
    webhook_calls = 1 + a.statuses_per_reply

    def cpu_per_record(name: str) -> float:
        """Worker CPU on the local stack per record, minus the init of workers started mid-run."""
        used = e2e.cpu_ms.get(name, 0.0) - e2e.workers_started.get(name, 0) * init[name]
        return max(0.0, used) / max(1, e2e.records.get(name, 1))

    ai_cpu = cpu_per_record("AiReplyFunction")
    send_cpu = cpu_per_record("SendReplyFunction")
    batch = a.records_per_sqs_batch
    # Batches and bursts: the AI function's waits shrink by the ratio measured in section 8
    # (its template defaults against one message per invocation, same stand-in latency).
    defaults = _default_burst_run(report)
    ai_wait_share = report.bursts.ratio(defaults) if report.bursts and defaults else 1.0
    ai_invocations = defaults.ai_invocations / defaults.messages if defaults else 1 / batch
    uses = [
        cost.FunctionUse(
            "WebhookFunction",
            memory["WebhookFunction"],
            webhook_calls,
            report.warm.handler_us.median / 1000,
            calls["WebhookFunction"] * a.aws_call_wait_ms / webhook_calls,
            init["WebhookFunction"],
            a.cold_start_fraction,
        ),
        cost.FunctionUse(
            "AiReplyFunction",
            memory["AiReplyFunction"],
            ai_invocations,
            ai_cpu / ai_invocations,
            (a.model_wait_ms + calls["AiReplyFunction"] * a.aws_call_wait_ms)
            * ai_wait_share
            / ai_invocations,
            init["AiReplyFunction"],
            a.cold_start_fraction,
        ),
        cost.FunctionUse(
            "SendReplyFunction",
            memory["SendReplyFunction"],
            a.outbound_records_per_message / batch,
            send_cpu * batch,
            (a.graph_wait_ms + calls["SendReplyFunction"] * a.aws_call_wait_ms) * batch,
            init["SendReplyFunction"],
            a.cold_start_fraction,
        ),
    ]
    records = 1 + a.outbound_records_per_message
    sqs_per_message = a.sqs_sends_per_message + 2 * records / a.records_per_sqs_batch  # + receives + deletes
    invocations = sum(u.invocations_per_message for u in uses)
    function_logs = sum(e2e.log_bytes_per_message.values())
    # A status webhook logs about what a message webhook logs (one line + the metrics line).
    status_logs = a.statuses_per_reply * e2e.log_bytes_per_message.get("WebhookFunction", 0.0)
    log_bytes = (
        function_logs
        + status_logs
        + invocations * a.platform_log_bytes_per_invocation
        + webhook_calls * a.access_log_bytes_per_request
    )
    volume = cost.Volume(
        http_api_requests=webhook_calls,
        sqs_requests=sqs_per_message,
        dynamodb_write_units=a.idempotency_wru_per_record * (1 + a.outbound_records_per_message)
        + a.memory_item_kb
        + a.control_wru_per_message,
        dynamodb_read_units=1 + a.control_rru_per_message,
        log_bytes=log_bytes,
    )
    cold_starts = a.cold_start_fraction * invocations * 1_000_000
    fixed = cost.MonthlyFixed(
        secret_api_calls=cost.secret_calls_per_month(
            a.warm_containers_per_function * len(uses),
            int(report.functions[0].environment.get("SECRETS_MAX_AGE_SECONDS", "300")),
            cold_starts,
        ),
        custom_metrics=len(e2e.metric_names),
    )
    lines = cost.cost_lines(uses, volume, fixed, report.prices)
    idle_polls = 2 * a.idle_pollers_per_queue * cost.SECONDS_PER_MONTH / 20
    lines.append(
        cost.CostLine(
            "SQS idle long polls (event source, per month)",
            idle_polls,
            "requests",
            report.prices.sqs_fifo_request,
            idle_polls * report.prices.sqs_fifo_request,
        )
    )
    options = {u.name: cost.memory_options(u, report.prices) for u in uses}
    limits = dict(a.max_init_ms)
    choices = {name: cost.recommend_memory(opts, limits[name]) for name, opts in options.items()}
    notes = [
        f"WebhookFunction: {webhook_calls} invocations per message (the message + {a.statuses_per_reply} "
        f"status callbacks, each costed like a message), {uses[0].cpu_ms_per_invocation:.2f} ms each (warm "
        f"benchmark median), + {a.aws_call_wait_ms:.0f} ms for the one SendMessageBatch per message.",
        f"AiReplyFunction: {ai_cpu:.1f} ms CPU per record (its workers' CPU on the local stack / records, "
        f"init of workers started mid-run removed), + ({a.model_wait_ms:.0f} ms model wait + "
        f"{calls['AiReplyFunction']} AWS calls x {a.aws_call_wait_ms:.0f} ms) x {ai_wait_share:.2f}, the "
        f"share of the waits left with batches and bursts (section 8: GB-s per message with the template's "
        f"defaults / one message per invocation, traffic like that benchmark's); {ai_invocations:.2f} "
        "invocations per message (hand-backs of the coalesce window included).",
        f"SendReplyFunction: {send_cpu:.1f} ms CPU per record (same method), + {a.graph_wait_ms:.0f} ms Graph "
        f"wait + {calls['SendReplyFunction']} AWS calls x {a.aws_call_wait_ms:.0f} ms; "
        f"{a.outbound_records_per_message} records per message.",
        "Cold start (1% of invocations): the median CPU time of the import in section 1.",
        f"SQS: {sqs_per_message:.0f} requests per message ({a.sqs_sends_per_message} sends, and one receive "
        f"and one delete per {a.records_per_sqs_batch:g} record(s) for {records} records); no visibility "
        "changes (those happen only on failures); every body is far below 64 KB.",
        f"DynamoDB: {a.idempotency_wru_per_record} WRU of idempotency per record in two functions "
        f"({1 + a.outbound_records_per_message} records) + {a.memory_item_kb} WRU and 1 RRU of memory "
        f"+ {a.control_wru_per_message} WRU and {a.control_rru_per_message} RRU of conversation control.",
        f"Logs: {function_logs:.0f} B of function log lines per message (local stack, all three functions), "
        f"+ {status_logs:.0f} B for status callbacks, + {a.platform_log_bytes_per_invocation} B platform lines "
        f"per invocation, + {a.access_log_bytes_per_request} B access log per HTTP request "
        f"= {log_bytes:.0f} B per message.",
        f"Secrets Manager: {a.warm_containers_per_function:g} warm container per function re-reading its "
        f"secret every SECRETS_MAX_AGE_SECONDS, + one read per cold start ({a.cold_start_fraction:.0%} of "
        "invocations).",
        f"Custom metrics: the {len(e2e.metric_names)} distinct metrics seen in this run's EMF lines (error "
        "paths add more when they happen).",
    ]
    return lines, options, choices, notes


def _headline(report: Report, lines: list[cost.CostLine]) -> list[str]:
    out = ["## Headline", "", "| Measure | Result | Target | |", "|---|---|---|---|"]
    baseline = "Baseline"
    for name, ratio in cold_ratios(report.cold_off, baseline).items():
        out.append(
            f"| Cold start {name} (tracing off) | {fmt_ratio(ratio)} of the baseline | ≤ {COLD_TARGET}x | "
            f"{_met(ratio.median <= COLD_TARGET)} |"
        )
    for name, ratio in cold_ratios(report.cold_on, baseline).items():
        out.append(
            f"| Cold start {name} (tracing on) | {fmt_ratio(ratio)} of the traced baseline | ≤ {COLD_TARGET}x | "
            f"{_met(ratio.median <= COLD_TARGET)} |"
        )
    w = report.warm
    out.append(
        f"| Warm webhook request | {w.handler_us.median:.0f} µs = {fmt_ratio(w.ratio)} of HMAC + json.loads | "
        f"≤ {WARM_TARGET:g}x | {_met(w.ratio.median <= WARM_TARGET)} |"
    )
    for result in report.peers:
        out.append(
            f"| Verify + parse vs pywa {result.pywa_version}, {result.set_name} | "
            f"{fmt_ratio(result.round_speedup)} faster (pywa minimal path: "
            f"{result.round_speedup_minimal.median:.2f}x) | ≥ {PEER_TARGET:g}x | "
            f"{_met(result.round_speedup.median >= PEER_TARGET)} |"
        )
    for artifact in report.artifacts:
        out.append(
            f"| Size {artifact.name} | {_kb(artifact.unzipped_bytes)} unzipped, {_kb(artifact.zipped_bytes)} "
            f"zipped | < 100 KB | {_met(artifact.unzipped_bytes < FUNCTION_SIZE_LIMIT)} |"
        )
    layer = report.layer
    out.append(
        f"| Size layer | {_mb(layer.unzipped_bytes)} unzipped, {_mb(layer.zipped_bytes)} zipped | "
        f"< 10 MB unzipped | {_met(layer.unzipped_bytes < LAYER_SIZE_LIMIT)} |"
    )
    for phase in report.e2e.phases:
        out.append(
            f"| End to end, {phase.name} ({phase.messages} messages) | {phase.throughput:.1f} msg/s, own latency "
            f"p50 {phase.p50_ms:.0f} ms, p99 {phase.p99_ms:.0f} ms | — | |"
        )
    total = sum(line.cost for line in lines)
    out.append(f"| Cost per 1M inbound messages (no model tokens) | ${total:,.2f} | — | |")
    if report.voice is not None:
        v = report.voice
        out.append(
            f"| Voice note, latency added (transcription stand-in at {v.transcription_delay_ms:.0f} ms) | "
            f"+{v.added_ms:.0f} ms p50, of which the pipeline's own {v.pipeline_added_ms:.0f} ms | — | |"
        )
    mix = report.media_mix
    media_total = sum(line.cost for line in _media_lines(report))
    out.append(
        f"| Understanding media, 1M messages of which {mix.voice_note_share:.0%} voice notes, "
        f"{mix.image_share:.0%} photos | ${media_total:,.2f} more (transcription, image tokens, waiting) | — | |"
    )
    defaults = _default_burst_run(report)
    if report.bursts is not None and defaults is not None:
        b = report.bursts
        out.append(
            f"| AI function, GB-s per message (section 8: bursts and batches, stand-in at {b.model_delay_ms:.0f} ms) | "
            f"{defaults.ai_gb_s_per_message:.3f} = {b.ratio(defaults):.2f}x of one message per invocation "
            f"({b.before.ai_gb_s_per_message:.3f}); {defaults.model_calls_per_message:.2f} model calls per message | — | |"
        )
    out.append("")
    return out


def _default_burst_run(report: Report) -> BurstRun | None:
    """The bursts run with the template's defaults (CoalesceWindowSeconds as deployed)."""
    if report.bursts is None:
        return None
    ai = next((f for f in report.functions if f.logical_id == "AiReplyFunction"), None)
    window = ai.environment.get("COALESCE_WINDOW_SECONDS") if ai else None
    return next(
        (r for r in report.bursts.runs[1:] if r.parameters.get("CoalesceWindowSeconds") == window), None
    )


def _bursts_section(report: Report) -> list[str]:
    b = report.bursts
    if b is None:
        return []
    out = [
        "## 8. Bursts and batches: the AI function's GB-seconds per message",
        "",
        f"A fresh local stack per row; the stand-in model answers after {b.model_delay_ms:.0f} ms. {b.users} people "
        f"write at the same time: half send {b.burst} messages {b.gap_s:g} s apart (a burst), half one message. "
        "Warm-up first (as many conversations at once, not measured). GB-s: every AiReplyFunction invocation's wall "
        f"time at the local runtime's boundary (what Lambda bills) x {b.memory_mb} MB, over the messages sent. "
        "Latency: a single message, webhook POST to its reply at the Graph sink; a burst, its last message's POST "
        "to the reply quoting it (how long someone waits once they stop typing). 'Before' is one message per "
        "invocation and one model call per message (AiBatchSize 1, no window); the other rows are the template's "
        "AiBatchSize with each CoalesceWindowSeconds.",
        "",
        "| Configuration | AI invocations | AI GB-s per message | vs before | Model calls per message | Replies per burst | Single message p50 | Burst, last message to reply p50 | Undelivered |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in b.runs:
        out.append(
            f"| {run.name} | {run.ai_invocations} | {run.ai_gb_s_per_message:.3f} | {b.ratio(run):.2f}x | "
            f"{run.model_calls_per_message:.2f} | {run.replies_per_burst:.2f} | {run.single_ms.median:.0f} ms | "
            f"{run.burst_ms.median:.0f} ms | {run.undelivered} |"
        )
    out += [
        "",
        "Reading it: batches answer different conversations at the same time, so an invocation costs about one "
        "model wait whatever the number of conversations in it; a window merges a burst into fewer model calls "
        "(fewer waits, fewer tokens of repeated memory) at the price of up to that many seconds on a single "
        "message. The template's default window is the row the cost model (section 6) uses.",
        "",
    ]
    return out


def _media_lines(report: Report) -> list[cost.CostLine]:
    memory = {f.logical_id: f.memory_mb for f in report.functions}
    return cost.media_cost_lines(
        report.media_mix, report.media_prices, report.prices, memory["AiReplyFunction"]
    )


def _media_section(report: Report) -> list[str]:
    mp, mix = report.media_prices, report.media_mix
    lines = _media_lines(report)
    total = sum(line.cost for line in lines)
    out = ["## 7. Media: what a voice note adds", ""]
    v = report.voice
    if v is not None:
        out += [
            f"Local stack, {v.pairs} text messages and {v.pairs} voice notes ({v.voice_note_bytes:,} bytes each) "
            f"posted alternately at {v.rate:g} messages/s, each from a user of its own; the stand-in model answers "
            f"after {v.chat_delay_ms:.0f} ms, the transcription stand-in after {v.transcription_delay_ms:.0f} ms. "
            "Latency: from the start of the webhook POST to the Graph sink receiving the reply (stand-in delays "
            "included).",
            "",
            "| Messages | Latency p50 | p25-p75 | min-max |",
            "|---|---|---|---|",
            f"| text | {v.text_ms.median:.0f} ms | {v.text_ms.p25:.0f}-{v.text_ms.p75:.0f} ms | "
            f"{v.text_ms.minimum:.0f}-{v.text_ms.maximum:.0f} ms |",
            f"| voice note | {v.voice_ms.median:.0f} ms | {v.voice_ms.p25:.0f}-{v.voice_ms.p75:.0f} ms | "
            f"{v.voice_ms.minimum:.0f}-{v.voice_ms.maximum:.0f} ms |",
            "",
            f"A voice note adds {v.added_ms:.0f} ms (p50 against p50): the transcription stand-in's "
            f"{v.transcription_delay_ms:.0f} ms and {v.pipeline_added_ms:.0f} ms of the pipeline's own work (the "
            "Graph media URL and download from the local sink, the multipart upload, the idempotency record of "
            "the transcript). Against Meta and Mistral, add two Graph round trips (~150 ms each from us-east-1) "
            "and the real transcription time (about a second for a short voice note)."
            + (f" Undelivered: {v.undelivered}." if v.undelivered else ""),
            "",
        ]
    out += [
        f"Per-unit prices ({mp.as_of}): transcription ${mp.transcription_per_audio_minute:g} per audio minute "
        f"(Voxtral Mini Transcribe); vision input ${mp.vision_input_per_million_tokens:.2f} per 1M tokens "
        f"(Mistral Small); OCR ${mp.ocr_per_page * 1000:g} per 1,000 pages (Mistral OCR; a 5-page PDF, "
        f"OcrMaxPages' default, costs ${cost.ocr_cost(5, mp):.3f}). Sources in `benchmarks/cost.py`.",
        "",
        f"1M messages of which {mix.voice_note_share:.0%} voice notes ({mix.voice_note_seconds:g} s on average) "
        f"and {mix.image_share:.0%} photos ({mix.image_prompt_tokens:,.0f} prompt tokens each, Mistral's own "
        "vision example); the answers' tokens are excluded, as in section 6:",
        "",
        "| Component | Quantity | Unit price | Cost |",
        "|---|---|---|---|",
    ]
    for line in lines:
        out.append(
            f"| {line.component} | {line.quantity:,.1f} {line.unit} | ${line.unit_price:.10g} | ${line.cost:,.2f} |"
        )
    out += [
        f"| **Total added** | | | **${total:,.2f}** |",
        "",
        f"Waiting: {mix.wait_ms_per_voice_note:.0f} ms more per voice note (two Graph calls and the transcription), "
        f"{mix.wait_ms_per_image:.0f} ms per photo (two Graph calls), billed at the AI function's memory. "
        "Downloads from Meta into Lambda are inbound data transfer (free).",
        "",
    ]
    return out


def render(report: Report, runtime_s: float) -> str:
    lines, options, choices, notes = _cost_model(report)
    m = report.machine
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`sam build`, then `python -m benchmarks`); do not edit by hand.",
        "",
        f"- Date: {m.date}; CPU: {m.cpu_model} x {m.cpu_count}; {m.python} (harness), "
        f"`{report.interpreter}` (cold-start children)",
        f"- Load average at start: {m.load_average}; at end: {report.end_machine.load_average} "
        "(other work shares this machine: every ratio pairs interleaved runs of subject and baseline)",
        f"- Total benchmark time: {runtime_s:.0f} s"
        + (" — **BENCH_QUICK smoke run: sample counts shrunk, not a result**" if report.quick else ""),
        "",
    ]
    out += _headline(report, lines)
    out += _cold_section(report)
    out += _warm_section(report)
    out += _peer_section(report)
    out += _size_section(report)
    out += _e2e_section(report)
    out += _cost_section(report, lines, options, choices, notes)
    out += _media_section(report)
    out += _bursts_section(report)
    return "\n".join(out) + "\n"


def _cold_section(report: Report) -> list[str]:
    out = [
        "## 1. Cold start",
        "",
        "Each sample is a fresh `python3.13 -I -S -B` process (no dev environment, no site-packages) whose "
        "`sys.path` holds only the function's `.aws-sam/build/<Function>/`, the layer's `python/` and "
        f"boto3 {report.boto3_version} installed on its own (`.build/lambda-runtime`, standing in for the runtime's "
        "bundled copy). `-B`: Lambda's code directories are read-only, so nothing is compiled at run time "
        "beyond what the build ships: the layer's build precompiles its `.pyc` (layers/wa_assistant/Makefile), "
        "the runtime's boto3 has its own. Environment: the template's "
        "variables resolved with dummy ids, fake credentials, `AWS_ENDPOINT_URL` pointing at a closed port (any "
        "AWS call at import would fail the sample). Import time = `perf_counter` around `import app` + handler "
        "lookup inside the child; wall = process start to exit, measured by the parent. Baseline: "
        "`benchmarks/baseline_function/app.py` (Powertools Logger + one boto3 client created at import; "
        "with tracing on it also creates Powertools' Tracer), same layer and paths. Subjects and baseline run "
        "interleaved, rotating the order; ratios are per interleaved round.",
        "",
    ]
    tracing_note = (
        "the layer ships aws-xray-sdk"
        if report.xray_in_layer
        else "**the layer does not ship aws-xray-sdk** (TracingEnabled=true would fail at import with "
        "ModuleNotFoundError); measured with the dev venv's aws_xray_sdk + wrapt appended to sys.path"
    )
    for title, samples in (
        ("Tracing off (template default)", report.cold_off),
        (f"Tracing on ({tracing_note})", report.cold_on),
    ):
        out += [
            f"### {title}",
            "",
            "| Handler | Import + init | CPU (median) | Process wall | Modules | Ratio (import) | Target ≤ 1.5x |",
            "|---|---|---|---|---|---|---|",
        ]
        base = samples["Baseline"]
        for name, s in samples.items():
            ratio = (
                "1 (baseline)"
                if name == "Baseline"
                else fmt_ratio(paired_ratios(s.import_ms, base.import_ms))
            )
            met = (
                ""
                if name == "Baseline"
                else _met(paired_ratios(s.import_ms, base.import_ms).median <= COLD_TARGET)
            )
            out.append(
                f"| {name} | {fmt_summary(summarize(s.import_ms))} | {summarize(s.import_cpu_ms).median:.0f} ms | "
                f"{fmt_summary(summarize(s.wall_ms))} | {s.modules[0]} | {ratio} | {met} |"
            )
        out += ["", f"{len(base.import_ms)} samples each.", ""]
    out += [
        "### Where import time goes (tracing off, one `-X importtime` run, self time per top-level package)",
        "",
    ]
    for name, costs in report.import_profiles.items():
        out.append(f"- {name}: " + ", ".join(f"{package} {ms:.0f} ms" for package, ms in costs))
    out.append("")
    return out


def _warm_section(report: Report) -> list[str]:
    w = report.warm
    return [
        "## 2. Warm webhook request",
        "",
        "The webhook handler in-process as deployed (Powertools HTTP API resolver, logger at the template's "
        "level with its output counted and discarded, metrics flushed per request) on a signed one-message "
        "POST (HTTP API payload v2.0). Stand-ins: Secrets Manager returns fixed values through Powertools' own "
        "provider cache; SQS is an in-memory recorder (the network call itself is not measured). Each request "
        "is followed by the floor on the same bytes: `hmac.new(secret, body, sha256).hexdigest()` + "
        "`json.loads(body)`; the ratio is per request pair.",
        "",
        "| | Per request |",
        "|---|---|",
        f"| Handler | {fmt_summary(w.handler_us, 'µs')} (min {w.handler_us.minimum:.0f}) |",
        f"| Floor (HMAC-SHA256 + json.loads) | {fmt_summary(w.floor_us, 'µs')} |",
        f"| Ratio | {fmt_ratio(w.ratio)} — target ≤ {WARM_TARGET:g}x: {_met(w.ratio.median <= WARM_TARGET)} |",
        f"| Log output | {w.log_bytes_per_request:.0f} bytes, {w.log_lines_per_request:.1f} lines per request |",
        "",
        f"{w.requests:,} requests after 200 warm-up requests.",
        "",
    ]


def _peer_section(report: Report) -> list[str]:
    from benchmarks import peer  # noqa: PLC0415

    doc = (peer.__doc__ or "").split("\n\n", 1)[1].strip()
    out = ["## 3. Verify + parse: this project vs pywa", "", doc, ""]
    for result in report.peers:
        out += [
            f"### {result.set_name} (pywa {result.pywa_version})",
            "",
            "| Payload | Project | pywa (public path) | pywa (minimal) | Speed-up vs public | vs minimal |",
            "|---|---|---|---|---|---|",
        ]
        for row in result.rows:
            out.append(
                f"| {row.payload} | {row.project_us.median:.1f} µs | {row.pywa_us.median:.1f} µs | "
                f"{row.pywa_minimal_us.median:.1f} µs | {fmt_ratio(row.speedup)} | "
                f"{row.speedup_minimal.median:.2f}x |"
            )
        out.append(
            f"| **whole set per round** | | | | **{fmt_ratio(result.round_speedup)}** | "
            f"**{result.round_speedup_minimal.median:.2f}x** |"
        )
        out.append("")
        out.append(
            f"Target ≥ {PEER_TARGET:g}x faster: {_met(result.round_speedup.median >= PEER_TARGET)} "
            f"(vs pywa's minimal path: {_met(result.round_speedup_minimal.median >= PEER_TARGET)})."
        )
        if result.excluded:
            out.append("")
            out.append(
                "Left out because pywa raises on them (pywa 4.5 requires fields such as `contacts[].user_id`, "
                "`context` on list replies, `message` on errors): "
                + ", ".join(f"{name} ({error})" for name, error in result.excluded.items())
                + "."
            )
        out.append("")
    return out


def _size_section(report: Report) -> list[str]:
    out = [
        "## 4. Deployment size",
        "",
        "Files of each `.aws-sam/build/<LogicalId>/` (the layer with the `.pyc` its build precompiles), and a DEFLATED zip of them built in memory.",
        "",
        "| Artifact | Files | Unzipped | Zipped | Target | | boto3/botocore bundled |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in report.artifacts:
        out.append(
            f"| {a.name} | {a.files} | {_kb(a.unzipped_bytes)} | {_kb(a.zipped_bytes)} | < 100 KB | "
            f"{_met(a.unzipped_bytes < FUNCTION_SIZE_LIMIT)} | {', '.join(a.bundled_runtime_packages) or 'no'} |"
        )
    layer = report.layer
    out.append(
        f"| {layer.name} | {layer.files} | {_mb(layer.unzipped_bytes)} | {_mb(layer.zipped_bytes)} | "
        f"< 10 MB unzipped | {_met(layer.unzipped_bytes < LAYER_SIZE_LIMIT)} | "
        f"{', '.join(layer.bundled_runtime_packages) or 'no'} |"
    )
    out += [
        "",
        "Largest packages in the layer (unzipped): "
        + ", ".join(f"{name} {_mb(size)}" for name, size in report.layer_top)
        + ".",
        "",
    ]
    return out


def _e2e_section(report: Report) -> list[str]:
    e = report.e2e
    out = [
        "## 5. End to end on the local stack",
        "",
        f"`local_stack.LocalStack` (moto server, the three functions as warm worker processes from the source "
        f"tree, the stand-in model answering after a fixed {e.model_delay_ms:.0f} ms, the Graph sink). Each "
        "message is a signed text webhook POSTed to the local HTTP API; its latency is the time from the start "
        "of the POST to the sink receiving the reply that quotes it (or, for messages a burst answered "
        "together, the reply quoting the burst's last message), minus the stand-in's delay. No coalesce window "
        "here (CoalesceWindowSeconds 0: section 8 measures what it adds). Paced phase: a steady offered rate. "
        "Burst: everything posted at once by 8 threads, users round robin. The AI function answers a batch's "
        "conversations at the same time, and the batch ends when its slowest conversation does; on this stack "
        "every AWS call of every function goes to one moto server on a shared 2-core machine, where they queue "
        "(in AWS they would overlap like the model waits do), so an AI invocation takes longer the more records "
        "it holds, and a record's latency grows with records per AI invocation (table below), with queueing "
        "behind the same user's earlier messages (FIFO) and with the AI function's MaximumConcurrency.",
        "",
        "| Phase | Messages | Offered | Duration | Throughput | Own latency p50 | p99 | p25-p75 | Undelivered | Webhook redeliveries |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in e.phases:
        offered = f"{p.offered_rate:g} msg/s" if p.offered_rate else "all at once"
        out.append(
            f"| {p.name} | {p.messages} | {offered} | {p.seconds:.1f} s | {p.throughput:.2f} msg/s | "
            f"{p.p50_ms:.0f} ms | {p.p99_ms:.0f} ms | {p.latency_ms.p25:.0f}-{p.latency_ms.p75:.0f} ms | "
            f"{p.undelivered} | {p.redeliveries} |"
        )
    rt = e.sink_round_trip_ms
    out += [
        "",
        f"Baseline, same run: one HTTP POST to the sink and its answer, {fmt_summary(rt, 'ms', 2)} "
        f"({rt.count} posts before, between and after the phases). Paced p50 = "
        f"{e.phases[0].p50_ms / rt.median:,.0f}x that round trip (the pipeline makes 3 function invocations, "
        "4 queue hops and 2 Graph calls per message).",
        "",
        "| Function | Invocations | Time per invocation | Records per invocation | Time per record (median) | Worker CPU per record | Log bytes per message |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, summary in e.invocation_ms.items():
        out.append(
            f"| {name} | {summary.count} | {fmt_summary(summary)} | {e.records_per_invocation[name]:.2f} | "
            f"{e.ms_per_record[name]:.0f} ms | {e.cpu_ms.get(name, 0.0) / max(1, e.records.get(name, 1)):.1f} ms "
            f"({e.workers_started.get(name, 0)} workers started) | {e.log_bytes_per_message.get(name, 0):.0f} |"
        )
    out += [
        "",
        "Invocation times include the local stack's IPC and moto's HTTP round trips, on a shared 2-core machine. "
        "Worker CPU per record includes the init of workers started during the run.",
        "",
        f"Transient failures during the run ('Will retry' log lines): {e.retries_logged}"
        + (
            " — each waits out a backoff (RETRY_BASE_SECONDS, 10 s by default), which shows in p99."
            if e.retries_logged
            else "."
        ),
        "",
    ]
    return out


def _cost_section(
    report: Report,
    lines: list[cost.CostLine],
    options: dict[str, list[cost.MemoryChoice]],
    choices: dict[str, cost.MemoryChoice],
    notes: list[str],
) -> list[str]:
    p = report.prices
    total = sum(line.cost for line in lines)
    out = [
        "## 6. Cost per 1,000,000 inbound messages (model tokens excluded)",
        "",
        f"Prices: {p.as_of} — Lambda ${p.lambda_gb_second:.10f}/GB-s (x86) and $0.20 per 1M requests; "
        "API Gateway HTTP API $1.00 per 1M requests (first 300M); SQS FIFO $0.50 per 1M requests (64 KB chunks); "
        "DynamoDB on-demand $0.625 per 1M WRU, $0.125 per 1M RRU; Secrets Manager $0.05 per 10,000 API calls; "
        "CloudWatch Logs $0.50 per GB ingested, custom metrics $0.30 per metric-month. Free tiers ignored; one "
        "month at ~0.4 messages/s.",
        "",
        "| Component | Quantity | Unit price | Cost |",
        "|---|---|---|---|",
    ]
    for line in lines:
        out.append(
            f"| {line.component} | {line.quantity:,.1f} {line.unit} | ${line.unit_price:.10g} | ${line.cost:,.2f} |"
        )
    out += [f"| **Total** | | | **${total:,.2f}** |", "", "Assumptions and derivations:", ""]
    out += [f"- {note}" for note in notes]
    a = report.assumptions
    out += [
        f"- Lambda duration: CPU time measured here on one full core, scaled by 1769 MB / MemorySize below "
        f"1769 MB (Lambda's CPU share), + network waits, rounded up to 1 ms; + {a.cold_start_fraction:.0%} of "
        "invocations pay the measured cold start, scaled the same way (INIT is billed since 2025-08-01).",
        "",
        "### Memory size",
        "",
        "| Function | MemorySize now | "
        + " | ".join(f"{m} MB" for m in cost.MEMORY_CANDIDATES)
        + " | Recommended |",
        "|---|---|" + "---|" * len(cost.MEMORY_CANDIDATES) + "---|",
    ]
    memory_now = {f.logical_id: f.memory_mb for f in report.functions}
    for name, opts in options.items():
        cells = " | ".join(f"${o.cost_per_million:,.2f}, cold ~{o.init_ms / 1000:.1f} s" for o in opts)
        out.append(f"| {name} | {memory_now[name]} MB | {cells} | **{choices[name].memory_mb} MB** |")
    out += [
        "",
        "Cells: Lambda cost per 1M messages for that function, and its modelled cold start. Recommended: the "
        "cheapest size whose modelled cold start stays within "
        + ", ".join(f"{name} {limit / 1000:g} s" for name, limit in a.max_init_ms)
        + " (Meta waits on the webhook; queue consumers only delay a reply). CPU-bound work costs about the same "
        "GB-s at any size below 1769 MB (time shrinks as memory grows), while waiting on the model or Graph costs "
        "in proportion to memory: so the I/O-bound functions want the smallest size whose cold start is acceptable.",
        "",
    ]
    return out
