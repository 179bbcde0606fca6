"""A linear step-time model and the executor that runs on it in virtual time."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np

from llmserve.errors import ConfigError
from llmserve.executor.base import StepResult
from llmserve.sched.output import SchedulerOutput


@dataclass(frozen=True)
class StepSample:
    """One measured step, for `CostModel.fit`."""

    prefill_tokens: int
    decode_seqs: int
    context_tokens: int
    measured_ms: float


@dataclass(frozen=True)
class CostModel:
    """step_ms = base + per_prefill_token * P + per_decode_seq * D + per_context_token * C,
    plus swap_per_block for every block copied between GPU and host in the step.

    P: prefill tokens in the batch; D: decoding sequences; C: tokens the batch's attention
    spans (cached + new). The defaults are a back-of-envelope 8B Llama-class model (bf16,
    32 layers, 8 KV heads of 128) on one H100 SXM, to be recalibrated with `fit` from
    measured step times:
    - base 6 ms: a step reads all ~16 GB of weights at ~3.35 TB/s (4.8 ms) plus overhead;
    - per prefill token 0.03 ms: 2 x 8e9 FLOP at ~530 TFLOP/s (about 55% of bf16 peak);
    - per decode sequence 0.05 ms: its LM head row, sampling and bookkeeping;
    - per context token 4e-5 ms: its K and V, 128 KiB over 32 layers, read at HBM speed;
    - swap per block 0.065 ms: 16 tokens x 128 KiB = 2 MiB over PCIe 5 at ~32 GB/s pinned.
    """

    base_ms: float = 6.0
    per_prefill_token_ms: float = 0.03
    per_decode_seq_ms: float = 0.05
    per_context_token_ms: float = 4e-5
    swap_per_block_ms: float = 0.065

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"cost model {f.name} must be a finite number >= 0, got {value!r}"
                )

    def step_ms(self, prefill_tokens: int, decode_seqs: int, context_tokens: int) -> float:
        return (
            self.base_ms
            + self.per_prefill_token_ms * prefill_tokens
            + self.per_decode_seq_ms * decode_seqs
            + self.per_context_token_ms * context_tokens
        )

    def swap_ms(self, blocks: int) -> float:
        return self.swap_per_block_ms * blocks

    def output_ms(self, output: SchedulerOutput) -> float:
        """Duration of a whole scheduled step: swaps, then the batch (if any)."""
        ms = self.swap_ms(output.swap_out_blocks + output.swap_in_blocks)
        if output.scheduled:
            ms += self.step_ms(
                output.num_prefill_tokens, output.num_decode_seqs, output.num_context_tokens
            )
        return ms

    @classmethod
    def fit(
        cls, samples: Iterable[StepSample], swap_per_block_ms: float | None = None
    ) -> CostModel:
        """Least-squares coefficients from measured steps (negative ones clamped to 0).

        Swap cost is measured apart (a copy benchmark), so it is passed in, not fitted.
        """
        rows = list(samples)
        if len(rows) < 4:
            raise ConfigError(f"fit needs at least 4 measured steps, got {len(rows)}")
        a = np.array([[1.0, s.prefill_tokens, s.decode_seqs, s.context_tokens] for s in rows])
        y = np.array([s.measured_ms for s in rows])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        base, per_p, per_d, per_c = (max(0.0, float(c)) for c in coef)
        swap = cls.swap_per_block_ms if swap_per_block_ms is None else swap_per_block_ms
        return cls(base, per_p, per_d, per_c, swap)


class CostModelExecutor:
    """Runs steps in virtual time: the duration comes from the cost model, and every
    sampling sequence gets the same placeholder token id (there is no model)."""

    def __init__(self, model: CostModel | None = None, token_id: int = 0) -> None:
        self.model = model if model is not None else CostModel()
        self.token_id = token_id

    def execute(self, output: SchedulerOutput) -> StepResult:
        sampled = {s.seq_id: self.token_id for s in output.scheduled if s.samples}
        return StepResult(duration_s=self.model.output_ms(output) / 1000.0, sampled=sampled)
