"""The deactivation flag of a queue and the gate that makes its stream wait on it.

The host sets the flag in pinned host memory with a plain store: no driver call, so a
suspend waits neither for the driver's lock nor for the interpreter lock behind other
threads' launches (on the H100 a `cuStreamWriteValue32` took 14-29 us at the median and
175-250 us at P99 beside a thread launching level-2 commands). Reads of pinned host
memory serialise over PCIe at about 1 us each across the whole GPU (measured: 20 M
blocks took 22 s), so guarded blocks read a copy in device memory (L2), which one
sentinel block per wave refreshes from the host word (hal.cuda.instrument). Resuming
clears both: the host word, then the copy through a high-priority control stream
(`cuStreamWriteValue32`, else a 4-byte async copy); the gate clears the copy too.
The gate holds a stream behind a flushed kernel until `reactivate`. Two kinds:

- `TicketGate` (for queues on a priority board, hal.board, and for long launches while
  another process time-slices the GPU, hal.sharing): a one-thread
  *ticket* kernel, which starts only once the kernel before it has finished, writes its
  number `i` to a word in pinned host memory if the queue is not deactivated (nor
  outranked on the board), else records `i` as refused; then
  `cuStreamWaitValue64(word >= i)` holds the stream until it does, until `open()`
  writes the number of the last gate issued, or until a board watcher's `release()`
  writes the refused number. A blocked stream runs nothing on the GPU:
  measured on the H100, a foreground process beside a context blocked so runs as fast as
  alone (P50 1.095 vs 1.05-1.09 ms), against +12% beside a context whose gate is a
  napping kernel (bench/scratch history, docs/architecture.md "CUDA across processes").
  A bare `cuStreamWaitValue` is not enough: the stream's front end evaluates it while
  the kernel before it still runs, before the flag is set, and the relaunch would run at
  once; the ticket's condition can only come true after that kernel.
  Its price, measured on the H100: the wait is evaluated before the ticket has run, and
  an unsatisfied wait costs the stream ~12 us per command (an 8-layer stack at level 2:
  +28% instead of +14%) and slowed a suspend's flag write while that was a driver call
  (level-2 P50 65-76 us instead of 33-46). So a queue uses it only where parking is
  the point (hal.cuda.hwqueue.PARK_MIN_US). A guarded launch of a few waves needs no
  ticket kernel: its own last block writes the number (`issue`, `hold`;
  hal.cuda.instrument; longer ones keep the kernel, hal.cuda.hwqueue.SELF_TICKET_MAX_WAVES).
  A launch made while a higher level already runs parks with no kernel at all (`park`):
  a wait on a second word, which the board watcher's `release` (or `open`) writes. A
  ticket kernel there would run at once on an idle stream, and on the H100 any kernel of
  this context while another process holds the GPU hands the GPU over: the higher
  level's next kernel then pays the switch back.
- `StreamGate` (the default): a one-block kernel that naps while the host flag is set.
  Guarded kernels compiled with the device runtime launch their own napping gate from
  the GPU when they flush (hal.cuda.instrument); the host enqueues a StreamGate only
  behind guarded launches without it (no device runtime: CUDA refuses dynamic
  parallelism under MPS). A level-1 command needs none before it: the launch before it
  has its own gate behind it, and a napping gate passes unless a flush latched the flag.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from functools import cache

import cupy
import numpy as np

from hal.cuda._compat import driver_fn
from hal.cuda.instrument import TICKET_PROTOCOL
from hal.cuda.launch import PackedLauncher

log = logging.getLogger(__name__)

_GATE_SRC = r"""
extern "C" __global__ void xs_gate(const volatile unsigned int* host, volatile unsigned int* flag) {
  // Only a latched copy can have flushed the kernel before: otherwise pass at L2 speed (a
  // read of the host word crosses PCIe, a few us on every command). A suspend that no
  // sentinel has seen yet is caught by the next kernel's, and the gate after it parks.
  if (threadIdx.x != 0 || flag[0] == 0u) return;
  while (*host != 0u) __nanosleep(2000);
  flag[0] = 0u;  // the next kernel runs whole
}
"""


@cache
def _write_value32():
    return driver_fn("cuStreamWriteValue32", [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint])


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
    """A queue's deactivation flag: a host word (`host_ptr`) and device words (`ptr`): [0]
    the device's copy of the host word, [1] the board latch (see the module docstring).

    Threads: `raise_` from any thread; `lower` and `set` from any thread whose current
    device is this one.
    """

    def __init__(self) -> None:
        self.device = cupy.cuda.Device().id
        self.array = cupy.zeros(16, dtype=cupy.uint32)
        self.ptr = int(self.array.data.ptr)
        self._host_mem = cupy.cuda.alloc_pinned_memory(4)
        self._host = np.frombuffer(self._host_mem, dtype=np.uint32, count=1)
        self._host[0] = 0
        self.host_ptr = self._host_mem.ptr  # UVA: the same address on the device
        self._ctl = cupy.cuda.Stream(non_blocking=True, priority=stream_priority_range()[1])
        self._write = _write_value32()
        self._src = cupy.cuda.alloc_pinned_memory(8)
        np.frombuffer(self._src, dtype=np.uint32, count=2)[:] = (0, 1)

    @property
    def value(self) -> int:
        return int(self._host[0])

    def raise_(self) -> None:
        """Deactivate: one store to host memory, which sentinels and gates read."""
        self._host[0] = 1

    def lower(self) -> None:
        """Reactivate: clear the host word, then the device's copy."""
        self._host[0] = 0
        self.set(0)

    def set(self, value: int, word: int = 0) -> None:
        """Set device word 0 (the copy of the flag) or 1 (the board latch) to 0 or 1."""
        if value not in (0, 1):
            raise ValueError(f"flag value {value} must be 0 or 1")
        ptr = self.ptr + 4 * word
        if self._write is not None:
            if self._write(self._ctl.ptr, ptr, value, 0) == 0:
                return
            log.warning("cuStreamWriteValue32 failed: setting flags with async copies")
            self._write = None
        cupy.cuda.runtime.memcpyAsync(ptr, self._src.ptr + 4 * value, 4, 1, self._ctl.ptr)


