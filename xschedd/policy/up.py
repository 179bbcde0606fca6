"""UP, utilization partition: each ready XQueue gets device time in proportion to its share."""

from __future__ import annotations

from xschedd.policy.base import Status
from xschedd.policy.timeslice import TimeSharing


class UtilizationPartition(TimeSharing):
    """Stride scheduling over time slices: the ready queue with the least virtual time runs.

    A queue's virtual time grows by its device time divided by its utilization, so over
    many slices the shares follow the utilization hints (75/25 gives three slices to one).
    A queue that was idle joins at the smallest virtual time of the ready queues: idling
    earns no credit to burst with later.
    """

    name = "UP"

    def __init__(self) -> None:
        super().__init__()
        self._vtime: dict[int, float] = {}
        self._was_ready: set[int] = set()

    def _charge(self, xqueue_id: int, elapsed_s: float) -> None:
        share = self.utilization(xqueue_id)
        if share > 0 and xqueue_id in self._vtime:
            self._vtime[xqueue_id] += elapsed_s / share

    def _observe(self, status: Status, ready: list[int]) -> None:
        for gone in set(self._vtime) - set(status.xqueues):
            del self._vtime[gone]
        steady = [self._vtime[xq] for xq in ready if xq in self._was_ready and xq in self._vtime]
        floor = min(steady, default=min(self._vtime.values(), default=0.0))
        for xq in ready:
            if xq not in self._was_ready:
                self._vtime[xq] = max(self._vtime.get(xq, floor), floor)
        self._was_ready = set(ready)

    def _pick(self, candidates: list[int]) -> int:
        return min(candidates, key=lambda xq: (self._vtime.get(xq, 0.0), xq))
