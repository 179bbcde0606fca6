"""A readable live text view of the workload's XQueues (until the console issue lands)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from hal.stats import percentile
from preempt import EventKind, XQueue, XQueueEvent
from xsched_workload.runner import QueueLoad


class SuspendMeter:
    """Listens to one XQueue and adds up the time it spends suspended."""

    def __init__(self, xq: XQueue) -> None:
        self._lock = threading.Lock()
        self._total = 0.0
        self._since: float | None = time.monotonic() if xq.suspended else None
        self.suspends = 0
        xq.add_listener(self)

    def __call__(self, event: XQueueEvent) -> None:
        now = time.monotonic()
        with self._lock:
            if event.kind is EventKind.SUSPENDED and self._since is None:
                self._since = now
                self.suspends += 1
            elif event.kind is EventKind.RESUMED and self._since is not None:
                self._total += now - self._since
                self._since = None

    def total(self) -> float:
        with self._lock:
            extra = time.monotonic() - self._since if self._since is not None else 0.0
            return self._total + extra


class LiveView:
    """Redraws a table of every queue twice a second on its own thread."""

    HEADER = (
        f"{'NAME':<10} {'XQUEUE':<14} {'LV':>2} {'THR':>3} {'STATE':<6} {'SUSP%':>5} {'#SUSP':>6} "
        f"{'PEND':>5} {'INFL':>4} {'TASKS':>6} {'P50ms':>8} {'P99ms':>8} {'TASK/s':>7}"
    )

    def __init__(self, loads: list[QueueLoad], title: str, out: TextIO = sys.stdout) -> None:
        self.loads = loads
        self.title = title
        self.out = out
        self._meters = {
            id(load): SuspendMeter(load.target) for load in loads if isinstance(load.target, XQueue)
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="live-view")
        self._start = time.monotonic()
        self._last = {id(load): (0.0, 0, self._start) for load in loads}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.out.write(self.render())
            self.out.flush()

    def render(self) -> str:
        now = time.monotonic()
        clear = "\x1b[H\x1b[2J" if self.out.isatty() else "\n"
        lines = [f"{self.title}   t={now - self._start:5.1f}s", self.HEADER]
        for load in self.loads:
            lines.append(self._row(load, now))
        lines.append("SUSP% = share of the last refresh the XQueue spent suspended by the policy")
        return clear + "\n".join(lines) + "\n"

    def _row(self, load: QueueLoad, now: float) -> str:
        recent = load.latency.samples()[-200:]
        p50 = percentile(recent, 50) * 1e3
        p99 = percentile(recent, 99) * 1e3
        susp_total, tasks_before, then = self._last[id(load)]
        meter = self._meters.get(id(load))
        susp_now = meter.total() if meter else 0.0
        interval = max(now - then, 1e-9)
        rate = (load.tasks_done - tasks_before) / interval
        self._last[id(load)] = (susp_now, load.tasks_done, now)
        name = load.spec.name[:10]
        if not isinstance(load.target, XQueue):
            return (
                f"{name:<10} {'native':<14} {'-':>2} {'-':>3} {'-':<6} {'-':>5} {'-':>6} "
                f"{'-':>5} {'-':>4} {load.tasks_done:>6} {p50:>8.2f} {p99:>8.2f} {rate:>7.1f}"
            )
        info = load.target.info()
        susp = 100.0 * (susp_now - susp_total) / interval
        return (
            f"{name:<10} {info.xqueue_id:<#14x} {int(info.level):>2} {info.threshold:>3} "
            f"{info.state.value:<6} {susp:>5.0f} {meter.suspends if meter else 0:>6} "
            f"{info.pending:>5} {info.in_flight:>4} {load.tasks_done:>6} {p50:>8.2f} "
            f"{p99:>8.2f} {rate:>7.1f}"
        )
