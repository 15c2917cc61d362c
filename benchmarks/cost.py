"""Cost per million inbound messages (model tokens excluded) and the memory size that minimises it.

Pure arithmetic over measured durations and stated assumptions; every price and
assumption is printed next to the result in docs/benchmarks.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

FULL_VCPU_MB = 1769
"""Lambda gives one full vCPU at 1,769 MB; below it, CPU share scales with memory."""
MEMORY_CANDIDATES = (128, 256, 512, 1024, 1769)
SECONDS_PER_MONTH = 30 * 24 * 3600


@dataclass(frozen=True)
class Prices:
    """AWS list prices, us-east-1, x86 (as given in issue 7; check aws.amazon.com/pricing before relying)."""

    as_of: str = "2025-11 (AWS list prices, us-east-1)"
    lambda_gb_second: float = 0.0000166667
    lambda_request: float = 0.20 / 1e6
    http_api_request: float = 1.00 / 1e6
    sqs_fifo_request: float = 0.50 / 1e6
    dynamodb_write_unit: float = 0.625 / 1e6
    dynamodb_read_unit: float = 0.125 / 1e6
    secrets_api_call: float = 0.05 / 10_000
    logs_ingest_gb: float = 0.50
    custom_metric_month: float = 0.30


@dataclass(frozen=True)
class FunctionUse:
    """One function's share of the traffic."""

    name: str
    memory_mb: int
    invocations_per_message: float
    cpu_ms_per_invocation: float
    """Own work per invocation measured here on a full core (scales with Lambda's CPU share)."""
    wait_ms_per_invocation: float
    """Waiting on the network (model, Graph, AWS APIs): does not scale with memory."""
    init_ms_full_core: float
    """Cold start (import + init) measured here on a full core."""
    cold_start_fraction: float
    """Share of invocations that start a container (init is billed since 2025-08-01)."""


@dataclass(frozen=True)
class Volume:
    """Request counts per inbound message, derived from the template and the assumptions."""

    http_api_requests: float
    sqs_requests: float
    dynamodb_write_units: float
    dynamodb_read_units: float
    log_bytes: float


@dataclass(frozen=True)
class MonthlyFixed:
    """Costs that depend on time, not on messages (one month)."""

    secret_api_calls: float
    custom_metrics: int


@dataclass(frozen=True)
class CostLine:
    component: str
    quantity: float
    unit: str
    unit_price: float
    cost: float


def cpu_scale(memory_mb: int) -> float:
    """How much slower CPU-bound work runs at this memory than on one full vCPU."""
    return max(1.0, FULL_VCPU_MB / memory_mb)


def billed_ms(use: FunctionUse, memory_mb: int | None = None) -> float:
    """Mean billed milliseconds per invocation, init share included, rounded up to 1 ms as Lambda bills."""
    memory = memory_mb or use.memory_mb
    scale = cpu_scale(memory)
    warm = math.ceil(use.cpu_ms_per_invocation * scale + use.wait_ms_per_invocation)
    return warm + use.cold_start_fraction * use.init_ms_full_core * scale


def lambda_cost(use: FunctionUse, messages: float, prices: Prices, memory_mb: int | None = None) -> float:
    memory = memory_mb or use.memory_mb
    invocations = use.invocations_per_message * messages
    gb_seconds = invocations * billed_ms(use, memory) / 1000 * memory / 1024
    return gb_seconds * prices.lambda_gb_second + invocations * prices.lambda_request


def cost_lines(
    functions: Sequence[FunctionUse],
    volume: Volume,
    fixed: MonthlyFixed,
    prices: Prices,
    messages: float = 1_000_000,
) -> list[CostLine]:
    """Per component, for `messages` inbound messages in one month."""
    lines: list[CostLine] = []
    for use in functions:
        invocations = use.invocations_per_message * messages
        gb_seconds = invocations * billed_ms(use) / 1000 * use.memory_mb / 1024
        lines.append(
            CostLine(
                f"Lambda {use.name} duration ({use.memory_mb} MB)",
                gb_seconds,
                "GB-s",
                prices.lambda_gb_second,
                gb_seconds * prices.lambda_gb_second,
            )
        )
        lines.append(
            CostLine(
                f"Lambda {use.name} requests",
                invocations,
                "requests",
                prices.lambda_request,
                invocations * prices.lambda_request,
            )
        )
    per_message = [
        ("API Gateway HTTP API", volume.http_api_requests, "requests", prices.http_api_request),
        ("SQS FIFO", volume.sqs_requests, "requests", prices.sqs_fifo_request),
        ("DynamoDB writes (on-demand)", volume.dynamodb_write_units, "WRU", prices.dynamodb_write_unit),
        ("DynamoDB reads (on-demand)", volume.dynamodb_read_units, "RRU", prices.dynamodb_read_unit),
        ("CloudWatch Logs ingestion", volume.log_bytes / 1e9, "GB", prices.logs_ingest_gb),
    ]
    for component, per, unit, price in per_message:
        quantity = per * messages
        lines.append(CostLine(component, quantity, unit, price, quantity * price))
    lines.append(
        CostLine(
            "Secrets Manager API calls",
            fixed.secret_api_calls,
            "calls",
            prices.secrets_api_call,
            fixed.secret_api_calls * prices.secrets_api_call,
        )
    )
    lines.append(
        CostLine(
            "CloudWatch custom metrics",
            fixed.custom_metrics,
            "metric-months",
            prices.custom_metric_month,
            fixed.custom_metrics * prices.custom_metric_month,
        )
    )
    return lines


