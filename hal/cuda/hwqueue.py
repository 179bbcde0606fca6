"""CudaHwQueue: the HwQueue over one CuPy stream; level 1 always, level 2 for guarded kernels."""

from __future__ import annotations

import atexit
import functools
import logging
import mmap
import queue
import threading
import time
import weakref
from collections.abc import Callable

import cupy

from hal.anticipation import Anticipation
from hal.board import BoardFull, PriorityBoard, level_of, may_run
from hal.command import HwCommand, Level
from hal.cuda.commands import GuardedLaunch
from hal.cuda.durations import shape_key
from hal.cuda.gate import DeviceFlag, StreamGate, TicketGate, stream_priority_for, ticket_gate
from hal.cuda.holds import address_of, holds, register_host, unregister_host
from hal.cuda.instrument import TAIL_GATE, TAIL_GATE_AND_RELAUNCH, TAIL_NONE
from hal.errors import HalError
from hal.hwqueue import CompletionCallback, HwQueue

log = logging.getLogger(__name__)
_bound = threading.local()
_waiter = threading.local()  # `.delivering`: this thread delivers its own wait's callbacks
_live: weakref.WeakSet[CudaHwQueue] = weakref.WeakSet()

# Dynamic shared memory a launch may use without the kernel opting in (a function attribute
# the host sets; the relaunch that the GPU launches carries none).
_SHARED_NO_OPT_IN = 48 * 1024
# guarded launches measured shorter than this run plain, while the run of them in a row
# stays within it (hal.cuda.durations): what a suspend may wait for beyond a guarded launch
PLAIN_BUDGET_US = 20.0
# Off a board, parking (hal.sharing) is for long launches. Measured on the H100, UP 75/25
# of two processes at level 2 through xschedd (bench/cuda_bandwidth_2proc.py): with 1 ms
# spin commands 0.88-0.89 of one process's throughput parked against 0.40-0.41 napping
# (a suspended stream's napping kernel keeps its context in the GPU's time slices, 8a5ba57);
# with 8-layer stacks (GEMMs of about 0.2 ms) every launch parked gave 0.74-0.80 against
# 0.82-0.97 with the GEMMs napping (a probe at 8a5ba57: short launches rarely leave a
# kernel napping for long, and the ticket costs each one). Between the two, this bound.
PARK_MIN_US = 500.0
# A parked launch of at most this many waves is its own ticket (each block counts itself
# out, the last writes the ticket); a longer one is followed by the one-thread ticket
# kernel. Counting costs every block a fence and an atomic's round trip (~0.7 us) at its
# end, so it grows with the waves: on the H100, 1 ms of 10 us blocks (100 waves) ran at
# 0.926 of plain launches counting, 0.996 with the ticket kernel, 0.992 against 0.995
# with 100 us blocks (10 waves). The ticket kernel costs the GPU ~2-4 us a command and
# the launching thread a launch (5-10 us), which host-bound tasks feel (an 8-layer
# stack's GEMMs are a few waves each): about the cost of counting 12 waves.
SELF_TICKET_MAX_WAVES = 12
# On a board, an outranked queue's launches of more waves than this run looped
# (`CudaHwQueue._launch_looped`): where the ticket kernel would follow them
LOOP_MIN_WAVES = SELF_TICKET_MAX_WAVES
# ... and whose waves were measured to take at least this long (hal.cuda.durations): a
# loop costs each block a little, which short blocks feel (H100: 32 M-float axpy, 6 us a
# wave, ran 9.4% slower looped; 1 ms spin commands, 10.8 us a wave, 0.4-1.7%)
LOOP_MIN_WAVE_US = 8.0
# A launch parked with no kernel (`CudaHwQueue._park_first`) for longer than this while the
# level above still runs is let go into its guarded kernel, which flushes after one wave
# and stops at its own hold. On the H100 without MPS, at a foreground's start beside a
# background parked so, the GPU sometimes kept giving the parked context its time slices:
# every command of the foreground waited ~2.08 ms (a threshold-1 task of four 250 us
# commands took 8.33 ms instead of 1.25) until the park was let go, for up to 785 ms while
# the foreground ran back to back; it happened in about one start in six. Interleaved
# starts at threshold 1 (10 of each): let go so, one start had one slow task (8.3 ms);
# without, two starts had 13 and 1 (docs/h100-benchmarks.md, "A park let go"). The
# cost: one wave of the background's kernel and a switch, once per park that lasts this
# long. The board's watcher checks on each pass (at least every hal.board.REAP_S).
STALE_PARK_S = 0.02


@atexit.register
def _reactivate_all() -> None:
    """A stream left deactivated would never drain, and CuPy's exit would wait on it."""
    for q in list(_live):
        q._open(drain=True)


