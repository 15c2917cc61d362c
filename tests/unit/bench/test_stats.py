"""The statistics behind every figure of docs/benchmarks.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.stats import paired_ratios, percentile, summarize


def test_summary_of_known_values() -> None:
    summary = summarize([1, 2, 3, 4, 5])
    assert (summary.median, summary.p25, summary.p75) == (3, 2, 4)
    assert (summary.minimum, summary.maximum, summary.count) == (1, 5, 5)


def test_single_value_is_its_own_spread() -> None:
    summary = summarize([7.0])
    assert summary.median == summary.p25 == summary.p75 == 7.0


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        summarize([])


@given(st.lists(st.floats(min_value=0.001, max_value=1e6), min_size=2, max_size=200))
def test_quartiles_stay_inside_the_data(values: list[float]) -> None:
    summary = summarize(values)
    assert min(values) <= summary.p25 <= summary.median <= summary.p75 <= max(values)


def test_nearest_rank_percentile() -> None:
    values = list(range(1, 501))
    assert percentile(values, 0.99) == 495
    assert percentile(values, 0.5) == 250
    assert percentile([3.0], 0.99) == 3.0


def test_paired_ratios_are_per_pair() -> None:
    # Each pair is 2x apart although the medians of the two series alone would say 2x too:
    # shifting the second pair's load changes nothing.
    ratios = paired_ratios([2, 40, 6], [1, 20, 3])
    assert ratios.median == pytest.approx(2.0)
    assert ratios.minimum == ratios.maximum == pytest.approx(2.0)


def test_paired_ratios_need_equal_lengths_and_positive_baseline() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_ratios([1, 2], [1])
    with pytest.raises(ValueError, match="positive"):
        paired_ratios([1], [0])
