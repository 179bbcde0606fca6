"""The calibrated spin kernel: a guarded busy-loop kernel of a requested duration.

A launch is `waves` full waves of short blocks (each spins `block_us` on %globaltimer),
so level 2 can flush it within about one block's time. Thread 0 of each block counts
its block in `count` (non-idempotent: a block run twice shows as 2) and raises
`last_end` to its end time in device nanoseconds (for preemption-latency probes).

The loop naps 256 ns between clock reads. Measured on the H100: a loop that only
reads %globaltimer fills every issue slot of the SM, and then a new block's first
global-memory access plus barrier (the level-2 guard's prologue) takes ~7 us, which
made guarded 10 us blocks 1.75x slower; with the nap the same prologue costs nothing
measurable (bench/cuda_guard_cost.py), as for real kernels, which stall on memory.
"""

from __future__ import annotations

import threading

import cupy
import numpy as np

from hal.cuda._compat import blocks_per_sm
from hal.cuda.commands import GuardedLaunch
from hal.cuda.guard import GuardedKernel

SPIN_SRC = r"""
extern "C" __global__ void __launch_bounds__(128, 16) xs_spin(unsigned long long block_ns, unsigned int* count,
                                   unsigned long long* last_end) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do { __nanosleep(256); asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < block_ns);
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned int b = blockIdx.x + gridDim.x * blockIdx.y;
    if (count) count[b] += 1u;
    if (last_end) atomicMax(last_end, t);
  }
}
"""

STAMP_SRC = r"""
extern "C" __global__ void xs_stamp(unsigned long long* out) {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  *out = t;
}
"""

THREADS = 128  # with __launch_bounds__(128, 16): full occupancy guarded or not
_kernel = GuardedKernel(SPIN_SRC, "xs_spin")
SHARED_MAX = 64  # durations whose launch `shared` keeps (a workload uses a few)


class SpinKernel:
    """Spin commands of a given duration on one device, calibrated on first use."""

    def __init__(self, device, block_us: float = 10.0) -> None:
        if not block_us > 0:
            raise ValueError(f"block_us {block_us} must be > 0")
        self.device = device
        self.block_us = block_us
        self.kernel = _kernel
        self.wave = blocks_per_sm(_kernel.plain, THREADS, 0, default=16) * device.sm_count
        self.wave_us: float | None = None
        self._lock = threading.Lock()
        self._shared: dict[float, GuardedLaunch] = {}  # duration (us) -> its launch, see `shared`

    def calibrate(self, waves: int = 200) -> float:
        """Measure one wave's duration (us) on a private stream; returns it.

        Without it a wave counts as `block_us` (the nap makes it ~3% longer). Calibrate
        only on an otherwise idle GPU: measured beside another process's work, a wave
        looks slower and every command comes out shorter than asked.
        """
        with self._lock, cupy.cuda.Device(self.device.index):
            stream = cupy.cuda.Stream(non_blocking=True)
            args = (np.uint64(int(self.block_us * 1000)), np.uint64(0), np.uint64(0))
            with stream:
                for _ in range(3):  # warm up clocks and the module
                    _kernel.plain((self.wave * waves,), (THREADS,), args)
                start, end = cupy.cuda.Event(), cupy.cuda.Event()
                start.record(stream)
                for _ in range(5):
                    _kernel.plain((self.wave * waves,), (THREADS,), args)
                end.record(stream)
            end.synchronize()
            self.wave_us = cupy.cuda.get_elapsed_time(start, end) * 1000 / (5 * waves)
            self._shared = {}  # their shapes were the nominal wave's
            return self.wave_us

    def shape(self, duration_us: float) -> tuple[int, float]:
        """(blocks, block_ns) for a launch of about `duration_us`."""
        if not duration_us > 0:
            raise ValueError(f"spin duration_us {duration_us} must be > 0")
        wave_us = self.wave_us or self.block_us  # nominal unless calibrated (see calibrate)
        if duration_us <= wave_us:
            return self.wave, duration_us * 1000 * self.block_us / wave_us
        waves = max(1, round(duration_us / wave_us))
        return waves * self.wave, self.block_us * 1000

    def command(self, duration_us: float, count: cupy.ndarray | None = None,
                last_end: cupy.ndarray | None = None, name: str = "spin") -> GuardedLaunch:  # fmt: skip
        blocks, block_ns = self.shape(duration_us)
        if count is not None and count.size < blocks:
            raise ValueError(f"count has {count.size} slots, the launch has {blocks} blocks")
        return _kernel(
            (blocks,), (THREADS,),
            (np.uint64(int(block_ns)), _ptr(count), _ptr(last_end)),
            name=name,
        )  # fmt: skip

    def shared(self, duration_us: float) -> GuardedLaunch:
        """The launch a queue makes for a command with no payload and `duration_us`
        (CudaHwQueue), made once per duration and calibration. Making one costs the
        launching thread its NumPy scalars, dims and dataclass on every command, and at
        threshold 1 that is on the path between two of a task's commands. Queues launch
        it and never track it; a command given to `launch` must be an object of its own
        (completions go by identity), so callers use `command`."""
        launch = self._shared.get(duration_us)
        if launch is None:
            shared = self._shared
            if len(shared) >= SHARED_MAX:
                shared.clear()
            launch = shared[duration_us] = self.command(duration_us)
        return launch


def _ptr(a: cupy.ndarray | None):
    return np.uint64(0) if a is None else a


_stamp: cupy.RawKernel | None = None


def stamp(out: cupy.ndarray) -> None:
    """Enqueue on the current stream: write the device time (ns, %globaltimer) to out[0]."""
    global _stamp
    if _stamp is None:
        _stamp = cupy.RawKernel(STAMP_SRC, "xs_stamp")
    _stamp((1,), (1,), (out,))
