"""The simulated XPU's execution model: one device, many hardware queues, one command at a time.

Between queues the device is first-come first-served by launch order (what a GPU's
hardware scheduler does with independent streams) or, as an option, round-robin with a
time slice. Level 2 (deactivate) stops a queue's launched commands from being started;
level 3 (interrupt) also pauses its running command, which later continues with the
time it had left. Time comes from a Clock, so the same model runs in real time (with a
speed factor) and in virtual time.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hal.clock import Clock, Timer
from hal.errors import DeviceError

_EPS = 1e-9

CompleteFn = Callable[[int], None]


@dataclass
class _Job:
    token: int
    remaining_s: float
    seq: int


@dataclass
class _Queue:
    on_complete: CompleteFn
    jobs: deque[_Job] = field(default_factory=deque)
    active: bool = True
    interrupted: bool = False
    busy_s: float = 0.0

    def eligible(self) -> bool:
        return bool(self.jobs) and self.active and not self.interrupted


@dataclass
class _Running:
    qid: int
    job: _Job
    started: float
    planned_end: float
    timer: Timer


class SimEngine:
    """Executes launched commands of every queue on one simulated device.

    Thread-safe: hardware queues call it from any thread; completions are reported
    outside the engine's lock, from the clock's thread (real time) or from the thread
    that runs the clock (virtual time).
    """

    SCHEDULING = ("fcfs", "rr")

    def __init__(
        self,
        clock: Clock,
        *,
        speed: float = 1.0,
        scheduling: str = "fcfs",
        timeslice_us: float = 2000.0,
    ) -> None:
        if not speed > 0:
            raise DeviceError(f"speed must be > 0, got {speed!r}")
        if scheduling not in self.SCHEDULING:
            raise DeviceError(f"scheduling must be one of {self.SCHEDULING}, got {scheduling!r}")
        if not timeslice_us > 0:
            raise DeviceError(f"timeslice_us must be > 0, got {timeslice_us!r}")
        self.clock = clock
        self.speed = speed
        self.scheduling = scheduling
        self._slice_s = timeslice_us / 1e6 / speed
        self._lock = threading.Lock()
        self._queues: dict[int, _Queue] = {}
        self._qids = itertools.count(1)
        self._seq = itertools.count()
        self._running: _Running | None = None
        self._last_qid = 0

    # -- the device-port interface that SimHwQueue uses ------------------------------
    def add_queue(self, on_complete: CompleteFn) -> int:
        with self._lock:
            qid = next(self._qids)
            self._queues[qid] = _Queue(on_complete)
            return qid

    def remove_queue(self, qid: int) -> None:
        with self._lock:
            if self._running is not None and self._running.qid == qid:
                self._running.timer.cancel()
                self._running = None
            self._queues.pop(qid, None)
            self._dispatch_locked()

    def launch(self, qid: int, token: int, duration_us: float) -> None:
        if not duration_us >= 0:
            raise DeviceError(f"command duration must be >= 0 us, got {duration_us!r}")
        with self._lock:
            queue = self._get(qid)
            queue.jobs.append(_Job(token, duration_us / 1e6 / self.speed, next(self._seq)))
            self._dispatch_locked()

    def deactivate(self, qid: int) -> None:
        with self._lock:
            self._get(qid).active = False

    def reactivate(self, qid: int) -> None:
        with self._lock:
            self._get(qid).active = True
            self._dispatch_locked()

    def interrupt(self, qid: int) -> None:
        with self._lock:
            self._get(qid).interrupted = True
            if self._running is not None and self._running.qid == qid:
                self._stop_running_locked()
            self._dispatch_locked()

    def restore(self, qid: int) -> None:
        with self._lock:
            self._get(qid).interrupted = False
            self._dispatch_locked()

    # -- observation, for tests and benchmarks --------------------------------------
    def busy_seconds(self, qid: int) -> float:
        """Device time the queue's commands have run so far (real seconds / speed)."""
        with self._lock:
            queue = self._get(qid)
            extra = 0.0
            if self._running is not None and self._running.qid == qid:
                extra = self.clock.now() - self._running.started
            return (queue.busy_s + extra) * self.speed

    def running_queue(self) -> int | None:
        with self._lock:
            return None if self._running is None else self._running.qid

    # -- internals (caller holds the lock) ---------------------------------------------
    def _get(self, qid: int) -> _Queue:
        try:
            return self._queues[qid]
        except KeyError:
            raise DeviceError(f"unknown hardware queue {qid}") from None

    def _stop_running_locked(self, at: float | None = None) -> _Running:
        running = self._running
        assert running is not None
        running.timer.cancel()
        elapsed = (self.clock.now() if at is None else at) - running.started
        running.job.remaining_s -= elapsed
        self._queues[running.qid].busy_s += elapsed
        self._running = None
        return running

    def _pick_locked(self) -> int | None:
        eligible = [qid for qid, q in self._queues.items() if q.eligible()]
        if not eligible:
            return None
        if self.scheduling == "fcfs":
            return min(eligible, key=lambda qid: self._queues[qid].jobs[0].seq)
        after = sorted(qid for qid in eligible if qid > self._last_qid)
        return after[0] if after else min(eligible)

    def _dispatch_locked(self, start: float | None = None) -> None:
        if self._running is not None:
            return
        qid = self._pick_locked()
        if qid is None:
            return
        job = self._queues[qid].jobs[0]
        run_s = job.remaining_s if self.scheduling == "fcfs" else min(job.remaining_s, self._slice_s)
        now = self.clock.now() if start is None else start
        end = now + max(run_s, 0.0)
        self._running = _Running(qid, job, now, end, self.clock.call_at(end, self._on_timer))

    def _on_timer(self) -> None:
        done: tuple[CompleteFn, int] | None = None
        with self._lock:
            if self._running is None:
                return
            # A late timer thread must not slow the device down: the command ended at its
            # planned time, and the next one started then.
            end = self._running.planned_end
            running = self._stop_running_locked(at=end)
            self._last_qid = running.qid
            queue = self._queues[running.qid]
            if running.job.remaining_s <= _EPS:
                queue.jobs.popleft()
                done = (queue.on_complete, running.job.token)
            self._dispatch_locked(start=end)
        if done is not None:
            done[0](done[1])
