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

    def load(self) -> None:
        """Compile and load the kernel now, and make the stream. Do it before anything is
        scheduled (CudaHwQueue does, for a queue with anticipation): loading a module
        may wait for the device to go idle, and a first claim from the anticipation's
        timer, while its hold parks a lower queue, waited for that queue, which waited
        for the timer to end the hold (a GPU test hung so on the H100)."""
        with self._lock, cupy.cuda.Device(self._index):
            self._load_locked()

    def _load_locked(self) -> None:
        if self._stream is None:
            kernel = cupy.RawKernel(_SRC, "xs_claim")
            stream = cupy.cuda.Stream(non_blocking=True)
            kernel((1,), (1,), (), stream=stream)  # the module loads at its first launch
            stream.synchronize()
            self._kernel, self._stream = kernel, stream

    def __call__(self) -> None:
        with self._lock, cupy.cuda.Device(self._index):
            self._load_locked()
            self._kernel((1,), (1,), (), stream=self._stream)
            self.claims += 1
