"""Priority: higher `priority` runs first and preempts lower-priority running sequences."""

from __future__ import annotations

from typing import Any

from llmserve.sched.config import PreemptionMode
from llmserve.sched.policies.base import RequestPolicy
from llmserve.sched.request import Sequence


class PriorityPolicy(RequestPolicy):
    """Strict priority, FCFS within a level. A waiter preempts a running sequence of
    strictly lower priority (never an equal one) by swap or recompute, as configured."""

    name = "priority"

    def __init__(self, preemption_mode: PreemptionMode | str = PreemptionMode.RECOMPUTE) -> None:
        self.preemption_mode = PreemptionMode.parse(preemption_mode)

    def rank(self, seq: Sequence) -> tuple[Any, ...]:
        return (-seq.request.priority, seq.request.arrival_s)

    def preempts_for(self, waiter: Sequence, victim: Sequence) -> bool:
        return waiter.request.priority > victim.request.priority
