"""CFS: fair time slices. Every N steps, the least-served sequences run and the rest of the
running set is swapped out to host, as in the well-known vLLM scheduler course assignment."""

from __future__ import annotations

import heapq
from typing import Any

from llmserve.errors import ConfigError
from llmserve.sched.config import PreemptionMode
from llmserve.sched.policies.base import RequestPolicy, SchedulingView
from llmserve.sched.request import Sequence, SequenceState


class CFSPolicy(RequestPolicy):
    """Completely-fair-style request scheduling with `served_steps` as virtual runtime.

    At every `slice_steps`-th step, all live sequences (running, swapped, waiting) are
    ranked by steps served so far (then arrival); the longest prefix of that ranking that
    fits the running-set limit and the whole KV cache is the next slice's running set.
    Running sequences outside it are preempted (by swap unless configured otherwise), and
    the scheduler loop brings the prefix's queued members in, least-served first. A
    sequence that has not sampled a token since it last came in is never preempted here,
    so every turn makes progress. Between slice boundaries the loop is work-conserving:
    free KV goes to the least-served waiter.
    """

    name = "cfs"

    def __init__(
        self,
        slice_steps: int = 64,
        preemption_mode: PreemptionMode | str = PreemptionMode.SWAP,
    ) -> None:
        if isinstance(slice_steps, bool) or not isinstance(slice_steps, int) or slice_steps < 1:
            raise ConfigError(f"cfs slice_steps must be an integer >= 1, got {slice_steps!r}")
        self.slice_steps = slice_steps
        self.preemption_mode = PreemptionMode.parse(preemption_mode)

    def rank(self, seq: Sequence) -> tuple[Any, ...]:
        return (seq.served_steps, seq.request.arrival_s)

    def rebalance(self, view: SchedulingView) -> list[Sequence]:
        if view.step % self.slice_steps != 0 or not view.running:
            return []
        seats = view.config.max_running_seqs
        blocks = view.total_blocks
        keep: set[str] = set()
        running = sorted(view.running, key=lambda s: (*self.rank(s), s.index))
        # A sequence keeps its place until it has sampled a token since it last came in,
        # so every turn makes progress (with recompute, a turn cut short in its prefill
        # would lose it, and time slicing could livelock).
        for seq in running:
            if seq.run_tokens == 0:
                keep.add(seq.id)
                seats -= 1
                blocks -= view.blocks_for(seq.num_tokens)
        queued_any = False
        ranked = heapq.merge(
            [s for s in running if s.id not in keep],
            view.queued,
            key=lambda s: (*self.rank(s), s.index),
        )
        for seq in ranked:
            need = view.blocks_for(seq.num_tokens)
            if seats <= 0 or need > blocks:
                break
            seats -= 1
            blocks -= need
            keep.add(seq.id)
            queued_any = queued_any or seq.state is not SequenceState.RUNNING
        if not queued_any:
            # Nobody less served is waiting: swapping now would only cost copies.
            return []
        return [seq for seq in running if seq.id not in keep]
