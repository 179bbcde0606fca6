"""The real-model executor: every step's KV swaps and forward pass run as commands of an
XQueue, so XSched's policies (priorities, time slices, suspend/resume) apply to them.

The executor keeps each sequence's token ids (prompt + sampled): a step computes the
tokens the scheduler names (a prompt chunk, a recomputation of prompt + outputs after a
preemption by recompute, or the newest token), and a swap really copies KV blocks between
the device cache and host memory. Owned by the engine's thread; the commands' payloads
run on the hardware queue's thread (CPU device worker) or enqueue on its stream (CUDA).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence as Seq

from hal import HwCommand, HwQueue
from llmserve.errors import SchedulerError
from llmserve.executor.base import StepResult
from llmserve.model.runner import ModelRunner, PendingStep, SeqWork
from llmserve.sched.config import PreemptionMode
from llmserve.sched.output import SchedulerOutput
from preempt.runtime import Runtime, get_runtime
from preempt.xqueue import XCommand, XQueue


class ModelExecutor:
    """Runs SchedulerOutputs on a ModelRunner through `xqueue`.

    Per step, in order on the queue: one command copying the swapped-out blocks to host,
    one copying swapped-in blocks back, one forward pass; the executor waits for the last
    and reads the sampled tokens. `duration_s` is wall time from submit to result, so it
    includes time the XQueue spent suspended or behind other queues on the device.
    """

    def __init__(self, runner: ModelRunner, xqueue: XQueue) -> None:
        self.runner = runner
        self.xqueue = xqueue
        self._tokens: dict[str, list[int]] = {}
        self.steps = 0
        self.swapped_bytes = 0

    @classmethod
    def create(
        cls,
        runner: ModelRunner,
        hwq: HwQueue,
        *,
        runtime: Runtime | None = None,
        name: str = "llmserve",
        priority: int | None = None,
    ) -> ModelExecutor:
        """An executor whose XQueue is made by `runtime` (the process's, from XSCHED_*
        variables, by default) in front of `hwq`."""
        rt = runtime if runtime is not None else get_runtime()
        xq = rt.create_xqueue(hwq, name=name, priority=priority)
        return cls(runner, xq)

    # ---- the token book ------------------------------------------------------------

    def add_prompt(self, seq_id: str, token_ids: Seq[int]) -> None:
        """Register a request's prompt before the scheduler first runs it."""
        if seq_id in self._tokens:
            raise SchedulerError(f"prompt of {seq_id!r} is already registered")
        if not token_ids:
            raise SchedulerError(f"prompt of {seq_id!r} is empty")
        self._tokens[seq_id] = list(token_ids)

    def tokens(self, seq_id: str) -> list[int]:
        """Prompt and sampled token ids of `seq_id` so far."""
        return list(self._book(seq_id))

    def release(self, seq_id: str) -> None:
        self._tokens.pop(seq_id, None)

    def _book(self, seq_id: str) -> list[int]:
        book = self._tokens.get(seq_id)
        if book is None:
            raise SchedulerError(f"no prompt registered for {seq_id!r}; call add_prompt first")
        return book

    # ---- the Executor interface ------------------------------------------------------

    def execute(self, output: SchedulerOutput) -> StepResult:
        start = time.perf_counter()
        runner = self.runner
        swap_out = [pair for p in output.preempted if p.mode is PreemptionMode.SWAP
                    for pair in p.blocks]  # fmt: skip
        swap_in = [pair for s in output.swapped_in for pair in s.blocks]
        works = [self._work(s.seq_id, s.num_computed_before, s.num_tokens, s.block_table,
                            s.samples) for s in output.scheduled]  # fmt: skip
        commands: list[XCommand] = []
        if swap_out:
            payload = functools.partial(runner.swap_out, swap_out)
            commands.append(self.xqueue.submit(HwCommand(payload=payload, name="kv-swap-out")))
        if swap_in:
            payload = functools.partial(runner.swap_in, swap_in)
            commands.append(self.xqueue.submit(HwCommand(payload=payload, name="kv-swap-in")))
        if works:
            payload = functools.partial(runner.launch, works)
            name = f"step-{output.step}"
            commands.append(self.xqueue.submit(HwCommand(payload=payload, name=name)))
        results = [self.xqueue.wait(c) for c in commands]  # each re-raises its own error
        sampled: dict[str, int] = {}
        if works:
            pending: PendingStep = results[-1]
            with runner.backend.activate():
                sampled = dict(pending.result().tokens)
        for seq_id, token in sampled.items():
            self._tokens[seq_id].append(token)
        self.steps += 1
        self.swapped_bytes += sum(r for r in results[: len(results) - bool(works)])
        return StepResult(duration_s=time.perf_counter() - start, sampled=sampled)

    def _work(self, seq_id: str, before: int, n: int, table: tuple[int, ...],
              sample: bool) -> SeqWork:  # fmt: skip
        book = self._book(seq_id)
        if before + n > len(book):
            raise SchedulerError(
                f"step asks {seq_id!r} for tokens {before}..{before + n - 1} but it has "
                f"{len(book)} (prompt + sampled)"
            )
        return SeqWork(seq_id, tuple(book[before : before + n]), before, table, sample)

    def close(self) -> None:
        """Wait for submitted commands, then release the XQueue and its hardware queue."""
        self.xqueue.close()
        self.xqueue.hwq.close()
