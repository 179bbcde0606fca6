"""CUDA through CuPy: streams + pooled events (level 1), guarded kernels (level 2)."""

from __future__ import annotations

from hal.cuda.errors import CudaUnavailableError, GuardError


def _check_cuda() -> None:
    try:
        import cupy
    except ImportError as exc:  # the usual case on machines without a GPU
        raise CudaUnavailableError(
            f"hal.cuda needs CuPy (e.g. `pip install cupy-cuda12x`), which is not importable: {exc}"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CUDARuntimeError, or a missing libcuda
        raise CudaUnavailableError(f"hal.cuda: no usable CUDA driver: {exc}") from None
    if count < 1:
        raise CudaUnavailableError("hal.cuda: CuPy works but no CUDA device is visible")


_check_cuda()

from hal.cuda.commands import CudaCommand, GuardedLaunch, call, graph_launch, kernel_launch  # noqa: E402
from hal.cuda.commands import memcpy, memset  # noqa: E402
from hal.cuda.device import CudaDevice, list_devices  # noqa: E402
from hal.cuda.guard import GuardedKernel  # noqa: E402
from hal.cuda.hwqueue import CudaHwQueue  # noqa: E402

__all__ = [
    "CudaCommand",
    "CudaDevice",
    "CudaHwQueue",
    "CudaUnavailableError",
    "GuardError",
    "GuardedKernel",
    "GuardedLaunch",
    "call",
    "graph_launch",
    "kernel_launch",
    "list_devices",
    "memcpy",
    "memset",
]
