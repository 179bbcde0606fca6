"""CHPF, CPU highest priority first: an XQueue's priority follows its process's CPU nice value."""

from __future__ import annotations

from collections.abc import Sequence

from xschedd.policy.base import Operation, Policy, Status, XQueueStatus, run_only
from xschedd.policy.priority import by_device, top_priority


class CpuHighestPriorityFirst(Policy):
    """HPF per device where priority = -nice of the owning process (lower nice runs first).

    `renice` is the one knob: as in XSched, CHPF ignores every hint, PriorityHint
    included, so the XPU order can never disagree with the CPU order. A process missing
    from `Status.processes` counts as nice 0. Equal nice values share the device.
    """

    name = "CHPF"

    def schedule(self, status: Status) -> Sequence[Operation]:
        def priority(q: XQueueStatus) -> int:
            process = status.processes.get(q.pid)
            return -(process.nice if process is not None else 0)

        return run_only(status, top_priority(status, priority, by_device))
