"""PUP, process utilization partition: processes share device time by utilization, all their
XQueues scheduled together."""

from __future__ import annotations

from xschedd.policy.base import XQueueStatus
from xschedd.policy.hints import Hint, ProcessUtilizationHint, TimesliceHint
from xschedd.policy.up import UtilizationPartition


class ProcessUtilizationPartition(UtilizationPartition):
    """UP with processes as the entities: the ready process with the least virtual time
    runs for a time slice, and every XQueue of it (on any device) is resumed together.

    Shares come from ProcessUtilizationHint (default 100 each, so equal shares); a
    process of utilization 0 runs only when no process with a share is ready. Work
    conserving: an idle process's share goes to the ready ones, and idling earns no
    credit. XSched rotates a round robin with slices scaled by share; stride scheduling
    gives the same long-run shares with fixed slices. XQueue-level UtilizationHint is
    ignored (that is UP's).
    """

    name = "PUP"

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, ProcessUtilizationHint):
            self._utilization[hint.pid] = hint.utilization
        elif isinstance(hint, TimesliceHint):
            super().on_hint(hint)

    def _entity(self, xqueue: XQueueStatus) -> int:
        return xqueue.pid
