"""Medians, spreads and ratios: the only statistics the report uses."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Summary:
    """Median with its interquartile range and extremes."""

    median: float
    p25: float
    p75: float
    minimum: float
    maximum: float
    count: int

    def scaled(self, factor: float) -> Summary:
        return Summary(
            self.median * factor,
            self.p25 * factor,
            self.p75 * factor,
            self.minimum * factor,
            self.maximum * factor,
            self.count,
        )


def summarize(values: Sequence[float]) -> Summary:
    """Median, p25-p75 (inclusive method: stays inside the data) and min-max."""
    if not values:
        raise ValueError("no values to summarize")
    if len(values) == 1:
        only = float(values[0])
        return Summary(only, only, only, only, only, 1)
    p25, median, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return Summary(median, p25, p75, float(min(values)), float(max(values)), len(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 500 samples is the 495th smallest)."""
    if not values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats drifting
    return float(ordered[int(rank) - 1])


def paired_ratios(subject: Sequence[float], baseline: Sequence[float]) -> Summary:
    """Ratio of each interleaved pair (run i of the subject / run i of the baseline).

    Pairs share the machine's state at that moment, so their ratio is steadier
    than a ratio of two medians taken minutes apart.
    """
    if len(subject) != len(baseline):
        raise ValueError("paired samples must have the same length")
    if any(b <= 0 for b in baseline):
        raise ValueError("baseline samples must be positive")
    return summarize([s / b for s, b in zip(subject, baseline, strict=True)])


def fmt_summary(summary: Summary, unit: str = "ms", digits: int = 1) -> str:
    """`12.3 ms (p25-p75 11.9-12.8)`."""
    return f"{summary.median:.{digits}f} {unit} (p25-p75 {summary.p25:.{digits}f}-{summary.p75:.{digits}f})"


def fmt_ratio(summary: Summary) -> str:
    """`1.23x (p25-p75 1.20-1.27x)`."""
    return f"{summary.median:.2f}x (p25-p75 {summary.p25:.2f}-{summary.p75:.2f}x)"
