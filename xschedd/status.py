"""The daemon's mirror of what agents report: processes, their XQueues, recent latencies,
and how much of the last seconds each XQueue could run.

Mutable records owned by the daemon's event loop; only the loop reads or writes them.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hal.stats import LatencySummary, summarize
from protos.xsched.v1 import types_pb2 as pb

LATENCY_KEEP = 2048
SHARE_WINDOW_S = 5.0
SHARE_BUCKETS = 20  # the window's resolution: 0.25 s


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
        return summarize(self.count, self._recent, 0.0)


class ActiveWindow:
    """How much of the last `window_s` seconds a condition held (for an XQueue: ready and
    not suspended), in bounded memory: active time is summed in SHARE_BUCKETS buckets, so
    the window is exact to the bucket and the cost of a change is O(1)."""

    def __init__(self, now: float, window_s: float = SHARE_WINDOW_S, buckets: int = SHARE_BUCKETS) -> None:
        self.window_s = window_s
        self._bucket_s = window_s / buckets
        self._buckets = buckets
        self._started = now
        self._mark = now  # active time is accounted up to here
        self._active = False
        self._sums: deque[list] = deque()  # [bucket index, active seconds], oldest first

    def set(self, active: bool, now: float) -> None:
        self._account(now)
        self._active = active

    def fraction(self, now: float) -> float:
        """Active part of the window, or of the time since tracking began if that is shorter."""
        self._account(now)
        first = self._first_bucket(now)
        span = min(now - first * self._bucket_s, now - self._started)
        if span <= 0:
            return 1.0 if self._active else 0.0
        active = sum(secs for index, secs in self._sums if index >= first)
        return min(1.0, active / span)

    def _first_bucket(self, now: float) -> int:
        """The window's oldest bucket: the current one is partly over, the others whole."""
        return int(now // self._bucket_s) - self._buckets + 1

    def _account(self, now: float) -> None:
        first = self._first_bucket(now)
        start, self._mark = self._mark, max(self._mark, now)
        if self._active and now > start:
            start = max(start, first * self._bucket_s)  # older time is out of the window
            for index in range(int(start // self._bucket_s), int(now // self._bucket_s) + 1):
                low, high = index * self._bucket_s, (index + 1) * self._bucket_s
                secs = min(now, high) - max(start, low)
                if secs <= 0:
                    continue
                if self._sums and self._sums[-1][0] == index:
                    self._sums[-1][1] += secs
                else:
                    self._sums.append([index, secs])
        while self._sums and self._sums[0][0] < first:
            self._sums.popleft()


class XQueueRecord:
    """One XQueue: the agent's last snapshot plus what the daemon adds.

    Setting `info` also tracks when the XQueue is ready and not suspended, for `share()`.
    """

    def __init__(self, info: pb.XQueueInfo, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.ready_since: float | None = None  # daemon clock
        self.heard_at = clock()  # the last news of it, daemon clock
        self.held = False  # an operator's manual suspend
        self.busy = LatencyWindow()
        self.task = LatencyWindow()
        self.active = ActiveWindow(clock())
        self.info = info

    @property
    def info(self) -> pb.XQueueInfo:
        return self._info

    @info.setter
    def info(self, info: pb.XQueueInfo) -> None:
        self._info = info
        self.level = info.level  # read on every dispatch: a plain attribute
        self.active.set(info.state == pb.XQUEUE_STATE_READY and not info.suspended, self._clock())

    def share(self) -> float:
        """The part of the last SHARE_WINDOW_S seconds it was ready and not suspended."""
        return self.active.fraction(self._clock())

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
