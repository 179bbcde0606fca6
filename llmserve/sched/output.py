"""What one scheduler step decides (SchedulerOutput) and what the step's results changed."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmserve.kv.block_manager import BlockPairs, KVUsage
from llmserve.sched.config import PreemptionMode


class RejectReason(enum.Enum):
    KV_CAPACITY = "kv_capacity"  # can never fit in the whole KV cache
    PROMPT_TOO_LONG = "prompt_too_long"  # larger than one step's token budget, no chunking
    TTFT_SLO = "ttft_slo"  # its time-to-first-token target cannot be met


@dataclass(frozen=True)
class Rejection:
    seq_id: str
    reason: RejectReason
    detail: str  # names the numbers behind the decision


@dataclass(frozen=True)
class ScheduledSeq:
    """One sequence in this step's batch: it computes `num_tokens` tokens' KV."""

    seq_id: str
    num_tokens: int
    num_computed_before: int
    is_prefill: bool
    samples: bool  # all its tokens are computed after this step, so one is sampled
    block_table: tuple[int, ...] = ()  # its GPU blocks for this step, in token order

    @property
    def context_tokens(self) -> int:
        """Tokens its attention spans in this step."""
        return self.num_computed_before + self.num_tokens


@dataclass(frozen=True)
class Preemption:
    seq_id: str
    mode: PreemptionMode
    num_blocks: int
    blocks: BlockPairs = ()  # (gpu, host) pairs for SWAP; empty for RECOMPUTE


@dataclass(frozen=True)
class SwapIn:
    seq_id: str
    num_blocks: int
    blocks: BlockPairs = ()  # (host, gpu) pairs


@dataclass(frozen=True)
class SchedulerOutput:
    """Everything one step decided, in the order it happened: admissions and rejections of
    new arrivals, preemptions, swap-ins, then the batch. `kv` is the usage after it all."""

    step: int
    now_s: float
    admitted: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    preempted: tuple[Preemption, ...]
    swapped_in: tuple[SwapIn, ...]
    scheduled: tuple[ScheduledSeq, ...]
    kv: KVUsage

    @property
    def prefill(self) -> tuple[ScheduledSeq, ...]:
        return tuple(s for s in self.scheduled if s.is_prefill)

    @property
    def decode(self) -> tuple[ScheduledSeq, ...]:
        return tuple(s for s in self.scheduled if not s.is_prefill)

    @property
    def num_prefill_tokens(self) -> int:
        return sum(s.num_tokens for s in self.scheduled if s.is_prefill)

    @property
    def num_decode_seqs(self) -> int:
        return sum(1 for s in self.scheduled if not s.is_prefill)

    @property
    def num_context_tokens(self) -> int:
        return sum(s.num_computed_before + s.num_tokens for s in self.scheduled)

    @property
    def swap_out_blocks(self) -> int:
        return sum(p.num_blocks for p in self.preempted if p.mode is PreemptionMode.SWAP)

    @property
    def swap_in_blocks(self) -> int:
        return sum(s.num_blocks for s in self.swapped_in)

    @property
    def has_device_work(self) -> bool:
        """Whether an executor has anything to run or copy for this step."""
        return (
            bool(self.scheduled)
            or any(p.mode is PreemptionMode.SWAP for p in self.preempted)
            or bool(self.swapped_in)
        )


@dataclass(frozen=True)
class StepUpdate:
    """What a step's results changed: tokens sampled, first tokens, finished sequences."""

    now_s: float
    sampled: tuple[tuple[str, int], ...]  # (seq id, tokens generated so far)
    first_tokens: tuple[str, ...]
    finished: tuple[str, ...]
    kv: KVUsage
