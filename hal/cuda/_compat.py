"""Small shims over CuPy API differences between versions."""

from __future__ import annotations

import ctypes
from typing import Any

import cupy


def driver_fn(name: str, argtypes: list):
    """The driver API function `name` (its `_v2` where there is one), or None without it."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        fn = getattr(lib, f"{name}_v2", None) or getattr(lib, name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


def func_ptr(kernel: Any) -> int:
    """The CUfunction handle of a RawKernel."""
    inner = getattr(kernel, "kernel", None)
    return int(getattr(inner, "ptr", None) or kernel.ptr)


def blocks_per_sm(kernel: Any, threads: int, shared_mem: int, default: int = 4) -> int:
    """Resident blocks per SM for `kernel` (the driver's occupancy calculator)."""
    try:
        n = cupy.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(func_ptr(kernel), threads, shared_mem)
    except Exception:  # noqa: BLE001 - CuPy without the call: a safe guess
        return default
    return max(1, int(n))
