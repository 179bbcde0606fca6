"""Holds: level-1 commands launched ahead, each let past by the GPU only while the queue may run.

At threshold 1 an XQueue launches a task's next command only once the one before has
completed: a host round trip between every two commands (on the H100 host ~35-45 us
from Python: the driver's wake-up, the retire, the next launch), three a task of four
commands, which kept the fixed-priority foreground at ~1.12x native alone and 1.20-1.23x
beside a background. A hold moves that decision onto the GPU. The XQueue launches ahead
(preempt.xqueue.HOLD_WINDOW commands) in runs of at most its threshold, each run after
the first behind a hold: a one-thread *hold kernel*, which starts only once the command
before it has finished, writes its number to a word in pinned host memory if the queue
may still run, and a `cuStreamWaitValue64` on that word keeps the stream until it does.
So a suspend still lets at most `threshold` commands run (the rest of the run under way;
the next hold reads the suspend when the command before it ends, as the host would
have), and an undisturbed task pays a few microseconds of GPU time a run instead of a
round trip (measured on the H100, four 250 us commands: 1.011x native with three holds,
1.35x with a blocking round trip in plain CuPy).

The queue may run while nothing refuses it, read by the hold kernel in this order:
- its own suspend (`close`, a store to pinned host memory; `open` undoes it);
- a priority board (hal.board), while a higher level is active on it;
- xschedd's suspend gate (xschedd/gates.py), the byte the daemon sets in the agent's
  shared page, mapped for the GPU (`set_gate`): a daemon's level-1 suspend reaches the
  GPU with no process in between. A kernel that the byte refuses marks the queue's
  stall byte, so the daemon wakes the agent's gate thread when it clears the byte, and
  the thread's `XQueue.pump` lets the stream go on (`release`).

A refused hold records its number; `release` (on a resume, a pump, or a board watcher's
pass once no higher level is active) lets the stream past it, if nothing refuses any
more. Each hold waits on a word of its own, in a ring of `RING` (the hold's number
modulo it): the host's store can then only ever touch the word of the hold it means to
pass, never lower one that a later hold kernel wrote (the ticket gate's single word
needs a repair pass for that race, hal.cuda.gate.TicketGate.release).

Threads: `hold` under the queue's launch lock; the others from any thread.
"""

from __future__ import annotations

import ctypes
import threading
from functools import cache

import cupy
import numpy as np

from hal.board import LEVELS
from hal.cuda._compat import func_ptr
from hal.cuda.gate import CU_STREAM_WAIT_VALUE_GEQ, wait_value64
from hal.cuda.launch import PackedLauncher

_CLOSED, _DRAINED = 1, 2  # the control word's values
RING = 64  # hold words; more than an XQueue keeps in flight (HOLD_WINDOW commands, a hold a run)

_HOLD_SRC = r"""
// ctl: [0] the last refused hold, [1] 1 while closed, 2 once drained for good; ring: RING words,
// hold i waits on ring[i % RING]
static __device__ __forceinline__ bool __xs_hold_may(const volatile unsigned long long* ctl,
    const volatile unsigned int* board, unsigned int level, const volatile unsigned char* gate) {
  unsigned long long c = ctl[1];
  return c == 2ull || (c == 0ull && (board == 0 || *board + level >= TOPu) && (gate == 0 || *gate == 0u));
}
extern "C" __global__ void xs_hold(volatile unsigned long long* ctl, volatile unsigned long long* ring,
                                   unsigned long long i, const volatile unsigned int* board, unsigned int level,
                                   const volatile unsigned char* gate, volatile unsigned char* stall) {
  if (!__xs_hold_may(ctl, board, level, gate)) {
    ctl[0] = i;  // refused: whoever lets the queue run again passes it (`release`)
    if (gate != 0 && *gate != 0u && stall != 0) *stall = 1u;  // the daemon wakes the agent on a clear
    __threadfence_system();
    if (!__xs_hold_may(ctl, board, level, gate)) return;  // look again: a release may have looked first
  }
  ring[i % RINGull] = i;
  __threadfence_system();
}
""".replace("TOP", str(LEVELS - 1)).replace("RING", str(RING))


@cache
def _hold_launcher() -> PackedLauncher:
    return PackedLauncher(cupy.RawKernel(_HOLD_SRC, "xs_hold"), "QQQQIQQ")


