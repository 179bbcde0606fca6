"""Completions of a device's queues: pooled CUDA events, callbacks in launch order.

Threads: each CudaHwQueue appends (event, command, callback) on its launching thread. A
queue's own completion thread waits in the driver for its oldest event, without the
interpreter lock, then collects every entry that is done, returns their events to the
pool and calls their callbacks outside every lock, in launch order; idle, it sleeps on
a condition until a launch. So it takes the interpreter lock once per completion. The
poller it replaces queried every queue's oldest event every 26 us, taking the lock each
time, and the launching thread waited to get it back after each driver call: a launch
with a completion callback cost 33-40 us of host time beside it, 20-21 us now, against
14-15 us without a callback (H100, CuPy elementwise launches queued behind a spin).

The thread sleeps in the driver rather than spinning (a spinning wait held a core busy
for as long as the queue had work, with no gain in the overhead benchmark): it waits on a
blocking-sync *marker* (`cudaEventBlockingSync`) that the queue's stream records right
behind each pooled event. The pooled events stay spin-waitable, as a direct waiter
(XQueue.wait) needs them: a blocking-sync wait wakes some 45-60 us after the GPU reaches
the event, a spinning one at once (H100); the completion thread can afford that
lateness, a task's waiter cannot. The marker is in the queue's own stream, not in a
stream of the thread's that waits on the queue's: measured on the H100, a second stream
whose cross-stream wait on a parked stream (hal.cuda.gate.TicketGate) is followed by a
blocking-sync record keeps the context in the GPU's time slices, so another process ran
at half speed for the whole of about a quarter of the parked intervals (in the probe,
a wait armed just as the stream parked did it every time; GPU tests that armed it well
before or after the park did not show it, so tests/hal_cpu holds this layout against a
stand-in for CuPy); a blocking-sync record behind the park in the
stream itself costs nothing (bench/scratch probes; docs/architecture.md, "Parking and
make before break").

While a thread waits in the driver for a command of the queue (`waiting`, `event_of`:
XQueue.wait on CUDA, which retires the queue's commands and launches the next ones
itself), the queue's completion thread leaves it alone: it goes on to no further wait in
the driver until the waiter returns, then collects what is done. Waking at each sync
point meanwhile made the two threads trade the interpreter lock through the task (H100,
threshold 8: +5.6-7.4% against +4.3-4.6% for the poller that did leave waited queues
alone). It does come back at once: leaving the queue alone for 1 ms after each waiter
returned made threshold 8 +20-42%, as a waiter also relies on it between its waits.
Events it collected meanwhile are parked, not pooled, so a waiter never waits
on an event that a later launch recorded again; they go back once it returns.

The thread also keeps out of the driver for the first `grace_s` (1 ms) after a queue's
lane goes from empty to busy, a new task's first launch: the application's thread,
launching the rest of the task, usually becomes the waiter in that time, and then the
thread sleeps until the waiter leaves (the waiter's arrival wakes it to do so, rather
than the grace's end, late in a short task). A waiter that leaves with entries left
within the grace (one that made room and launches more) leaves them to the thread
only once the grace is over; by then it is usually back. Woken at the first launch, the thread took
the interpreter lock between two launches and went into the driver, and the launching
thread paid: on the H100, an 8-layer cuBLAS stack at level 1 threshold 8 ran +4.1-6.4%
over native, +1.4-2.6% with the grace (bench/cuda_overhead.py, the two interleaved).
Without a waiter the first completion is seen at most `grace_s` late.

Waited lanes: the two wake-ups above (a task's first launch, which starts the grace,
and the waiter's arrival, which ends it) are the thread's only work in a task that a
waiter delivers whole, and on a host that slows down now and then they cost tasks their
worst latencies (H100: a probe that kept the thread from waking during a task halved
the foreground's tasks over twice native's median, 24 to 11-12 in five interleaved
rounds, native 3; with what follows, 53 against 89 and 6 against 15 in two A/B runs).
So once a waiter has delivered `streak` (4) busy periods of a lane in a row, the lane's
thread no longer waits to be woken: it looks every `poll_s` (20 ms) instead, and a
launch wakes nobody and records no marker (one driver call fewer at each sync point).
A thread that does find a task to collect records a marker of its own behind all that
was launched, and sleeps on that. A task that no waiter comes for is then collected at
most `poll_s` late (and the streak starts over). Quiet for `quiet_s` (1 s) since its
last task began, the thread sleeps until a launch wakes it again, as before. Only quiet
ends a streak: until a28c659 the thread's own idle wait while a waiter had the task
reset it, so in the periodic case it was for, the mode never began (H100, the
foreground alone at level 1 thr 4 on a loud machine, four rounds: 27 tasks over twice
native's median with the fix, 61 without).

A waiter also delivers what it waited for (`deliver_through`; a whole-stream waiter
through the later thread, below): the entries through the command it saw complete come
off the lane and their callbacks run, so the completion thread has nothing left to wake
for at a task's end. Left to the thread, the
entries a waiter had retired already cost it a wake-up, the interpreter lock and a
callback each, right when the application builds its next task (H100, an 8-layer stack
at threshold 8: 3.65 against 3.57 ms a task with the thread kept away, 3.52 natively).

Delivered later: a waiter that waited for the whole stream (`CudaHwQueue.synchronize`,
the end of an XQueue task) leaves everything after the driver's return to the queue's
later thread (`wait_whole`): taking its entries off the lane, their callbacks, the
pooling of their events. Its caller retires what it waited for by itself
(XQueue._driver_waits), and the callbacks only count out what is retired already.
Delivered on the waiter's thread they sat between the GPU's end of the task and the
task's return: 29-39 us of the thread's CPU there (H100 host, 4-command tasks at
threshold 4, with and without the priority board), against native's 27-31 us for the
whole of that stretch; taking the entries off alone still cost 21 us there, ~5 us an
entry (on that host every Python step right after a wait in the driver is slow). Late,
the callbacks of one task still come in launch order, but may come after a later task's;
those of a retired command change nothing in an XQueue, and the board's count is a sum.
Back to back: a queue whose next task's first launch came within 1 ms of the last whole-
stream wait's return (`CudaHwQueue`, BACK_TO_BACK_S) has its next such wait deliver on
the waiter's thread after all, before it returns. Handed to the later thread, the
delivery waited for the interpreter lock until the application's thread first let go of
it, which was in the driver call of the next task's first launch, and that thread then
waited for the lock while the GPU ran out of work: on the H100 host, an 8-layer stack
back to back at threshold 8 took 1.1% longer on the GPU than natively, its first launches
86 us apart against 38; delivered on the waiter's thread, the same as native (the
later thread's delivery stays where a task's end leaves the host time to spare).
A waiter for room (`wait_for`, threshold 1's every command) still delivers on its own
thread, after its caller's `then`: handed to the later thread too, that thread woke at
every command and the gaps between commands grew.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cupy

log = logging.getLogger(__name__)

Entry = tuple[Any, Any, Callable[[Any], None] | None, Any]  # (event, command, callback, marker)
GRACE_S = 0.001  # see the module docstring: how long a new task's first launch is left to a waiter
# see the module docstring, "Waited lanes": after this many tasks in a row that a waiter
# delivered whole, a launch wakes the thread no more; it looks every POLL_S instead, for
# QUIET_S after the lane's last task began
STREAK = 4
POLL_S = 0.02
QUIET_S = 1.0


class EventPool:
    """Reusable CUDA events of one device (creating one costs a driver call), timing-free
    unless `timing` (hal.cuda.durations times launches with them); blocking-sync (a host
    wait sleeps) if `blocking`, else spin-waitable."""

    def __init__(self, device_index: int, timing: bool = False, blocking: bool = False) -> None:
        self._device_index = device_index
        self._timing = timing
        self._blocking = blocking
        # no lock: a list's append and pop are atomic (the interpreter lock, or the list's
        # own in a free-threaded build), and each sync point takes and gives back two events
        self._free: list[cupy.cuda.Event] = []

    def get(self) -> cupy.cuda.Event:
        try:
            return self._free.pop()
        except IndexError:
            pass
        with cupy.cuda.Device(self._device_index):
            return cupy.cuda.Event(block=self._blocking, disable_timing=not self._timing)

    def put(self, event: cupy.cuda.Event) -> None:
        self._free.append(event)


@dataclass(eq=False)
class _Lane:
    """One queue's outstanding entries and the thread that completes them."""

    wake: threading.Condition  # over the Completions' lock
    entries: deque[Entry] = field(default_factory=deque)
    waiters: int = 0  # threads waiting in the driver for one of its commands
    parked: list[Any] = field(default_factory=list)  # collected while waited for
    watching: Any = None  # the marker the thread waits on in the driver
    stream: Any = None  # the stream of its last launch
    spent: list[Any] = field(default_factory=list)  # markers a waiter delivered while it did
    since: float = 0.0  # when the lane last went from empty to busy (time.monotonic())
    grace: bool = False  # its thread waits out the grace (a waiter arriving wakes it)
    collected: bool = False  # its thread collected some of the lane's current busy period
    streak: int = 0  # busy periods in a row that a waiter delivered whole
    polling: bool = False  # its thread's idle wait has a timeout: a launch need not wake it
    wakes: int = 0  # times its thread came out of an idle wait (tests, diagnostics)
    closed: bool = False
    thread: threading.Thread | None = None


