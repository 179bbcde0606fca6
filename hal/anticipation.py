"""Anticipation on the priority board: a periodic queue's level is held active a little
before its next task is due, so a lower level parks before the task arrives.

Why: without MPS the GPU time-slices processes' contexts, and handing the GPU from a busy
context to another costs the newcomer a context switch (0.15-0.2 ms on the H100) even when
the busy one flushes at once (docs/architecture.md, "CUDA across processes"). A context
already parked on a stream-memory wait costs it nothing. Many urgent loads are periodic
(frames, control loops, a serving tick), so their next arrival can be foreseen: the board
level is held from `lead` before it until the task arrives (then the task's own count
holds it) or, if it does not come, shortly after it was due. Holding the level parks the
lower levels, but the GPU stays on the context that ran last until another launches, so
the holder then *claims* the GPU (hal.cuda.claim: an empty kernel) and the switch
happens before the task instead of with its first kernel.

`Forecast` is the pure part: from the times a queue went busy and idle it says whether a
busy is a new arrival and, once the last intervals are steady, the window to hold next.
`Anticipation` holds a queue's board level through those windows on one timer thread per
process (a hal.clock.RealClock of its own). The cost falls on the lower levels: about `lead` of GPU time per period.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from hal.board import PriorityBoard
from hal.clock import RealClock
from hal.errors import DeviceError

ENV = "XSCHED_CUDA_BOARD_LEAD_US"  # how long before a periodic queue's next task to hold its level; 0: off
# On the H100 (bench/cuda_fixed_priority_2proc.py, a 1.2 ms task every 5.6 ms beside a
# background flat out) 500 us and 1000 us gave the foreground the same median, at the
# runtime's own floor; 1000 us cost the background 8-12% more of its tasks than 500.
DEFAULT_LEAD_US = 500.0
MAX_LEAD_US = 100_000.0


def lead_us(env: dict[str, str] | None = None) -> float:
    """$XSCHED_CUDA_BOARD_LEAD_US in microseconds (unset: DEFAULT_LEAD_US); bad values raise DeviceError."""
    raw = (os.environ if env is None else env).get(ENV, "")
    if raw.strip() == "":
        return DEFAULT_LEAD_US
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= MAX_LEAD_US:  # also NaN
        raise DeviceError(f"{ENV}={raw!r}: expected microseconds from 0 (off) to {MAX_LEAD_US:.0f}")
    return value


class Window(NamedTuple):
    """Hold the level from `start` to `end` (monotonic seconds)."""

    start: float
    end: float


class Forecast:
    """When a queue's next task is due, from when its last ones arrived.

    An arrival is a busy that follows at least `min_gap_s` of idle (shorter gaps are one
    task's launches outrunning the GPU). Once `min_intervals` intervals are known, the
    arrivals are fitted to a grid of one period: the median interval numbers them (a task
    left out counts its period), and the period and phase are medians over the arrivals,
    so one that came late is not where the next ones are expected. The next task is due
    at the grid's next point (or the one after, where the first is too close). The window
    opens `lead_s`, plus how early the earliest arrivals came, before it, and closes
    `slack_s` (or twice how late the latest came) after it; the earliest and latest
    eighth of the arrivals on the grid are left out of the two, and the closing is cut to
    keep the window within `max_share` of the period.

    On the H100 host a sleep overshoots by 0.1-0.15 ms, now and then by 0.4-0.7 ms, and in
    a noisy stretch more often. An arrival more than `tolerance` of the period off the
    grid is one of those, and does not count; where more than a quarter of them are off
    (or the opening and `slack_s` alone span over `max_share` of the period) no window is
    given: such a load is not periodic enough to gain from it, and the lower levels would
    pay. With the intervals between arrivals as the measure instead (before the grid), one
    late arrival made two bad intervals, three in sixteen periods refused every window
    for the next sixteen, and in the two-process benchmark 2-9% of the foreground's tasks
    came with no window held and paid the context switch (docs/h100-benchmarks.md).

    A load that has just become periodic (its first tasks, which catch up after a slow
    start, or the tasks after a noisy stretch) is foreseen from its recent arrivals alone:
    where the whole history is refused, the last half of it, then the last
    `min_intervals` + 1 arrivals are tried, and the arrivals before the run that fits are
    forgotten. Measured on the H100 pair before this, the first 5-16 tasks of a run, and
    runs of up to 15 tasks after a noisy stretch, came with no window held: until the
    arrivals off the grid had left the history, every window was refused.
    """

    def __init__(self, lead_s: float, *, history: int = 16, min_intervals: int = 4, tolerance: float = 0.1,
                 min_gap_s: float = 200e-6, slack_s: float = 300e-6, max_share: float = 0.25) -> None:  # fmt: skip
        if lead_s <= 0:
            raise ValueError(f"lead_s must be > 0, got {lead_s}")
        self.lead_s, self.min_intervals, self.tolerance = lead_s, min_intervals, tolerance
        self.min_gap_s, self.slack_s, self.max_share = min_gap_s, slack_s, max_share
        self._arrivals: deque[float] = deque(maxlen=history + 1)
        self._idle_since: float | None = None
        self._busy = False
        self._busy_at = float("-inf")

    def busy(self, now: float) -> bool:
        """The queue went busy at `now`; whether that is a new task's arrival."""
        was_idle = self._idle_since
        self._busy, self._idle_since, self._busy_at = True, None, now
        if self._arrivals and (was_idle is None or now - was_idle < self.min_gap_s):
            return False
        self._arrivals.append(now)
        return True

    @property
    def running(self) -> bool:
        """Whether the queue is busy (a task runs) as far as the forecast was told."""
        return self._busy

    def idle(self, now: float) -> None:
        """The queue went idle at `now` (news of an idle older than the last busy, which
        came late from another thread, is dropped: the queue is busy again)."""
        if self._busy and now >= self._busy_at:
            self._busy, self._idle_since = False, now

    def window(self, now: float) -> Window | None:
        """Where to hold the level for the next arrival whose window opens after `now`, if
        it can be foreseen (none once two periods went by without one)."""
        a = list(self._arrivals)
        fit = self._fit(a)
        if fit is None:  # see the docstring: the recent arrivals alone, where they fit
            for n in sorted({len(a) // 2, self.min_intervals + 1}, reverse=True):
                if self.min_intervals < n < len(a) and (fit := self._fit(a[-n:])) is not None:
                    for _ in range(len(a) - n):
                        self._arrivals.popleft()
                    break
        if fit is None:
            return None
        period, phase, last, before, after = fit
        for k in (1, 2):
            due = phase + (last + k) * period
            if due - before >= now:
                return Window(due - before, due + after)
        return None

    def _fit(self, a: list[float]) -> tuple[float, float, int, float, float] | None:
        """(period, phase, the last arrival's number, how long before a due time to open
        the window and after it to close it) for arrivals `a`, or None where they are not
        periodic enough (see the docstring)."""
        grid = self._grid(a)
        if grid is None:
            return None
        period, phase, last, deviations = grid
        tolerance = self.tolerance * period
        on = sorted(d for d in deviations if abs(d) <= tolerance)
        if len(on) < len(deviations) - len(deviations) // 4:
            return None
        trim = len(on) // 8  # see the docstring: the earliest and latest eighth are left out
        early, late = max(0.0, -on[trim]), max(0.0, on[-1 - trim])
        before, share = self.lead_s + early, self.max_share * period
        if before + self.slack_s > share:
            return None
        return period, phase, last, before, min(max(self.slack_s, 2 * late), share - before)

    def _grid(self, a: list[float]) -> tuple[float, float, int, list[float]] | None:
        """(period, phase, the last arrival's number, each arrival's deviation) of the grid
        `phase + n * period` fitted to arrivals `a`, or None with too few of them."""
        if len(a) <= self.min_intervals:
            return None
        rough = statistics.median(b - x for x, b in itertools.pairwise(a))
        if rough <= 0:
            return None
        n = [round((t - a[0]) / rough) for t in a]  # an extra task in a period shares its number: off the grid
        half = len(a) // 2  # slopes over half the history each: an arrival's error is divided by that
        if any(n[i + half] == n[i] for i in range(len(a) - half)):
            return None  # (the median interval numbers half the arrivals apart by one at least)
        period = statistics.median((a[i + half] - a[i]) / (n[i + half] - n[i]) for i in range(len(a) - half))
        phase = statistics.median(t - k * period for t, k in zip(a, n, strict=True))
        return period, phase, n[-1], [t - phase - k * period for t, k in zip(a, n, strict=True)]

    def reset(self) -> None:
        self._arrivals.clear()
        self._idle_since, self._busy, self._busy_at = None, False, float("-inf")


# Holds, claims and plans run on a clock of their own (hal.clock's timer thread), not on
# the process's default clock, whose callbacks (the IDLE news, the agent's) could make a
# hold late.
_clock = RealClock(name="xsched-anticipate")


class Anticipation:
    """Holds one queue's board level through its forecast windows (see the module docstring).

    The queue calls `busy()` after activating its level for a launch and `idle()` after
    deactivating it: both only note the time (and `idle` drops a hold its task has
    outlived; with no window planned, `idle` has the timer thread plan one: windows are
    planned between tasks, at an idle or at the end of a window no task came into, never
    while a task runs). Planning, holding and giving up run on the timer thread: a hold
    begins at its window's start (parking the lower levels, then `claim()`, if given,
    takes the device for this process) and ends when its task goes idle, or at the
    window's end if no task came. The timer thread wakes late (on the H100 host by ~0.1
    ms, against a lead of 0.5): a hold is set that much before its window's start, by the
    median lateness of the last holds (at most half the lead), so the lead is what the
    lower levels get to park and the claim to land.

    Windows are planned and held only while a lower level is registered on the board
    (else there is nobody to park), and the arrivals are noted all the same, so a queue
    alone on the device costs the timer thread nothing and plans its next window at the
    first idle after a lower level registers. (On the H100 host, planning for a
    foreground alone took the timer thread ~270 us of CPU a task, about half of what
    the board's threads took beside the task.) `level()` names the queue's current
    level; `reset()` forgets the arrivals and drops any hold; `close()` also stops
    planning; `forecast` keys go to Forecast. Threads: any.
    """

    def __init__(self, board: PriorityBoard, level: Callable[[], int], lead_s: float,
                 claim: Callable[[], None] | None = None, **forecast) -> None:  # fmt: skip
        self._board, self._level, self._claim = board, level, claim
        self._forecast = Forecast(lead_s, **forecast)
        self._lock = threading.Lock()
        self._token = 0  # the window now planned; older timer callbacks find it changed
        self._planned = False  # a window is planned (its end replans)
        self._held: int | None = None  # the level held for it
        self._held_at = 0.0
        self._came = False  # a task arrived since the hold began
        self.windows = self.held_windows = 0  # planned, and held (a lower level was there)
        self.arrivals = self.came = 0  # tasks that arrived, and those of them that came into a held window
        self.early_s: deque[float] = deque(maxlen=1024)  # how long each held window ran before its task came
        self.late_s: deque[float] = deque(maxlen=16)  # how late the timer began the last holds
        self._closed = False

    def busy(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if not self._forecast.busy(now):
                return
            self.arrivals += 1
            if self._held is not None and not self._came:
                self._came = True
                self.came += 1
                self.early_s.append(now - self._held_at)

    @property
    def holding(self) -> bool:
        """Whether the queue's level is held now for a window (up on the board already)."""
        return self._held is not None

    def summary(self) -> dict[str, int]:
        """How it went so far: windows planned and held, the tasks that arrived (a busy after
        `min_gap_s` of idle or more; tasks back to back are one) and those that came into a
        held window (the others met a lower level's work on the device)."""
        with self._lock:
            return {"windows": self.windows, "held": self.held_windows, "arrivals": self.arrivals,
                    "arrivals_in_held_window": self.came}  # fmt: skip

    def idle(self, now: float | None = None) -> None:
        with self._lock:
            self._forecast.idle(time.monotonic() if now is None else now)
            if self._came:
                self._release_locked()  # the task ran under the hold and went idle
            replan = not (self._planned or self._closed) and self._board.below(self._level())
        if replan:  # the task just gone may be what makes the next one foreseeable
            _clock.call_soon(self._plan_now)

    def reset(self) -> None:
        """Forget the arrivals and drop any hold (the level changed)."""
        with self._lock:
            self._token += 1
            self._planned = False
            self._release_locked()
            self._forecast.reset()

    def close(self) -> None:
        """Drop any hold and plan no more (the queue closes)."""
        self._closed = True
        self.reset()

    # -- on the timer thread ------------------------------------------------------------------
    def _plan_now(self) -> None:
        self._plan(_clock.now())

    def _plan(self, now: float) -> None:
        with self._lock:
            if self._planned or self._closed or not self._board.below(self._level()):
                return  # (nobody to park: no window, and no timers to wake this thread)
            window = self._forecast.window(now)
            if window is None:
                return
            self._token += 1
            self._planned = True
            self.windows += 1
            token = self._token
            lead = self._forecast.lead_s
            ahead = min(statistics.median(self.late_s), lead / 2) if self.late_s else 0.0
        start = window.start - ahead
        _clock.call_at(start, lambda: self._hold(token, start))
        _clock.call_at(start + lead / 2, lambda: self._reclaim(token))
        _clock.call_at(window.end, lambda: self._end(token))

    def _hold(self, token: int, when: float) -> None:
        """`when`: the time the timer was set for."""
        with self._lock:
            if token != self._token or self._held is not None:
                return
            now = _clock.now()
            self.late_s.append(max(0.0, now - when))
            level = self._level()
            if not self._board.below(level):
                return
            self._board.activate(level)
            self._held, self._held_at, self._came = level, now, False
            self.held_windows += 1
        if self._claim is not None:
            self._claim()

    def _reclaim(self, token: int) -> None:
        """Claim again halfway: a lower level's last kernels (its ticket after a flush) may
        have taken the device back after the first claim."""
        with self._lock:
            if token != self._token or self._held is None or self._came:
                return
        if self._claim is not None:
            self._claim()

    def _end(self, token: int) -> None:
        """The window's end: give up a hold no task came into, and plan the next window,
        or, while a task runs, leave that to its idle: the timer thread's Python would
        take the interpreter lock from the task's launches."""
        with self._lock:
            if token != self._token:
                return
            if not self._came:
                self._release_locked()
            self._planned = False
            running = self._forecast.running
        if not running:
            self._plan(_clock.now())

    def _release_locked(self) -> None:
        if self._held is not None:
            self._board.deactivate(self._held)
            self._held, self._came = None, False
