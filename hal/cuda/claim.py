"""Claiming the GPU for this process's context before a foreseen task (hal.anticipation).

Without MPS the GPU time-slices contexts, and it stays on the last context that ran even
once that one is idle: the next process to launch pays the switch (0.12-0.2 ms on the
H100) with its first kernel. Measured with bare CuPy processes (bench/scratch probe, a
foreground of 4 x 250 us kernels every 5.6 ms): alone P50 1.07-1.08 ms; beside a process
that went idle 0.05-1 ms before each task 1.19-1.22 ms, no better than beside one that
runs flat out (1.23-1.25 ms); and 1.03-1.06 ms when the foreground also launched an
empty kernel 0.15-0.8 ms before each task, so that the switch happened then.
"""

from __future__ import annotations

import threading

import cupy

_SRC = r'extern "C" __global__ void xs_claim() {}'


class ContextClaim:
    """`claim()` launches an empty kernel on a private stream of device `index`: the GPU
    switches to this context now rather than at the next task's first kernel.
    Threads: any (the device is made current for the call)."""

    def __init__(self, index: int) -> None:
        self._index = index
        self._lock = threading.Lock()
        self._stream: cupy.cuda.Stream | None = None
        self._kernel: cupy.RawKernel | None = None
        self.claims = 0

    def __call__(self) -> None:
        with self._lock, cupy.cuda.Device(self._index):
            if self._stream is None:
                self._kernel = cupy.RawKernel(_SRC, "xs_claim")
                self._stream = cupy.cuda.Stream(non_blocking=True)
            self._kernel((1,), (1,), (), stream=self._stream)
            self.claims += 1
