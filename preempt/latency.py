"""Task-latency records (their statistics: hal/stats.py, shared with the daemon)."""

from __future__ import annotations

import math
import threading
from collections import deque

from hal.stats import LatencySummary, summarize


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
        return summarize(self.count, self.samples(), math.nan)
