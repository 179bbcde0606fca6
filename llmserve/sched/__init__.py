"""Request scheduling: requests and sequences, the request queue, pluggable request policies,
and the continuous-batching loop that composes them with the KV block manager."""

from llmserve.sched.config import PreemptionMode, SchedulerConfig
from llmserve.sched.output import (
    Preemption,
    Rejection,
    RejectReason,
    ScheduledSeq,
    SchedulerOutput,
    StepUpdate,
    SwapIn,
)
from llmserve.sched.policies import POLICY_NAMES, RequestPolicy, make_policy
from llmserve.sched.request import Request, Sequence, SequenceState
from llmserve.sched.scheduler import Scheduler

__all__ = [
    "POLICY_NAMES",
    "Preemption",
    "PreemptionMode",
    "RejectReason",
    "Rejection",
    "Request",
    "RequestPolicy",
    "ScheduledSeq",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerOutput",
    "Sequence",
    "SequenceState",
    "StepUpdate",
    "SwapIn",
    "make_policy",
]
