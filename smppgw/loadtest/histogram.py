"""A log-bucketed latency histogram in the style of HdrHistogram: fixed memory, O(1) record, bounded relative error.

Values are whole microseconds. Below ``2**sub_bucket_bits`` every value has its own bucket (exact); above, each
power-of-two range is split into ``2**(sub_bucket_bits-1)`` equal buckets, so a reported value is at most
``1 / 2**(sub_bucket_bits-1)`` above the true one (0.1 % with the default 11 bits). With the default bounds the
histogram holds ~32k counters whatever the number of samples. Percentiles use the nearest-rank definition: the
smallest recorded value ``v`` such that at least ``p`` % of the samples are ``<= v``, reported as the highest value of
its bucket, clamped to the exact minimum and maximum.
"""

from __future__ import annotations

import math
from array import array
from typing import Final

import msgspec

DEFAULT_SUB_BUCKET_BITS: Final = 11
DEFAULT_HIGHEST_US: Final = 1 << 40
"""About 12.7 days; larger values are recorded as this (and counted in ``saturated``)."""
PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0, 99.9)


class LatencySummary(msgspec.Struct, frozen=True, kw_only=True):
    """Milliseconds (floats, µs resolution); all zero when ``count`` is 0."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float


class LatencyHistogram:
    """Record durations; read percentiles. Not thread-safe (one event loop owns it)."""

    __slots__ = (
        "_counts",
        "_half",
        "_highest",
        "_sub_bits",
        "_sub_count",
        "count",
        "max_us",
        "min_us",
        "saturated",
        "total_us",
    )

    def __init__(self, sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS, highest_us: int = DEFAULT_HIGHEST_US) -> None:
        if not 2 <= sub_bucket_bits <= 20 or highest_us < 1:
            raise ValueError("sub_bucket_bits must be 2..20 and highest_us >= 1")
        self._sub_bits = sub_bucket_bits
        self._sub_count = 1 << sub_bucket_bits
        self._half = self._sub_count >> 1
        self._highest = highest_us
        self._counts = array("q", bytes(8 * (self._index(highest_us) + 1)))
        self.count = 0
        self.total_us = 0
        self.min_us = 0
        self.max_us = 0
        self.saturated = 0

    def _index(self, value: int) -> int:
        if value < self._sub_count:
            return value
        shift = value.bit_length() - self._sub_bits
        return self._sub_count + (shift - 1) * self._half + (value >> shift) - self._half

    def _highest_in_bucket(self, index: int) -> int:
        if index < self._sub_count:
            return index
        shift, offset = divmod(index - self._sub_count, self._half)
        shift += 1
        return ((offset + self._half + 1) << shift) - 1

    def record(self, seconds: float) -> None:
        """Record a duration in seconds (negative clock noise counts as 0). Hot path: ``record_us`` inlined."""
        value = int(seconds * 1_000_000.0 + 0.5) if seconds > 0 else 0
        if value > self._highest:
            value = self._highest
            self.saturated += 1
        if self.count == 0:
            self.min_us = self.max_us = value
        elif value < self.min_us:
            self.min_us = value
        elif value > self.max_us:
            self.max_us = value
        self.count += 1
        self.total_us += value
        if value < self._sub_count:
            self._counts[value] += 1
        else:
            shift = value.bit_length() - self._sub_bits
            self._counts[self._sub_count + (shift - 1) * self._half + (value >> shift) - self._half] += 1

    def record_us(self, value: int) -> None:
        """Record a duration in whole microseconds."""
        self.record(value / 1_000_000.0)

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s samples (same bucket layout required)."""
        if (other._sub_bits, other._highest) != (self._sub_bits, self._highest):
            raise ValueError("histograms with different layouts cannot be merged")
        if other.count == 0:
            return
        for index, n in enumerate(other._counts):
            if n:
                self._counts[index] += n
        self.min_us = other.min_us if self.count == 0 else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.total_us += other.total_us
        self.saturated += other.saturated

    def percentile_us(self, percent: float) -> int:
        """Nearest-rank percentile in µs (0 for an empty histogram); ``percent`` in [0, 100]."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError("percent must be within 0..100")
        if self.count == 0:
            return 0
        rank = nearest_rank(percent, self.count)
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return max(self.min_us, min(self.max_us, self._highest_in_bucket(index)))
        return self.max_us  # pragma: no cover - counts always sum to count

    def percentiles_us(self, percents: tuple[float, ...]) -> list[int]:
        """Several percentiles in one pass over the buckets."""
        return [self.percentile_us(p) for p in percents]

    def summary(self) -> LatencySummary:
        if self.count == 0:
            return LatencySummary(count=0, min=0.0, mean=0.0, p50=0.0, p90=0.0, p95=0.0, p99=0.0, p999=0.0, max=0.0)
        p50, p90, p95, p99, p999 = (v / 1000.0 for v in self.percentiles_us(PERCENTILES))
        return LatencySummary(
            count=self.count,
            min=self.min_us / 1000.0,
            mean=round(self.total_us / self.count / 1000.0, 4),
            p50=p50,
            p90=p90,
            p95=p95,
            p99=p99,
            p999=p999,
            max=self.max_us / 1000.0,
        )


def exact_percentile(values: list[int], percent: float) -> int:
    """Nearest-rank percentile of ``values`` by sorting (the reference the histogram is tested against)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[nearest_rank(percent, len(ordered)) - 1]


def nearest_rank(percent: float, count: int) -> int:
    """1-based rank of the ``percent`` percentile among ``count`` samples (rounded first: 99.9 % of 1000 is 999)."""
    return max(1, math.ceil(round(percent * count / 100.0, 6)))
