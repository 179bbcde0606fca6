"""The request-policy contract: a rank for every sequence, plus optional admission,
rebalancing and preempt-for-a-waiter decisions. Policies are pure: no I/O, no clock."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from llmserve.sched.config import PreemptionMode, SchedulerConfig
from llmserve.sched.output import Rejection
from llmserve.sched.request import Sequence


@dataclass(frozen=True)
class SchedulingView:
    """What a policy may look at when it decides: read-only, valid for one call.

    `running` is the running set; `queued` iterates the waiting and swapped sequences in
    rank order. Block counts are GPU blocks.
    """

    now_s: float
    step: int
    config: SchedulerConfig
    running: tuple[Sequence, ...]
    queued: Iterable[Sequence]
    free_blocks: int
    total_blocks: int
    block_size: int

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)


class RequestPolicy(ABC):
    """Which sequence runs first, which one gives way.

    `rank(seq)`: a sort key, smaller runs first; the scheduler serves running and queued
    sequences in rank order and, when KV runs out, preempts the largest rank first with
    `preemption_mode`. A policy object is used by one scheduler on one thread.
    """

    name: ClassVar[str]
    preemption_mode: PreemptionMode = PreemptionMode.RECOMPUTE

    @abstractmethod
    def rank(self, seq: Sequence) -> tuple[Any, ...]:
        """Sort key of `seq`; it must not change while `seq` waits in the queue."""

    def admit(self, seq: Sequence, view: SchedulingView) -> Rejection | None:
        """Admission control for a new arrival: a Rejection, or None to queue it."""
        return None

    def rebalance(self, view: SchedulingView) -> list[Sequence]:
        """Running sequences to preempt at the start of this step (time slicing)."""
        return []

    def preempts_for(self, waiter: Sequence, victim: Sequence) -> bool:
        """Whether queued `waiter` may preempt running `victim` when it does not fit."""
        return False
