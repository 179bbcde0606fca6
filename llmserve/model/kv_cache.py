"""The paged KV cache's memory: a device pool of blocks and a host pool for swapped ones.

Layout is block-major, [block, layer, k/v, slot, kv head, head dim], so that one block is
one contiguous region: a swap moves whole blocks with one gather and one copy. The
BlockManager decides which block ids a sequence owns; this class only holds the values.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from typing import Any

import numpy as np

from llmserve.errors import ConfigError
from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig


class PagedKVCache:
    """Device KV blocks plus host (pinned on CUDA) blocks. Owned by the device worker that
    runs the model's steps; the scheduler never touches it."""

    def __init__(
        self,
        config: ModelConfig,
        backend: Backend,
        num_blocks: int,
        block_size: int,
        num_host_blocks: int,
    ) -> None:
        if num_blocks < 1 or block_size < 1 or num_host_blocks < 0:
            raise ConfigError(
                f"KV cache needs num_blocks >= 1, block_size >= 1, num_host_blocks >= 0; got "
                f"{num_blocks}, {block_size}, {num_host_blocks}"
            )
        self.backend = backend
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.num_host_blocks = num_host_blocks
        self.block_shape = (config.n_layers, 2, block_size, config.n_kv_heads, config.head_dim)
        self.data = backend.xp.zeros((num_blocks, *self.block_shape), dtype=backend.dtype)
        self.host = backend.empty_host((num_host_blocks, *self.block_shape), self.data.dtype)

    @property
    def block_nbytes(self) -> int:
        return int(np.prod(self.block_shape)) * self.data.dtype.itemsize

    def write(self, layer: int, blocks: Any, offsets: Any, k: Any, v: Any) -> None:
        """Store K and V [T, kv heads, head dim] at (block, offset) slots [T]."""
        self.data[blocks, layer, 0, offsets] = k
        self.data[blocks, layer, 1, offsets] = v

    def gather(self, layer: int, blocks: Any, offsets: Any) -> tuple[Any, Any]:
        """K and V at the (block, offset) slots of any shape S: each [*S, kv heads, head dim]."""
        return self.data[blocks, layer, 0, offsets], self.data[blocks, layer, 1, offsets]

    def swap_out(self, pairs: Seq[tuple[int, int]]) -> int:
        """Copy device blocks to host blocks, (device id, host id) pairs; returns bytes.
        On CUDA the copies are enqueued on the current stream into pinned memory."""
        if not pairs:
            return 0
        dev = [p[0] for p in pairs]
        host = [p[1] for p in pairs]
        self._check(dev, host)
        if self.backend.is_cuda:
            stream = self.backend.xp.cuda.get_current_stream()
            for d, h in pairs:  # one async DMA per contiguous block
                _get_async(self.data[d], self.host[h], stream)
        else:
            self.host[host] = self.data[dev]
        return len(pairs) * self.block_nbytes

    def swap_in(self, pairs: Seq[tuple[int, int]]) -> int:
        """Copy host blocks back to device blocks, (host id, device id) pairs."""
        if not pairs:
            return 0
        host = [p[0] for p in pairs]
        dev = [p[1] for p in pairs]
        self._check(dev, host)
        if self.backend.is_cuda:
            stream = self.backend.xp.cuda.get_current_stream()
            for h, d in pairs:
                self.data[d].set(self.host[h], stream=stream)
        else:
            self.data[dev] = self.host[host]
        return len(pairs) * self.block_nbytes

    def _check(self, dev: list[int], host: list[int]) -> None:
        bad_dev = [b for b in dev if not 0 <= b < self.num_blocks]
        bad_host = [b for b in host if not 0 <= b < self.num_host_blocks]
        if bad_dev or bad_host:
            raise ConfigError(
                f"swap names blocks outside the pools: device {bad_dev} of "
                f"{self.num_blocks}, host {bad_host} of {self.num_host_blocks}"
            )


def _get_async(src: Any, out: np.ndarray, stream: Any) -> None:
    """Device -> pinned host copy on `stream` without waiting (CuPy >= 13 has `blocking`)."""
    try:
        src.get(stream=stream, out=out, blocking=False)
    except TypeError:  # older CuPy: a synchronous copy, correct but slower
        src.get(stream=stream, out=out)
