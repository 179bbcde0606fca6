"""Latency statistics shared by the application runtime (preempt) and the daemon (xschedd).

Pure functions and values, no I/O: the lowest layer both can import.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation; NaN for no samples."""
    if not samples:
        return math.nan
    return percentile_sorted(sorted(samples), p)


def percentile_sorted(ordered: list[float], p: float) -> float:
    """`percentile` of samples already in ascending order (at least one)."""
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_s: float
    p99_s: float
    mean_s: float


def summarize(count: int, samples: Collection[float], empty: float) -> LatencySummary:
    """P50, P99 and mean of `samples` (`empty` for each when there are none); `count` is
    how many were ever recorded, kept or not."""
    if not samples:
        return LatencySummary(count, empty, empty, empty)
    ordered = sorted(samples)
    mean = sum(ordered) / len(ordered)
    return LatencySummary(count, percentile_sorted(ordered, 50), percentile_sorted(ordered, 99), mean)
