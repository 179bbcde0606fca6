"""The daemon's mirror of what agents report: processes, their XQueues, recent latencies.

Mutable records owned by the daemon's event loop; only the loop reads or writes them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from protos.xsched.v1 import types_pb2 as pb

LATENCY_KEEP = 2048


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_s: float
    p99_s: float
    mean_s: float


def _percentile(ordered: list[float], p: float) -> float:
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class LatencyWindow:
    """The most recent latencies (seconds) of one XQueue and how many were ever reported."""

    def __init__(self, keep: int = LATENCY_KEEP) -> None:
        self._recent: deque[float] = deque(maxlen=keep)
        self.count = 0

    def extend(self, samples: list[float]) -> None:
        good = [s for s in samples if math.isfinite(s) and s >= 0]
        self._recent.extend(good)
        self.count += len(good)

    def summary(self) -> LatencySummary:
        if not self._recent:
            return LatencySummary(self.count, 0.0, 0.0, 0.0)
        ordered = sorted(self._recent)
        mean = sum(ordered) / len(ordered)
        return LatencySummary(self.count, _percentile(ordered, 50), _percentile(ordered, 99), mean)


@dataclass(eq=False)
class XQueueRecord:
    """One XQueue: the agent's last snapshot plus what the daemon adds."""

    info: pb.XQueueInfo
    ready_since: float | None = None  # daemon clock
    held: bool = False  # an operator's manual suspend
    sent_suspend: bool | None = None  # the last operation sent (None: nothing since register)
    busy: LatencyWindow = field(default_factory=LatencyWindow)
    task: LatencyWindow = field(default_factory=LatencyWindow)

    @property
    def xqueue_id(self) -> int:
        return self.info.xqueue_id

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def ready(self) -> bool:
        return self.info.state == pb.XQUEUE_STATE_READY


@dataclass(eq=False)
class ProcessRecord:
    """One registered process (one agent stream)."""

    pid: int
    uid: int | None  # None: unknown (remote TCP peer with a token)
    name: str
    nice: int
    connected_at: float
    gauges: dict[str, float] = field(default_factory=dict)
    xqueues: dict[int, XQueueRecord] = field(default_factory=dict)
