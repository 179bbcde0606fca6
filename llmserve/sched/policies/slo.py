"""SLO: earliest TTFT deadline first, with admission control that rejects at arrival a
request whose TTFT target cannot be met given the queue ahead of it and the KV in use."""

from __future__ import annotations

import heapq
import math
from typing import Any, Protocol

from llmserve.errors import ConfigError
from llmserve.sched.config import PreemptionMode
from llmserve.sched.output import Rejection, RejectReason
from llmserve.sched.policies.base import RequestPolicy, SchedulingView
from llmserve.sched.request import Sequence


class StepTimeModel(Protocol):
    """A step-time estimate, linear in its arguments (the cost model is one)."""

    def step_ms(self, prefill_tokens: int, decode_seqs: int, context_tokens: int) -> float: ...


class SLOPolicy(RequestPolicy):
    """EDF on `arrival_s + ttft_slo_ms`; requests without an SLO come last, FCFS.

    Admission estimates the new request's TTFT as: time already waited + time for the KV it
    needs to free up (running sequences finishing, shortest remaining first) + time to
    prefill it and every queued request with an earlier deadline, chunked by the token
    budget next to the running decodes. The estimate times `margin` must be within the
    target, or the request is rejected with the numbers in the reason. The estimate runs
    up to ~10% short on bursts (it ignores step granularity and the running set's growth),
    hence the default margin of 1.1.
    """

    name = "slo"

    def __init__(
        self,
        step_time: StepTimeModel,
        margin: float = 1.1,
        preemption_mode: PreemptionMode | str = PreemptionMode.RECOMPUTE,
    ) -> None:
        if not isinstance(margin, (int, float)) or not margin > 0:
            raise ConfigError(f"slo margin must be a number > 0, got {margin!r}")
        self.step_time = step_time
        self.margin = margin
        self.preemption_mode = PreemptionMode.parse(preemption_mode)

    def rank(self, seq: Sequence) -> tuple[Any, ...]:
        return (seq.request.ttft_deadline_s, seq.request.arrival_s)

    def admit(self, seq: Sequence, view: SchedulingView) -> Rejection | None:
        slo_ms = seq.request.ttft_slo_ms
        if slo_ms is None:
            return None
        estimate_ms, detail = self.estimate_ttft_ms(seq, view)
        if estimate_ms * self.margin <= slo_ms:
            return None
        return Rejection(
            seq.id,
            RejectReason.TTFT_SLO,
            f"estimated TTFT {estimate_ms:.0f} ms exceeds the target {slo_ms:g} ms ({detail})",
        )

    def estimate_ttft_ms(self, seq: Sequence, view: SchedulingView) -> tuple[float, str]:
        """Estimated TTFT of `seq` if admitted now, and a note of what it is made of.

        KV and seats: replay the queue ahead (rank order) against the running set
        finishing, shortest remaining first; each waiter takes its final KV footprint and
        holds it for its remaining outputs. That gives the step at which `seq` can start;
        the prefill of everything starting with it (and of running prefills, if it starts
        at once) then goes through the token budget.
        """
        my_rank = self.rank(seq)
        ahead = [q for q in view.queued if self.rank(q) <= my_rank]
        decoders = [r for r in view.running if r.num_uncomputed <= 1]
        context = sum(r.num_tokens for r in view.running)
        decode_ms = self.step_time.step_ms(0, len(decoders), context)
        budget = view.config.max_batched_tokens

        free = view.free_blocks - int(view.config.kv_watermark * view.total_blocks)
        seats = view.config.max_running_seqs - len(view.running)
        finishing = [(r.remaining_outputs, view.blocks_for(r.num_tokens)) for r in view.running]
        heapq.heapify(finishing)
        now_step = 0
        start_tokens: dict[int, int] = {}
        for q in (*ahead, seq):
            need = view.blocks_for(q.max_kv_tokens)
            while (need > free or seats <= 0) and finishing:
                at, blocks = heapq.heappop(finishing)
                now_step = max(now_step, at)
                free += blocks
                seats += 1
            free -= need
            seats -= 1
            start_tokens[now_step] = start_tokens.get(now_step, 0) + q.num_uncomputed
            prefill_steps = math.ceil(q.num_uncomputed / budget)
            heapq.heappush(finishing, (now_step + prefill_steps + q.remaining_outputs, need))
        start_step = now_step
        kv_wait_ms = start_step * decode_ms

        # Every prefill that starts before or with `seq` lengthens the steps it shares.
        prefill_tokens = sum(start_tokens.values())
        prefill_tokens += sum(r.num_uncomputed for r in view.running if r.num_uncomputed > 1)
        group = start_tokens[start_step]
        steps = math.ceil(group / max(budget - len(decoders), 1))
        prefill_ms = steps * decode_ms + (
            self.step_time.step_ms(prefill_tokens, 0, 0) - self.step_time.step_ms(0, 0, 0)
        )
        waited_ms = max(0.0, view.now_s - seq.request.arrival_s) * 1000.0
        detail = (
            f"waited {waited_ms:.0f} ms, {len(ahead)} requests ahead, KV wait about "
            f"{start_step} steps ({kv_wait_ms:.0f} ms), {prefill_tokens} prefill tokens to go"
        )
        return waited_ms + kv_wait_ms + prefill_ms, detail
