"""FCFS, vLLM's default: serve in arrival order; when KV runs out, recompute the latest."""

from __future__ import annotations

from typing import Any

from llmserve.sched.config import PreemptionMode
from llmserve.sched.policies.base import RequestPolicy
from llmserve.sched.request import Sequence


class FCFSPolicy(RequestPolicy):
    """First come, first served. Waiters never preempt; a decode that cannot grow its KV
    preempts the latest arrival in the running set, by recompute."""

    name = "fcfs"

    def __init__(self, preemption_mode: PreemptionMode | str = PreemptionMode.RECOMPUTE) -> None:
        self.preemption_mode = PreemptionMode.parse(preemption_mode)

    def rank(self, seq: Sequence) -> tuple[Any, ...]:
        return (seq.request.arrival_s,)
