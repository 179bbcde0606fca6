"""One completion poller per device: pooled CUDA events, callbacks in launch order.

Threads: each CudaHwQueue appends (event, command, callback) on its launching thread;
the poller thread polls the oldest event of every queue (`Event.done`, about 1.5 us),
returns finished events to the pool and calls the callbacks outside every lock, in
each queue's launch order. A queue that a thread waits for in the driver (`waiting`:
XQueue.wait on CUDA) is not polled meanwhile, and is collected as soon as that thread
returns: queries every 26 us would only contend with the driver's launches and the
waiter for nothing. While anything else is outstanding it polls every `interval_s`
(20 us asked: ~26 us, as the thread sets its Linux timer slack to 1 us; with the default
50 us slack a nap took ~75 us), truly sleeping in between: spinning with
`time.sleep(0)` was measured to starve the launching threads of the GIL (a deactivate
took up to 5 ms, the switch interval); idle, it sleeps on a condition until a launch.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import cupy

log = logging.getLogger(__name__)

Entry = tuple[Any, Any, Callable[[Any], None] | None]  # (event, command, callback)


def _tight_timer_slack(slack_ns: int = 1000) -> None:
    """Let this thread's short sleeps end on time (Linux: prctl(PR_SET_TIMERSLACK))."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(29, slack_ns, 0, 0, 0)  # 29 = PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        log.debug("cannot set the poller's timer slack")


class EventPool:
    """Reusable CUDA events of one device (creating one costs a driver call), timing-free
    unless `timing` (hal.cuda.durations times launches with them)."""

    def __init__(self, device_index: int, timing: bool = False) -> None:
        self._device_index = device_index
        self._timing = timing
        self._free: list[cupy.cuda.Event] = []
        self._lock = threading.Lock()

    def get(self) -> cupy.cuda.Event:
        with self._lock:
            if self._free:
                return self._free.pop()
        with cupy.cuda.Device(self._device_index):
            return cupy.cuda.Event(block=False, disable_timing=not self._timing)

    def put(self, event: cupy.cuda.Event) -> None:
        with self._lock:
            self._free.append(event)


class Poller:
    """Delivers completions of the device's queues; see the module docstring."""

    def __init__(self, device_index: int, pool: EventPool, interval_s: float = 20e-6) -> None:
        self._device_index = device_index
        self.interval_s = interval_s
        self.pool = pool
        self._cond = threading.Condition()
        self._queues: dict[int, deque[Entry]] = {}  # only queues with events outstanding
        self._waited: dict[int, int] = {}  # queue -> threads blocked in the driver on it
        self._thread: threading.Thread | None = None

    def add(self, key: int, event: Any, cmd: Any, callback: Callable[[Any], None] | None) -> None:
        """Track `event` (already recorded) for the queue `key`; thread-safe, non-blocking."""
        with self._cond:
            q = self._queues.setdefault(key, deque())
            q.append((event, cmd, callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"xsched-cuda{self._device_index}-poller", daemon=True
                )
                self._thread.start()
            if len(q) == 1 and key not in self._waited:
                self._cond.notify()

    @contextlib.contextmanager
    def waiting(self, key: int) -> Iterator[None]:
        """Around a blocking wait for everything queue `key` launched: leave its events
        to the waiter while it blocks, and collect them the moment it returns."""
        with self._cond:
            self._waited[key] = self._waited.get(key, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                left = self._waited.pop(key) - 1
                if left:
                    self._waited[key] = left
                self._cond.notify()

    def event_of(self, key: int, cmd: Any) -> Any | None:
        """The event tracked for `cmd` of queue `key`, or None once it was collected (the
        command completed). Call it inside `waiting(key)`: the event is not given back to
        the pool meanwhile."""
        with self._cond:
            for event, c, _ in self._queues.get(key, ()):
                if c is cmd:
                    return event
        return None

    def outstanding(self, key: int) -> int:
        with self._cond:
            return len(self._queues.get(key, ()))

    def _collect(self) -> list[Entry]:
        done: list[Entry] = []
        with self._cond:
            drained = []
            for key, q in self._queues.items():
                if key in self._waited:
                    continue
                while q and q[0][0].done:
                    done.append(q.popleft())
                if not q:
                    drained.append(key)
            for key in drained:
                del self._queues[key]
        return done

    def _pollable_locked(self) -> bool:
        return any(key not in self._waited for key in self._queues)

    def _run(self) -> None:
        cupy.cuda.runtime.setDevice(self._device_index)
        _tight_timer_slack()
        while True:
            with self._cond:
                while not self._pollable_locked():
                    self._cond.wait()
            done = self._collect()
            if not done:
                time.sleep(self.interval_s)
                continue
            for event, cmd, callback in done:
                self.pool.put(event)
                if callback is None:
                    continue
                try:
                    callback(cmd)
                except Exception:  # a listener's bug must not stop every later completion
                    log.exception("completion callback failed")
