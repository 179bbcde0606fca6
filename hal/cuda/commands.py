"""Commands for a CudaHwQueue: kernel launches, closures, copies, graphs, guarded kernels.

Every command is an HwCommand whose payload enqueues work on the queue's stream: the
queue calls it at launch time with that stream current, and keeps its return value as
`result` (e.g. an output array, ready once the command completes). An HwCommand with no
payload and `duration_us > 0` runs the device's calibrated spin kernel for that long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cupy

from hal.command import HwCommand

if TYPE_CHECKING:
    from hal.cuda.guard import GuardedKernel

Dim = int | tuple[int, ...]


def dim3(value: Dim, what: str = "grid") -> tuple[int, int, int]:
    """A grid or block size as three positive ints."""
    t = (value,) if isinstance(value, int) else tuple(value)
    if not 1 <= len(t) <= 3 or any(not isinstance(v, int) or v < 1 for v in t):
        raise ValueError(f"{what} {value!r}: expected 1 to 3 positive ints")
    return (*t, 1, 1)[:3]  # type: ignore[return-value]


class CudaCommand(HwCommand):
    """A level-1 command: a closure run with the queue's stream current."""


@dataclass(eq=False)
class GuardedLaunch(HwCommand):
    """A launch of a GuardedKernel: flushable at level 2 (see hal.cuda.guard)."""

    kernel: GuardedKernel | None = None
    grid: tuple[int, int, int] = (1, 1, 1)
    block: tuple[int, int, int] = (1, 1, 1)
    args: tuple[Any, ...] = field(default_factory=tuple)
    shared_mem: int = 0


def call(fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any) -> CudaCommand:
    """Any CuPy / cuBLAS work as one command: `fn(*args, **kwargs)` on the queue's stream."""
    return CudaCommand(payload=lambda: fn(*args, **kwargs), name=name or getattr(fn, "__name__", "call"))


def kernel_launch(
    kernel: Any, grid: Dim, block: Dim, args: Sequence[Any], shared_mem: int = 0, name: str = ""
) -> CudaCommand:
    """A RawKernel / RawModule function launch (level 1)."""
    g, b = dim3(grid), dim3(block, "block")
    return CudaCommand(
        payload=lambda: kernel(g, b, tuple(args), shared_mem=shared_mem),
        name=name or getattr(kernel, "name", "kernel"),
    )


def memcpy(dst: cupy.ndarray | Any, src: Any, name: str = "memcpy") -> CudaCommand:
    """Copy host->device (`dst` a cupy array), device->host (`dst` a numpy array) or d->d."""
    if isinstance(dst, cupy.ndarray):
        if isinstance(src, cupy.ndarray):
            return CudaCommand(payload=lambda: dst.__setitem__(Ellipsis, src), name=name)
        return CudaCommand(payload=lambda: dst.set(src, stream=cupy.cuda.get_current_stream()), name=name)
    if not isinstance(src, cupy.ndarray):
        raise TypeError(f"memcpy: one side must be a cupy array, got {type(dst).__name__} <- {type(src).__name__}")
    return CudaCommand(payload=lambda: src.get(stream=cupy.cuda.get_current_stream(), out=dst), name=name)


def memset(dst: cupy.ndarray, value: int, name: str = "memset") -> CudaCommand:
    """Fill every byte of `dst` with `value` (0..255)."""
    if not 0 <= value <= 255:
        raise ValueError(f"memset value {value} is out of range [0, 255]")
    stream_ptr = lambda: cupy.cuda.get_current_stream().ptr  # noqa: E731
    return CudaCommand(
        payload=lambda: cupy.cuda.runtime.memsetAsync(dst.data.ptr, value, dst.nbytes, stream_ptr()),
        name=name,
    )


def graph_launch(graph: Any, name: str = "graph") -> CudaCommand:
    """A captured cupy.cuda.Graph, replayed on the queue's stream (level 1)."""
    return CudaCommand(payload=lambda: graph.launch(cupy.cuda.get_current_stream()), name=name)
