"""How long a guarded launch runs on the GPU, measured per launch shape.

At level 2 the guard costs each block a flag read and a barrier before its body: under
1% of a long kernel, but 25-60% of a few-microsecond elementwise or normalisation
kernel, whose blocks are all latency (H100: a 4,096-block bias-GELU 5.1 -> 8.2 us). A
launch that short gains nothing from flushing: a suspend would wait longer for its
guard's news than for the kernel. So a queue launches it plain (hal.cuda.hwqueue,
`plain_budget_us`) once its shape is measured short.

A shape is the kernel, grid, block, dynamic shared memory and the launch's scalar
arguments (a GEMM's sizes, a spin's duration), not its array pointers. The first
`SAMPLES` launches of a shape are timed with a pair of timing events around the main
kernel, not the gate and relaunch that the host may launch behind it (about 5 us of
host time each); the estimate is the shortest, so a launch that waited
behind another process, or started on an idle stream behind its own launch call,
counts only if nothing faster was seen: an overestimate only keeps a launch guarded.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

import cupy

from hal.cuda.completions import EventPool

SAMPLES = 3


_scalar_types: dict[type, bool] = {}  # an argument's type -> whether it goes into shapes


def _scalar(arg: Any) -> bool:
    """Whether `arg` is part of a shape: hashable and not an array. Decided once per type:
    on every guarded launch, and a CuPy array's `__cuda_array_interface__` is a property
    that builds a dict (~1 us of host time per array argument, asked afresh)."""
    kind = _scalar_types.get(type(arg))
    if kind is None:
        kind = _scalar_types[type(arg)] = not hasattr(arg, "__cuda_array_interface__") and isinstance(arg, Hashable)
    return kind


def shape_key(kernel: Any, grid: tuple, block: tuple, shared_mem: int, args: tuple) -> tuple:
    """What a launch's duration depends on: everything but its arrays."""
    return (kernel, grid, block, shared_mem, tuple([a for a in args if _scalar(a)]))


class LaunchDurations:
    """Measured GPU durations of launch shapes on one device; thread-safe."""

    def __init__(self, device_index: int) -> None:
        self._events = EventPool(device_index, timing=True)
        self._lock = threading.Lock()
        # shape -> the shortest of its SAMPLES durations (us), once all are in; read
        # without the lock on every guarded launch (a dict lookup is atomic in CPython)
        self._final: dict[tuple, float] = {}
        self._best: dict[tuple, float] = {}  # shape -> shortest duration so far (us)
        self._count: dict[tuple, int] = {}  # shape -> samples taken (finished or not)
        self._pending: dict[tuple, list[tuple[cupy.cuda.Event, cupy.cuda.Event]]] = {}

    def estimate_us(self, key: tuple) -> float | None:
        """The shortest of the shape's `SAMPLES` durations, or None until all are in."""
        us = self._final.get(key)
        if us is not None:
            return us
        with self._lock:
            pending = self._pending.get(key)
            if pending:
                self._collect_locked(key, pending)
            if self._count.get(key, 0) < SAMPLES or key in self._pending:
                return None
            self._final[key] = us = self._best[key]
            return us

    def begin(self, key: tuple, stream: cupy.cuda.Stream) -> cupy.cuda.Event | None:
        """Record the start of a timed launch on `stream` (the launch comes next), or
        None where the shape has all its samples taken."""
        with self._lock:
            if self._count.get(key, 0) >= SAMPLES:
                return None
            self._count[key] = self._count.get(key, 0) + 1
        start = self._events.get()
        start.record(stream)
        return start

    def end(self, key: tuple, start: cupy.cuda.Event, stream: cupy.cuda.Stream) -> None:
        """Record the end of the timed launch begun with `start`."""
        stop = self._events.get()
        stop.record(stream)
        with self._lock:
            self._pending.setdefault(key, []).append((start, stop))

    def _collect_locked(self, key: tuple, pending: list) -> None:
        left = []
        for start, stop in pending:
            if not stop.done:
                left.append((start, stop))
                continue
            us = cupy.cuda.get_elapsed_time(start, stop) * 1e3
            self._best[key] = min(us, self._best.get(key, us))
            self._events.put(start)
            self._events.put(stop)
        if left:
            self._pending[key] = left
        else:
            del self._pending[key]
