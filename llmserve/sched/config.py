"""The scheduler's knobs (token budget, running-set size, chunked prefill) and preemption modes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmserve.errors import ConfigError


class PreemptionMode(enum.Enum):
    """How a running sequence gives its KV blocks back.

    SWAP copies its blocks to the host pool and back later; RECOMPUTE drops them and
    prefills prompt + generated tokens again when the sequence is resumed.
    """

    SWAP = "swap"
    RECOMPUTE = "recompute"

    @classmethod
    def parse(cls, value: str | PreemptionMode) -> PreemptionMode:
        if isinstance(value, PreemptionMode):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ConfigError(
                f"unknown preemption mode {value!r}; choose one of swap, recompute"
            ) from None


@dataclass(frozen=True)
class SchedulerConfig:
    """Per-step limits of the continuous-batching loop.

    `max_batched_tokens`: tokens computed per step (prefill chunks + one per decode).
    `max_running_seqs`: sequences holding GPU KV at once.
    `chunked_prefill`: split long prompts over several steps; without it a prompt is
    prefilled in one step and requests whose prompt + max_tokens - 1 (a recompute) exceed
    the budget are rejected.
    `kv_watermark`: fraction of GPU blocks a new admission must leave free while others
    run, so that decodes do not preempt each other at once (vLLM keeps 1%).
    """

    max_batched_tokens: int = 4096
    max_running_seqs: int = 64
    chunked_prefill: bool = True
    kv_watermark: float = 0.01

    def __post_init__(self) -> None:
        for name in ("max_batched_tokens", "max_running_seqs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= self.kv_watermark < 1.0:
            raise ConfigError(f"kv_watermark must be in [0, 1), got {self.kv_watermark!r}")