class Completions:
    """Delivers completions of the device's queues; see the module docstring."""

    def __init__(self, device_index: int, pool: EventPool) -> None:
        self._device_index = device_index
        self.pool = pool
        self._markers = EventPool(device_index, blocking=True)
        self._lock = threading.Lock()
        self._lanes: dict[int, _Lane] = {}
        self.grace_s = GRACE_S
        self.streak, self.poll_s, self.quiet_s = STREAK, POLL_S, QUIET_S

    def _lane_locked(self, key: int) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(threading.Condition(self._lock))
        return lane

    def add(self, key: int, cmd: Any, callback: Callable[[Any], None] | None, stream: Any) -> None:
        """Track `cmd`, the last work on `stream`, for the queue `key`: records a pooled
        event (what waiters wait on) and the thread's marker behind it, unless the thread
        looks on its own ("Waited lanes"); thread-safe, non-blocking. Call it under the
        lock that orders the queue's launches."""
        event = self.pool.get()
        event.record(stream)
        lane = self._lanes.get(key)
        marker = None
        if lane is None or not lane.polling:  # (read unlocked: a marker is never needed, `_run`)
            marker = self._markers.get()
            marker.record(stream)
        with self._lock:
            lane = self._lane_locked(key)
            lane.stream = stream
            if not lane.entries:
                lane.since = time.monotonic()
                lane.collected = False
            lane.entries.append((event, cmd, callback, marker))
            if lane.thread is None:
                lane.thread = threading.Thread(
                    target=self._run, args=(lane,), name=f"xsched-cuda{self._device_index}-completions", daemon=True
                )
                lane.thread.start()
            elif len(lane.entries) == 1 and not lane.waiters and not lane.polling:  # else it looks, or
                lane.wake.notify()  # the last waiter wakes it

    def close(self, key: int) -> None:
        """The queue `key` launches no more: its thread ends once its entries are done."""
        with self._lock:
            lane = self._lanes.pop(key, None)
            if lane is not None:
                lane.closed = True
                lane.wake.notify()

    @contextlib.contextmanager
    def waiting(self, key: int) -> Iterator[Any | None]:
        """Around a thread's wait in the driver for queue `key`: its events stay out of
        the pool until the wait is over (see `event_of`). Gives the command tracked last,
        or None (what a wait for the whole stream delivers through)."""
        lane, newest = self._enter(key)
        try:
            yield newest
        finally:
            self._leave(lane, None)

    def wait_whole(self, key: int, wait: Callable[[], None], later: Callable[[Callable[[], None]], None]) -> None:
        """`wait()` (the driver's wait for all that queue `key` launched) as inside
        `waiting(key)`, then the rest of `waiting` and `deliver_through` the command
        tracked last before it, all of that handed to `later`: the end of an XQueue task,
        where each step sits between the GPU's end of the task and its return ("Delivered
        later"). Until `later` has run it, the lane counts the waiter as there (its
        thread stays out of the driver). With nothing tracked (a bare queue: native
        code), the driver call alone."""
        lane = self._lanes.get(key)  # (unlocked: a launch meanwhile is its thread's, as ever)
        if lane is None or not lane.entries:
            wait()
            return
        lane, newest = self._enter(key)
        try:
            wait()
        except BaseException:  # (the driver failed: nothing is known done)
            self._leave(lane, None)
            raise
        later(functools.partial(self._leave, lane, newest))

    def _leave(self, lane: _Lane, through: Any | None) -> None:
        """A waiter leaves `lane`, having seen `through` (None: nothing, or it delivered
        what it saw itself) complete: the entries through it come off and are delivered
        here."""
        with self._lock:
            taken = None if through is None else self._take_locked(lane, through)
            parked = self._leave_locked(lane)
        self._recycle(parked, [])
        if taken is not None:
            self._finish(*taken)

    def _enter(self, key: int) -> tuple[_Lane, Any | None]:
        with self._lock:
            lane = self._lane_locked(key)
            lane.waiters += 1
            if lane.grace:  # its thread waits out a new task's grace: let it sleep on instead
                lane.wake.notify()
            return lane, lane.entries[-1][1] if lane.entries else None

    @staticmethod
    def _leave_locked(lane: _Lane) -> list[Any]:
        """A waiter leaves: the events parked for the waiters, to pool once the last left."""
        lane.waiters -= 1
        parked = lane.parked if not lane.waiters else []
        if parked:
            lane.parked = []
        if not lane.waiters and lane.entries:
            lane.wake.notify()
        return parked

    def event_of(self, key: int, cmd: Any) -> Any | None:
        """The event tracked for `cmd` of queue `key`, or None once it was collected (the
        command completed). Call it inside `waiting(key)`: the event is not given back to
        the pool meanwhile."""
        with self._lock:
            lane = self._lanes.get(key)
            for event, c, _, _ in lane.entries if lane is not None else ():
                if c is cmd:
                    return event
        return None

    def deliver_through(self, key: int, cmd: Any) -> None:
        """Inside `waiting(key)`, once the driver said `cmd` completed: take the entries
        through it off the lane and call their callbacks on this thread, in launch order
        (nothing if its thread collected `cmd` already: it calls them)."""
        with self._lock:
            lane = self._lanes.get(key)
            taken = None if lane is None else self._take_locked(lane, cmd)
        if taken is not None:
            self._finish(*taken)

    def _take_locked(self, lane: _Lane, cmd: Any) -> tuple[list[Any], list[Any], list[Entry]] | None:
        """The entries through `cmd` off the lane: (events to pool, markers to pool,
        entries), or None where its thread collected `cmd` already."""
        if not any(c is cmd for _, c, _, _ in lane.entries):
            return None
        done: list[Entry] = []
        while True:
            entry = lane.entries.popleft()
            done.append(entry)
            if entry[1] is cmd:
                break
        if not lane.entries:  # a busy period ends: the waiter's whole, or shared
            lane.streak = 0 if lane.collected else lane.streak + 1
        events = self._park_locked(lane, done, lane.waiters > 1)  # others may wait on one
        markers: list[Any] = []
        for _, _, _, marker in done:  # the one its thread sleeps on, it pools once awake
            if marker is not None:
                (lane.spent if marker is lane.watching else markers).append(marker)
        return events, markers, done

    def _finish(self, events: list[Any], markers: list[Any], done: list[Entry]) -> None:
        self._recycle(events, markers)
        _call(done)

    def outstanding(self, key: int) -> int:
        with self._lock:
            lane = self._lanes.get(key)
            return len(lane.entries) if lane is not None else 0

    def _run(self, lane: _Lane) -> None:
        cupy.cuda.runtime.setDevice(self._device_index)
        while True:
            with self._lock:
                while True:
                    while not (lane.entries and not lane.waiters or lane.closed and not lane.entries):
                        self._idle_locked(lane)
                    left = self.grace_s - (time.monotonic() - lane.since)
                    if left <= 0 or lane.closed:
                        break
                    lane.grace = True  # a new task's: a waiter may come for it (the docstring)
                    lane.wake.wait(left)
                    lane.grace = False
                if not lane.entries:
                    return
                # the oldest entry's: pooled once collected, by a waiter or by this thread;
                # launched with none (a waited lane), one of its own behind all launched so far
                marker = lane.entries[0][3]
                own = marker is None
                if own:
                    marker = self._markers.get()
                lane.watching = marker
                stream = lane.stream
            try:
                if own:
                    marker.record(stream)
                cupy.cuda.runtime.eventSynchronize(marker.ptr)  # asleep, without the interpreter lock
                done = self._collect(lane)
                if own:
                    self._markers.put(marker)
            except cupy.cuda.runtime.CUDARuntimeError:  # the context is lost: nothing completes
                log.exception("CUDA failed while waiting for a completion; this queue's callbacks stop")
                return
            _call(done)

    def _idle_locked(self, lane: _Lane) -> None:
        """Wait for work: for a launch's wake, or, on a lane whose waiters delivered its
        last `streak` tasks whole and that went busy within `quiet_s`, for `poll_s`
        (a launch then wakes nobody; "Waited lanes" in the module docstring). A wait
        while a waiter has the task is no quiet spell: the streak goes on through it."""
        busy = bool(lane.entries) or time.monotonic() - lane.since < self.quiet_s
        if not busy:
            lane.streak = 0  # quiet: the next launch wakes the thread again
        lane.polling = busy and lane.streak >= self.streak
        lane.wake.wait(self.poll_s if lane.polling else None)
        lane.wakes += 1

    def _collect(self, lane: _Lane) -> list[Entry]:
        """Take the lane's leading entries that are done; pool or park their events."""
        done: list[Entry] = []
        with self._lock:
            lane.watching = None
            spent, lane.spent = lane.spent, []
            while lane.entries and lane.entries[0][0].done:
                done.append(lane.entries.popleft())
            if done:
                lane.collected = True
                lane.streak = 0
            events = self._park_locked(lane, done, lane.waiters > 0)
        self._recycle(events, spent + [m for _, _, _, m in done if m is not None])  # no one waits on them
        return done

    @staticmethod
    def _park_locked(lane: _Lane, done: list[Entry], park: bool) -> list[Any]:
        """The events of `done` to pool now: none if `park` (a waiter may wait on one;
        they go back when the last waiter leaves, `waiting`), else all."""
        events = [event for event, _, _, _ in done]
        if not park:
            return events
        lane.parked.extend(events)
        return []

    def _recycle(self, events: list[Any], markers: list[Any]) -> None:
        for event in events:
            self.pool.put(event)
        for marker in markers:
            self._markers.put(marker)


def _call(done: list[Entry]) -> None:
    """The callbacks of completed entries, in order, outside every lock."""
    for _, cmd, callback, _ in done:
        if callback is None:
            continue
        try:
            callback(cmd)
        except Exception:  # a listener's bug must not stop every later completion
            log.exception("completion callback failed")
