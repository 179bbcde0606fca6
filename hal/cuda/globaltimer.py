"""The GPU's clock against the host's: where a board window (hal.board) is on %globaltimer.

A periodic queue publishes its next window on the board in both clocks: the host's
(time.monotonic) for the host's checks, the GPU's (%globaltimer, ns) for the sentinels
and tickets of the lower levels' kernels, which so park at the window's start by the
GPU's own clock, whatever the host's threads do then. The two clocks drift apart: on
the H100 host by about 11.5 us a second (a probe over 3 s runs), so the offset is taken
again every REFRESH_S.

A sample launches a one-thread kernel that writes %globaltimer to pinned host memory,
and the host polls for it. It is taken where this process's context has the GPU (a
queue's task just ended, its level still up: `CudaHwQueue._lower`): there the round
trip is the launch and a write over PCIe, 10-30 us. Elsewhere the kernel may wait for
another process's time slice; a sample whose round trip is over MAX_ROUND_TRIP_NS is
not kept, and the poll gives up after POLL_NS (the kernel's late write is told apart by
its sequence number).
"""

from __future__ import annotations

import threading
import time

import cupy
import numpy as np

_SRC = r"""
extern "C" __global__ void xs_globaltimer(unsigned long long* out, unsigned long long seq) {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  ((volatile unsigned long long*)out)[0] = t;
  __threadfence_system();
  ((volatile unsigned long long*)out)[1] = seq;
}
"""

REFRESH_S = 0.5
MAX_ROUND_TRIP_NS = 100_000
POLL_NS = 200_000


class DeviceClock:
    """`to_device_ns(host_s)`: a time.monotonic() time on device `index`'s %globaltimer, or
    None before the first kept sample; `sample()` takes one (see the module docstring).
    Threads: any (the device is made current for the call)."""

    def __init__(self, index: int) -> None:
        self._index = index
        self._lock = threading.Lock()
        self._stream: cupy.cuda.Stream | None = None
        self._kernel: cupy.RawKernel | None = None
        self._mem = cupy.cuda.alloc_pinned_memory(16)
        self._out = np.frombuffer(self._mem, dtype=np.uint64, count=2)
        self._out[:] = 0
        self._seq = 0
        self._offset_ns: int | None = None  # device ns - host monotonic ns
        self._taken = float("-inf")  # when (monotonic) the last sample was kept
        self.samples = self.kept = 0
        self.round_trip_ns: int | None = None  # the last kept sample's

    def load(self) -> None:
        """Compile and load the kernel and make the stream now (see ContextClaim.load)."""
        with self._lock, cupy.cuda.Device(self._index):
            if self._stream is None:
                kernel = cupy.RawKernel(_SRC, "xs_globaltimer")
                stream = cupy.cuda.Stream(non_blocking=True)
                self._seq += 1
                kernel((1,), (1,), (self._mem.ptr, np.uint64(self._seq)), stream=stream)
                stream.synchronize()
                self._kernel, self._stream = kernel, stream

    @property
    def stale(self) -> bool:
        """Whether the last kept sample is older than REFRESH_S (or there is none)."""
        return time.monotonic() - self._taken >= REFRESH_S

    def sample(self) -> bool:
        """Take a sample; whether it was kept (its round trip within MAX_ROUND_TRIP_NS)."""
        self.load()
        out = self._out
        with self._lock, cupy.cuda.Device(self._index):
            self._seq += 1
            seq = self._seq
            t0 = time.monotonic_ns()
            self._kernel((1,), (1,), (self._mem.ptr, np.uint64(seq)), stream=self._stream)
            while True:
                t1 = time.monotonic_ns()
                if int(out[1]) == seq or t1 - t0 > POLL_NS:
                    break
            self.samples += 1
            if int(out[1]) != seq or t1 - t0 > MAX_ROUND_TRIP_NS:
                return False
            # the GPU read its clock between the launch and the poll's sight of the write,
            # nearer the end (the launch call is most of the round trip): the end is taken
            self._offset_ns = int(out[0]) - t1
            self.round_trip_ns = t1 - t0
            self._taken = time.monotonic()
            self.kept += 1
            return True

    def to_device_ns(self, host_s: float) -> int | None:
        offset = self._offset_ns
        return None if offset is None else int(host_s * 1e9) + offset
