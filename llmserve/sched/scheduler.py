"""The continuous-batching loop: composes a request policy and the KV block manager and
returns one SchedulerOutput per step. Owned by one thread (the engine's or simulator's).
"""

from __future__ import annotations

from collections.abc import Mapping

from llmserve.errors import SchedulerError
from llmserve.kv.block_manager import BlockManager
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
from llmserve.sched.policies.base import RequestPolicy, SchedulingView
from llmserve.sched.queue import RequestQueue
from llmserve.sched.request import Request, Sequence, SequenceState


class _StepBuilder:
    """The decisions of the step being scheduled, collected in order."""

    def __init__(self) -> None:
        self.admitted: list[str] = []
        self.rejected: list[Rejection] = []
        self.preempted: list[Preemption] = []
        self.swapped_in: list[SwapIn] = []
        self.batch: dict[str, tuple[Sequence, int, int]] = {}  # id -> (seq, tokens, before)
        self.preempted_ids: set[str] = set()


class Scheduler:
    """Continuous batching with a token budget, in the shape of vLLM v1's scheduler.

    One step: (1) admission control for new arrivals (capacity, then the policy);
    (2) the policy's rebalance (time slicing); (3) the running set, in rank order, each
    taking its next tokens (a prefill chunk or one decode token) within the token budget;
    when a sequence's KV cannot grow, the largest-rank unscheduled running sequence is
    preempted (possibly itself); (4) the queue (waiting and swapped sequences), in rank
    order, while tokens, seats and KV last; a waiter that does not fit may preempt a
    running sequence if the policy says so, else the queue stops (no overtaking).
    `update` applies the executor's sampled tokens.
    """

    def __init__(self, config: SchedulerConfig, policy: RequestPolicy, kv: BlockManager) -> None:
        self.config = config
        self.policy = policy
        self.kv = kv
        self.step_index = 0
        self._seqs: dict[str, Sequence] = {}
        self._arrived: list[Sequence] = []
        self._queue = RequestQueue()
        self._running: list[Sequence] = []
        self._num_unfinished = 0

    # ---- intake and queries ------------------------------------------------------

    def add_request(self, request: Request) -> Sequence:
        """Hand over a request; admission is decided at the next `schedule`."""
        if request.id in self._seqs:
            raise SchedulerError(f"duplicate request id {request.id!r}")
        seq = Sequence(request=request, index=len(self._seqs))
        self._seqs[request.id] = seq
        self._arrived.append(seq)
        self._num_unfinished += 1
        return seq

    def sequence(self, seq_id: str) -> Sequence:
        seq = self._seqs.get(seq_id)
        if seq is None:
            raise SchedulerError(f"unknown sequence {seq_id!r}")
        return seq

    def sequences(self) -> list[Sequence]:
        """Every sequence ever added, in arrival order."""
        return list(self._seqs.values())

    @property
    def running(self) -> tuple[Sequence, ...]:
        return tuple(self._running)

    @property
    def queued(self) -> tuple[Sequence, ...]:
        return tuple(self._queue)

    def has_unfinished(self) -> bool:
        return self._num_unfinished > 0

    # ---- one step ----------------------------------------------------------------

    def schedule(self, now_s: float) -> SchedulerOutput:
        """Decide the next step's batch at time `now_s` (seconds)."""
        step = _StepBuilder()
        self._admit_arrivals(now_s, step)
        for victim in self.policy.rebalance(self._view(now_s)):
            if victim.state is not SequenceState.RUNNING:
                raise SchedulerError(
                    f"policy {self.policy.name} rebalanced non-running {victim.id!r}"
                )
            self._preempt(victim, step)
        budget = self._schedule_running(step, self.config.max_batched_tokens)
        self._schedule_queue(step, budget)
        scheduled = []
        block_table = self.kv.block_table
        for seq, n, before in step.batch.values():
            seq_id = seq.request.id
            total = seq.request.prompt_tokens + len(seq.output_token_ids)
            scheduled.append(ScheduledSeq(
                seq_id=seq_id,
                num_tokens=n,
                num_computed_before=before,
                is_prefill=before == 0 or before + n < total or n > 1,
                samples=before + n == total,
                block_table=block_table(seq_id),
            ))  # fmt: skip
            if seq.first_scheduled_s is None:
                seq.first_scheduled_s = now_s
        out = SchedulerOutput(
            step=self.step_index,
            now_s=now_s,
            admitted=tuple(step.admitted),
            rejected=tuple(step.rejected),
            preempted=tuple(step.preempted),
            swapped_in=tuple(step.swapped_in),
            scheduled=tuple(scheduled),
            kv=self.kv.usage(),
        )
        self.step_index += 1
        return out

    def update(
        self, output: SchedulerOutput, sampled: Mapping[str, int], now_s: float
    ) -> StepUpdate:
        """Apply a finished step: `sampled` maps each sampling sequence to its new token id."""
        tokens: list[tuple[str, int]] = []
        first: list[str] = []
        finished: list[str] = []
        for item in output.scheduled:
            seq = self._seqs[item.seq_id]
            if (
                seq.state is not SequenceState.RUNNING
                or seq.num_computed != item.num_computed_before
            ):
                raise SchedulerError(
                    f"step {output.step} applied twice or out of order for {seq.id!r}"
                )
            seq.num_computed += item.num_tokens
            seq.served_steps += 1
            if not item.samples:
                continue
            token = sampled.get(seq.id)
            if token is None:
                raise SchedulerError(
                    f"the executor sampled no token for {seq.id!r} in step {output.step}"
                )
            seq.output_token_ids.append(token)
            seq.run_tokens += 1
            tokens.append((seq.id, seq.num_generated))
            if seq.first_token_s is None:
                seq.first_token_s = now_s
                first.append(seq.id)
            if seq.num_generated >= seq.request.max_tokens:
                self._finish(seq, now_s)
                finished.append(seq.id)
        return StepUpdate(
            now_s=now_s,
            sampled=tuple(tokens),
            first_tokens=tuple(first),
            finished=tuple(finished),
            kv=self.kv.usage(),
        )

    # ---- the phases ----------------------------------------------------------------

    def _view(self, now_s: float) -> SchedulingView:
        return SchedulingView(
            now_s=now_s,
            step=self.step_index,
            config=self.config,
            running=tuple(self._running),
            queued=self._queue,
            free_blocks=self.kv.num_free_gpu_blocks,
            total_blocks=self.kv.num_gpu_blocks,
            block_size=self.kv.block_size,
        )

    def _admit_arrivals(self, now_s: float, step: _StepBuilder) -> None:
        arrivals, self._arrived = self._arrived, []
        for seq in arrivals:
            rejection = self._capacity_rejection(seq)
            if rejection is None:
                rejection = self.policy.admit(seq, self._view(now_s))
            if rejection is not None:
                seq.state = SequenceState.REJECTED
                seq.rejection = f"{rejection.reason.value}: {rejection.detail}"
                seq.finish_s = now_s
                self._num_unfinished -= 1
                step.rejected.append(rejection)
                continue
            seq.state = SequenceState.WAITING
            self._queue.push(seq, self.policy.rank(seq))
            step.admitted.append(seq.id)

    def _capacity_rejection(self, seq: Sequence) -> Rejection | None:
        req = seq.request
        usable = self.kv.num_gpu_blocks
        need = self.kv.blocks_for(seq.max_kv_tokens)
        if need > usable:
            return Rejection(
                seq.id,
                RejectReason.KV_CAPACITY,
                f"prompt {req.prompt_tokens} + max_tokens {req.max_tokens} needs {need} KV "
                f"blocks of {self.kv.block_size} tokens; the cache has {usable}",
            )
        budget = self.config.max_batched_tokens
        if not self.config.chunked_prefill and seq.max_kv_tokens > budget:
            return Rejection(
                seq.id,
                RejectReason.PROMPT_TOO_LONG,
                f"prompt {req.prompt_tokens} + max_tokens {req.max_tokens} - 1 tokens may need "
                f"one prefill step (after a recompute) but max_batched_tokens is {budget} "
                f"and chunked prefill is off",
            )
        return None

    def _schedule_running(self, step: _StepBuilder, budget: int) -> int:
        # The simulator's hot loop (every running sequence, every step): locals, no helpers.
        rank, kv = self.policy.rank, self.kv
        pending = sorted(self._running, key=lambda s: (*rank(s), s.index), reverse=True)
        chunked = self.config.chunked_prefill
        while pending and budget > 0:
            seq = pending.pop()  # the next best; pending[0] is the first victim
            seq_id = seq.request.id
            computed = seq.num_computed
            n = seq.request.prompt_tokens + len(seq.output_token_ids) - computed
            if n > budget:
                n = budget if chunked else 0
            if n == 0:
                break
            grow = computed + n - kv.num_tokens(seq_id)
            if grow > 0:
                while not kv.try_append(seq_id, grow):
                    victim = pending.pop(0) if pending else seq
                    self._preempt(victim, step)
                    if victim is seq:
                        break
                if seq.state is not SequenceState.RUNNING:
                    continue
            step.batch[seq_id] = (seq, n, computed)
            budget -= n
        return budget

    def _schedule_queue(self, step: _StepBuilder, budget: int) -> None:
        while budget > 0:
            seq = self._queue.peek()
            if seq is None or seq.id in step.preempted_ids:
                return
            n = self._tokens_this_step(seq, budget)
            if n == 0:
                return  # an unchunked prompt larger than the budget left: next step
            while not self._fits(seq, n):
                victim = self._victim_for(seq)
                if victim is None:
                    return
                budget += self._preempt(victim, step)
                n = self._tokens_this_step(seq, budget)
            self._queue.remove(seq)
            if seq.state is SequenceState.SWAPPED:
                pairs = self.kv.swap_in(seq.id)
                step.swapped_in.append(SwapIn(seq.id, len(pairs), pairs))
                self.kv.append(seq.id, self._slots_short(seq, n))
            else:
                self.kv.allocate(seq.id, seq.num_computed + n)
            seq.state = SequenceState.RUNNING
            seq.run_tokens = 0
            self._running.append(seq)
            step.batch[seq.id] = (seq, n, seq.num_computed)
            budget -= n

    # ---- helpers -----------------------------------------------------------------

    def _tokens_this_step(self, seq: Sequence, budget: int) -> int:
        n = seq.num_uncomputed
        if self.config.chunked_prefill:
            return min(n, budget)
        return n if n <= budget else 0

    def _slots_short(self, seq: Sequence, n: int) -> int:
        """Slots to add so that `seq` holds KV for num_computed + n tokens."""
        return max(0, seq.num_computed + n - self.kv.num_tokens(seq.id))

    def _fits(self, seq: Sequence, n: int) -> bool:
        if len(self._running) >= self.config.max_running_seqs:
            return False
        free = self.kv.num_free_gpu_blocks
        if seq.state is SequenceState.SWAPPED:
            have = self.kv.num_blocks(seq.id)
            need = max(have, self.kv.blocks_for(seq.num_computed + n))
            return need <= free
        need = self.kv.blocks_for(seq.num_computed + n)
        if self._running:
            # Leave the watermark so the running decodes can grow a while.
            need += int(self.config.kv_watermark * self.kv.num_gpu_blocks)
        return need <= free

    def _victim_for(self, waiter: Sequence) -> Sequence | None:
        if not self._running:
            return None
        victim = max(self._running, key=lambda s: (*self.policy.rank(s), s.index))
        return victim if self.policy.preempts_for(waiter, victim) else None

    def _preempt(self, seq: Sequence, step: _StepBuilder) -> int:
        """Preempt running `seq` with the policy's mode (swap falls back to recompute when
        the host pool is full); returns the budget it had taken in this step, if any."""
        self._running.remove(seq)
        # If it was already in this step's batch, it leaves it; the slots it took for the
        # step go with its blocks (swap) or are dropped (recompute).
        entry = step.batch.pop(seq.id, None)
        mode = self.policy.preemption_mode
        if mode is PreemptionMode.SWAP and self.kv.can_swap_out(seq.id):
            pairs = self.kv.swap_out(seq.id)
            seq.state = SequenceState.SWAPPED
            seq.num_swaps += 1
            step.preempted.append(Preemption(seq.id, PreemptionMode.SWAP, len(pairs), pairs))
        else:
            num_blocks = self.kv.drop(seq.id)
            seq.state = SequenceState.WAITING
            seq.num_computed = 0
            seq.num_recomputes += 1
            step.preempted.append(Preemption(seq.id, PreemptionMode.RECOMPUTE, num_blocks))
        step.preempted_ids.add(seq.id)
        self._queue.push(seq, self.policy.rank(seq))
        return entry[1] if entry is not None else 0

    def _finish(self, seq: Sequence, now_s: float) -> None:
        self.kv.free(seq.id)
        self._running.remove(seq)
        seq.state = SequenceState.FINISHED
        seq.finish_s = now_s
        self._num_unfinished -= 1
