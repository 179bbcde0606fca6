"""The per-layer operations of a step, as one object the runner calls: written once on
`xp` (NumPy or CuPy) here, and replaced by fused CUDA kernels in `cuda_kernels.py` where
that pays (float16 on a GPU, where a layer would otherwise launch ~80 small kernels).

`make_kernels` picks the implementation; both compute the same function (the GPU tests
compare them), and `XpKernels` is what the CPU always runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llmserve.model.attention import decode_attention, prefill_attention
from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig
from llmserve.model.kv_cache import PagedKVCache
from llmserve.model.layers import Rope, rms_norm, swiglu


@dataclass(frozen=True)
class StepShape:
    """The sequences of a step in row order, decodes (one new token each) first: how many
    tokens each has cached (`starts`), computes now (`counts`), and its block table."""

    starts: tuple[int, ...]
    counts: tuple[int, ...]
    tables: tuple[tuple[int, ...], ...]
    num_decodes: int

    def padded_tables(self, block_size: int, rows: range | None = None) -> np.ndarray:
        """[S, W] int64 block tables of sequences `rows` (all by default), padded with
        block 0 to the widest context (padding is masked by the lengths)."""
        rows = range(len(self.counts)) if rows is None else rows
        need = max(-(-(self.starts[i] + self.counts[i]) // block_size) for i in rows)
        out = np.zeros((len(rows), need), dtype=np.int64)
        for j, i in enumerate(rows):
            used = self.tables[i][:need]
            out[j, : len(used)] = used
        return out


class XpKernels:
    """The layer operations on the backend's array module (NumPy or CuPy), unfused."""

    fused = False

    def __init__(self, config: ModelConfig, backend: Backend, rope: Rope) -> None:
        self.config = config
        self.backend = backend
        self.xp = backend.xp
        self.rope = rope

    def rms_norm(self, x: Any, weight: Any) -> Any:
        return rms_norm(self.xp, x, weight, self.config.norm_eps)

    def rope_qk_(self, qkv: Any, positions: Any) -> None:
        """Rotate the q and k columns of `qkv` [T, qkv_dim] in place by position."""
        cfg = self.config
        t, hd = qkv.shape[0], cfg.head_dim
        for first, heads in ((0, cfg.n_heads), (cfg.n_heads * hd, cfg.n_kv_heads)):
            cols = slice(first, first + heads * hd)
            qkv[:, cols] = self.rope(qkv[:, cols].reshape(t, heads, hd), positions).reshape(t, -1)

    def write_kv(
        self, cache: PagedKVCache, layer: int, blocks: Any, offsets: Any, qkv: Any
    ) -> None:
        """Store the k and v columns of `qkv` at the (block, offset) slots [T]."""
        cfg = self.config
        t, hd, nkv = qkv.shape[0], cfg.head_dim, cfg.n_kv_heads
        k0 = cfg.n_heads * hd
        k = qkv[:, k0 : k0 + nkv * hd].reshape(t, nkv, hd)
        v = qkv[:, k0 + nkv * hd :].reshape(t, nkv, hd)
        cache.write(layer, blocks, offsets, k, v)

    def prepare_attention(self, shape: StepShape, block_size: int) -> list[np.ndarray]:
        """Host index arrays `attention` needs, copied to the device with the step's other
        indices: for the decode group, its lengths and the (block, offset) of every padded
        context slot; for each prefill, the (block, offset) of its context."""
        out: list[np.ndarray] = []
        nd = shape.num_decodes
        if nd:
            lengths = np.array([s + 1 for s in shape.starts[:nd]], dtype=np.int64)
            tables = shape.padded_tables(block_size, range(nd))
            span = np.arange(int(lengths.max()))
            ok = span[None, :] < lengths[:, None]
            out += [lengths, np.where(ok, tables[:, span // block_size], 0),
                    np.where(ok, span[None, :] % block_size, 0)]  # fmt: skip
        for i in range(nd, len(shape.counts)):
            ctx = np.arange(shape.starts[i] + shape.counts[i])
            table = np.asarray(shape.tables[i], dtype=np.int64)
            out += [table[ctx // block_size], ctx % block_size]
        return out

    def attention(self, cache: PagedKVCache, layer: int, qkv: Any, shape: StepShape,
                  args: list[Any], out: Any) -> None:  # fmt: skip
        """Attention of every new token (rows of `qkv`) over its sequence's cached context
        up to itself, written to `out` [T, heads * head_dim]: the decodes as one padded
        group, each prefill on its own with a causal mask."""
        xp, cfg = self.xp, self.config
        nq, hd, g = cfg.n_heads, cfg.head_dim, cfg.group_size
        nd = shape.num_decodes
        if nd:
            lengths, blocks, offsets = args[:3]
            args = args[3:]
            q = qkv[:nd, : nq * hd].reshape(nd, nq, hd)
            kc, vc = cache.gather(layer, blocks, offsets)
            out[:nd] = decode_attention(xp, q, kc, vc, lengths, g).reshape(nd, -1)
        first = nd
        for j, i in enumerate(range(nd, len(shape.counts))):
            n = shape.counts[i]
            q = qkv[first : first + n, : nq * hd].reshape(n, nq, hd)
            kc, vc = cache.gather(layer, args[2 * j], args[2 * j + 1])
            out[first : first + n] = prefill_attention(xp, q, kc, vc, shape.starts[i],
                                                       g).reshape(n, -1)  # fmt: skip
            first += n

    def swiglu(self, gate_up: Any) -> Any:
        return swiglu(self.xp, gate_up, self.config.ffn_dim)


def make_kernels(config: ModelConfig, backend: Backend, rope: Rope,
                 fused: bool | None = None) -> XpKernels:  # fmt: skip
    """Fused CUDA kernels for float16 on a GPU (unless `fused` is False), else XpKernels.
    `fused=True` where they cannot run raises a ConfigError."""
    from llmserve.errors import ConfigError

    dtype = np.dtype(backend.dtype)
    hd, group = config.head_dim, config.group_size
    can = backend.is_cuda and dtype == np.float16 and hd % 32 == 0 and hd <= 256 and group <= 16
    if fused and not can:
        raise ConfigError(
            f"fused kernels need float16 on a cuda device, head_dim a multiple of 32 up to "
            f"256 and at most 16 query heads per KV head; got {backend.device} {dtype}, "
            f"head_dim {hd}, group {group}"
        )
    if can and fused is not False:
        from llmserve.model.cuda_kernels import CudaKernels

        return CudaKernels(config, backend, rope)
    return XpKernels(config, backend, rope)