def secret_calls_per_month(warm_containers: float, max_age_s: int, cold_starts: float) -> float:
    """Each warm container re-reads its one secret every max_age seconds; each cold start reads it once."""
    if max_age_s <= 0:
        raise ValueError("max_age_s must be positive (0 means one call per message: model it per message)")
    return warm_containers * SECONDS_PER_MONTH / max_age_s + cold_starts


@dataclass(frozen=True)
class MemoryChoice:
    memory_mb: int
    cost_per_million: float
    init_ms: float
    warm_ms: float


def memory_options(
    use: FunctionUse, prices: Prices, candidates: Sequence[int] = MEMORY_CANDIDATES
) -> list[MemoryChoice]:
    options = []
    for memory in candidates:
        scale = cpu_scale(memory)
        options.append(
            MemoryChoice(
                memory_mb=memory,
                cost_per_million=lambda_cost(use, 1_000_000, prices, memory),
                init_ms=use.init_ms_full_core * scale,
                warm_ms=use.cpu_ms_per_invocation * scale + use.wait_ms_per_invocation,
            )
        )
    return options


def recommend_memory(options: Sequence[MemoryChoice], max_init_ms: float) -> MemoryChoice:
    """The cheapest size whose modelled cold start stays within the limit (else the fastest one)."""
    acceptable = [option for option in options if option.init_ms <= max_init_ms]
    if not acceptable:
        return min(options, key=lambda option: option.init_ms)
    return min(acceptable, key=lambda option: (option.cost_per_million, option.memory_mb))


# ------------------------------------------------------------------ understanding media (issue 12)


@dataclass(frozen=True)
class MediaPrices:
    """Per-unit prices of reading media with Mistral (check mistral.ai/pricing before relying)."""

    as_of: str = "2026 (Mistral list prices)"
    transcription_per_audio_minute: float = 0.002
    """Voxtral Mini Transcribe (`voxtral-mini-latest`): $0.002 per audio minute,
    docs.mistral.ai/models/voxtral-mini-transcribe-25-07 ("Price $0.002 /Min")."""
    vision_input_per_million_tokens: float = 0.10
    """Mistral Small 3.2 (`mistral-small-latest`, reads images): $0.10 per 1M input tokens,
    mistral.ai/pricing (API pricing); image tokens are billed as input tokens."""
    ocr_per_page: float = 2.0 / 1000
    """Mistral OCR 3 (`mistral-ocr-latest` = mistral-ocr-2512): $2 per 1,000 pages ($1 with the
    batch API, not used here: a reply cannot wait for a batch), mistral.ai/news/mistral-ocr-3."""


@dataclass(frozen=True)
class MediaMix:
    """What share of the messages carry media, and how big that media is (assumptions, printed)."""

    messages: float = 1_000_000
    voice_note_share: float = 0.30
    image_share: float = 0.10
    voice_note_seconds: float = 20.0
    """Average voice note length (WhatsApp voice notes are mostly short)."""
    image_prompt_tokens: float = 2099
    """Tokens of one photo and a short question: Mistral's own vision example in its docs
    (corpus mistral/response_chat_image_input.json, `usage.prompt_tokens`)."""
    wait_ms_per_voice_note: float = 1300.0
    """The AI function waits on two Graph calls (~150 ms each) and the transcription (~1 s) more."""
    wait_ms_per_image: float = 300.0
    """Two Graph calls more (the vision model's own time is part of the answer, as for text)."""
    transcript_wru: float = 2.0
    """Powertools idempotency stores the transcript once per voice note: a put and an update."""


def media_cost_lines(
    mix: MediaMix, prices: MediaPrices, lambda_prices: Prices, ai_memory_mb: int
) -> list[CostLine]:
    """What understanding voice notes and photos adds to `mix.messages` messages."""
    voice_notes = mix.messages * mix.voice_note_share
    images = mix.messages * mix.image_share
    audio_minutes = voice_notes * mix.voice_note_seconds / 60
    image_tokens = images * mix.image_prompt_tokens
    gb_seconds = (
        (voice_notes * mix.wait_ms_per_voice_note + images * mix.wait_ms_per_image)
        / 1000
        * ai_memory_mb
        / 1024
    )
    wru = voice_notes * mix.transcript_wru
    return [
        CostLine(
            f"Transcription ({voice_notes:,.0f} voice notes x {mix.voice_note_seconds:g} s)",
            audio_minutes,
            "audio minutes",
            prices.transcription_per_audio_minute,
            audio_minutes * prices.transcription_per_audio_minute,
        ),
        CostLine(
            f"Vision input ({images:,.0f} photos x {mix.image_prompt_tokens:,.0f} tokens)",
            image_tokens / 1e6,
            "M tokens",
            prices.vision_input_per_million_tokens,
            image_tokens / 1e6 * prices.vision_input_per_million_tokens,
        ),
        CostLine(
            f"Lambda AiReplyFunction waiting for media ({ai_memory_mb} MB)",
            gb_seconds,
            "GB-s",
            lambda_prices.lambda_gb_second,
            gb_seconds * lambda_prices.lambda_gb_second,
        ),
        CostLine(
            "DynamoDB writes (stored transcripts)",
            wru,
            "WRU",
            lambda_prices.dynamodb_write_unit,
            wru * lambda_prices.dynamodb_write_unit,
        ),
    ]


def ocr_cost(pages: float, prices: MediaPrices) -> float:
    """OCR is billed per page read (at most OcrMaxPages per document)."""
    return pages * prices.ocr_per_page
