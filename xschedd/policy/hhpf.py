"""HHPF, heterogeneous highest priority first: HPF applied to each device on its own."""

from __future__ import annotations

from xschedd.policy.base import Operation, Status, run_only
from xschedd.policy.hpf import HighestPriorityFirst
from xschedd.policy.priority import top_priority


class HeterogeneousHighestPriorityFirst(HighestPriorityFirst):
    """Per device (`XQueueStatus.device`), resume the XQueues of the top ready priority.

    A high-priority task on one device does not hold back the queues of another device,
    so every XPU of a heterogeneous machine stays busy with its own most urgent work.
    Priorities come from PriorityHint as in HPF; PRIORITY_NEVER never runs.

    Note: XSched's own code has these two the other way round (its HPF compares per
    device and its HHPF across all devices); this project's HPF is machine-wide, so HHPF
    is the per-device variant.
    """

    name = "HHPF"

    def schedule(self, status: Status) -> list[Operation]:
        return run_only(
            status,
            top_priority(status, lambda q: self.priority(q.xqueue_id), lambda q: q.device),
        )
