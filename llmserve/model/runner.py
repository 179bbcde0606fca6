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
from llmserve.model.attention import decode_attention, prefill_attention
from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig
from llmserve.model.kv_cache import PagedKVCache
from llmserve.model.layers import Rope, rms_norm, swiglu
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
        self, config: ModelConfig, weights: Weights, backend: Backend, cache: PagedKVCache
    ) -> None:
        self.config = config
        self.weights = weights
        self.backend = backend
        self.cache = cache
        self.rope = Rope(config, backend, weights.rope_freq_factors)

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
    ) -> ModelRunner:
        with backend.activate():
            w = weights if weights is not None else random_weights(config, backend, seed)
            cache = PagedKVCache(config, backend, num_blocks, block_size, num_host_blocks)
            return cls(config, w, backend, cache)

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
        cfg, xp, w, bs = self.config, self.backend.xp, self.weights, self.cache.block_size
        # Decodes (one new token) first, as one group; then each prefill on its own.
        decodes = [s for s in works if len(s.token_ids) == 1]
        prefills = [s for s in works if len(s.token_ids) > 1]
        order = decodes + prefills
        for s in order:
            self._check(s)
        tokens = np.concatenate([np.asarray(s.token_ids, dtype=np.int64) for s in order])
        positions = np.concatenate(
            [np.arange(s.start, s.start + len(s.token_ids), dtype=np.int64) for s in order]
        )
        tables = [np.asarray(s.block_table, dtype=np.int64) for s in order]
        owner = np.repeat(np.arange(len(order)), [len(s.token_ids) for s in order])
        write_blocks = np.concatenate(
            [tables[i][positions[owner == i] // bs] for i in range(len(order))]
        )
        dev = self.backend.to_device
        d_pos, d_wb, d_wo = dev(positions), dev(write_blocks), dev(positions % bs)
        if decodes:
            lengths = np.array([s.start + 1 for s in decodes], dtype=np.int64)
            span = np.arange(int(lengths.max()))
            slot_ok = span[None, :] < lengths[:, None]  # [B, Lmax]; padding reads slot 0
            width = -(-int(lengths.max()) // bs)
            pad_table = np.zeros((len(decodes), width), dtype=np.int64)
            for i, s in enumerate(decodes):
                used = s.block_table[:width]
                pad_table[i, : len(used)] = used
            dec_blocks = np.where(slot_ok, pad_table[:, span // bs], 0)
            dec_offsets = np.where(slot_ok, span[None, :] % bs, 0)
            dec_gather = (dev(dec_blocks), dev(dec_offsets))
            d_lengths = dev(lengths)
        pre_gather = []
        offset = len(decodes)
        for s in prefills:
            ctx = np.arange(s.start + len(s.token_ids))
            table = np.asarray(s.block_table, dtype=np.int64)
            pre_gather.append((offset, s, dev(table[ctx // bs]), dev(ctx % bs)))
            offset += len(s.token_ids)

        x = w.embed[dev(tokens)]
        nq, nkv, hd, g = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.group_size
        for li, lw in enumerate(w.layers):
            h = rms_norm(xp, x, lw.attn_norm, cfg.norm_eps)
            qkv = h @ lw.wqkv
            t = qkv.shape[0]
            q = self.rope(qkv[:, : nq * hd].reshape(t, nq, hd), d_pos)
            k = self.rope(qkv[:, nq * hd : (nq + nkv) * hd].reshape(t, nkv, hd), d_pos)
            v = qkv[:, (nq + nkv) * hd :].reshape(t, nkv, hd)
            self.cache.write(li, d_wb, d_wo, k, v)
            attn = xp.empty_like(q)
            if decodes:
                kc, vc = self.cache.gather(li, *dec_gather)
                attn[: len(decodes)] = decode_attention(xp, q[: len(decodes)], kc, vc, d_lengths, g)
            for first, s, gb, go in pre_gather:
                kc, vc = self.cache.gather(li, gb, go)
                n = len(s.token_ids)
                attn[first : first + n] = prefill_attention(xp, q[first : first + n], kc, vc,
                                                            s.start, g)  # fmt: skip
            x = x + attn.reshape(t, nq * hd) @ lw.wo
            h = rms_norm(xp, x, lw.ffn_norm, cfg.norm_eps)
            x = x + swiglu(xp, h @ lw.w_gate_up, cfg.ffn_dim) @ lw.w_down

        ends = np.cumsum([len(s.token_ids) for s in order]) - 1
        sampling = [(i, s) for i, s in enumerate(order) if s.sample]
        if not sampling:
            return PendingStep(self.backend, (), None, {} if return_logits else None)
        last = x[dev(np.array([ends[i] for i, _ in sampling]))]
        logits = (rms_norm(xp, last, w.norm, cfg.norm_eps) @ w.lm_head).astype(xp.float32)
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
