"""One forward step of the decoder over a batch of sequences, with K/V in the paged cache.

A step takes, for every sequence in the batch, the new tokens to compute (a prompt, a
chunk of it, a recomputation, or one decode token), their first position, and the
sequence's block table. It writes their K/V into the cache, attends over everything the
sequence has cached, and returns the greedy next token of each sampling sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmserve.errors import LLMServeError
from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig
from llmserve.model.kernels import StepShape, make_kernels
from llmserve.model.kv_cache import PagedKVCache
from llmserve.model.layers import Rope
from llmserve.model.weights import Weights, random_weights


class StepError(LLMServeError):
    """A step that cannot run as asked (positions beyond the block table or the model)."""


@dataclass(frozen=True)
class SeqWork:
    """The work of one sequence in a step: compute `token_ids` at positions start.."""

    seq_id: str
    token_ids: tuple[int, ...]
    start: int  # tokens of this sequence already in the cache
    block_table: tuple[int, ...]
    sample: bool  # sample the token after the last of `token_ids`


@dataclass(frozen=True)
class StepOutput:
    tokens: Mapping[str, int]  # greedy next token of every sampling sequence
    logits: Mapping[str, np.ndarray] | None  # their float32 logits, when asked for


@dataclass(frozen=True)
class PendingStep:
    """A launched step: device arrays that hold its results once the device has run it.
    On CUDA the launch only enqueues kernels; `result()` copies the tokens to the host."""

    backend: Backend
    seq_ids: tuple[str, ...]  # the sampling sequences, in row order
    best: Any  # [S] argmax token ids on the device
    logits: Any | None  # [S, vocab] float32 on the device, when asked for

    def result(self) -> StepOutput:
        if not self.seq_ids:
            return StepOutput({}, {} if self.logits is not None else None)
        best = self.backend.to_host(self.best)
        tokens = {sid: int(best[j]) for j, sid in enumerate(self.seq_ids)}
        if self.logits is None:
            return StepOutput(tokens, None)
        host = self.backend.to_host(self.logits)
        return StepOutput(tokens, {sid: host[j] for j, sid in enumerate(self.seq_ids)})


class ModelRunner:
    """The model on one backend with its paged KV cache. Not thread-safe: one device worker
    runs its steps and swaps, one at a time (the XQueue's hardware queue sees to that)."""

    def __init__(
        self,
        config: ModelConfig,
        weights: Weights,
        backend: Backend,
        cache: PagedKVCache,
        fused: bool | None = None,
    ) -> None:
        self.config = config
        self.weights = weights
        self.backend = backend
        self.cache = cache
        with backend.activate():
            self.rope = Rope(config, backend, weights.rope_freq_factors)
            # Fused CUDA kernels for float16 on a GPU unless `fused` is False (see kernels.py).
            self.kernels = make_kernels(config, backend, self.rope, fused)

    @classmethod
    def create(
        cls,
        config: ModelConfig,
        backend: Backend,
        *,
        num_blocks: int,
        block_size: int,
        num_host_blocks: int,
        weights: Weights | None = None,
        seed: int = 0,
        fused: bool | None = None,
    ) -> ModelRunner:
        with backend.activate():
            w = weights if weights is not None else random_weights(config, backend, seed)
            cache = PagedKVCache(config, backend, num_blocks, block_size, num_host_blocks)
            return cls(config, w, backend, cache, fused)

    def warmup(self) -> None:
        """Run a chunked prefill, a decode batch and a swap once, so that CuPy compiles and
        loads every kernel now rather than inside a timed or preemptible step (a module
        load waits while a queue is deactivated). Leaves cache contents undefined."""
        bs, n = self.cache.block_size, self.cache.num_blocks
        length = min(2 * bs + 1, n * bs - 1, self.config.max_position - 1)
        table = tuple(range(min(n, -(-(length + 1) // bs))))
        prompt = tuple(i % self.config.vocab_size for i in range(1, length + 1))
        half = max(1, length // 2)
        self.step([SeqWork("warmup", prompt[:half], 0, table, False)])  # a first chunk
        if length > half:
            self.step([SeqWork("warmup", prompt[half:], half, table, True)])  # the next
        self.step([SeqWork("warmup", (1,), length, table, True),
                   SeqWork("warmup2", (2,), length - 1, table, True)])  # a decode batch
        if self.cache.num_host_blocks:
            self.swap_out([(0, 0)])
            self.swap_in([(0, 0)])
        with self.backend.activate():
            self.backend.synchronize()

    def swap_out(self, pairs: Seq[tuple[int, int]]) -> int:
        with self.backend.activate():
            return self.cache.swap_out(pairs)

    def swap_in(self, pairs: Seq[tuple[int, int]]) -> int:
        with self.backend.activate():
            return self.cache.swap_in(pairs)

    def launch(self, works: Seq[SeqWork], return_logits: bool = False) -> PendingStep:
        """Run (CPU) or enqueue (CUDA, on the current stream) one step; never syncs."""
        with self.backend.activate():
            return self._step(works, return_logits)

    def step(self, works: Seq[SeqWork], return_logits: bool = False) -> StepOutput:
        """`launch` and wait for the result."""
        pending = self.launch(works, return_logits)
        with self.backend.activate():
            return pending.result()

    # ---- the forward pass ----------------------------------------------------------

    def _step(self, works: Seq[SeqWork], return_logits: bool) -> PendingStep:
        if not works:
            return PendingStep(self.backend, (), None, {} if return_logits else None)
        cfg, xp, w, kern = self.config, self.backend.xp, self.weights, self.kernels
        bs = self.cache.block_size
        # Decodes (one new token) first, as one group; then each prefill on its own.
        decodes = [s for s in works if len(s.token_ids) == 1]
        prefills = [s for s in works if len(s.token_ids) > 1]
        order = decodes + prefills
        for s in order:
            self._check(s)
        lens = [len(s.token_ids) for s in order]
        tokens = np.fromiter((t for s in order for t in s.token_ids), dtype=np.int64)
        positions = np.concatenate([np.arange(s.start, s.start + n, dtype=np.int64)
                                    for s, n in zip(order, lens)])  # fmt: skip
        write_blocks = np.concatenate([np.asarray(s.block_table, dtype=np.int64)[
            np.arange(s.start, s.start + n) // bs] for s, n in zip(order, lens)])  # fmt: skip
        ends = np.cumsum(lens) - 1
        sampling = [(i, s) for i, s in enumerate(order) if s.sample]
        shape = StepShape(tuple(s.start for s in order), tuple(lens),
                          tuple(s.block_table for s in order), len(decodes))  # fmt: skip
        # Every index the step needs goes to the device in one copy.
        host = [tokens, positions, write_blocks, positions % bs,
                np.array([ends[i] for i, _ in sampling], dtype=np.int64)]  # fmt: skip
        dev = self.backend.to_device_many(host + kern.prepare_attention(shape, bs))
        d_tokens, d_pos, d_wb, d_wo, d_ends = dev[:5]
        att_args = dev[5:]

        x = w.embed[d_tokens]
        for li, lw in enumerate(w.layers):
            h = kern.rms_norm(x, lw.attn_norm)
            qkv = h @ lw.wqkv
            kern.rope_qk_(qkv, d_pos)
            kern.write_kv(self.cache, li, d_wb, d_wo, qkv)
            attn = xp.empty((qkv.shape[0], cfg.n_heads * cfg.head_dim), dtype=qkv.dtype)
            kern.attention(self.cache, li, qkv, shape, att_args, attn)
            x = x + attn @ lw.wo
            h = kern.rms_norm(x, lw.ffn_norm)
            x = x + kern.swiglu(h @ lw.w_gate_up) @ lw.w_down

        if not sampling:
            return PendingStep(self.backend, (), None, {} if return_logits else None)
        logits = (kern.rms_norm(x[d_ends], w.norm) @ w.lm_head).astype(xp.float32)
        return PendingStep(
            self.backend,
            tuple(s.seq_id for _, s in sampling),
            logits.argmax(axis=-1),
            logits if return_logits else None,
        )

    def _check(self, s: SeqWork) -> None:
        end = s.start + len(s.token_ids)
        if end > self.config.max_position:
            raise StepError(
                f"{s.seq_id!r}: position {end - 1} is beyond the model's max_position "
                f"{self.config.max_position}"
            )
        if len(s.block_table) * self.cache.block_size < end:
            raise StepError(
                f"{s.seq_id!r}: {len(s.block_table)} blocks of {self.cache.block_size} hold "
                f"fewer than the {end} tokens the step needs"
            )
        bad = [t for t in s.token_ids if not 0 <= t < self.config.vocab_size]
        if bad:
            raise StepError(f"{s.seq_id!r}: token ids {bad[:5]} outside the vocabulary "
                            f"of {self.config.vocab_size}")  # fmt: skip
