"""HHPF, heterogeneous highest priority first: one priority order across all devices."""

from __future__ import annotations

from collections.abc import Sequence

from xschedd.policy.base import Operation, Status, run_only
from xschedd.policy.hpf import HighestPriorityFirst
from xschedd.policy.priority import top_priority


class HeterogeneousHighestPriorityFirst(HighestPriorityFirst):
    """Resume the XQueues whose priority is at least the highest ready priority anywhere.

    For pipelines that span several XPUs (say, a GPU and an NPU): while an urgent task
    is ready on any device, lower-priority work is held on every device, as in XSched.
    """

    name = "HHPF"

    def schedule(self, status: Status) -> Sequence[Operation]:
        return run_only(status, top_priority(status, self.priority_of))
