"""XQueue holds (virtual time): a level-1 XQueue at a low threshold launches ahead behind
holds, and a suspend still lets at most `threshold` commands run.

`HoldingQueue` models what hal.cuda.holds does on the GPU, over a simulated queue: a
command launched behind a hold reaches the device only once everything before it has
completed, and only if nothing refuses the queue then (its holds closed, its gate byte
set); a refused hold waits for `release_holds` / `open_holds`. The real holds run in
tests/gpu/test_cuda_holds.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal import HwCommand, HwQueue, Level, VirtualClock
from hal.sim import SimDevice
from preempt import XQueue, XQueueState
from preempt.xqueue import HOLD_WINDOW, HOLDS_BELOW


class HoldingQueue(HwQueue):
    holds = True

    def __init__(self, inner: HwQueue, max_level: Level = Level.INTERRUPT, gate_ok: bool = True) -> None:
        self.inner, self.clock, self.device_name, self.max_level = inner, inner.clock, inner.device_name, max_level
        self.gate_ok = gate_ok
        self.backlog: list[tuple[HwCommand, object, bool]] = []  # not yet on the device, in order
        self.running = 0  # on the device, not completed
        self.closed = False
        self.gate: memoryview | None = None
        self.stall: memoryview | None = None
        self.slot = 0
        self.refused = False  # the backlog's head is a hold that was refused
        self.launches: list[tuple[str, bool]] = []  # (name, held)
        self.started: list[str] = []  # names, as they reach the device
        self.started_after_close = 0  # since the last close_holds

    def launch(self, cmd, on_complete=None):
        self._add(cmd, on_complete, False)

    def launch_held(self, cmd, on_complete=None):
        self._add(cmd, on_complete, True)

    def _add(self, cmd, on_complete, held):
        if cmd.name != "xq-sync":
            self.launches.append((cmd.name, held))
        self.backlog.append((cmd, on_complete, held))
        self._feed()

    def _refuses(self) -> bool:
        return self.closed or (self.gate is not None and self.gate[self.slot] != 0)

    def _feed(self) -> None:
        while self.backlog:
            cmd, on_complete, held = self.backlog[0]
            if held and (self.running or self.refused):
                return  # a hold is looked at once the work before it is done
            if held and self._refuses():
                self.refused = True
                if self.gate is not None and self.gate[self.slot] and self.stall is not None:
                    self.stall[self.slot] = 1
                return
            self.backlog.pop(0)
            self.running += 1
            if cmd.name != "xq-sync":
                self.started.append(cmd.name)
                self.started_after_close += 1
            self.inner.launch(cmd, lambda c, cb=on_complete: self._done(c, cb))

    def _done(self, cmd, on_complete) -> None:
        self.running -= 1
        if on_complete is not None:
            on_complete(cmd)
        self._feed()

    def close_holds(self):
        if not self.closed:
            self.started_after_close = 0
        self.closed = True

    def open_holds(self):
        self.closed = False
        self.release_holds()

    def release_holds(self):
        if self.refused and not self._refuses():
            self.refused = False
            cmd, on_complete, _ = self.backlog[0]
            self.backlog[0] = (cmd, on_complete, False)
            self._feed()

    def pass_holds(self):
        self.backlog = [(cmd, on_complete, False) for cmd, on_complete, _ in self.backlog]
        self.refused = False
        self._feed()

    def set_hold_gate(self, gate, slot=0, stall=None):
        if not self.gate_ok:
            return False
        self.gate, self.slot, self.stall = gate, slot, stall
        return True

    def synchronize(self, timeout=None):
        return self.clock.wait_for(lambda: not self.backlog and not self.running, None, timeout)

    def deactivate(self):
        self.close_holds()

    def reactivate(self):
        self.open_holds()


@pytest.fixture
def hwq(device) -> HoldingQueue:
    return HoldingQueue(device.create_queue())


def task(xq: XQueue, n: int, us: float = 100, tag: str = "c") -> list:
    return [xq.submit(HwCommand(us, name=f"{tag}{i}")) for i in range(n)]


def test_at_threshold_1_a_task_goes_out_at_once_each_command_beyond_the_first_behind_a_hold(hwq, clock):
    xq = XQueue(hwq, threshold=1)
    task(xq, 4)
    assert hwq.launches == [("c0", False), ("c1", True), ("c2", True), ("c3", True)]
    xq.synchronize()
    assert hwq.started == ["c0", "c1", "c2", "c3"]
    assert clock.now() == pytest.approx(400e-6)  # no refill waits
    assert xq.info().completed == 4 and xq.state is XQueueState.IDLE


def runs(held: list[bool], threshold: int) -> bool:
    """Whether launches come in runs of at most `threshold`, each after the first
    starting behind a hold (the first starts on an empty queue)."""
    starts = [i for i, h in enumerate(held) if i == 0 or h]
    return not held[0] and all(b - a <= threshold for a, b in zip(starts, starts[1:] + [len(held)]))


@pytest.mark.parametrize("threshold", [1, 2, 3, 5, HOLDS_BELOW - 1])
def test_the_window_is_hold_window_in_runs_of_the_threshold_each_behind_a_hold(hwq, threshold):
    xq = XQueue(hwq, threshold=threshold)
    task(xq, HOLD_WINDOW + 10)
    held = [h for _, h in hwq.launches]
    assert len(held) == HOLD_WINDOW
    assert held == [i > 0 and i % threshold == 0 for i in range(HOLD_WINDOW)]  # one hold per threshold
    assert runs(held, threshold)
    xq.synchronize()
    assert hwq.started == [f"c{i}" for i in range(HOLD_WINDOW + 10)]
    assert runs([h for _, h in hwq.launches], threshold)  # the refills too


def test_a_run_starts_over_on_an_empty_queue(hwq, clock):
    xq = XQueue(hwq, threshold=3)
    task(xq, 2)
    xq.synchronize()
    task(xq, 4, tag="d")  # nothing in flight: no hold before d0, whatever ran before
    assert [h for name, h in hwq.launches if name[0] == "d"] == [False, False, False, True]
    xq.synchronize()


@pytest.mark.parametrize("threshold", [1, 2, 3, 5, HOLDS_BELOW - 1])
@pytest.mark.parametrize("into_us", [50, 150, 450, 750])
def test_a_suspend_still_lets_at_most_threshold_commands_run(hwq, clock, threshold, into_us):
    xq = XQueue(hwq, threshold=threshold)
    cmds = task(xq, 40)
    clock.run_for(into_us * 1e-6)  # into command into_us // 100, wherever that is in its run
    running = into_us // 100
    xq.suspend()
    clock.run_for(5e-3)
    # the running command finishes, and at most threshold - 1 more start (as without holds)
    assert hwq.started_after_close <= threshold - 1
    assert sum(c.done for c in cmds) <= running + threshold
    assert xq.suspended and not all(c.done for c in cmds)
    xq.resume()
    xq.synchronize()
    assert hwq.started == [f"c{i}" for i in range(40)]
    assert all(c.done for c in cmds)


def gated(hwq: HoldingQueue, slot: int) -> tuple[XQueue, memoryview, memoryview]:
    """A threshold-1 XQueue with a suspend gate (byte `slot` of `gate`) and stall bytes."""
    gate, stall = memoryview(bytearray(8)), memoryview(bytearray(8))
    xq = XQueue(hwq, threshold=1)
    xq.set_gate(gate, slot, lambda: None, stall)
    return xq, gate, stall


@pytest.mark.parametrize("gate_refused", [False, True])
def test_a_suspend_that_syncs_the_hardware_queue_drains_what_was_launched(hwq, clock, gate_refused):
    xq, gate, _ = gated(hwq, 2)
    cmds = task(xq, HOLD_WINDOW + 8)
    if gate_refused:  # the daemon's byte stopped the stream at a hold: it drains all the same
        gate[2] = 1
        clock.run_for(1e-3)
        assert hwq.refused
    xq.suspend(sync_hw_queue=True)
    assert xq.info().in_flight == 0
    assert sum(c.done for c in cmds) == HOLD_WINDOW
    gate[2] = 0
    xq.resume()
    xq.synchronize()
    assert all(c.done for c in cmds)


def test_holds_read_the_daemons_gate_and_a_pump_lets_the_queue_past_once_it_clears(hwq, clock):
    xq, gate, stall = gated(hwq, 3)
    cmds = task(xq, 4)
    clock.run_for(50e-6)
    gate[3] = 1  # the daemon suspends it: no process in between
    clock.run_for(1e-3)
    assert hwq.started == ["c0"] and stall[3] == 1  # the hold refused, and marked the stall
    gate[3] = 0
    clock.run_for(1e-3)
    assert hwq.started == ["c0"]  # a cleared byte alone does not pass a refused hold
    xq.pump()  # what the agent's gate thread does when the daemon wakes it
    xq.synchronize()
    assert all(c.done for c in cmds)


def test_a_suspension_left_to_the_gate_is_released_by_the_resume_operation(hwq, clock):
    xq, gate, _ = gated(hwq, 1)
    cmds = task(xq, 4)
    gate[1] = 1
    xq.suspend(by_gate=True)  # the operation that follows the byte
    clock.run_for(1e-3)
    assert hwq.started == ["c0"]
    gate[1] = 0
    xq.resume()  # a missed wake-up: the resume operation lets it past
    xq.synchronize()
    assert all(c.done for c in cmds)


def test_a_gate_the_holds_cannot_read_turns_them_off(device, clock):
    hwq = HoldingQueue(device.create_queue(), gate_ok=False)
    xq = XQueue(hwq, threshold=1)
    xq.set_gate(memoryview(bytearray(8)), 1, lambda: None)
    task(xq, 4)
    assert hwq.launches == [("c0", False)]  # one at a time, as without holds
    xq.synchronize()
    assert len(hwq.started) == 4


@pytest.mark.parametrize("level, threshold", [(2, 1), (2, 4), (1, HOLDS_BELOW), (1, HOLD_WINDOW), (1, 2 * HOLD_WINDOW)])
def test_no_holds_at_level_2_nor_at_a_threshold_of_holds_below_or_more(hwq, level, threshold):
    xq = XQueue(hwq, level=level, threshold=threshold)
    task(xq, threshold + 10)
    assert len(hwq.launches) == threshold and not any(held for _, held in hwq.launches)


def test_raising_the_threshold_online_ends_the_holds_and_lowering_it_starts_them(hwq, clock):
    xq = XQueue(hwq, threshold=HOLDS_BELOW)
    task(xq, 4)
    xq.synchronize()
    assert not any(held for _, held in hwq.launches)
    xq.set_threshold(1)
    task(xq, 4, tag="d")
    assert [held for name, held in hwq.launches if name[0] == "d"] == [False, True, True, True]
    xq.synchronize()
    xq.set_threshold(HOLDS_BELOW)
    task(xq, 4, tag="e")
    assert not any(held for name, held in hwq.launches if name[0] == "e")
    xq.synchronize()


ops = st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 9)),
    st.tuples(st.just("suspend"), st.booleans()),
    st.tuples(st.just("resume"), st.none()),
    st.tuples(st.just("gate"), st.booleans()),
    st.tuples(st.just("pump"), st.none()),
    st.tuples(st.just("threshold"), st.integers(1, 6)),
    st.tuples(st.just("level"), st.integers(1, 2)),
    st.tuples(st.just("run_us"), st.integers(0, 800)),
)


@settings(max_examples=150, deadline=None)
@given(script=st.lists(ops, max_size=40))
def test_with_holds_commands_complete_in_order_exactly_once_and_a_suspend_keeps_its_bound(script):
    clock = VirtualClock()
    hwq = HoldingQueue(SimDevice.local(clock).create_queue())
    gate, stall = memoryview(bytearray(4)), memoryview(bytearray(4))
    xq = XQueue(hwq, threshold=1)
    xq.set_gate(gate, 2, lambda: None, stall)
    ran: list[int] = []
    submitted = 0
    for op, arg in script:
        if op == "submit":
            for _ in range(arg):
                xq.submit(HwCommand(100, payload=lambda s=submitted: ran.append(s), name=f"c{submitted}"))
                submitted += 1
        elif op == "suspend":
            xq.suspend(sync_hw_queue=arg and xq.level == Level.BLOCK)
        elif op == "resume":
            xq.resume()
        elif op == "gate":
            gate[2] = arg
        elif op == "pump":
            xq.pump()
        elif op == "threshold":
            xq.set_threshold(arg)
        elif op == "level":
            xq.set_level(arg)
        else:
            clock.run_for(arg / 1e6)
        assert ran == list(range(len(ran)))
        info = xq.info()
        assert info.pending + info.in_flight + info.completed == submitted
        if xq.suspended and xq.level == Level.BLOCK and hwq.closed:
            assert hwq.started_after_close <= 5  # the running command's run: 6 at most (the highest threshold)
    gate[2] = 0
    xq.resume()
    xq.pump()
    xq.synchronize()
    assert ran == list(range(submitted))
