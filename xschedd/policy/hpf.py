"""HPF, highest priority first: on each device, only the ready XQueues of the top priority run."""

from __future__ import annotations

from collections.abc import Sequence

from xschedd.policy.base import Operation, Policy, Status, XQueueStatus, run_only
from xschedd.policy.hints import PRIORITY_DEFAULT, Hint, PriorityHint
from xschedd.policy.priority import by_device, top_priority


class HighestPriorityFirst(Policy):
    """Per device (`XQueueStatus.device`), resume the XQueues of the top ready priority.

    As in XSched, devices are decided independently: urgent work on one device does not
    hold back another device. Idle queues of the top priority stay resumed so that their
    next command starts at once; queues of priority PRIORITY_NEVER are always suspended.
    """

    name = "HPF"
    readiness_only = True

    def __init__(self) -> None:
        self._priorities: dict[int, int] = {}

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, PriorityHint):
            self._priorities[hint.xqueue_id] = hint.priority

    def schedule(self, status: Status) -> Sequence[Operation]:
        return run_only(status, top_priority(status, self.priority_of, by_device))

    def priority_of(self, q: XQueueStatus) -> int:
        return self._priorities.get(q.xqueue_id, PRIORITY_DEFAULT)
