"""SPUP, strict process utilization partition: a process never exceeds its share of a window."""

from __future__ import annotations

from xschedd.policy.base import Operation, SetTimer, Status, XQueueStatus
from xschedd.policy.hints import UTILIZATION_MAX
from xschedd.policy.pup import ProcessUtilizationPartition

_EPSILON_S = 1e-9  # timers land on float sums; within this a budget counts as spent


class StrictProcessUtilizationPartition(ProcessUtilizationPartition):
    """PUP with caps: in every window a process may run at most its share of the window.

    The window is the time slice (TimesliceHint, default 5 ms); windows follow each other
    back to back from the first call. A process's budget is `window * u / max(100, sum of
    u over processes with XQueues)`, so caps that add up to more than 100 % are scaled to
    fit. A process whose budget is spent has all its XQueues suspended until the next
    window, even if the device would otherwise idle: SPUP is NOT work conserving (a
    utilization of 0 never runs). Inside a window processes take turns as in PUP, a turn
    ending when the budget does. XSched names SPUP but ships no implementation; this is
    the design here.
    """

    name = "SPUP"

    def __init__(self) -> None:
        super().__init__()
        self._window_end: float | None = None
        self._used: dict[int, float] = {}
        self._budget: dict[int, float] = {}
        self._now = 0.0

    def _tick(self, status: Status) -> None:
        self._now = status.now
        window = self._timeslice_s
        if self._window_end is None or status.now >= self._window_end:
            # back to back, unless the scheduler slept through a whole window
            late = self._window_end is None or status.now >= self._window_end + window
            self._window_end = (status.now if late else self._window_end) + window
            self._used = {}
        pids = {q.pid for q in status.xqueues.values()}
        total = max(UTILIZATION_MAX, sum(self.utilization(pid) for pid in pids))
        self._budget = {pid: window * self.utilization(pid) / total for pid in pids}

    def _remaining_s(self, pid: int) -> float:
        return self._budget.get(pid, 0.0) - self._used.get(pid, 0.0)

    def _charge(self, entity: int, elapsed_s: float) -> None:
        super()._charge(entity, elapsed_s)
        self._used[entity] = self._used.get(entity, 0.0) + elapsed_s

    def _may_run(self, xqueue: XQueueStatus) -> bool:
        return self._remaining_s(xqueue.pid) > _EPSILON_S

    def _slice_s(self, entity: int) -> float:
        window_end = self._window_end if self._window_end is not None else self._now
        return max(0.0, min(self._remaining_s(entity), window_end - self._now))

    def schedule(self, status: Status) -> list[Operation]:
        ops = super().schedule(status)
        throttled = any(q.ready and not self._may_run(q) for q in status.xqueues.values())
        if throttled and self._window_end is not None:
            timers = [op.at for op in ops if isinstance(op, SetTimer)] + [self._window_end]
            ops = [op for op in ops if not isinstance(op, SetTimer)] + [SetTimer(min(timers))]
        return ops
