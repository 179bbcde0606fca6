"""UP, utilization partition: each ready XQueue gets device time in proportion to its share."""

from __future__ import annotations

from xschedd.policy.base import Status
from xschedd.policy.timeslice import TimeSharing


class UtilizationPartition(TimeSharing):
    """Stride scheduling over time slices: the ready entity with the least virtual time runs.

    An entity's virtual time grows by its device time divided by its weight (here its
    utilization), so over many slices the shares follow the weights (75/25 gives three
    slices to one). An entity that was idle for a time slice or longer joins at the
    smallest virtual time of the ready entities of its lane: idling earns no credit to
    burst with later. A shorter gap (a task that ends and the next one that starts at
    once) keeps the entity's virtual time, or periodic tasks would lose their share.
    """

    name = "UP"

    def __init__(self) -> None:
        super().__init__()
        self._vtime: dict[int, float] = {}

    def _weight(self, entity: int) -> float:
        return float(self.utilization(entity))

    def _charge(self, entity: int, elapsed_s: float) -> None:
        weight = self._weight(entity)
        if weight > 0 and entity in self._vtime:
            self._vtime[entity] += elapsed_s / weight

    def _observe(self, status: Status, ready: dict[str, list[int]], lanes: dict[int, str]) -> None:
        for gone in set(self._vtime) - lanes.keys():
            del self._vtime[gone]
        for lane, entities in ready.items():
            steady = [self._vtime[e] for e in entities if e in self._was_ready and e in self._vtime]
            known = [vt for e, vt in self._vtime.items() if lanes.get(e) == lane]
            floor = min(steady, default=min(known, default=0.0))
            for e in entities:
                # readiness as of the last call (TimeSharing tracks it after this one)
                idle_at = self._idle_at.get(e)
                brief = idle_at is not None and status.now - idle_at < self._timeslice_s
                if e not in self._was_ready and not (brief and e in self._vtime):
                    self._vtime[e] = max(self._vtime.get(e, floor), floor)

    def _keeps_turn(self, holder: int, ready: list[int]) -> bool:
        # Wake-up preemption, as in CFS: a queue that comes back far behind takes the
        # lane at once instead of waiting out the holder's slice (or it loses its share).
        weight = self._weight(holder)
        lowest = min((self._vtime.get(e, 0.0) for e in ready), default=0.0)
        return weight <= 0 or self._vtime.get(holder, 0.0) - lowest <= self._timeslice_s / weight

    def _pick(self, candidates: list[int], previous: int | None) -> int:
        return min(candidates, key=lambda e: (self._vtime.get(e, 0.0), e))
