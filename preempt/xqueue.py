"""The XQueue: a preemptible command queue in front of one hardware queue.

The application submits commands; the launcher feeds the hardware queue progressively,
never more than `threshold` commands in flight (at the threshold it waits until half of
them have completed, as in the XSched paper's Fig. 6). Suspend stops
launching (level 1), also deactivates the hardware queue (level 2), or also interrupts
the running command (level 3); resume undoes it. Commands complete in submission order,
each exactly once.

Threads: the launcher is event-driven rather than a thread of its own. It runs, under
the XQueue's lock, on whichever thread made room to launch: the submitter, the hardware
adapter's completion thread (at the half-threshold mark), a waiter that made the room
itself in the driver (`HwQueue.wait_for`), or the scheduler resuming the queue.
XSched's C++ runtime uses a dedicated launch thread; in Python a hop to such a thread
costs 100-200 us per refill, which bench/overhead.py showed to slow tasks of 500 us
commands by 18% at threshold 2 (docs/architecture.md has the numbers). In
virtual time the same code runs on the clock's caller, so tests are deterministic.
Sync points: the XQueue learns of completions only at commands launched with a
completion callback. Those are every `batch_size`-th launch, a waited-for command, the
commands that fill the hardware queue to half the threshold and to the threshold (a
throttled launcher goes on when in flight drops to half), and a command launched with
nothing pending when no sync point is in flight; a sync point that completes with
commands behind it and none among them adds a marker behind the tail. A task submitted
one command at a time used to make each a sync point (each was the last pending): on
CUDA an event per launch, ~7 us of the launching thread's time.
Listeners are called outside the lock, on whichever thread caused the change, with one
exception: a waiter blocked in the driver (`HwQueue.direct_wait`) leaves the IDLE news
to the clock's thread, `idle_news_delay_s` later, so that its task does not pay for the
news, and the next task's READY, if it comes first, joins it there: to listeners that
never heard the queue go idle, that READY only restarts its span. Tasks back to back then
send no IDLE (the agent drops an IDLE once the queue is ready again), schedulers do not
act on the host's gap between them, and a task's READY leaves on the clock's thread
while the task runs, not on its launching thread: on the H100, an 8-layer stack through
xschedd ran at 0.90 of native with the news sent at once and 0.94-0.95 with the IDLE
held 0.5-2 ms (bench/results/, docs/architecture.md).
Holds: at a low threshold the launcher waits for completions: at threshold 1 a host round
trip between every two commands, which a Python host makes slow (~35-45 us on the H100's).
Where the hardware queue offers holds (`HwQueue.holds`: CUDA, hal.cuda.holds), a level-1
XQueue whose threshold is under HOLDS_BELOW keeps HOLD_WINDOW commands launched, in runs
of at most `threshold`: a run starts with a command launched onto an empty queue or with
one behind a hold, which the hardware lets start only if, once the command before it is
done, the queue may still run. A suspend closes the holds (a level-1 suspension that the
gate holds needs nothing: holds read the gate's byte), so at most `threshold` commands
still run after it (the rest of the run under way), as without holds; a resume, or a
pump once the gate clears, lets the queue past the hold it stopped at. A hold costs the
GPU a few microseconds (more beside short kernels), once a run: on the H100 that wins
below threshold 8 and loses above (docs/architecture.md, "Holds"). With
`suspend(sync_hw_queue=True)` the holds stay open: the queue drains what it launched.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from hal import HwCommand, HwQueue, Level, UnsupportedLevelError
from preempt.errors import HwQueueFailed, XQueueClosedError, XQueueConfigError, XQueueTimeout
from preempt.latency import LatencyStats

DEFAULT_LEVEL = Level.BLOCK
DEFAULT_THRESHOLD = 16
DEFAULT_BATCH_SIZE = 8
IDLE_NEWS_DELAY_S = 0.001  # see the module docstring
HELD_NEWS_MAX = 16  # events held for the clock's thread, at most (tasks << the delay)
HOLD_WINDOW = 16  # commands a level-1 XQueue keeps launched with holds ("Holds" above; at most hal.cuda.holds.RING)
HOLDS_BELOW = 8  # the thresholds that get holds (under HOLD_WINDOW)


class XQueueState(enum.Enum):
    IDLE = "idle"  # no command pending or in flight
    READY = "ready"  # holds commands; whether it may run is the `suspended` flag


class CommandState(enum.Enum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"


class EventKind(enum.Enum):
    READY = "ready"
    IDLE = "idle"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    CONFIGURED = "configured"
    TASK = "task"  # an explicit `with xq.task():` span ended
    CLOSED = "closed"


class XQueueInfo(NamedTuple):
    """A snapshot of one XQueue, as listeners and schedulers see it.

    Immutable, and a named tuple rather than a frozen dataclass: a task's start builds
    two (its READY, the last task's IDLE) on the application's thread, and a frozen
    dataclass of 14 fields costs 2.5x as much (1.5 against 0.6 us on the dev VM, ~5x
    that on the H100 host after a pause)."""

    xqueue_id: int
    name: str
    pid: int
    device: str
    state: XQueueState
    suspended: bool
    level: Level
    threshold: int
    batch_size: int
    pending: int
    in_flight: int
    submitted: int
    completed: int
    ready_since: float | None


class XQueueEvent(NamedTuple):
    kind: EventKind
    info: XQueueInfo
    latency_s: float | None = None  # for IDLE (ready -> idle span) and TASK


Listener = Callable[[XQueueEvent], None]


@dataclass(eq=False, slots=True)
class XCommand:
    """A submitted command: its hardware command, its place in the queue, its state."""

    hw: HwCommand
    seq: int
    state: CommandState = CommandState.PENDING
    sync: bool = False  # the XQueue learns of completion at this command
    wanted: bool = False  # someone waits on it: make it a sync point

    @property
    def done(self) -> bool:
        return self.state is CommandState.DONE


_xqueue_ids = itertools.count(1)


class _DirectWait(threading.local):
    """Per thread: the command it waits for in the driver (XQueue._wait_in_driver), or None."""

    target: XCommand | None = None


def _new_xqueue_id() -> int:
    return (os.getpid() << 32) | next(_xqueue_ids)


def _check_int(what: str, value: object, low: int, high: int, high_name: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise XQueueConfigError(f"{what} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise XQueueConfigError(f"{what} {value} is out of range [{low}, {high_name or high}]")
    return value


def check_params(level: int, threshold: int, batch_size: int, max_level: Level) -> Level:
    """Validate XQueue parameters, naming the bad value and its allowed range."""
    _check_int("threshold", threshold, 1, 2**63 - 1, "2**63-1")
    _check_int("batch_size", batch_size, 1, threshold, f"threshold={threshold}")
    _check_int("level", level, 1, 3)
    if level > max_level:
        raise UnsupportedLevelError(
            f"level {level} is above what this hardware queue supports (max level {int(max_level)})"
        )
    return Level(level)


class XQueue:
    """A preemptible command queue; see the module docstring for its threads."""

    def __init__(
        self,
        hwq: HwQueue,
        *,
        level: int = DEFAULT_LEVEL,
        threshold: int = DEFAULT_THRESHOLD,
        batch_size: int | None = None,
        name: str = "",
    ) -> None:
        if batch_size is None:  # XSched's default, but never above the threshold
            batch_size = min(DEFAULT_BATCH_SIZE, threshold) if isinstance(threshold, int) else 1
        self._level = check_params(level, threshold, batch_size, hwq.max_level)
        self._threshold = threshold
        self._batch_size = batch_size
        self.hwq = hwq
        self._holds_ok = hwq.holds  # False once given a gate the holds cannot read
        self._hold_window, self._holds_below = HOLD_WINDOW, HOLDS_BELOW  # (read here: benchmarks compare)
        self._window = self._window_for(self._level, threshold)  # commands it keeps launched
        self._run = 0  # commands launched since the run's first (see "Holds" above)
        self.clock = hwq.clock
        self.id = _new_xqueue_id()
        self.name = name or f"xq-{self.id & 0xFFFFFFFF}"
        self.pid = os.getpid()
        self.busy_latency = LatencyStats()  # ready -> idle spans
        self.task_latency = LatencyStats()  # explicit task() spans
        self._mutex = threading.RLock()  # `with self._mutex` on the hot paths: one call fewer than the condition's
        self._cond = threading.Condition(self._mutex)
        self._pending: deque[XCommand] = deque()
        self._in_flight: deque[XCommand] = deque()
        self._seq = itertools.count()
        self._launches = 0
        self._syncs_in_flight = 0  # in-flight commands that are sync points
        self._submitted = 0
        self._completed = 0
        self._suspended = False
        self._suspended_level = self._level
        self._throttled = False
        self._closed = False
        self._error: BaseException | None = None
        self._ready_since: float | None = None
        self._listeners: list[Listener] = []
        self._gate: memoryview | None = None  # a scheduler's shared byte: nonzero, no launch
        self._gate_slot = 0
        self._on_gate_stall: Callable[[], None] | None = None
        self._gate_held = False  # a level-1 suspension left to the gate (suspend(by_gate=True))
        # News a direct waiter left to the clock: its IDLE, then, if the next task came
        # first, that task's READY, and so on, alternating (see `_on_complete`)
        self._held_news: list[XQueueEvent] = []
        self._release_armed = False  # a clock timer will send the held news (`_release_news`)
        self._direct = _DirectWait()
        # how long after a direct waiter's return its held IDLE news goes out, if no READY
        # of a next task took it first (XSCHED_IDLE_DELAY_US through preempt.runtime)
        self.idle_news_delay_s = IDLE_NEWS_DELAY_S

    # -- application API ------------------------------------------------------------
    def submit(self, cmd: HwCommand) -> XCommand:
        """Queue `cmd`; it is launched when the XQueue runs and has room in flight."""
        if not isinstance(cmd, HwCommand):
            raise TypeError(f"submit() takes an HwCommand, got {type(cmd).__name__}")
        with self._mutex:
            if self._closed:
                raise XQueueClosedError(f"submit to closed XQueue {self.name!r}")
            if self._error is not None:
                self._raise_if_failed()
            became_ready = not self._pending and not self._in_flight
            xcmd = XCommand(cmd, next(self._seq))
            self._pending.append(xcmd)
            self._submitted += 1
            if not became_ready:
                self._pump_locked()
                return xcmd
            self._ready_since = self.clock.now()
            launch_first = self.hwq.cheap_launch
            if launch_first:
                self._pump_locked()
            event = self._event_locked(EventKind.READY)
            # Listeners that have not heard the last task end take the queue for ready
            # still, and this task's start only restarts its span: the news goes with the
            # held IDLE, on the clock's thread, not on the task's path (unless tasks much
            # shorter than the delay have held a lot of it).
            if not self._held_news or event is None:
                news = [event]
            elif len(self._held_news) + 2 <= HELD_NEWS_MAX:  # with this task's IDLE, to come
                self._held_news.append(event)
                news = []
            else:
                news = self._unhold_locked(event)
        # Schedulers hear of READY before the first launch: news of urgent work leaves
        # without waiting for the driver call, and a queue suspended on READY never put
        # its first command on the device. Where a launch costs less than the news
        # (`HwQueue.cheap_launch`: a CUDA launch, against the agent's message), the
        # first command goes first instead: the news is late by a launch, and the
        # queue's task is not by the news.
        try:
            for event in news:
                self._emit(event)
        finally:
            if not launch_first:
                with self._cond:
                    self._pump_locked()
        return xcmd

    def wait(self, xcmd: XCommand, timeout: float | None = None) -> Any:
        """Block until `xcmd` has completed; return its payload's result (or raise its error)."""
        with self._cond:
            if xcmd.state is CommandState.PENDING:
                xcmd.wanted = True
        if timeout is None and self.hwq.direct_wait:
            self._wait_in_driver(xcmd)
        # (done already: a direct wait's usual end, with no predicate made for it)
        if not xcmd.done and not self.clock.wait_for(lambda: xcmd.done or self._error is not None, self._cond, timeout):
            raise XQueueTimeout(f"command {xcmd.seq} of {self.name!r} not done after {timeout} s")
        if not xcmd.done:
            self._raise_if_failed()
        if xcmd.hw.error is not None:
            raise xcmd.hw.error
        return xcmd.hw.result

    def _wait_in_driver(self, xcmd: XCommand) -> None:
        """Block in the driver (`HwQueue.direct_wait`) once `xcmd` is launched with nothing
        pending behind it: the driver waits for all that was launched, then the same as
        for `xcmd`. Until then, while the queue is throttled, wait in the driver too, for
        the in-flight command whose completion makes room (`HwQueue.wait_for`), retire
        through it and launch the next ones on this thread: the completion thread would
        see it a poll later and hand over to this thread after (at threshold 1, every
        command). Retire through `xcmd` ourselves. The adapter may call completion
        callbacks on this thread meanwhile: their news is held like ours (`_on_complete`)
        and goes out `idle_news_delay_s` after we return, with the READY of a next task
        submitted by then."""
        self._direct.target = xcmd
        try:
            self._driver_waits(xcmd)
        finally:
            self._direct.target = None
            arm = False
            if self._held_news:  # (unlocked: a waiter that holds news arms their release itself)
                with self._cond:  # one release pending at a time: it sends all held by then
                    arm = bool(self._held_news) and not self._release_armed
                    self._release_armed |= arm
            if arm:
                self.clock.call_at(self.clock.now() + self.idle_news_delay_s, self._release_news)

    def _release_news(self) -> None:
        """The clock's thread: send the news a direct waiter held, unless sent already."""
        with self._cond:
            self._release_armed = False
            held = self._unhold_locked()
        for event in held:
            self._emit(event)

    def _unhold_locked(self, *events: XQueueEvent | None) -> list[XQueueEvent | None]:
        """The news held for the clock, then `events`, in the order listeners must hear
        them; nothing is held after."""
        held, self._held_news = self._held_news, []
        held.extend(events)
        return held

    def _driver_waits(self, xcmd: XCommand) -> None:
        launched_last = lambda: (  # noqa: E731
            xcmd.done or self._error is not None or (xcmd.state is CommandState.IN_FLIGHT and not self._pending)
        )
        while True:
            self.clock.wait_for(lambda: launched_last() or self._room_maker_locked() is not None, self._cond)
            with self._cond:
                if launched_last():
                    break
                maker = self._room_maker_locked()
            # retire through it (and launch what that makes room for) the moment the driver
            # says it completed, ahead of the adapter's callbacks (`HwQueue.wait_for`)
            if maker is not None and not self.hwq.wait_for(maker.hw, functools.partial(self._on_complete, maker.hw)):
                self.clock.wait_for(launched_last, self._cond)  # the adapter cannot: its completion thread makes room
        with self._cond:
            direct = xcmd.state is CommandState.IN_FLIGHT and self._error is None
        if direct:
            self.hwq.synchronize()
            with self._cond:  # retire through it here: the adapter's callbacks may come later
                event = self._retire_locked(xcmd.hw) if xcmd.state is CommandState.IN_FLIGHT else None
                if event is not None:  # held for the clock's thread (`_on_complete`)
                    self._held_news.append(event)

    def _room_maker_locked(self) -> XCommand | None:
        """While throttled with work pending: the first in-flight sync point whose
        completion lets the launcher go on (at most half the threshold left in flight)."""
        if not (self._throttled and self._pending and not self._suspended and self._error is None):
            return None
        left = len(self._in_flight)
        for xcmd in self._in_flight:
            left -= 1  # in flight once the launcher retired through xcmd (as _retire_locked)
            if left <= self._window // 2 and xcmd.sync:
                return xcmd
        return None

    def synchronize(self, timeout: float | None = None) -> None:
        """Block until every submitted command has completed (with a direct-wait adapter
        and no timeout, in the driver, as `wait` for the last of them)."""
        if timeout is None and self.hwq.direct_wait:
            with self._cond:
                last = self._pending[-1] if self._pending else self._in_flight[-1] if self._in_flight else None
                if last is not None and last.state is CommandState.PENDING:
                    last.wanted = True
            if last is not None:
                self._wait_in_driver(last)
        idle = lambda: (not self._pending and not self._in_flight) or self._error is not None  # noqa: E731
        if not self.clock.wait_for(idle, self._cond, timeout):
            raise XQueueTimeout(f"XQueue {self.name!r} not idle after {timeout} s")
        with self._cond:
            self._raise_if_failed()

    @contextlib.contextmanager
    def task(self) -> Iterator[XQueue]:
        """An explicit task span: submit inside; on exit wait for all and record its latency."""
        start = self.clock.now()
        yield self
        self.synchronize()
        self.record_task(self.clock.now() - start)

    def record_task(self, latency_s: float) -> None:
        """Record a task span the application measured itself (e.g. a request's time to
        first token): kept in `task_latency` and emitted as a TASK event, like a `task()`
        span, so the agent reports it to xschedd as one of this queue's task latencies."""
        if not isinstance(latency_s, (int, float)) or not 0 <= latency_s < float("inf"):
            raise XQueueConfigError(f"task latency must be seconds in [0, inf), got {latency_s!r}")
        self.task_latency.add(float(latency_s))
        with self._cond:
            event = self._event_locked(EventKind.TASK, float(latency_s))
        self._emit(event)

    def suspend(self, sync_hw_queue: bool = False, *, by_gate: bool = False) -> None:
        """Stop this XQueue's commands, as far as its level allows.

        With `sync_hw_queue` (level 1 only), return once the commands already in
        flight have completed, i.e. the hardware queue is quiet.

        With `by_gate` (xschedd's agent applying the daemon's suspend), a level-1
        suspension of a gated XQueue (`set_gate`) is left to the gate: the queue counts
        as suspended while the daemon keeps its byte set and launches again the moment
        the daemon clears it, without waiting for the resume operation to arrive.

        At level 2 the hardware queue is deactivated first, before the XQueue's lock: a
        thread launching a batch may hold it for hundreds of microseconds on CUDA (two or
        three driver calls per guarded command), and the device need not wait for that.
        So are the holds of a level-1 queue closed (at threshold 1 the launcher holds the
        lock through three held launches, ~0.1 ms on the H100's host, in which another
        hold would pass), unless the gate holds the suspension or the caller drains.
        """
        early = None  # unlocked reads: the locked part below sets the hardware right in any race
        if not (self._suspended or self._closed):
            if self._level == Level.DEACTIVATE:
                early = Level.DEACTIVATE
                self.hwq.deactivate()
            elif self._level == Level.BLOCK and self.hwq.holds and not (sync_hw_queue or by_gate):
                early = Level.BLOCK
                self.hwq.close_holds()
        with self._cond:
            if self._suspended or self._closed or (self._gate_held and by_gate):
                if early is not None:
                    self._settle_early_locked(early)
                return
            was_held = self._gate_held
            if by_gate and self._gate is not None and self._level == Level.BLOCK and not sync_hw_queue:
                self._gate_held = True
                self._sync_tail_locked()
            else:  # also a suspension of its own over one left to the gate, which it outlasts
                self._gate_held = False
                self._suspended = True
                self._suspended_level = self._level
                self._sync_tail_locked()
                # again after `early`: a resume may have come between; held commands drain
                # where the caller waits for the queue to go quiet
                self._hw_suspend_locked(self._level, hold=not sync_hw_queue)
            if early is not None:
                self._settle_early_locked(early)
            event = None if was_held else self._event_locked(EventKind.SUSPENDED)
        if event is not None:
            self._emit(event)
        if sync_hw_queue:
            if self._suspended_level != Level.BLOCK:
                raise XQueueConfigError("sync_hw_queue needs level 1: at levels 2-3 work stays queued")
            if self.hwq.holds:  # a gate or a board may have refused a hold: it drains all the same
                self.hwq.pass_holds()
            self.clock.wait_for(lambda: not self._in_flight, self._cond)

    def resume(self) -> None:
        """Let this XQueue run again."""
        with self._cond:
            if not (self._suspended or self._gate_held):
                return
            if self._suspended:
                self._suspended = False
                self._hw_resume_locked(self._suspended_level)
            elif self.hwq.holds:  # a suspension the gate held: a hold it refused waits for this
                self.hwq.release_holds()
            self._gate_held = False
            self._pump_locked()
            self._cond.notify_all()  # a waiter may make room in the driver again
            event = self._event_locked(EventKind.RESUMED)
        self._emit(event)

    def set_level(self, level: int) -> None:
        with self._cond:
            new = check_params(level, self._threshold, self._batch_size, self.hwq.max_level)
            if self._gate_held and new != Level.BLOCK:  # the gate stops launches only
                self._gate_held = False
                self._suspended = True
                self._suspended_level = Level.BLOCK
            if self._suspended and new != self._suspended_level:
                self._hw_resume_locked(self._suspended_level)
                self._hw_suspend_locked(new)
                self._suspended_level = new
            self._level = new
            self._set_window_locked()
            event = self._event_locked(EventKind.CONFIGURED)
        self._emit(event)

    def set_threshold(self, threshold: int) -> None:
        with self._cond:
            _check_int("threshold", threshold, 1, 2**63 - 1, "2**63-1")
            self._threshold = threshold
            self._batch_size = min(self._batch_size, threshold)
            self._set_window_locked()
            self._pump_locked()
            event = self._event_locked(EventKind.CONFIGURED)
        self._emit(event)

    def set_batch_size(self, batch_size: int) -> None:
        with self._cond:
            check_params(self._level, self._threshold, batch_size, Level.INTERRUPT)
            self._batch_size = batch_size
            event = self._event_locked(EventKind.CONFIGURED)
        self._emit(event)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new submissions and wait for the submitted ones to complete."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        try:
            self.synchronize(timeout)
        finally:
            with self._cond:
                held = self._unhold_locked(self._event_locked(EventKind.CLOSED))
            for event in held:
                self._emit(event)

    def set_gate(
        self,
        gate: memoryview | None,
        slot: int = 0,
        on_stall: Callable[[], None] | None = None,
        stall: memoryview | None = None,
    ) -> None:
        """Launch nothing while `gate[slot]` is nonzero (None: no gate).

        xschedd's suspend gates (xschedd/gates.py): the daemon sets the byte before its
        suspend operation travels, so launching stops as soon as it decides, and clears
        it before its resume travels. The byte holds launches back; a suspension left
        to it (`suspend(by_gate=True)`) ends when it clears. `on_stall` is called, under
        the XQueue's lock (so it must be quick), whenever the byte alone keeps work that
        could launch now from launching: whoever clears the byte may then `pump()` the
        queue rather than wait for its next completion. Dropping a gate launches what
        it held back. `stall`: the bytes `on_stall` marks (slot `slot`), for a hardware
        queue with holds, whose hardware marks it where the gate refused a hold.
        """
        with self._cond:
            self._gate, self._gate_slot, self._on_gate_stall = gate, slot, on_stall
            if self.hwq.holds:  # holds launched ahead must see the gate too, or none is made
                self._holds_ok = self.hwq.set_hold_gate(gate, slot, stall)
                self._set_window_locked()
            if gate is None:
                self._pump_locked()
                self._cond.notify_all()  # a waiter the gate left with no room to make (`pump`)

    def pump(self) -> None:
        """Launch now whatever may be launched (after a gate opened; see `set_gate`), and
        let the queue past a hold the gate refused. A waiter that the gate left with no
        room to make goes back to making it in the driver (as after `resume`): else it
        waited for the adapter's next completion, on CUDA up to a poll of 20 ms after
        this launch's work ran out."""
        with self._cond:
            if self.hwq.holds and not (self._suspended or self._gated_locked()):
                self.hwq.release_holds()
            self._pump_locked()
            self._cond.notify_all()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(event)` on every state change (the hook schedulers use)."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._cond:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

    # -- observation ------------------------------------------------------------------
    @property
    def level(self) -> Level:
        return self._level

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def suspended(self) -> bool:
        with self._cond:
            return self._suspended_locked()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def state(self) -> XQueueState:
        with self._cond:
            return self._state_locked()

    def info(self) -> XQueueInfo:
        with self._cond:
            return self._info_locked()

    def readiness(self) -> tuple[bool, bool, float | None]:
        """(ready, suspended, ready_since) in one consistent read: what a scheduler's
        decision needs, without building the full `info()` snapshot."""
        with self._cond:
            return bool(self._pending or self._in_flight), self._suspended_locked(), self._ready_since

    # -- internals ---------------------------------------------------------------------
    def _suspended_locked(self) -> bool:
        return self._suspended or (self._gate_held and self._gated_locked())

    def _state_locked(self) -> XQueueState:
        return XQueueState.READY if self._pending or self._in_flight else XQueueState.IDLE

    def _info_locked(self) -> XQueueInfo:
        return XQueueInfo(
            xqueue_id=self.id,
            name=self.name,
            pid=self.pid,
            device=self.hwq.device_name,
            state=self._state_locked(),
            suspended=self._suspended_locked(),
            level=self._level,
            threshold=self._threshold,
            batch_size=self._batch_size,
            pending=len(self._pending),
            in_flight=len(self._in_flight),
            submitted=self._submitted,
            completed=self._completed,
            ready_since=self._ready_since,
        )

    def _event_locked(self, kind: EventKind, latency_s: float | None = None) -> XQueueEvent | None:
        """The news of a change, or None with nobody listening (a snapshot of the queue
        costs more than a CUDA launch: the first commands of a task would wait for it)."""
        if not self._listeners:
            return None
        return XQueueEvent(kind, self._info_locked(), latency_s)

    def _emit(self, event: XQueueEvent | None) -> None:
        if event is None:
            return
        for listener in list(self._listeners):
            listener(event)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise HwQueueFailed(f"XQueue {self.name!r}: hardware queue failed: {self._error}")

    def _hw_suspend_locked(self, level: Level, hold: bool = True) -> None:
        if level >= Level.INTERRUPT:
            self.hwq.interrupt()
        elif level == Level.DEACTIVATE:
            self.hwq.deactivate()
        elif hold and self.hwq.holds:
            self.hwq.close_holds()

    def _settle_early_locked(self, level: Level) -> None:
        """After a deactivate (or a close of the holds) ahead of the lock: undo it unless
        the queue now stands suspended at that level (it was closed, suspended at another
        level, or left to its gate, meanwhile)."""
        if not (self._suspended and self._suspended_level == level):
            self._hw_resume_locked(level)

    def _hw_resume_locked(self, level: Level) -> None:
        if level >= Level.INTERRUPT:
            self.hwq.restore()
        elif level == Level.DEACTIVATE:
            self.hwq.reactivate()
        elif self.hwq.holds:
            self.hwq.open_holds()

    def _window_for(self, level: Level, threshold: int) -> int:
        """How many commands the queue keeps launched: its threshold, or, at level 1 on
        a hardware queue with holds, HOLD_WINDOW for one under HOLDS_BELOW (see "Holds" above)."""
        if level == Level.BLOCK and self._holds_ok and threshold < min(self._holds_below, self._hold_window):
            return self._hold_window
        return threshold

    def _set_window_locked(self) -> None:
        self._window = self._window_for(self._level, self._threshold)
        self._throttled = len(self._in_flight) >= self._window

    def _gated_locked(self) -> bool:
        return self._gate is not None and self._gate[self._gate_slot] != 0

    def _launchable_locked(self) -> bool:
        """Whether the queue would launch now, its gate aside."""
        return bool(self._pending) and not self._suspended and not self._throttled and self._error is None

    def _pump_locked(self) -> None:
        """Launch while allowed, on the calling thread (see the module docstring).

        On every command's path: a task's first commands reach the device no sooner than
        this loop launches them (on CUDA a command costs the host a few us here, against
        a launch's 5-30 us), so it reads fields once rather than calling the predicates
        above."""
        if not self._pending:  # (a task's end: its waiter retires with nothing left)
            return
        gate, slot = self._gate, self._gate_slot
        if self._on_gate_stall is not None and self._gated_locked() and self._launchable_locked():
            self._on_gate_stall()  # work the gate alone holds back: ask for a pump when it opens
        # (the loop reads the gate again after that mark: a clear in between is not missed)
        pending, in_flight, launch = self._pending, self._in_flight, self.hwq.launch
        threshold, window = self._threshold, self._window
        half = max(1, window // 2)  # where the launcher, throttled, goes on
        holding = window > threshold  # runs of `threshold`, each after the first behind a hold
        launched = False
        while (
            pending
            and not (self._suspended or self._throttled or self._error is not None)
            and (gate is None or not gate[slot])
        ):
            xcmd = pending.popleft()
            self._launches += 1
            n = len(in_flight) + 1
            held = holding and n > 1 and self._run >= threshold
            sync = xcmd.sync = (
                xcmd.wanted
                or self._launches % self._batch_size == 0
                or n >= window
                or n % half == 0
                or (not pending and not self._syncs_in_flight)  # else news of idle would wait
            )
            self._syncs_in_flight += sync
            in_flight.append(xcmd)
            xcmd.state = CommandState.IN_FLIGHT
            if n >= window:
                self._throttled = True
            try:
                (self.hwq.launch_held if held else launch)(xcmd.hw, self._on_complete if sync else None)
            except Exception as exc:  # the device is gone: stop, keep the command, tell waiters
                in_flight.pop()
                self._syncs_in_flight -= sync
                xcmd.state = CommandState.PENDING
                pending.appendleft(xcmd)
                self._error = exc
                self._cond.notify_all()
                return
            self._run = 1 if held or n == 1 else self._run + 1
            launched = True
        if launched and not pending:
            self._cond.notify_all()  # a direct waiter (wait) may go to the driver now

    def _sync_tail_locked(self) -> None:
        """Make the last in-flight command a sync point, so its completion is seen even if
        nothing else is launched for a while (a suspended queue)."""
        if self._in_flight and not self._in_flight[-1].sync:
            tail = self._in_flight[-1]
            tail.sync = True
            self._syncs_in_flight += 1
            self.hwq.launch(HwCommand(0.0, name="xq-sync"), lambda _: self._on_complete(tail.hw))

    def _on_complete(self, hw: HwCommand) -> None:
        """A sync point completed (the hardware queue's callback, or a direct waiter):
        retire every in-flight command up to `hw`, in order, and tell the listeners.

        On a direct waiter's thread (its own call, or the adapter calling back on it) the
        command retires as soon as the driver returns, and the IDLE news is left to the
        clock's thread: the waiter's task does not pay for the news (the agent's message
        to xschedd, about 40 us). A READY submitted before that joins it (`submit`), so
        listeners hear IDLE and READY in turn, whichever thread sends them. A callback
        that finds its command retired already sends the news held so far, unless the
        clock is due to (`_release_armed`): a waiter's callbacks that the adapter calls
        later (hal.cuda: "Delivered later") leave the held IDLE to the clock's delay, as
        the waiter meant.
        """
        hold_news = self._direct.target is not None
        news: list[XQueueEvent | None] = []
        with self._cond:
            if any(xcmd.hw is hw for xcmd in self._in_flight):
                event = self._retire_locked(hw)
                if event is not None and hold_news:
                    self._held_news.append(event)
                elif event is not None:  # after what was held: listeners hear READY, IDLE in turn
                    news = self._unhold_locked(event)
            elif not (hold_news or self._release_armed):  # already retired by a later sync
                news = self._unhold_locked()  # point, or by a waiter who left us its news
        for event in news:
            self._emit(event)

    def _retire_locked(self, hw: HwCommand) -> XQueueEvent | None:
        """Retire up to `hw` and launch what that makes room for; the IDLE event, if any.

        A task's end waits for it (its waiter retires the task), on a host that runs
        slowly right after a wait in the driver: locals in the loop, counts added once."""
        in_flight, done, syncs, n = self._in_flight, CommandState.DONE, 0, 0
        while in_flight:
            xcmd = in_flight.popleft()
            syncs += xcmd.sync
            xcmd.state = done
            n += 1
            if xcmd.hw is hw:
                break
        self._syncs_in_flight -= syncs
        self._completed += n
        if self._throttled and len(in_flight) <= self._window // 2:
            self._throttled = False
        event = None
        if not in_flight and not self._pending:
            start = self._ready_since
            latency = None if start is None else self.clock.now() - start
            if latency is not None:
                self.busy_latency.add(latency)
            self._ready_since = None
            event = self._event_locked(EventKind.IDLE, latency)
        self._cond.notify_all()
        self._pump_locked()
        # launched after the last sync point: make the tail one, unless this thread waits in
        # the driver for the tail (it retires through it; a marker would be the completion
        # thread's to deliver, at the end of every task)
        if in_flight and not self._syncs_in_flight and self._direct.target is not in_flight[-1]:
            self._sync_tail_locked()
        return event
