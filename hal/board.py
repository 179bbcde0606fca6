"""The priority board: which priority levels have work in flight on one device, shared by
every process of a user through one page of shared memory.

It lets a GPU preempt across processes without a round trip through xschedd. A queue
*activates* its level while it has commands in flight; `word` then holds
`LEVELS - top`, where `top` is one more than the highest active level (0 when none).
A queue of level `p` may run while `word >= LEVELS - 1 - p`: a guarded kernel's block
reads the word (pinned, mapped host memory) and flushes when a higher level is active,
and a stream waits on it with `cuStreamWaitValue` (greater-or-equal) without running
anything on the GPU (hal.cuda.gate). That is HPF at the granularity of thread blocks.

Layout (uint32 words): 0 the word above (also a futex), 1 the union of registered
levels (is anyone above me?), 2 the slot high-water mark, then one slot of
(pid, active mask, registered mask, 0) per process. Writers hold an flock on the file;
readers read without it. Levels are priorities clamped to 0..31.

Fail-safe: a process that dies with levels active leaves its slot set; `reap()` (every
`REAP_S` from each process's watcher, and whenever a slot is needed) clears the slots of
dead processes, so a parked queue resumes within that time.
"""

from __future__ import annotations

import atexit
import mmap
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from hal.errors import DeviceError
from hal.paths import runtime_dir
from hal.shm import futex_wait, futex_wake, lock_file, pid_alive, unlock_file

