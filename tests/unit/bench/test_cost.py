"""The cost model of docs/benchmarks.md: Lambda billing arithmetic and the memory choice."""

from __future__ import annotations

import pytest

from benchmarks.cost import (
    FULL_VCPU_MB,
    SECONDS_PER_MONTH,
    FunctionUse,
    MemoryChoice,
    MonthlyFixed,
    Prices,
    Volume,
    billed_ms,
    cost_lines,
    cpu_scale,
    lambda_cost,
    memory_options,
    recommend_memory,
    secret_calls_per_month,
)

PRICES = Prices()


def use(**overrides: float) -> FunctionUse:
    values: dict[str, float] = {
        "invocations_per_message": 1.0,
        "cpu_ms_per_invocation": 0.0,
        "wait_ms_per_invocation": 1000.0,
        "init_ms_full_core": 0.0,
        "cold_start_fraction": 0.0,
    }
    values.update(overrides)
    return FunctionUse(name="F", memory_mb=1024, **values)


def test_cpu_share_scales_below_one_vcpu_only() -> None:
    assert cpu_scale(FULL_VCPU_MB) == 1.0
    assert cpu_scale(3008) == 1.0
    assert cpu_scale(FULL_VCPU_MB // 2) == pytest.approx(2.0, rel=1e-3)


def test_one_million_one_second_invocations_at_one_gb() -> None:
    # 1M x 1 s x 1 GB = 1M GB-s = $16.67, plus 1M requests = $0.20.
    assert lambda_cost(use(), 1_000_000, PRICES) == pytest.approx(16.6667 + 0.20, rel=1e-4)


def test_billing_rounds_up_to_the_millisecond() -> None:
    assert billed_ms(use(cpu_ms_per_invocation=0.3, wait_ms_per_invocation=10.0)) == 11


def test_cpu_bound_work_costs_the_same_below_one_vcpu_and_waiting_costs_with_memory() -> None:
    cpu_bound = use(cpu_ms_per_invocation=100.0, wait_ms_per_invocation=0.0)
    small = lambda_cost(cpu_bound, 1_000_000, PRICES, 256) - 0.20
    large = lambda_cost(cpu_bound, 1_000_000, PRICES, 1024) - 0.20
    assert small == pytest.approx(large, rel=0.01)
    waiting = use(cpu_ms_per_invocation=0.0, wait_ms_per_invocation=1000.0)
    assert lambda_cost(waiting, 1, PRICES, 512) > lambda_cost(waiting, 1, PRICES, 256)


def test_cold_starts_add_their_share_of_init() -> None:
    cold = use(wait_ms_per_invocation=0.0, init_ms_full_core=1000.0, cold_start_fraction=0.01)
    assert billed_ms(cold, FULL_VCPU_MB) == pytest.approx(10.0)
    assert billed_ms(cold, FULL_VCPU_MB // 2) == pytest.approx(20.0, rel=1e-3)


def test_cost_lines_price_each_component() -> None:
    volume = Volume(
        http_api_requests=4, sqs_requests=9, dynamodb_write_units=9, dynamodb_read_units=1, log_bytes=1e4
    )
    lines = {line.component: line for line in cost_lines([use()], volume, MonthlyFixed(10_000, 9), PRICES)}
    assert lines["API Gateway HTTP API"].cost == pytest.approx(4.00)
    assert lines["SQS FIFO"].cost == pytest.approx(4.50)
    assert lines["DynamoDB writes (on-demand)"].cost == pytest.approx(9 * 0.625)
    assert lines["DynamoDB reads (on-demand)"].cost == pytest.approx(0.125)
    assert lines["CloudWatch Logs ingestion"].quantity == pytest.approx(10.0)  # 10 kB x 1M = 10 GB
    assert lines["CloudWatch Logs ingestion"].cost == pytest.approx(5.00)
    assert lines["Secrets Manager API calls"].cost == pytest.approx(0.05)
    assert lines["CloudWatch custom metrics"].cost == pytest.approx(2.70)
    assert lines["Lambda F requests"].cost == pytest.approx(0.20)


def test_secret_calls_follow_the_cache_age() -> None:
    assert secret_calls_per_month(3, 300, 100) == pytest.approx(3 * SECONDS_PER_MONTH / 300 + 100)
    with pytest.raises(ValueError, match="positive"):
        secret_calls_per_month(1, 0, 0)


def test_recommendation_is_the_cheapest_size_within_the_cold_start_limit() -> None:
    options = memory_options(use(wait_ms_per_invocation=500.0, init_ms_full_core=400.0), PRICES)
    assert [o.memory_mb for o in options] == [128, 256, 512, 1024, 1769]
    choice = recommend_memory(options, max_init_ms=1500.0)
    assert choice.memory_mb == 512  # 128 MB ~5.5 s and 256 MB ~2.8 s of init are over the limit
    assert recommend_memory(options, max_init_ms=1e9).memory_mb == 128


def test_without_an_acceptable_size_the_fastest_cold_start_wins() -> None:
    options = [MemoryChoice(256, 1.0, 5000.0, 1.0), MemoryChoice(1024, 2.0, 1500.0, 1.0)]
    assert recommend_memory(options, max_init_ms=100.0).memory_mb == 1024


def test_media_costs_of_a_million_messages_with_30_percent_voice_notes_and_10_percent_photos() -> None:
    from benchmarks.cost import MediaMix, MediaPrices, media_cost_lines, ocr_cost  # noqa: PLC0415

    lines = media_cost_lines(MediaMix(), MediaPrices(), PRICES, ai_memory_mb=256)
    by_unit = {line.unit: line for line in lines}
    # 300,000 voice notes of 20 s = 100,000 audio minutes at $0.002.
    assert by_unit["audio minutes"].quantity == pytest.approx(100_000)
    assert by_unit["audio minutes"].cost == pytest.approx(200.0)
    # 100,000 photos of 2,099 tokens = 209.9M tokens at $0.10 per million.
    assert by_unit["M tokens"].cost == pytest.approx(20.99)
    # (300,000 x 1.3 s + 100,000 x 0.3 s) x 0.25 GB = 105,000 GB-s.
    assert by_unit["GB-s"].quantity == pytest.approx(105_000)
    assert by_unit["WRU"].quantity == pytest.approx(600_000)
    assert ocr_cost(1000, MediaPrices()) == pytest.approx(2.0)