# Work CUDA queues leave for later runs on one thread per process (`_run_later`), handed
# over through a SimpleQueue, whose put is reentrant: safe from a finalizer that the
# garbage collector runs while this thread holds a lock. Three kinds: the completion
# callbacks of a whole-stream wait ("Delivered later" in hal.cuda.completions), a direct
# waiter's board lowering (`CudaHwQueue._lower`, after `wait_for`: a put costs the waiter
# ~2 us, a hal.clock timer 13), and a dropped queue's completion lane closing
# (`Completions.close` takes the lock that `Completions.add` holds while it allocates, so
# a collection there that ran it at once hung the thread on itself: seen in the GPU suite
# on the H100).
_later: queue.SimpleQueue = queue.SimpleQueue()
_later_thread: threading.Thread | None = None
_later_lock = threading.Lock()


# A queue whose next launch came within this long of its last whole-stream wait's return
# (tasks back to back) delivers its next such wait on the waiting thread, before it returns:
# handed to the later thread, that delivery took the interpreter lock at the next task's
# first launch, the first moment the application's thread let go of it, and the GPU waited
# for the task's next commands meanwhile ("Back to back" in hal.cuda.completions).
BACK_TO_BACK_S = 0.001


def _run_now(fn: Callable[[], None]) -> None:
    fn()


def _start_later_thread() -> None:
    """Called by every CudaHwQueue before it can leave work: never from a finalizer."""
    global _later_thread
    with _later_lock:
        if _later_thread is None:
            _later_thread = threading.Thread(target=_run_later, name="xsched-cuda-later", daemon=True)
            _later_thread.start()


def _run_later() -> None:
    while True:
        fn = _later.get()
        try:
            fn()
        except Exception:  # a board or lane gone away must not stop the other queues' work
            log.exception("deferred work of a CUDA queue failed")


_mapped: set[int] = set()
_mapped_lock = threading.Lock()


def _map_for_device(board: PriorityBoard) -> bool:
    """Page-lock the board's shared page and map it into every CUDA context, once per process:
    kernels read its word and streams wait on it. False (logged) where CUDA refuses."""
    with _mapped_lock:
        if board.address in _mapped:
            return True
        try:
            register_host(board.address, board.size)
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            log.warning("priority board %s: CUDA cannot map it (%s); queues run without it", board.path, exc)
            return False
        _mapped.add(board.address)
        return True


_PAGE = mmap.PAGESIZE  # host memory CUDA registers starts on a page


def _bind_thread(index: int) -> None:
    """Make `index` the current device of this thread once (driver calls need a context)."""
    if getattr(_bound, "index", None) != index:
        cupy.cuda.runtime.setDevice(index)
        _bound.index = index