_TICKET_SRC = TICKET_PROTOCOL + r"""
extern "C" __global__ void xs_ticket(volatile unsigned long long* park, unsigned long long i, unsigned long long then,
                                     const volatile unsigned int* flushed, unsigned int epoch,
                                     const volatile unsigned int* board, unsigned int level) {
  __xs_ticket_write(park, board, level, i, flushed != 0 && *flushed != epoch ? then : i, true);
}
"""

CU_STREAM_WAIT_VALUE_GEQ = 0


@cache
def wait_value64():
    """cuStreamWaitValue64, or None where the driver or device cannot run it.

    Tried once on a scratch stream with a wait that is already satisfied: the device
    attribute that used to say so (CAN_USE_64_BIT_STREAM_MEM_OPS) is deprecated and reads
    0 on the H100 with CUDA 13, where the v2 call works.
    """
    fn = driver_fn("cuStreamWaitValue64", [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint])
    if fn is None:
        return None
    word = cupy.cuda.alloc_pinned_memory(8)
    np.frombuffer(word, dtype=np.uint64, count=1)[0] = 1
    stream = cupy.cuda.Stream(non_blocking=True)
    if fn(stream.ptr, word.ptr, 1, CU_STREAM_WAIT_VALUE_GEQ) != 0:
        log.info("cuStreamWaitValue64 refused: level-2 gates are kernels")
        return None
    stream.synchronize()
    return fn


@cache
def _ticket_launcher() -> PackedLauncher:
    return PackedLauncher(cupy.RawKernel(_TICKET_SRC, "xs_ticket"), "QQQQIQI")


