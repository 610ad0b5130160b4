"""The latency histogram against exact nearest-rank percentiles computed by sorting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.loadtest.histogram import PERCENTILES, LatencyHistogram, exact_percentile, nearest_rank

EXACT_LIMIT = 1 << 11  # below this every value has its own bucket
RELATIVE_ERROR = 1 / (1 << 10)

percents = st.one_of(st.sampled_from((0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0)), st.floats(0, 100))


def filled(values: list[int]) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values:
        h.record_us(v)
    return h


def test_small_known_data() -> None:
    h = filled([5, 1, 4, 2, 3, 10, 9, 8, 7, 6])
    assert [h.percentile_us(p) for p in (0, 10, 50, 90, 95, 99, 100)] == [1, 1, 5, 9, 10, 10, 10]
    s = h.summary()
    assert (s.count, s.min, s.max, s.mean) == (10, 0.001, 0.010, 0.0055)


def test_nearest_rank_is_robust_to_float_rounding() -> None:
    assert nearest_rank(99.9, 1000) == 999
    assert nearest_rank(50, 1) == 1
    assert nearest_rank(0, 10) == 1
    assert nearest_rank(100, 10) == 10


@settings(max_examples=500)
@given(st.lists(st.integers(0, EXACT_LIMIT - 1), min_size=1, max_size=300), percents)
def test_exact_below_the_sub_bucket_limit(values: list[int], percent: float) -> None:
    h = filled(values)
    assert h.percentile_us(percent) == exact_percentile(values, percent)
    assert (h.min_us, h.max_us, h.count, h.total_us) == (min(values), max(values), len(values), sum(values))


@settings(max_examples=500)
@given(st.lists(st.integers(0, 10**10), min_size=1, max_size=300), percents)
def test_bounded_relative_error_above(values: list[int], percent: float) -> None:
    h = filled(values)
    exact = exact_percentile(values, percent)
    reported = h.percentile_us(percent)
    assert exact <= reported <= exact + exact * RELATIVE_ERROR
    assert min(values) <= reported <= max(values)


@settings(max_examples=100)
@given(st.lists(st.integers(0, 10**9), max_size=100), st.lists(st.integers(0, 10**9), max_size=100))
def test_merge_equals_recording_everything(a: list[int], b: list[int]) -> None:
    merged = filled(a)
    merged.merge(filled(b))
    together = filled(a + b)
    assert merged.summary() == together.summary()


def test_seconds_negative_and_saturation() -> None:
    h = LatencyHistogram(highest_us=1000)
    h.record(-0.5)  # clock noise
    h.record(0.0005)
    h.record(10.0)
    assert (h.min_us, h.max_us, h.saturated) == (0, 1000, 1)
    assert h.summary().max == 1.0  # 10 s recorded as the highest trackable value (1000 µs)


def test_empty_and_bad_arguments() -> None:
    h = LatencyHistogram()
    assert h.percentile_us(99) == 0
    assert h.summary().count == 0
    with pytest.raises(ValueError):
        h.percentile_us(101)
    with pytest.raises(ValueError):
        LatencyHistogram(sub_bucket_bits=1)
    with pytest.raises(ValueError):
        h.merge(LatencyHistogram(sub_bucket_bits=8))


def test_memory_is_fixed() -> None:
    h = LatencyHistogram()
    size = len(h._counts)
    for v in range(0, 10**9, 997_001):
        h.record_us(v)
    assert len(h._counts) == size < 40_000
    assert len(h.percentiles_us(PERCENTILES)) == len(PERCENTILES)