class CudaHwQueue(HwQueue):
    """A CUDA stream as a hardware queue.

    Launch enqueues a command's work on the stream and, when it has a completion callback,
    has hal.cuda.completions record a pooled event and the completion thread's marker behind
    it (none on a lane its waiters deliver: "Waited lanes" there); callbacks run on that
    thread in launch order. Level 2 (`deactivate`) sets this queue's flag (a store to pinned host
    memory, see hal.cuda.gate): guarded kernels in flight flush their not-yet-started
    blocks and the stream stops at the gate after the flushed kernel (a napping kernel that
    the GPU launches where CUDA's device runtime links, from a one-thread check behind
    the kernel: nothing more for a command that did not flush; hal.cuda.instrument);
    `reactivate` clears
    the flag, the gate opens, and the relaunch runs exactly the flushed blocks. With the
    ticket gate (hal.cuda.gate: on a board, and for long launches while another process
    time-slices the GPU, hal.sharing) a stopped stream runs nothing on the GPU, so another
    process's context gets the whole GPU, not time slices shared with a waiting kernel.
    Other commands (closures, cuBLAS, graphs, copies) are level 1: they run to
    completion, and stay in order because every guarded launch has its gate and
    relaunch behind it (from the GPU after a flush, or from the host); with the ticket
    gate one more before each parks the stream there too. On a board, an outranked
    queue's relaunch stops too when a higher level comes back, with a hold of its own
    (`_launch_flushing`), and a launch made while a higher level runs parks ahead of its
    kernel (`_park_first`). A launch racing the first
    deactivate of a `guard=None` queue may go out plain: it then runs to completion.

    `guard`: True launches guarded kernels instrumented, False plain (pure level 1, no
    overhead); None (default) starts plain and turns guarding on at the first deactivate.
    Caveat (measured on the H100): while a queue is deactivated its stream is not idle, and
    loading a CUDA module (CuPy compiling/loading a kernel on first use) may wait for the
    device to go idle: do first uses (warm-up) before scheduling, or such a load can
    block until the queue is reactivated.
    Threads: launch, deactivate and reactivate may be called from any thread and never
    block on the GPU; launches are serialised by a lock.
    """

    max_level = Level.DEACTIVATE
    direct_wait = True
    cheap_launch = True  # microseconds in the driver: cheaper than the scheduler's news

    def __init__(self, device, stream: cupy.cuda.Stream | None = None, *, priority: int = 0,
                 guard: bool | None = None, board: PriorityBoard | None = None) -> None:  # fmt: skip
        self.device = device
        self._index, self._pool, self._completions, self._key = device.index, device.pool, device.completions, id(self)
        self.clock = device.clock
        self.device_name = device.name
        self._guard = guard
        _start_later_thread()
        self._lock = threading.Lock()
        self._closed = False
        self._epoch = 0
        _bind_thread(device.index)
        with cupy.cuda.Device(device.index):
            self.owns_stream = stream is None
            self.stream = stream if stream is not None else cupy.cuda.Stream(non_blocking=True, priority=priority)
            self._streams = {priority: self.stream}
            self._stream_priority = priority
            self._flag = DeviceFlag()
            # the flushed epoch; the GPU relaunch's round and (uint64) when it last read the host word
            self._flushed = cupy.zeros(8, dtype=cupy.uint32)  # [4]: blocks left of a launch that is its own ticket
            self._flushed_ptr = self._flushed.data.ptr
            self._state = cupy.zeros(4096, dtype=cupy.uint32)
            cupy.cuda.Device(device.index).synchronize()
        # (kernel, grid, block, smem) -> (blocks, relaunch grid, whether a loop keeps its occupancy)
        self._shapes: dict[tuple, tuple[int, int, bool]] = {}
        self._level = 0  # the board level (hal.board.level_of the XSched priority)
        self._inflight = 0  # launches with a completion callback not yet completed
        self._inflight_lock = threading.Lock()
        self._idles: list[tuple[int, float]] = []  # (level, when) gone idle, to lower (`_lower`)
        self._board, ticket = self._join(board)
        # hal.anticipation: a periodic queue holds its level a little before its next task
        lead_us = device.board_lead_us
        self._anticipation = None
        if self._board is not None and lead_us > 0:
            device.claim.load()  # not at the first hold: see ContextClaim.load
            self._anticipation = Anticipation(self._board, lambda: self._level, lead_us * 1e-6, claim=device.claim)
        # the gates (hal.cuda.gate): a napping kernel, or a ticket, which parks the stream with
        # nothing on the GPU but costs every guarded command a few microseconds. A launch takes
        # the ticket on a board, and while another process time-slices the GPU (hal.sharing:
        # a napping kernel would keep this context in the slices); see "CUDA across processes"
        # in docs/architecture.md. Each launch is gated by one kind; reactivate opens both.
        self._sharing = device.sharing
        self._napping = StreamGate(self._flag)
        self._ticket = ticket or ticket_gate()  # None where the driver cannot wait on memory
        with cupy.cuda.Device(device.index):
            self._holds = holds() if self._ticket is not None else None  # level-1 holds (hal.cuda.holds)
        self.holds = self._holds is not None
        self._hold_gate: list[int] = []  # the host pages it registered for the daemon's gate
        # `device_gate`: the napping gate comes from the GPU itself, after a flush only, where
        # the device runtime links (hal.cuda.instrument); a ticket cannot. Set it False to
        # gate every guarded command from the host (benchmarks and tests compare the two).
        self.device_gate = True
        # `gpu_relaunch` (with `device_gate`): the flushed launch also tail-launches its
        # relaunch, so an undisturbed guarded command is one kernel (hal.cuda.instrument).
        self.gpu_relaunch = True
        # `plain_budget_us`: a guarded launch of a shape measured to run at most this long
        # runs plain while the plain launches in a row add up to no more (0: guard all)
        self.plain_budget_us = PLAIN_BUDGET_US
        self.plain_launches = 0  # guarded launches that ran plain so (tests, diagnostics)
        # `park_min_us`: off a board, a guarded launch of a shape measured shorter than this
        # naps even while another process time-slices the GPU (see PARK_MIN_US)
        self.park_min_us = PARK_MIN_US
        self._plain_run_us = 0.0
        self._waited_at: float | None = None  # when the last whole-stream wait returned
        self._back_to_back = False  # the launch after it came within BACK_TO_BACK_S
        if self._board is not None:
            self._board.watch(self._on_board)
        _live.add(self)
        # a queue dropped without close() ends its completion thread too
        weakref.finalize(self, _later.put, functools.partial(self._completions.close, self._key))

    # -- HwQueue ---------------------------------------------------------------------------
    def launch(self, cmd: HwCommand, on_complete: CompletionCallback | None = None) -> None:
        self._launch(cmd, on_complete, False)

    def launch_held(self, cmd: HwCommand, on_complete: CompletionCallback | None = None) -> None:
        """`launch` behind a hold (hal.cuda.holds): `cmd` runs only if, once the work
        launched before it is done, the queue may still run."""
        self._launch(cmd, on_complete, True)

    def _launch(self, cmd: HwCommand, on_complete: CompletionCallback | None, held: bool) -> None:
        _bind_thread(self._index)
        if self._waited_at is not None:  # a task's first launch (unlocked: a hint, see BACK_TO_BACK_S)
            self._back_to_back = time.monotonic() - self._waited_at < BACK_TO_BACK_S
            self._waited_at = None
        with self._lock:
            if self._closed:
                raise HalError(f"launch of {cmd.name or cmd.id!r} on a closed CUDA queue")
            if held:
                self._holds.hold(self.stream, self._board.address if self._board is not None else 0, self._level)
            # on a board, the level goes up before the launch, and behind it where the
            # queue's is the only level registered or a window holds it up (`_track`)
            behind = on_complete is not None and self._board is not None
            if behind and not self._up_already():
                on_complete = self._track(on_complete)
                behind = False
            self._enqueue(cmd)
            if on_complete is None:
                return
            if behind:
                on_complete = self._track(on_complete)
            self._completions.add(self._key, cmd, on_complete, self.stream)

    def synchronize(self, timeout: float | None = None) -> bool:
        """Without a timeout, in the driver; the callbacks of what completed then are called
        soon after on the later thread, not on this one ("Delivered later" in
        hal.cuda.completions): a caller that needs them done retires by itself. Where the
        queue runs tasks back to back (BACK_TO_BACK_S), on this thread before it returns."""
        if timeout is None:
            later = _run_now if self._back_to_back else _later.put
            self._completions.wait_whole(self._key, self.stream.synchronize, later)
            self._waited_at = time.monotonic()
            return True
        event = self._pool.get()
        event.record(self.stream)
        deadline = time.monotonic() + timeout
        while not event.done:
            if time.monotonic() >= deadline:
                return False
            time.sleep(50e-6)
        self._pool.put(event)
        return True

    def wait_for(self, cmd: HwCommand, then: Callable[[], None] | None = None) -> bool:
        """In the driver; `then()` right after it, then the callbacks of `cmd` and of
        those before it on this thread, unless the completion thread got to them first.
        At threshold 1 an XQueue's `then` launches its next command: ahead of the
        callbacks, the GPU gets it sooner (on the H100 host, two of a task's commands
        ended 52-59 us apart on the GPU against 61-63 us before, three rounds)."""
        completions = self._completions
        with completions.waiting(self._key):
            event = completions.event_of(self._key, cmd)
            if event is not None:
                cupy.cuda.runtime.eventSynchronize(event.ptr)  # without the interpreter lock
            if then is not None:
                then()
            if event is not None:
                self._deliver_as_waiter(cmd)
        return True

    def _deliver_as_waiter(self, cmd: HwCommand) -> None:
        """Call the callbacks through `cmd` on this thread, which waited for it: what they
        leave to others (`_track`) goes to another thread, off the wait's path."""
        _waiter.delivering = True
        try:
            self._completions.deliver_through(self._key, cmd)
        finally:
            _waiter.delivering = False

    def deactivate(self) -> None:
        if self._guard is None:
            self._guard = True
        if self._ticket is not None:
            self._ticket.close()
            self._holds.close()
        self._flag.raise_()  # a store to host memory: no driver call, no thread binding

    def reactivate(self) -> None:
        _bind_thread(self._index)
        self._plain_run_us = 0.0
        self._open()

    def close_holds(self) -> None:
        self._holds.close()

    def open_holds(self) -> None:
        self._holds.open(self._board_allows())

    def pass_holds(self) -> None:
        self._holds.pass_issued()

    def release_holds(self) -> None:
        self._holds.release(self._board_allows())

    def _board_allows(self) -> bool:
        """Whether the board (if the queue is on one) lets its level run now."""
        return self._board is None or may_run(self._board.word, self._level)

    def set_hold_gate(self, gate: memoryview | None, slot: int = 0, stall: memoryview | None = None) -> bool:
        """Have holds read xschedd's suspend gate `gate[slot]` and mark `stall[slot]` when it
        refuses one (hal.cuda.holds); both views must start on a page, as a gate page's do.
        False where CUDA cannot map them: then holds do not see the gate."""
        if self._holds is None:
            return False
        self._drop_hold_gate()
        if gate is None:
            return True
        _bind_thread(self._index)
        views = [gate] if stall is None else [gate, stall]
        for view in views:
            address = address_of(view)
            try:
                if address % _PAGE:
                    raise ValueError(f"a gate view at {address:#x} does not start on a page")
                register_host(address, -(-len(view) // _PAGE) * _PAGE)
            except (ValueError, cupy.cuda.runtime.CUDARuntimeError) as exc:
                # the text only: a record that kept the exception would keep the view exported
                log.warning("holds cannot read this suspend gate (%s): the queue launches one threshold at a time",
                            str(exc))
                self._drop_hold_gate()
                return False
            self._hold_gate.append(address)
        stall_ptr = 0 if stall is None else address_of(stall) + slot
        self._holds.set_gate(address_of(gate) + slot, stall_ptr, gate[slot : slot + 1])
        return True

    def _drop_hold_gate(self) -> None:
        """Holds read no suspend gate; the pages registered for one are let go."""
        for address in self._hold_gate:
            unregister_host(address)
        self._hold_gate = []
        self._holds.set_gate(0, 0, None)

    def set_priority(self, priority: int) -> None:
        """Launch from now on into a stream of the matching CUDA priority (hal.cuda.gate.
        stream_priority_for): the hardware then starts this queue's blocks before those of
        lower-priority streams, e.g. a suspended queue's commands still in flight. Order is
        kept: the new stream waits for everything launched on the old one. A queue over an
        application's stream keeps that stream's priority."""
        if self._board is not None:
            self._set_level(level_of(priority))
        if not self.owns_stream:
            return
        target = stream_priority_for(priority)
        _bind_thread(self._index)
        with self._lock:
            if target == self._stream_priority or self._closed:
                return
            with cupy.cuda.Device(self._index):
                new = self._streams.get(target)
                if new is None:
                    new = self._streams[target] = cupy.cuda.Stream(non_blocking=True, priority=target)
                handoff = cupy.cuda.Event(block=False, disable_timing=True)
                handoff.record(self.stream)
                new.wait_event(handoff)
            self.stream = new
            self._stream_priority = target

    @property
    def stream_priority(self) -> int:
        """The CUDA priority of the stream launches go to now (lower is more urgent)."""
        return self._stream_priority

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._open(drain=True)  # a deactivated or held stream would never drain
        self.stream.synchronize()
        if self._holds is not None:
            self.set_hold_gate(None)
        self._completions.close(self._key)
        if self._board is not None:
            self._board.unwatch(self._on_board)
            self._lower()
            with self._inflight_lock:
                if self._anticipation is not None:
                    self._anticipation.close()
                if self._inflight:
                    self._board.deactivate(self._level)
                self._inflight = 0
            self._board.unregister(self._level)

    # -- observation -------------------------------------------------------------------------
    @property
    def guarding(self) -> bool:
        return bool(self._guard)

    def anticipation_summary(self) -> dict[str, int] | None:
        return None if self._anticipation is None else self._anticipation.summary()

    # -- the priority board ------------------------------------------------------------------------
    def _join(self, board: PriorityBoard | None) -> tuple[PriorityBoard | None, TicketGate | None]:
        """(board, its ticket gate), or (None, None) where the queue must run without it: a
        board is worth nothing without a ticket gate, and a queue runs rather than fails."""
        if board is None or not _map_for_device(board):
            return None, None
        with cupy.cuda.Device(self._index):
            ticket = ticket_gate()
        if ticket is None:
            log.warning("no stream memory waits on this driver: CUDA queues run without the priority board")
            return None, None
        try:
            board.register(self._level)
        except BoardFull as exc:
            log.warning("%s; this queue runs without the priority board", exc)
            return None, None
        return board, ticket

    def _up_already(self) -> bool:
        """Whether a launch may raise the level behind itself: nobody else is registered,
        or the anticipation holds the level up for this task's window (the lower levels
        parked before it came). Raising it first then parks nobody and delays the task's
        first kernel ~10 us (the H100 host, the fixed-priority pair: it ran 56-64 us after
        the task began, against 68-75 us raised first)."""
        if self._board.alone(self._level):
            return True
        return self._anticipation is not None and self._anticipation.holding

    def _track(self, on_complete: CompletionCallback) -> CompletionCallback:
        """Count a launch in flight (activating this queue's level on the board) and
        wrap its callback to count it out (deactivating the level when none is left).

        `launch` calls it before the launch: a lower level's kernels flush and its stream
        parks while this launch reaches the GPU. Where this queue's level is the only one
        registered on the board, or a window of its anticipation holds it up, it calls it
        behind the launch, off the task's first command (`_up_already`): the write cost
        that task 33-47 us on the H100 host, and nobody is there to park (one registering
        meanwhile sees the level a launch later; a hold parked the lower levels). Behind the
        launch wherever no lower level is registered was measured too, and the lowest
        queue of a pair, its level raised late, cost the other's P99 (docs/architecture.md,
        "The board's writes off the task's path").

        A launch counts out after its callback: an XQueue's callback launches the queue's
        next command (`XQueue._retire_locked` pumps), which so counts in first, and the
        level stays up from a task's first command to its last. Counted out first, at
        threshold 1 (one command in flight) the level went down between every two
        commands of a task: the lower levels ran in each gap, and each next command paid
        their flush and the context switch back (the H100 pair: the foreground's P50 1.51
        ms against 1.26 at threshold 4, 78% of its tasks in a held window against 99%:
        a task's first command ended the hold)."""
        with self._inflight_lock:
            self._inflight += 1
            if self._inflight == 1:
                self._board.activate(self._level)
                if self._anticipation is not None:
                    self._anticipation.busy()

        def done(cmd: HwCommand) -> None:
            try:
                on_complete(cmd)  # first: it may launch the queue's next command, which counts in
            finally:
                with self._inflight_lock:
                    idle = self._inflight == 1
                    self._inflight = max(0, self._inflight - 1)
                    if idle:
                        self._idles.append((self._level, time.monotonic()))
                        later = getattr(_waiter, "delivering", False)
                        arm = later and len(self._idles) == 1  # else a flush is due already
                if idle and not later:
                    self._lower()
                elif idle and arm:
                    _later.put(self._lower)

        return done

    def _lower(self) -> None:
        """Lower the levels of the queue's idles so far on the board.

        A thread that waited for the launches in the driver leaves this to another
        (`done` in `_track`, `_run_later`): on the H100 host it cost ~30 us of the
        wait's path, and the lower levels wait that much longer instead (the other thread
        runs it once the waiter lets go of the interpreter lock; at the latest after
        CPython's switch interval, 5 ms, if the waiter's thread computes on without a
        pause). The board counts activations, so a launch in between (its level up
        again) changes nothing."""
        with self._inflight_lock:
            idles, self._idles = self._idles, []
        for level, now in idles:
            self._board.deactivate(level)
            if self._anticipation is not None:
                self._anticipation.idle(now)

    def _set_level(self, level: int) -> None:
        with self._inflight_lock:
            if level == self._level:
                return
            if self._anticipation is not None:
                self._anticipation.reset()
            self._board.register(level)
            if self._inflight:
                self._board.activate(level)
                self._board.deactivate(self._level)
            self._board.unregister(self._level)
            self._level = level

    def _on_board(self, word: int) -> None:
        """Watcher thread: once no higher level is active, let a parked stream go on; while
        one is, let a stale park go into its kernel's flush (STALE_PARK_S)."""
        if self._closed:
            return
        if not may_run(word, self._level):
            self._ticket.unpark_stale(STALE_PARK_S, time.monotonic())
            return
        _bind_thread(self._index)
        if self._holds is not None:
            self._holds.release()
        if self._ticket.release():
            self._flag.set(0, word=1)  # the board latch: the next sentinel would clear it too

    def _open(self, drain: bool = False) -> None:
        self._flag.lower()
        if self._ticket is not None:
            self._ticket.open()
            if drain:
                self._holds.drain()
            else:
                self._holds.open(self._board_allows())

    @property
    def deactivated(self) -> bool:
        return bool(self._flag.value)

    @property
    def gate_kind(self) -> str:
        """The gate guarded launches take now: "ticket" (parks) or "kernel" (naps); off a
        board, launches measured under `park_min_us` nap either way."""
        return self._gate().kind

    def _gate(self) -> StreamGate | TicketGate:
        if self._ticket is not None and (self._board is not None or self._sharing.park):
            return self._ticket
        return self._napping

    @property
    def outstanding(self) -> int:
        """Launched commands with a completion callback not yet delivered."""
        return self._completions.outstanding(self._key)

    # -- internals (lock held) -----------------------------------------------------------------------
    # Work goes to `self.stream`: given to each launch, or made current around what takes
    # the current stream (payloads, CuPy's allocations); entering it costs ~1 us.
    def _enqueue(self, cmd: HwCommand) -> None:
        # a board's sentinels and tickets run only where a higher level exists to yield to
        board = self._board.address if self._board is not None and self._board.outranked(self._level) else 0
        guard = bool(self._guard) or board != 0
        gate = self._gate()
        if isinstance(cmd, GuardedLaunch):
            self._launch_guarded(cmd, guard, board, gate)
        elif cmd.payload is not None:
            if guard and gate is self._ticket:
                gate.wait(self.stream, board, self._level)
                self._plain_run_us = 0.0  # what follows a gate starts no run of plain work
            with self.stream:
                cmd.run_payload()
        elif cmd.duration_us > 0:
            self._launch_guarded(self.device.spin.shared(cmd.duration_us), guard, board, gate)

    def _launch_guarded(self, cmd: GuardedLaunch, guard: bool, board: int,
                        gate: StreamGate | TicketGate) -> None:  # fmt: skip
        k = cmd.kernel
        if k is None:
            raise HalError(f"guarded launch {cmd.name!r} has no kernel")
        dev = self._index
        if not guard:
            k.launch_plain(cmd.grid, cmd.block, cmd.args, cmd.shared_mem, self.stream, dev)
            return
        if board and gate is self._ticket and not may_run(self._board.word, self._level):
            # a higher level runs now: park ahead of the kernel rather than flush it, whose
            # blocks would each still start and leave (`_park_first`)
            self._park_first(gate)
        key = start = us = None
        if self.plain_budget_us > 0 or board:  # on a board, a long launch may run looped (`_launch_looped`)
            durations = self.device.durations
            key = shape_key(k, cmd.grid, cmd.block, cmd.shared_mem, cmd.args)
            us = durations.estimate_us(key)
            if us is None:
                start = durations.begin(key, self.stream)
            elif self._plain_run_us + us <= self.plain_budget_us:
                self._plain_run_us += us
                self.plain_launches += 1
                k.launch_plain(cmd.grid, cmd.block, cmd.args, cmd.shared_mem, self.stream, dev)
                return
            elif us < self.park_min_us and gate is self._ticket and self._board is None:
                gate = self._napping  # short: the ticket would cost it more than napping risks
        self._plain_run_us = 0.0
        self._launch_flushing(cmd, board, gate, key, start, us)

    def _park_first(self, gate: TicketGate) -> None:
        """Hold the stream at a ticket before a launch made while a higher level is active.

        Launched into such a board, a guarded kernel flushes after its first wave (about
        one block a wave reads the board; the others read the latch, still clear), and
        the GPU still starts and retires every other block: 167 us for the 198,528
        blocks of a 1 ms spin command on the H100, all flushed. Another process's context
        waits for that and the switch: in the no-MPS pair, a background task that began
        inside the foreground's held window put its first kernel ~0.3 ms after that wave,
        behind ~1% of the foreground's tasks (a probe). Parked first, the kernel starts
        only once the board lets the stream go on. The park is a wait alone
        (`TicketGate.park`), not a ticket kernel: on an idle stream that kernel would run
        at once, and the GPU would switch to this context for it."""
        gate.park(self.stream, lambda: may_run(self._board.word, self._level))
        self._plain_run_us = 0.0

    def _launch_flushing(self, cmd: GuardedLaunch, board: int, gate: StreamGate | TicketGate,
                         key: tuple | None = None, start: cupy.cuda.Event | None = None,
                         us: float | None = None) -> None:  # fmt: skip
        """The guarded launch itself: the main kernel, and from the host what the GPU does
        not launch behind it (the gate, the relaunch). `start`: a timing of the shape `key`
        begun (hal.cuda.durations), which ends right behind the main kernel; `us`: the
        shape's measured duration, where known (whether a long launch runs looped).

        On the ticket gate of an outranked queue (`board`) the relaunch comes in two: one
        that stops like the main kernel when a higher level comes back (or a suspend), with
        its own hold behind it, then the plain one for what that left. A higher level that
        went idle releases the first hold; one that comes back while the relaunch runs (a
        task right after the last) no longer waits for the rest of the command."""
        k = cmd.kernel
        dev = self._index
        shape = self._shapes.get((k, cmd.grid, cmd.block, cmd.shared_mem))
        if shape is None:
            shape = self._shape(cmd)
        n, fix_blocks, loops = shape
        if n > self._state.size:
            with self.stream:  # CuPy clears the new array on the current stream
                self._state = cupy.zeros(1 << (n - 1).bit_length(), dtype=cupy.uint32)
        self._epoch = epoch = self._epoch % 0xFFFFFFFE + 1  # never 0, the state's initial value
        state = self._state.data.ptr
        tail = self.device_gate and gate is self._napping and k.tail
        mode = TAIL_NONE
        if tail:  # the GPU's relaunch only where its launch needs no attribute (<= 48 KiB shared)
            mode = TAIL_GATE_AND_RELAUNCH if self.gpu_relaunch and cmd.shared_mem <= _SHARED_NO_OPT_IN else TAIL_GATE
        parked = gate is self._ticket
        stoppable = parked and board != 0
        first = gate.issue(2 if stoppable else 1) if parked else 0
        second = first + 1 if stoppable else 0  # the stoppable relaunch's hold
        gx, gy, gz = cmd.grid
        looped = False
        if stoppable and loops and n > LOOP_MIN_WAVES * fix_blocks:  # long: looped (`_launch_looped`)?
            looped = us is not None and us * fix_blocks >= LOOP_MIN_WAVE_US * n
        # parking, a launch of a few waves is its own ticket (its last block writes it), a
        # longer one gets the ticket kernel (`gate.write` below; SELF_TICKET_MAX_WAVES); a
        # looped one writes its own too
        own = parked and (looped or n <= SELF_TICKET_MAX_WAVES * fix_blocks)
        if looped:
            self._launch_looped(cmd, board, gate, epoch, fix_blocks, first, second)
        else:
            k.launch_main(cmd.grid, cmd.block, cmd.args, cmd.shared_mem, self.stream, dev,
                          (self._flag.ptr, self._flag.host_ptr, state, self._flushed_ptr, epoch, board, self._level,
                           fix_blocks, gate.ptr if own else 0, first if own else 0, second if own else 0))  # fmt: skip
        if start is not None:  # the kernel alone: a gate and relaunch behind it are not its time
            self.device.durations.end(key, start, self.stream)
        if tail:  # one thread that, after a flush, launches the gate (and the relaunch) from the GPU
            bx, by, bz = cmd.block
            k.launch_tail((1, 1, 1), (1, 1, 1), cmd.args, 0, self.stream, dev,
                          (state, self._flushed_ptr, epoch, gx, gy, gz, bx, by, bz, self._flag.host_ptr, self._flag.ptr,
                           fix_blocks, cmd.shared_mem, mode))  # fmt: skip
        if parked:
            if not own:
                gate.write(self.stream, first, board, self._level, second, self._flushed_ptr, epoch)
            gate.hold(self.stream, first)
            if stoppable:
                self._launch_stoppable(cmd, board, gate, epoch, fix_blocks, second, second, whole=False)
                gate.hold(self.stream, second)
        elif not tail:  # else a flush launches the gate from the GPU (hal.cuda.instrument)
            gate.wait(self.stream, board, self._level)
        if mode == TAIL_GATE_AND_RELAUNCH:  # and the relaunch too
            return
        k.launch_fix((fix_blocks, 1, 1), cmd.block, cmd.args, cmd.shared_mem, self.stream, dev,
                     (state, self._flushed_ptr, epoch, gx, gy, gz))  # fmt: skip

    def _launch_looped(self, cmd: GuardedLaunch, board: int, gate: TicketGate, epoch: int, fix_blocks: int,
                       first: int, second: int) -> None:  # fmt: skip
        """In place of the main kernel, a long launch of an outranked queue on the board as
        one wave looping over its blocks (`NAME__xs_pfix` whole, hal.cuda.instrument); the
        stoppable relaunch and the plain one follow behind their holds as after a main.

        A flushed grid still has the GPU start and retire each of its blocks: 167 us for
        the 198,528 blocks of a 1 ms spin command on the H100, which another process's
        context waits for when it comes (a foreground task with no window held). A looped
        launch that stops leaves nothing to retire: each block of the wave ends its
        loop within a block's time of seeing the board (or a suspend). Short launches (up
        to LOOP_MIN_WAVES) keep the grid: their drain is short, and a loop costs each
        block a little; so do launches of short waves (LOOP_MIN_WAVE_US), and those not
        timed yet. So do kernels whose loop fits fewer blocks on an SM than the main
        kernel (`GuardedKernel.loop_keeps_occupancy`): measured on the H100, 1 ms spin
        commands ran 0.4% slower looped, 250 us ones 0.6%, but the 8192 x 8192 sgemm 16.6%
        (3 blocks of 65 registers an SM against 4 of 63, both compiled with relocatable
        code then; now 48 each, hal.cuda.guard)."""
        self._launch_stoppable(cmd, board, gate, epoch, fix_blocks, first, second, whole=True)

    def _launch_stoppable(self, cmd: GuardedLaunch, board: int, gate: TicketGate, epoch: int, fix_blocks: int,
                          ticket: int, then: int, whole: bool) -> None:  # fmt: skip
        """`NAME__xs_pfix`: the launch's blocks not yet run (all of them, `whole`), stopping
        when a higher level comes back; its last block opens hold `ticket` (and `then`
        where every block ran) or records the refusal."""
        gx, gy, gz = cmd.grid
        cmd.kernel.launch_pfix((fix_blocks, 1, 1), cmd.block, cmd.args, cmd.shared_mem, self.stream, self._index,
                               (self._state.data.ptr, self._flushed_ptr, epoch, gx, gy, gz, self._flag.host_ptr, board,
                                self._level, gate.ptr, ticket, then, int(whole)))  # fmt: skip

    def _shape(self, cmd: GuardedLaunch) -> tuple[int, int, bool]:
        """(logical blocks, relaunch grid, whether it may run looped) of a launch's shape,
        cached per queue."""
        n = cmd.grid[0] * cmd.grid[1] * cmd.grid[2]
        threads = cmd.block[0] * cmd.block[1] * cmd.block[2]
        k = cmd.kernel
        shape = (n, k.fix_grid(n, threads, cmd.shared_mem, self.device.sm_count),
                 k.loop_keeps_occupancy(threads, cmd.shared_mem))  # fmt: skip
        self._shapes[(cmd.kernel, cmd.grid, cmd.block, cmd.shared_mem)] = shape
        return shape
