"""Request policies: fcfs, priority, cfs, slo. `make_policy(name, ...)` builds one by name."""

from __future__ import annotations

from llmserve.errors import ConfigError, UnknownPolicyError
from llmserve.sched.config import PreemptionMode
from llmserve.sched.policies.base import RequestPolicy, SchedulingView
from llmserve.sched.policies.cfs import CFSPolicy
from llmserve.sched.policies.fcfs import FCFSPolicy
from llmserve.sched.policies.priority import PriorityPolicy
from llmserve.sched.policies.slo import SLOPolicy, StepTimeModel

POLICY_NAMES: tuple[str, ...] = ("fcfs", "priority", "cfs", "slo")


def make_policy(
    name: str,
    *,
    step_time: StepTimeModel | None = None,
    preemption_mode: PreemptionMode | str | None = None,
    cfs_slice_steps: int = 64,
    slo_margin: float = 1.1,
) -> RequestPolicy:
    """A new policy for `name` (case-insensitive). `preemption_mode` None keeps each
    policy's default (fcfs, priority, slo: recompute; cfs: swap). `slo` needs `step_time`."""
    key = str(name).strip().lower()
    mode = {} if preemption_mode is None else {"preemption_mode": preemption_mode}
    if key == "fcfs":
        return FCFSPolicy(**mode)
    if key == "priority":
        return PriorityPolicy(**mode)
    if key == "cfs":
        return CFSPolicy(slice_steps=cfs_slice_steps, **mode)
    if key == "slo":
        if step_time is None:
            raise ConfigError("policy 'slo' needs a step-time model for its estimates")
        return SLOPolicy(step_time, margin=slo_margin, **mode)
    raise UnknownPolicyError(f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")


__all__ = [
    "POLICY_NAMES",
    "CFSPolicy",
    "FCFSPolicy",
    "PriorityPolicy",
    "RequestPolicy",
    "SLOPolicy",
    "SchedulingView",
    "StepTimeModel",
    "make_policy",
]