class TicketGate:
    """Holds a stream at `hold()` points while closed, with nothing running on the GPU.

    `close()` / `open()` are the queue's deactivate / reactivate; `wait(stream)` enqueues
    the ticket kernel and the stream-memory wait on `stream` (see the module docstring).
    Each hold has its writer ahead of it on the stream (the ticket kernel, or a guarded
    launch that is its own ticket, hal.cuda.instrument): once the work before it is done
    it writes its number, or, where the queue is deactivated or outranked on the board,
    records the number as refused (`__xs_ticket_write`). `release` lets the stream past
    the last refused hold, where it parks, and no further: the holds behind it keep their
    writers, so a relaunch can be stopped again behind its own hold (hal.cuda.hwqueue).
    Race-free because the host and the writer each write first and look second: `open`
    clears `off` before it writes the last ticket issued, and a board's level goes down
    before the watcher's `release` reads the refusal; a writer records its refusal, then
    reads `off` and the board again and passes if it may now, so one of the two sees the
    other.
    Threads: `issue`, `write`, `hold`, `wait` and `park` under the queue's launch lock;
    `open`/`close`/`release` from any thread.
    """

    kind = "ticket"

    def __init__(self, wait_value64) -> None:
        self._device = cupy.cuda.Device().id
        self._wait = wait_value64
        self._mem = cupy.cuda.alloc_pinned_memory(40)
        words = np.frombuffer(self._mem, dtype=np.uint64, count=5)
        words[:] = 0
        self._word = words[0:1]  # the ticket word: the stream may pass gates numbered <= it
        self._off = np.frombuffer(self._mem, dtype=np.uint32, count=4)[2:3]  # 1 while closed
        self._refused = words[2:3]  # the last ticket a writer refused
        self._passed = words[3:4]  # the last number a writer let the stream past
        self._park_word = words[4:5]  # the stream may pass parks numbered <= it (`park`)
        self._word_ptr = self._mem.ptr  # UVA: the same address on the device
        self._park_ptr = self._mem.ptr + 32
        self.ptr = self._word_ptr  # the words, for writers: the ticket word, `off`, refused, passed
        self._issued = 0
        self._parks = 0
        self._parked_since: float | None = None  # when the oldest park not let go was enqueued
        self._lock = threading.Lock()

    def wait(self, stream: cupy.cuda.Stream, board: int = 0, level: int = 0) -> None:
        """`board`: the address of a priority board's word (hal.board), or 0: with it the
        ticket also holds the stream while a level above `level` is active there."""
        i = self.issue()
        self.write(stream, i, board, level)
        self.hold(stream, i)

    def issue(self, n: int = 1) -> int:
        """The first of `n` new ticket numbers, in a row. A guarded kernel can be its own
        ticket: given the gate's `ptr` and the number, its last block writes it
        (hal.cuda.instrument), which spares the stream the ticket kernel; `hold` then
        enqueues the wait."""
        with self._lock:
            first = self._issued + 1
            self._issued += n
            return first

    def write(self, stream: cupy.cuda.Stream, i: int, board: int = 0, level: int = 0, then: int = 0,
              flushed: int = 0, epoch: int = 0) -> None:  # fmt: skip
        """Enqueue the ticket kernel of hold `i`; `then`: a later hold it opens too where the
        guarded launch of `epoch` (its "flushed" word at `flushed`) flushed nothing."""
        _ticket_launcher()((1, 1, 1), (1, 1, 1), (), 0, stream, self._device,
                           (self.ptr, i, then or i, flushed, epoch, board, level))  # fmt: skip

    def hold(self, stream: cupy.cuda.Stream, i: int) -> None:
        """Hold `stream` until ticket `i` (issued, and written behind the work before) or `open`."""
        self._wait_for(stream, self._word_ptr, i)

    def _wait_for(self, stream: cupy.cuda.Stream, word_ptr: int, n: int) -> None:
        """Enqueue on `stream` a wait until the word at `word_ptr` is `n` or more."""
        rc = self._wait(stream.ptr, word_ptr, n, CU_STREAM_WAIT_VALUE_GEQ)
        if rc != 0:
            raise RuntimeError(f"cuStreamWaitValue64 failed with CUDA error {rc}")

    def park(self, stream: cupy.cuda.Stream, may_go: Callable[[], bool]) -> None:
        """Hold `stream` here, with no kernel, until `release` (a board watcher, once the
        level may run) or `open`. For a launch made while a higher level runs: `may_go`
        says whether it may run now, and is asked after the wait is enqueued (the host's
        write-first, look-second, as the ticket writers do): a watcher's release that
        looked before this park counted is then seen here, and this park lets itself go."""
        with self._lock:
            self._parks += 1
            n = self._parks
            if self._parked_since is None:
                self._parked_since = time.monotonic()
        self._wait_for(stream, self._park_ptr, n)
        if may_go():
            with self._lock:
                self._unpark_locked()

    def unpark_stale(self, age_s: float, now: float) -> bool:
        """Let the stream past its parks where the oldest was enqueued over `age_s` ago,
        though the level above still runs; True if it did. What comes next is a guarded
        launch of an outranked queue: it flushes after its first wave and stops at its own
        hold, which the watcher's `release` opens as before (hal.cuda.hwqueue,
        STALE_PARK_S says why)."""
        with self._lock:
            if self._parked_since is None or now - self._parked_since < age_s:
                return False
            return self._unpark_locked()

    def _unpark_locked(self) -> bool:
        if self._off[0] or int(self._park_word[0]) >= self._parks:
            return False
        self._park_word[0] = self._parks
        self._parked_since = None
        return True

    def close(self) -> None:
        self._off[0] = 1

    def open(self) -> None:
        with self._lock:
            self._off[0] = 0
            self._word[0] = self._issued
            self._park_word[0] = self._parks
            self._parked_since = None

    def release(self) -> bool:
        """Let the stream past the hold it parked at, and past every `park`, unless the queue
        is deactivated (what a board watcher does once no higher level is active); True
        if it wrote a word.

        Its read of the word and its store are two steps, and this thread can be held
        between them (the interpreter lock, the OS) while a writer that passed on its own
        look again lets the stream run on to later writers: the store then lowers the word
        below what they wrote, and the stream would wait for good at a hold whose writer
        has run. So the word is also raised to the last number a writer passed, and the
        watcher's next call (on the next board change, or within `hal.board.REAP_S`)
        repairs such a store."""
        with self._lock:
            unparked = self._unpark_locked()
            target = int(self._passed[0])  # passed by a writer: always safe to restore
            if not self._off[0]:
                target = max(target, int(self._refused[0]))
            if int(self._word[0]) >= target:
                return unparked
            self._word[0] = target
            return True


def ticket_gate() -> TicketGate | None:
    """A new ticket gate, or None where the driver cannot wait on memory (use StreamGate)."""
    fn = wait_value64()
    return TicketGate(fn) if fn is not None else None


@cache
def _gate_launcher() -> PackedLauncher:
    return PackedLauncher(cupy.RawKernel(_GATE_SRC, "xs_gate"), "QQ")


class StreamGate:
    """Enqueues 'wait until the flag is clear' on a stream: a kernel that naps on the GPU
    while the host word is set, so a suspended context stays busy (the fallback gate)."""

    kind = "kernel"

    def __init__(self, flag: DeviceFlag) -> None:
        self._device = flag.device
        self._extra = (flag.host_ptr, flag.ptr)

    def wait(self, stream: cupy.cuda.Stream, board: int = 0, level: int = 0) -> None:
        """Enqueue the gate on `stream` (`board`, `level`: a ticket's; a nap ignores them)."""
        _gate_launcher()((1, 1, 1), (32, 1, 1), (), 0, stream, self._device, self._extra)

    def release(self) -> bool:
        return False

    def close(self) -> None:
        """The flag closes this gate: nothing more to do."""

    def open(self) -> None:
        """The flag opens this gate: nothing more to do."""
