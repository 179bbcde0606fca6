"""A DNN-like multi-kernel task: a stack of transformer-style MLP blocks.

Each layer: h = layernorm(x); u = h @ W1; u = gelu(u + b1); x += 0.5 * (u @ W2).
`guarded=True` uses hal.cuda.kernels (all level 2, deterministic); False uses cuBLAS
(cupy.matmul) for the GEMMs, which are level-1 commands, with guarded elementwise ones.
The default shape (1,024 tokens, d 1,024, hidden 4,096) takes about 1 ms a layer guarded
on the H100 (the tiled fp32 GEMMs ~0.5 ms each) and 0.42 ms with cuBLAS.
"""

from __future__ import annotations

import cupy

from hal.command import HwCommand
from hal.cuda import kernels as K
from hal.cuda.commands import call


class TransformerStack:
    """Weights and buffers for `layers` layers on `tokens` x `d` activations (float32)."""

    def __init__(self, tokens: int = 1024, d: int = 1024, hidden: int = 4096, layers: int = 4,
                 seed: int = 0, guarded: bool = True) -> None:  # fmt: skip
        rng = cupy.random.default_rng(seed)
        f32 = cupy.float32
        self.guarded = guarded
        self.x0 = rng.standard_normal((tokens, d), dtype=f32)
        self.x = cupy.empty_like(self.x0)
        self.h = cupy.empty_like(self.x0)
        self.u = cupy.empty((tokens, hidden), dtype=f32)
        self.v = cupy.empty_like(self.x0)
        self.w = [
            (
                1 + 0.1 * rng.standard_normal(d, dtype=f32), 0.1 * rng.standard_normal(d, dtype=f32),
                rng.standard_normal((d, hidden), dtype=f32) / d**0.5,
                0.1 * rng.standard_normal(hidden, dtype=f32),
                rng.standard_normal((hidden, d), dtype=f32) / hidden**0.5,
            )
            for _ in range(layers)
        ]  # fmt: skip
        cupy.cuda.Device().synchronize()

    def commands(self) -> list[HwCommand]:
        """One forward pass as commands: resets x from x0, then every layer."""
        x, h, u, v = self.x, self.h, self.u, self.v
        cmds: list[HwCommand] = [call(x.__setitem__, Ellipsis, self.x0, name="load")]
        for g, b, w1, b1, w2 in self.w:
            cmds.append(K.layernorm(x, h, g, b))
            cmds.append(K.sgemm(h, w1, u) if self.guarded else call(cupy.matmul, h, w1, out=u))
            cmds.append(K.bias_gelu_(u, b1))
            cmds.append(K.sgemm(u, w2, v) if self.guarded else call(cupy.matmul, u, w2, out=v))
            cmds.append(K.axpy_(x, v, 0.5))
        return cmds
