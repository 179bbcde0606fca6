"""Task-latency records and their percentiles."""

from __future__ import annotations

import math
import threading
from collections import deque
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


class LatencyStats:
    """Keeps the most recent task latencies (seconds) and a running count.

    Thread-safe: the XQueue's threads add, any thread reads.
    """

    def __init__(self, keep: int = 10_000) -> None:
        self._recent: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(seconds)
            self.count += 1

    def samples(self) -> list[float]:
        with self._lock:
            return list(self._recent)

    def summary(self) -> LatencySummary:
        ordered = sorted(self.samples())
        if not ordered:
            return LatencySummary(self.count, math.nan, math.nan, math.nan)
        mean = sum(ordered) / len(ordered)
        return LatencySummary(self.count, percentile_sorted(ordered, 50), percentile_sorted(ordered, 99), mean)