ENV = "XSCHED_CUDA_BOARD"  # 1/on: CUDA queues use the board (default off)
LEVELS = 32
PAGE = 4096  # bytes: one page of uint32 words
HEADER = 16
SLOTS = (PAGE // 4 - HEADER) // 4
REAP_S = 0.05
_ZERO_SLOT = memoryview(bytes(16)).cast("I")



class BoardFull(RuntimeError):
    """Every slot of the board belongs to a live process."""


def enabled(env: dict[str, str] | None = None) -> bool:
    """Whether $XSCHED_CUDA_BOARD turns the board on; a bad value raises DeviceError."""
    raw = (os.environ if env is None else env).get(ENV, "")
    value = raw.strip().lower()
    if value in ("", "0", "off", "false", "no"):
        return False
    if value in ("1", "on", "true", "yes"):
        return True
    raise DeviceError(f"{ENV}={raw!r}: expected 1 (on) or 0 (off)")


def level_of(priority: int) -> int:
    """The board level of an XSched priority (bigger is more urgent)."""
    return min(max(int(priority), 0), LEVELS - 1)


def may_run(word: int, level: int) -> bool:
    """Whether a queue of `level` may run under board word `word` (no higher level active)."""
    return word + level >= LEVELS - 1


class PriorityBoard:
    """One process's handle on a device's board (see the module docstring).

    Threads: every method may be called from any thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < PAGE:
            os.ftruncate(self._fd, PAGE)
        self._map = mmap.mmap(self._fd, PAGE)
        self.words = np.frombuffer(self._map, dtype=np.uint32)  # for CUDA (its address) and tests
        self.address = self.words.ctypes.data
        self.size = PAGE
        self._w = memoryview(self._map).cast("I")  # the same words: faster than numpy one at a time
        self._pid = os.getpid()
        self._masks = [0, 0]  # this process's (active, registered) level masks
        self._lock = threading.Lock()
        self._active = [0] * LEVELS
        self._registered = [0] * LEVELS
        self._slot: int | None = None
        self._watchers: list[Callable[[int], None]] = []
        self._watcher: threading.Thread | None = None
        self._closed = False
        with self._locked():
            if self._w[2] == 0 and self._w[0] == 0:
                self._w[0] = LEVELS  # a new board: nothing active
            with suppress(BoardFull):  # the first register() says so
                self._publish_locked(reap=True)  # levels left by dead processes go at once
        atexit.register(self.close)

    # -- what a queue reports ----------------------------------------------------------------
    def activate(self, level: int) -> None:
        self._count(self._active, level, +1)

    def deactivate(self, level: int) -> None:
        self._count(self._active, level, -1)

    def register(self, level: int) -> None:
        self._count(self._registered, level, +1)

    def unregister(self, level: int) -> None:
        self._count(self._registered, level, -1)

    # -- what a queue reads --------------------------------------------------------------------
    @property
    def word(self) -> int:
        return self._w[0]

    def outranked(self, level: int) -> bool:
        """Whether any queue of a higher level exists on this device (so guard my kernels)."""
        return self._w[1] >> (level + 1) != 0

    def alone(self, level: int) -> bool:
        """Whether `level` is the only level registered on this device (nobody to park or
        to yield to)."""
        return self._w[1] & ~(1 << level) == 0

    def below(self, level: int) -> bool:
        """Whether any queue of a lower level exists on this device (so holding mine parks it)."""
        return self._w[1] & ((1 << level) - 1) != 0

    def watch(self, callback: Callable[[int], None]) -> None:
        """Call `callback(word)` on a watcher thread whenever a level goes idle (and every
        REAP_S): where a parked queue may run again, it reopens its gate.
        (A watcher that slept while none of its queues seemed parked was tried and lost
        releases on the H100: the background starved; see docs/architecture.md.)"""
        with self._lock:
            self._watchers.append(callback)
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="xsched-board", daemon=True)
                self._watcher.start()

    def unwatch(self, callback: Callable[[int], None]) -> None:
        with self._lock:
            if callback in self._watchers:
                self._watchers.remove(callback)

    def reap(self) -> None:
        """Clear the slots of processes that are gone, and recompute the word."""
        with self._locked():
            self._publish_locked(reap=True)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._active = [0] * LEVELS
            self._registered = [0] * LEVELS
            self._masks = [0, 0]
        with self._locked():
            if self._slot is not None and self._w[HEADER + 4 * self._slot] == self._pid:
                self._w[HEADER + 4 * self._slot : HEADER + 4 * self._slot + 4] = _ZERO_SLOT
            self._slot = None
            self._publish_locked(claim=False)

    # -- internals ------------------------------------------------------------------------------
    def _count(self, counts: list[int], level: int, delta: int) -> None:
        if not 0 <= level < LEVELS:
            raise ValueError(f"board level {level} is out of range [0, {LEVELS - 1}]")
        with self._lock:
            if self._closed:
                return
            before = counts[level] > 0
            counts[level] = max(0, counts[level] + delta)
            if (counts[level] > 0) == before:
                return
            self._masks[counts is self._registered] ^= 1 << level
            lock_file(self._fd)  # not `_locked()`: a generator's context costs every task ~1 us
            try:
                self._publish_locked()
            finally:
                unlock_file(self._fd)

    @contextmanager
    def _locked(self):
        lock_file(self._fd)
        try:
            yield
        finally:
            unlock_file(self._fd)

    def _publish_locked(self, reap: bool = False, claim: bool = True) -> None:
        """Write this process's slot (claiming one first) and recompute the words;
        claim=False only recomputes (closing)."""
        w = self._w
        hw = w[2]
        me = HEADER + 4 * self._slot if self._slot is not None else -1
        if claim and (self._slot is None or w[me] != self._pid):
            self._slot = self._claim(hw)
            hw = max(hw, self._slot + 1)
            w[2] = hw
            me = HEADER + 4 * self._slot
            w[me] = self._pid
        if me >= 0:
            w[me + 1], w[me + 2] = self._masks
        active = registered = 0
        for j in range(HEADER, HEADER + 4 * hw, 4):
            pid = w[j]
            if pid == 0:
                continue
            if reap and j != me and not pid_alive(pid):
                w[j : j + 4] = _ZERO_SLOT
                continue
            active |= w[j + 1]
            registered |= w[j + 2]
        old = w[0]
        w[1] = registered
        w[0] = new = LEVELS - active.bit_length()
        if new > old:
            futex_wake(self.address)

    def _claim(self, hw: int) -> int:
        for j in range(hw):
            pid = self._w[HEADER + 4 * j]
            if pid == self._pid or pid == 0 or not pid_alive(pid):
                return j
        if hw >= SLOTS:
            raise BoardFull(f"priority board {self.path} is full ({SLOTS} processes)")
        return hw

    def _watch(self) -> None:
        last_reap = time.monotonic()
        while not self._closed:
            word = self.word
            for cb in list(self._watchers):
                cb(word)
            futex_wait(self.address, word, REAP_S)
            if time.monotonic() - last_reap >= REAP_S:
                self.reap()  # a process that died with a level active must not park us for good
                last_reap = time.monotonic()


_opened: dict[str, PriorityBoard] = {}
_opened_lock = threading.Lock()


def board_for(device_key: str) -> PriorityBoard:
    """This process's handle on the board of the device named `device_key` (e.g. a PCI bus
    id): one file per user and device (board_dir)."""
    safe = "".join(c if c.isalnum() else "-" for c in device_key)
    with _opened_lock:
        board = _opened.get(safe)
        if board is None:
            board = _opened[safe] = PriorityBoard(board_dir() / f"xsched-{os.getuid()}-board-{safe}")
        return board


def board_dir() -> Path:
    """/dev/shm where it exists (CUDA can page-lock tmpfs pages; it refused a file on the
    overlay /tmp of a container), else the runtime directory (hal.paths)."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else runtime_dir()
