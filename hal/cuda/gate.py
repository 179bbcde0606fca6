"""The deactivation flag of a queue and the gate that makes its stream wait on it.

The flag lives in device memory: every guarded block reads it once, and reads of pinned
host memory serialise over PCIe at about 1 us each across the whole GPU (measured: 20 M
blocks took 22 s), while device reads hit L2. The host sets it without blocking through
a high-priority control stream (`cuStreamWriteValue32`, else a 4-byte async copy).
The gate is a one-block kernel that naps while the flag is set: being a kernel, it starts
only after the flushed kernel before it has finished. (`cuStreamWaitValue32` was tried
first and is NOT usable here: on the H100 the wait was satisfied while the kernel before
it still ran, before the flag was set, so the relaunch ran at once.)
"""

from __future__ import annotations

import ctypes
import logging
from functools import cache

import cupy
import numpy as np

log = logging.getLogger(__name__)

_GATE_SRC = r"""
extern "C" __global__ void xs_gate(const volatile unsigned int* flag) {
  while (*flag != 0u) __nanosleep(2000);
}
"""


@cache
def _write_value32():
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        fn = getattr(lib, "cuStreamWriteValue32_v2", None) or lib.cuStreamWriteValue32
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_priority_range: tuple[int, int] | None = None


def stream_priority_range() -> tuple[int, int]:
    """(least, greatest) stream priority of the current context (greatest is most urgent)."""
    global _priority_range
    if _priority_range is not None:
        return _priority_range
    least, greatest = ctypes.c_int(0), ctypes.c_int(0)
    try:
        rc = ctypes.CDLL("libcuda.so.1").cuCtxGetStreamPriorityRange(ctypes.byref(least), ctypes.byref(greatest))
    except (OSError, AttributeError):
        rc = -1
    if rc != 0:
        return (0, 0)  # no context yet: ask again next time
    _priority_range = (least.value, greatest.value)
    return _priority_range


def stream_priority_for(priority: int) -> int:
    """The CUDA stream priority for an XSched priority (bigger is more urgent).

    CUDA offers a few levels (0 down to -5 on the H100; lower is more urgent): priorities
    of 0 or less get the default level, 1, 2, ... one level more urgent each, up to the
    device's most urgent level. Policies still decide who runs; this only lets the
    hardware start an urgent queue's blocks before older, less urgent work in flight.
    """
    least, greatest = stream_priority_range()
    return least - min(max(int(priority), 0), least - greatest)


class DeviceFlag:
    """A uint32 in device memory that the host sets asynchronously (see the module docstring).

    Threads: `set` may be called from any thread whose current device is this one.
    """

    def __init__(self) -> None:
        self.array = cupy.zeros(16, dtype=cupy.uint32)
        self.ptr = int(self.array.data.ptr)
        self.value = 0
        self._ctl = cupy.cuda.Stream(non_blocking=True, priority=stream_priority_range()[1])
        self._write = _write_value32()
        self._src = cupy.cuda.alloc_pinned_memory(8)
        np.frombuffer(self._src, dtype=np.uint32, count=2)[:] = (0, 1)

    def set(self, value: int) -> None:
        if value not in (0, 1):
            raise ValueError(f"flag value {value} must be 0 or 1")
        self.value = value
        if self._write is not None:
            if self._write(self._ctl.ptr, self.ptr, value, 0) == 0:
                return
            log.warning("cuStreamWriteValue32 failed: setting flags with async copies")
            self._write = None
        cupy.cuda.runtime.memcpyAsync(self.ptr, self._src.ptr + 4 * value, 4, 1, self._ctl.ptr)


@cache
def _gate_kernel() -> cupy.RawKernel:
    return cupy.RawKernel(_GATE_SRC, "xs_gate")


class StreamGate:
    """Enqueues 'wait until *flag == 0' on the current stream."""

    kind = "kernel"

    def __init__(self, flag_dev_ptr: int) -> None:
        self.flag_dev_ptr = flag_dev_ptr

    def wait(self, stream: cupy.cuda.Stream) -> None:
        _gate_kernel()((1,), (32,), (np.uint64(self.flag_dev_ptr),))
