"""Kernel launches with their arguments packed once per signature, straight to the driver.

CuPy's RawKernel call converts each argument in Python-level code, about 1 us apiece on
the H100's host, and a guarded launch has nine arguments more than its kernel's own.
Guarded launches sit on the launching thread's path of every level-2 command, so
`PackedLauncher` packs the argument values into one buffer with a `struct` layout chosen
by the arguments' types, and calls `cuLaunchKernel` through CuPy's driver binding.
Measured (bench/cuda_launch_cost.py): a guarded launch 11.6 -> 7.8 us of host time, a
plain one 7.0 -> 6.0 us.

Arguments it packs: CuPy arrays (their device pointer) and NumPy scalars (their bytes).
Anything else (a Python number, whose C type CuPy infers, or an object with
`__cuda_array_interface__`) goes through CuPy's own call, unchanged. The instrumenter's
own trailing parameters, whose types are known, come as plain ints with their format
(`extra_format`), so no NumPy scalar is made for them either.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Sequence
from typing import Any

import cupy
import numpy as np
from cupy.cuda import driver

from hal.cuda._compat import func_ptr

_NUMPY = {"P": np.uint64, "Q": np.uint64, "I": np.uint32}  # extra formats, for CuPy's call
_CODES = {  # NumPy scalar type -> struct code (native size and alignment, as in CUDA C++)
    np.bool_: "?", np.int8: "b", np.uint8: "B", np.int16: "h", np.uint16: "H", np.int32: "i",
    np.uint32: "I", np.int64: "q", np.uint64: "Q", np.float16: "e", np.float32: "f", np.float64: "d",
}  # fmt: skip


def signature(args: Sequence[Any]) -> str | None:
    """The struct format of `args`, or None where one of them is not packable."""
    codes = []
    for a in args:
        if isinstance(a, cupy.ndarray):
            codes.append("P")
        else:
            code = _CODES.get(type(a))
            if code is None:
                return None
            codes.append(code)
    return "@" + "".join(codes)


class _Packed:
    """One signature's buffer: values packed in place, a pointer to each for the driver."""

    def __init__(self, fmt: str) -> None:
        self.struct = struct.Struct(fmt)
        self.buffer = ctypes.create_string_buffer(max(self.struct.size, 1))
        base = ctypes.addressof(self.buffer)
        offsets, codes = [], fmt[1:]
        for i in range(len(codes)):
            end = struct.calcsize("@" + codes[: i + 1])
            offsets.append(base + end - struct.calcsize("@" + codes[i]))
        self.pointers = (ctypes.c_void_p * max(len(offsets), 1))(*offsets)
        self.params = ctypes.addressof(self.pointers)
        self.lock = threading.Lock()


class PackedLauncher:
    """Launches one RawKernel, packing arguments as above; thread-safe. `extra_format`:
    the struct codes of trailing arguments always passed as ints (see `__call__`)."""

    def __init__(self, kernel: cupy.RawKernel, extra_format: str = "") -> None:
        if set(extra_format) - set(_NUMPY):
            raise ValueError(f"extra_format {extra_format!r}: only codes of {sorted(_NUMPY)}")
        self.kernel = kernel
        self.extra_format = extra_format
        self._functions: dict[int, int] = {}  # device -> CUfunction
        self._packed: dict[str, _Packed] = {}

    def __call__(self, grid: tuple[int, int, int], block: tuple[int, int, int], args: Sequence[Any],
                 shared_mem: int, stream: cupy.cuda.Stream, device: int, extra: Sequence[int] = ()) -> None:  # fmt: skip
        """Launch on `stream` of `device` (the calling thread's current device) with
        `args` then `extra` (ints, one per code of `extra_format`)."""
        fmt = signature(args)
        if fmt is None:
            converted = tuple(_NUMPY[c](v) for c, v in zip(self.extra_format, extra, strict=True))
            with stream:
                self.kernel(grid, block, (*args, *converted), shared_mem=shared_mem)
            return
        fmt += self.extra_format
        packed = self._packed.get(fmt)
        if packed is None:
            packed = self._packed.setdefault(fmt, _Packed(fmt))
        function = self._functions.get(device)
        if function is None:
            function = self._functions.setdefault(device, func_ptr(self.kernel))
        values = [a.data.ptr if isinstance(a, cupy.ndarray) else a for a in args]
        with packed.lock:
            packed.struct.pack_into(packed.buffer, 0, *values, *extra)
            driver.launchKernel(function, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                shared_mem, stream.ptr, packed.params, 0)  # fmt: skip
