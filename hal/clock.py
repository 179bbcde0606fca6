"""Clocks: real time with a timer thread, or deterministic virtual time for tests.

Every timed thing in the runtime (the simulated device, the local scheduler's timers,
blocking waits) goes through a Clock, so the same code runs in real time and, in
virtual time, as a deterministic discrete-event simulation on the caller's thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from hal.errors import WouldBlockForever

log = logging.getLogger(__name__)


class Timer:
    """A scheduled callback; `cancel()` stops it if it has not run yet."""

    __slots__ = ("when", "fn", "cancelled")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock(ABC):
    """Time in seconds, callbacks at a time, and blocking waits."""

    virtual: bool = False

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    @abstractmethod
    def now(self) -> float: ...

    def call_at(self, when: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(when, fn)
        self._push(timer)
        return timer

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        return self.call_at(self.now() + delay, fn)

    def call_soon(self, fn: Callable[[], None]) -> Timer:
        return self.call_at(self.now(), fn)

    @abstractmethod
    def wait_for(
        self,
        predicate: Callable[[], bool],
        cond: threading.Condition,
        timeout: float | None = None,
    ) -> bool:
        """Block until `predicate()` is true (False on timeout).

        In real time the caller's state changes notify `cond`; in virtual time the clock
        runs its events until the predicate holds.
        """

    def _push(self, timer: Timer) -> None:
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))


class VirtualClock(Clock):
    """Deterministic virtual time. Nothing happens until someone runs the clock.

    Owned by one thread: callbacks run on the thread that calls `run_*` or `wait_for`.
    """

    virtual = True

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now = start

    def now(self) -> float:
        return self._now

    def step(self) -> bool:
        """Run the earliest pending callback; False when none is left."""
        while self._heap:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.fn()
            return True
        return False

    def next_time(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def run_until(self, when: float) -> None:
        """Run every callback due at or before `when`, then set the time to `when`."""
        while (t := self.next_time()) is not None and t <= when:
            self.step()
        self._now = max(self._now, when)

    def run_for(self, seconds: float) -> None:
        self.run_until(self._now + seconds)

    def run_until_idle(self, limit: float = 1e9) -> None:
        """Run callbacks until none is left (or the time passes `limit`)."""
        while (t := self.next_time()) is not None and t <= limit:
            self.step()

    def wait_for(
        self,
        predicate: Callable[[], bool],
        cond: threading.Condition | None = None,
        timeout: float | None = None,
    ) -> bool:
        deadline = None if timeout is None else self._now + timeout
        while not predicate():
            t = self.next_time()
            if t is None or (deadline is not None and t > deadline):
                if deadline is None:
                    raise WouldBlockForever(
                        "virtual-time wait can never finish: no event left to run "
                        "(is the queue suspended with nobody to resume it?)"
                    )
                self._now = max(self._now, deadline)
                return predicate()
            self.step()
        return True


class RealClock(Clock):
    """Monotonic wall-clock time; callbacks run in order on one daemon timer thread."""

    def __init__(self, name: str = "xsched-clock") -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._name = name

    def now(self) -> float:
        return time.monotonic()

    def _push(self, timer: Timer) -> None:
        with self._cond:
            super()._push(timer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        timer = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(delay)
            if timer.cancelled:
                continue
            try:
                timer.fn()
            except Exception:  # a callback's bug must not stop every later timer
                log.exception("timer callback failed")

    def wait_for(
        self,
        predicate: Callable[[], bool],
        cond: threading.Condition,
        timeout: float | None = None,
    ) -> bool:
        with cond:
            return cond.wait_for(predicate, timeout)


_default: RealClock | None = None
_default_lock = threading.Lock()


def default_clock() -> RealClock:
    """The process-wide real clock (one timer thread per process)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = RealClock()
        return _default
