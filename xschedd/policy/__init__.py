"""Scheduling policies, pure: `schedule(status) -> operations` and `on_hint(hint)`.

`make_policy(name)` is the one way to get a policy by its XSched name.
"""

from __future__ import annotations

from xschedd.policy.awf import ActiveWindowFirst
from xschedd.policy.base import (
    Operation,
    Policy,
    ProcessStatus,
    Resume,
    RunOnly,
    SetTimer,
    Status,
    Suspend,
    XQueueStatus,
)
from xschedd.policy.cfs import CompletelyFair
from xschedd.policy.chpf import CpuHighestPriorityFirst
from xschedd.policy.errors import HintError, PolicyError, UnknownPolicyError
from xschedd.policy.hhpf import HeterogeneousHighestPriorityFirst
from xschedd.policy.hpf import HighestPriorityFirst
from xschedd.policy.kedf import KEarliestDeadlineFirst
from xschedd.policy.lax import Laxity
from xschedd.policy.mlfq import MultiLevelFeedbackQueue
from xschedd.policy.pup import ProcessUtilizationPartition
from xschedd.policy.spup import StrictProcessUtilizationPartition
from xschedd.policy.up import UtilizationPartition
from xschedd.policy.wrr import WeightedRoundRobin

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        HighestPriorityFirst,
        HeterogeneousHighestPriorityFirst,
        CpuHighestPriorityFirst,
        UtilizationPartition,
        ProcessUtilizationPartition,
        StrictProcessUtilizationPartition,
        KEarliestDeadlineFirst,
        Laxity,
        ActiveWindowFirst,
        CompletelyFair,
        MultiLevelFeedbackQueue,
        WeightedRoundRobin,
    )
}


def policy_names() -> list[str]:
    return list(POLICIES)


def make_policy(name: str) -> Policy:
    """A new policy object for `name` (case-insensitive), or UnknownPolicyError."""
    cls = POLICIES.get(str(name).strip().upper())
    if cls is None:
        raise UnknownPolicyError(
            f"unknown policy {name!r}; choose one of {', '.join(policy_names())}"
        )
    return cls()


__all__ = [
    "POLICIES",
    "HintError",
    "Operation",
    "Policy",
    "PolicyError",
    "ProcessStatus",
    "Resume",
    "RunOnly",
    "SetTimer",
    "Status",
    "Suspend",
    "UnknownPolicyError",
    "XQueueStatus",
    "make_policy",
    "policy_names",
]
