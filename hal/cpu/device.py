"""CpuDevice: a real "device" made of one worker thread that runs commands' payloads.

Like a GPU, the device executes one command at a time, first-come first-served by
launch order between its hardware queues; a command's duration is the real time its
payload computes. Deactivating a queue (level 2) stops the worker from starting that
queue's launched commands; the one running finishes. There is no level 3: a running
Python call cannot be interrupted.

Threads: the worker thread owns execution and delivers completions (outside the lock);
launch, deactivate and reactivate may be called from any thread.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hal.clock import Clock, default_clock
from hal.command import HwCommand
from hal.errors import DeviceError

Done = Callable[[HwCommand], None]


@dataclass
class _Queue:
    on_complete: Done
    jobs: deque[tuple[int, HwCommand]] = field(default_factory=deque)  # (launch seq, command)
    active: bool = True
    busy_s: float = 0.0


class CpuDevice:
    """One CPU device: its worker starts on the first launch and runs until `close()`."""

    def __init__(self, name: str = "cpu", clock: Clock | None = None) -> None:
        self.name = name
        self.clock = clock or default_clock()
        self._cond = threading.Condition()
        self._queues: dict[int, _Queue] = {}
        self._qids = itertools.count(1)
        self._seq = itertools.count()
        self._running: int | None = None  # qid whose command runs now
        self._closed = False
        self._worker: threading.Thread | None = None

    _shared: CpuDevice | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> CpuDevice:
        """The process's CPU device (what `open_device("cpu")` returns)."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared._closed:
                cls._shared = cls()
            return cls._shared

    def create_queue(self):  # -> CpuHwQueue (import cycle otherwise)
        from hal.cpu.hwqueue import CpuHwQueue

        return CpuHwQueue(self)

    # -- the port CpuHwQueue uses ---------------------------------------------------
    def add_queue(self, on_complete: Done) -> int:
        with self._cond:
            if self._closed:
                raise DeviceError(f"device {self.name!r} is closed")
            qid = next(self._qids)
            self._queues[qid] = _Queue(on_complete)
            return qid

    def remove_queue(self, qid: int) -> list[HwCommand]:
        """Forget a queue; returns its launched commands that never started."""
        with self._cond:
            queue = self._queues.pop(qid, None)
            self._cond.notify_all()
            return [cmd for _, cmd in queue.jobs] if queue else []

    def launch(self, qid: int, cmd: HwCommand) -> None:
        with self._cond:
            if self._closed:
                raise DeviceError(f"launch on closed device {self.name!r}")
            self._get(qid).jobs.append((next(self._seq), cmd))
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name=f"xsched-{self.name}-worker", daemon=True
                )
                self._worker.start()
            self._cond.notify_all()

    def deactivate(self, qid: int) -> None:
        with self._cond:
            self._get(qid).active = False

    def reactivate(self, qid: int) -> None:
        with self._cond:
            self._get(qid).active = True
            self._cond.notify_all()

    # -- observation -------------------------------------------------------------------
    def running_queue(self) -> int | None:
        with self._cond:
            return self._running

    def busy_seconds(self, qid: int) -> float:
        with self._cond:
            return self._get(qid).busy_s

    def close(self) -> None:
        """Stop the worker after the command it runs; unstarted commands are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    # -- the worker ------------------------------------------------------------------
    def _get(self, qid: int) -> _Queue:
        try:
            return self._queues[qid]
        except KeyError:
            raise DeviceError(f"device {self.name!r} has no hardware queue {qid}") from None

    def _pick_locked(self) -> tuple[int, _Queue] | None:
        best = None
        for qid, queue in self._queues.items():
            if queue.active and queue.jobs and (best is None or queue.jobs[0][0] < best[1]):
                best = (qid, queue.jobs[0][0])
        return None if best is None else (best[0], self._queues[best[0]])

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (picked := self._pick_locked()) is None:
                    self._cond.wait()
                if self._closed:
                    return
                qid, queue = picked
                _, cmd = queue.jobs.popleft()
                self._running = qid
            start = self.clock.now()
            cmd.run_payload()  # keeps the payload's result or exception on the command
            with self._cond:
                queue.busy_s += self.clock.now() - start
                self._running = None
                self._cond.notify_all()
            queue.on_complete(cmd)
