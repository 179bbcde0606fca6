"""The decoder's building blocks, written once for NumPy and CuPy: RMSNorm, rotary position
embeddings (interleaved pairs, as in Meta's reference and GGUF files), SwiGLU, softmax.
Reductions and transcendental functions run in float32 whatever the storage type."""

from __future__ import annotations

from typing import Any

from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig


def rms_norm(xp: Any, x: Any, weight: Any, eps: float) -> Any:
    x32 = x.astype(xp.float32, copy=False)
    inv = 1.0 / xp.sqrt((x32 * x32).mean(axis=-1, keepdims=True) + eps)
    return (x32 * inv).astype(x.dtype, copy=False) * weight


class Rope:
    """Rotary embeddings: cos/sin tables for every position, applied to [T, heads, head_dim]."""

    def __init__(self, config: ModelConfig, backend: Backend, freq_factors: Any | None = None):
        xp = backend.xp
        half = config.head_dim // 2
        inv_freq = 1.0 / (config.rope_theta ** (xp.arange(half, dtype=xp.float64) / half))
        if freq_factors is not None:
            inv_freq = inv_freq / xp.asarray(freq_factors, dtype=xp.float64)
        angles = xp.outer(xp.arange(config.max_position, dtype=xp.float64), inv_freq)
        self.xp = xp
        self.max_position = config.max_position
        self.cos = xp.cos(angles).astype(xp.float32)
        self.sin = xp.sin(angles).astype(xp.float32)

    def __call__(self, x: Any, positions: Any) -> Any:
        """Rotate pairs (2i, 2i+1) of every head of `x` [T, heads, head_dim] by position."""
        xp = self.xp
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        x32 = x.astype(xp.float32, copy=False)
        even, odd = x32[..., 0::2], x32[..., 1::2]
        out = xp.empty_like(x32)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out.astype(x.dtype, copy=False)


def swiglu(xp: Any, gate_up: Any, ffn_dim: int) -> Any:
    """silu(gate) * up for the fused [T, 2 ffn] projection."""
    gate = gate_up[:, :ffn_dim].astype(xp.float32)
    up = gate_up[:, ffn_dim:].astype(xp.float32, copy=False)
    return (gate / (1.0 + xp.exp(-gate)) * up).astype(gate_up.dtype, copy=False)


def softmax(xp: Any, scores: Any) -> Any:
    """Softmax over the last axis of float32 `scores`; -inf entries get probability 0."""
    top = scores.max(axis=-1, keepdims=True)
    e = xp.exp(scores - top)
    return e / e.sum(axis=-1, keepdims=True)