class Holds:
    """The holds of one queue's stream (see the module docstring)."""

    def __init__(self, wait_fn) -> None:
        self._device = cupy.cuda.Device().id
        self._wait = wait_fn  # cuStreamWaitValue64
        self._mem = cupy.cuda.alloc_pinned_memory(8 * (2 + RING))
        words = np.frombuffer(self._mem, dtype=np.uint64, count=2 + RING)
        words[:] = 0
        self._refused = words[0:1]
        self._closed = words[1:2]
        self._ring = words[2:]
        self._ctl_ptr = self._mem.ptr  # UVA: the same address on the device
        self._ring_ptr = self._mem.ptr + 16
        self._issued = 0
        self._released = 0  # the last refused hold `release` passed
        self._gate: memoryview | None = None  # the daemon's byte, for the host's own look
        self._gate_ptr = self._stall_ptr = 0
        self._lock = threading.Lock()

    @property
    def refused(self) -> int:
        """The number of the last hold a hold kernel refused (0: none yet)."""
        return int(self._refused[0])

    def hold(self, stream: cupy.cuda.Stream, board: int = 0, level: int = 0) -> None:
        """Enqueue a hold on `stream`: the work enqueued after it runs only if, once the
        work before it is done, the queue may run (or once `release` passes it).
        `board`: the address of a priority board's word, or 0."""
        with self._lock:
            self._issued += 1
            i = self._issued
        _hold_launcher()((1, 1, 1), (1, 1, 1), (), 0, stream, self._device,
                         (self._ctl_ptr, self._ring_ptr, i, board, level, self._gate_ptr, self._stall_ptr))  # fmt: skip
        rc = self._wait(stream.ptr, self._ring_ptr + 8 * (i % RING), i, CU_STREAM_WAIT_VALUE_GEQ)
        if rc != 0:
            raise RuntimeError(f"cuStreamWaitValue64 failed with CUDA error {rc}")

    def set_gate(self, gate_ptr: int, stall_ptr: int, gate: memoryview | None) -> None:
        """Read the daemon's byte at `gate_ptr` (device-visible; 0: none) and mark a stall
        at `stall_ptr`; `gate`: the same byte for the host (`release` looks at it)."""
        with self._lock:
            self._gate, self._gate_ptr, self._stall_ptr = gate, gate_ptr, stall_ptr

    def close(self) -> None:
        """The queue's own suspend: holds from now on refuse."""
        if self._closed[0] != _DRAINED:
            self._closed[0] = _CLOSED

    def open(self, board_allows: bool = True) -> None:
        """The queue's own resume: holds pass again, and a refused one is let past
        unless something else still refuses it."""
        if self._closed[0] != _DRAINED:
            self._closed[0] = 0
        self.release(board_allows)

    def drain(self) -> None:
        """For good (the queue closes, the process exits): every hold passes, whatever
        refused it, so the stream drains."""
        self._closed[0] = _DRAINED
        self.release()  # drained, it passes the refused hold whatever refuses it

    def pass_issued(self) -> None:
        """Let the stream past every hold issued so far, whatever refuses them (each
        hold's own word, its own number); those issued later look as usual."""
        with self._lock:
            for i in range(max(self._released + 1, self._issued - RING + 1), self._issued + 1):
                self._pass_locked(i)
            self._released = max(self._released, self._issued)

    def release(self, board_allows: bool = True) -> bool:
        """Let the stream past the hold it was refused at, if the queue may run now (not
        closed, its gate byte clear, `board_allows`; anyway once drained); True if it
        wrote a word. Writes only that hold's word, and only the number it waits for."""
        with self._lock:
            r = int(self._refused[0])
            if r <= self._released:
                return False
            if self._closed[0] != _DRAINED:
                if self._closed[0] or not board_allows or (self._gate is not None and self._gate[0]):
                    return False
            self._released = r
            self._pass_locked(r)
            return True

    def _pass_locked(self, r: int) -> None:
        slot = r % RING
        if int(self._ring[slot]) < r:
            self._ring[slot] = r


def holds() -> Holds | None:
    """Holds for the current device's streams, or None where the driver cannot wait on memory."""
    fn = wait_value64()
    if fn is None:
        return None
    func_ptr(_hold_launcher().kernel)  # compiled and loaded now, not at a task's first held launch
    return Holds(fn)


_registered: dict[int, int] = {}  # page-aligned host address -> users (`register_host`)
_registered_lock = threading.Lock()
_HOST_REGISTER_PORTABLE, _HOST_REGISTER_MAPPED = 1, 2


def address_of(view: memoryview) -> int:
    """The address of a writable buffer's first byte."""
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def register_host(address: int, size: int) -> None:
    """Page-lock and map host memory that other processes share (a gate page, a priority
    board) into every CUDA context, counting users; raises CUDARuntimeError where CUDA
    refuses. Kernels then read it at the same address (UVA)."""
    with _registered_lock:
        if address in _registered:
            _registered[address] += 1
            return
        cupy.cuda.runtime.hostRegister(address, size, _HOST_REGISTER_PORTABLE | _HOST_REGISTER_MAPPED)
        _registered[address] = 1


def unregister_host(address: int) -> None:
    """One user fewer of `register_host(address, ...)`; the last unmaps it from CUDA."""
    with _registered_lock:
        n = _registered.get(address, 0) - 1
        if n > 0:
            _registered[address] = n
            return
        if _registered.pop(address, None) is not None:
            try:
                cupy.cuda.runtime.hostUnregister(address)
            except cupy.cuda.runtime.CUDARuntimeError:
                pass
