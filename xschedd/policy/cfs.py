"""CFS, completely fair: per device, the ready XQueue with the least virtual runtime runs."""

from __future__ import annotations

from xschedd.policy.base import XQueueStatus
from xschedd.policy.hints import PRIORITY_DEFAULT, PRIORITY_NEVER, Hint, PriorityHint, TimesliceHint
from xschedd.policy.up import UtilizationPartition

WEIGHT_STEP = 1.2  # each priority step weighs 20 % more, as in XSched's CFS


class CompletelyFair(UtilizationPartition):
    """Linux-like CFS over XQueues, one run queue per device (`XQueueStatus.device`).

    Virtual runtime grows by device time / weight with weight = 1.2 ** priority
    (PriorityHint, default 0 -> all equal), so a queue one priority step up gets 1.2x
    the device time of its neighbour. The least-vruntime ready queue runs for a time
    slice (TimesliceHint, default 5 ms; XSched re-picks every 1 ms); a queue that wakes
    up joins at its device's smallest vruntime, so sleeping earns no credit.
    PRIORITY_NEVER never runs. UtilizationHint is ignored (that is UP's).
    """

    name = "CFS"

    def __init__(self) -> None:
        super().__init__()
        self._priorities: dict[int, int] = {}

    def priority(self, xqueue_id: int) -> int:
        return self._priorities.get(xqueue_id, PRIORITY_DEFAULT)

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, PriorityHint):
            self._priorities[hint.xqueue_id] = hint.priority
        elif isinstance(hint, TimesliceHint):
            super().on_hint(hint)

    def _weight(self, entity: int) -> float:
        return WEIGHT_STEP ** self.priority(entity)

    def _lane(self, xqueue: XQueueStatus) -> str:
        return xqueue.device

    def _may_run(self, xqueue: XQueueStatus) -> bool:
        return self.priority(xqueue.xqueue_id) != PRIORITY_NEVER
