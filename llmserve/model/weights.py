"""The decoder's weights: per-layer tensors in `x @ W` layout ([in, out]), fused where the
math allows (QKV in one matrix, gate and up in one), and seeded-random initialisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig


@dataclass(frozen=True)
class LayerWeights:
    attn_norm: Any  # [d]
    wqkv: Any  # [d, (n_heads + 2 n_kv_heads) head_dim]: q, then k, then v columns
    wo: Any  # [n_heads head_dim, d]
    ffn_norm: Any  # [d]
    w_gate_up: Any  # [d, 2 ffn]: gate columns, then up columns
    w_down: Any  # [ffn, d]


@dataclass(frozen=True)
class Weights:
    embed: Any  # [vocab, d]
    layers: tuple[LayerWeights, ...]
    norm: Any  # [d]
    lm_head: Any  # [d, vocab] (a transposed view of `embed` when tied)
    rope_freq_factors: Any | None = None  # [head_dim / 2], Llama 3.1-style scaling, or None

    def nbytes(self) -> int:
        arrays = [self.embed, self.norm]
        if self.lm_head is not None and self.lm_head.base is not self.embed:
            arrays.append(self.lm_head)
        for layer in self.layers:
            arrays += [layer.attn_norm, layer.wqkv, layer.wo, layer.ffn_norm, layer.w_gate_up,
                       layer.w_down]  # fmt: skip
        return int(sum(a.nbytes for a in arrays))


def random_weights(config: ModelConfig, backend: Backend, seed: int = 0) -> Weights:
    """Seeded-random weights: normal, scaled by 1/sqrt(fan_in) so activations stay O(1);
    norm weights are ones. Every tensor has its own seed derived from `seed` and its place,
    so the values do not depend on generation order. The text they produce is noise: the
    compute, memory traffic and timing are those of a real model, the language is not."""
    xp = backend.xp
    d, hd = config.d_model, config.head_dim
    counter = iter(range(1, 1 << 30))

    def randn(shape: tuple[int, ...], fan_in: int) -> Any:
        return backend.randn(shape, seed * 1_000_003 + next(counter), fan_in**-0.5)

    def ones(n: int) -> Any:
        return xp.ones((n,), dtype=backend.dtype)

    embed = randn((config.vocab_size, d), 1)
    layers = tuple(
        LayerWeights(
            attn_norm=ones(d),
            wqkv=randn((d, config.qkv_dim), d),
            wo=randn((config.n_heads * hd, d), config.n_heads * hd),
            ffn_norm=ones(d),
            w_gate_up=randn((d, 2 * config.ffn_dim), d),
            w_down=randn((config.ffn_dim, d), config.ffn_dim),
        )
        for _ in range(config.n_layers)
    )
    lm_head = embed.T if config.tie_embeddings else randn((d, config.vocab_size), d)
    return Weights(embed=embed, layers=layers, norm=ones(d), lm_head=lm_head)
