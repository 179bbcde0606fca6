"""XQueue semantics: order, exactly-once, progressive launching, events, errors (virtual time)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal import HwCommand, HwQueue, Level, RealClock, UnsupportedLevelError, VirtualClock, WouldBlockForever
from hal.sim import SimDevice
from preempt import (
    CommandState,
    EventKind,
    XQueue,
    XQueueClosedError,
    XQueueConfigError,
    XQueueState,
    XQueueTimeout,
)
from preempt.xqueue import HELD_NEWS_MAX

# -- property: order and exactly-once through any interleaving --------------------------

ops = st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 12)),
    st.tuples(st.just("suspend"), st.booleans()),
    st.tuples(st.just("resume"), st.none()),
    st.tuples(st.just("level"), st.integers(1, 3)),
    st.tuples(st.just("threshold"), st.integers(1, 10)),
    st.tuples(st.just("batch"), st.integers(1, 10)),
    st.tuples(st.just("run_us"), st.integers(0, 3000)),
    st.tuples(st.just("compete"), st.integers(1, 5)),
)


@settings(max_examples=150, deadline=None)
@given(level=st.integers(1, 3), script=st.lists(ops, max_size=40))
def test_commands_complete_in_order_exactly_once_through_any_interleaving(level, script):
    clock = VirtualClock()
    device = SimDevice.local(clock)
    xq = XQueue(device.create_queue(), level=level, threshold=4, batch_size=2)
    other = device.create_queue()  # a second queue competing for the device
    ran: list[int] = []
    submitted = 0
    highest_threshold = xq.threshold  # lowering it online leaves the excess in flight
    for op, arg in script:
        if op == "submit":
            for _ in range(arg):
                seq = submitted
                xq.submit(HwCommand(100, payload=lambda s=seq: ran.append(s)))
                submitted += 1
        elif op == "suspend":
            xq.suspend()
        elif op == "resume":
            xq.resume()
        elif op == "level":
            xq.set_level(arg)
        elif op == "threshold":
            xq.set_threshold(arg)
            highest_threshold = max(highest_threshold, arg)
        elif op == "batch":
            if arg <= xq.threshold:
                xq.set_batch_size(arg)
        elif op == "compete":
            for _ in range(arg):
                other.launch(HwCommand(150))
        else:
            clock.run_for(arg / 1e6)
        info = xq.info()
        assert info.in_flight <= highest_threshold
        assert info.pending + info.in_flight + info.completed == info.submitted == submitted
        assert ran == list(range(len(ran)))  # a prefix, in order, no repeats
    xq.resume()
    xq.synchronize()
    assert ran == list(range(submitted))
    assert xq.info().completed == submitted
    assert xq.state is XQueueState.IDLE


@settings(max_examples=60, deadline=None)
@given(threshold=st.integers(1, 16), n=st.integers(1, 60))
def test_in_flight_never_exceeds_the_threshold(threshold, n):
    clock = VirtualClock()
    xq = XQueue(SimDevice.local(clock).create_queue(), threshold=threshold)
    peak = 0
    for _ in range(n):
        xq.submit(HwCommand(100))
        peak = max(peak, xq.info().in_flight)
    while xq.state is XQueueState.READY:
        clock.step()
        peak = max(peak, xq.info().in_flight)
    assert 1 <= peak <= threshold


# -- progressive launching ---------------------------------------------------------------


class RecordingQueue(HwQueue):
    """Wraps a hardware queue and records the clock time of each launch."""

    def __init__(self, inner: HwQueue, max_level: Level = Level.INTERRUPT) -> None:
        self.inner = inner
        self.clock = inner.clock
        self.device_name = inner.device_name
        self.max_level = max_level
        self.launch_times: list[float] = []

    def launch(self, cmd, on_complete=None):
        if cmd.name != "xq-sync":
            self.launch_times.append(self.clock.now())
        self.inner.launch(cmd, on_complete)

    def synchronize(self, timeout=None):
        return self.inner.synchronize(timeout)


def test_at_the_threshold_the_worker_waits_for_half_of_the_in_flight_commands(device):
    hwq = RecordingQueue(device.create_queue())
    xq = XQueue(hwq, threshold=8, batch_size=1)
    for _ in range(12):
        xq.submit(HwCommand(100))
    xq.synchronize()
    us = [round(t * 1e6) for t in hwq.launch_times]
    assert us[:8] == [0] * 8  # eight launched at once
    assert us[8:] == [400] * 4  # the rest once four (half) have completed


def test_with_batching_completion_is_learned_per_batch(device):
    hwq = RecordingQueue(device.create_queue())
    xq = XQueue(hwq, threshold=8, batch_size=4)
    for _ in range(12):
        xq.submit(HwCommand(100))
    xq.synchronize()
    us = [round(t * 1e6) for t in hwq.launch_times]
    # sync points are commands 4 and 8; in flight drops to 4 (half) when command 4 ends
    assert us[8:] == [400] * 4


class SyncRecordingQueue(RecordingQueue):
    """Also records which launches carry a completion callback (the sync points)."""

    def __init__(self, inner: HwQueue) -> None:
        super().__init__(inner)
        self.syncs: list[tuple[str, bool]] = []

    def launch(self, cmd, on_complete=None):
        self.syncs.append((cmd.name, on_complete is not None))
        super().launch(cmd, on_complete)


def test_a_burst_submitted_one_by_one_has_sync_points_only_where_they_are_needed(device):
    """Each command, submitted alone, is the last one pending, yet it need not tell its
    completion: one already in flight will, so the first is a sync point and then only
    the half-threshold and threshold marks (where a throttled launcher goes on)."""
    hwq = SyncRecordingQueue(device.create_queue())
    xq = XQueue(hwq, threshold=8, batch_size=8)
    for i in range(8):
        xq.submit(HwCommand(100, name=f"c{i}"))
    assert [sync for _, sync in hwq.syncs] == [True, False, False, True, False, False, False, True]
    xq.synchronize()
    assert xq.state is XQueueState.IDLE


def test_commands_launched_after_the_last_sync_point_still_end_in_idle(device):
    """The sync point completes with commands behind it that tell nobody of theirs: a
    marker behind the tail does, so listeners hear IDLE when the last one ends."""
    clock = device.clock
    hwq = SyncRecordingQueue(device.create_queue())
    xq = XQueue(hwq, threshold=16, batch_size=16)
    events = []
    xq.add_listener(events.append)
    cmds = [xq.submit(HwCommand(100, name=f"c{i}")) for i in range(3)]
    assert [sync for _, sync in hwq.syncs] == [True, False, False]
    xq.synchronize()
    assert all(c.done for c in cmds)
    assert ("xq-sync", True) in hwq.syncs
    assert [e.kind for e in events] == [EventKind.READY, EventKind.IDLE]
    assert events[-1].latency_s == pytest.approx(300e-6)
    assert clock.now() == pytest.approx(300e-6)


def test_wait_returns_the_payload_result_and_raises_its_error(device):
    xq = XQueue(device.create_queue())
    ok = xq.submit(HwCommand(10, payload=lambda: 42))
    bad = xq.submit(HwCommand(10, payload=lambda: 1 / 0))
    assert xq.wait(ok) == 42
    with pytest.raises(ZeroDivisionError):
        xq.wait(bad)


# -- states, events, task latency -------------------------------------------------------


def test_state_events_and_ready_to_idle_latency(device):
    clock = device.clock
    xq = XQueue(device.create_queue())
    events = []
    xq.add_listener(events.append)
    assert xq.state is XQueueState.IDLE
    for _ in range(3):
        xq.submit(HwCommand(100))
    assert xq.state is XQueueState.READY
    xq.suspend()
    xq.resume()
    xq.synchronize()
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.READY, EventKind.SUSPENDED, EventKind.RESUMED, EventKind.IDLE]
    assert events[-1].latency_s == pytest.approx(300e-6)
    assert xq.busy_latency.summary().count == 1
    assert clock.now() == pytest.approx(300e-6)


def test_a_queue_suspended_when_it_becomes_ready_launches_nothing(device):
    """READY reaches listeners before the first launch: a scheduler that suspends the
    queue then keeps even its first command off the device."""
    xq = XQueue(device.create_queue())
    seen = []

    def on_event(event):
        if event.kind is EventKind.READY:
            seen.append((xq.info().pending, xq.info().in_flight))
            xq.suspend()

    xq.add_listener(on_event)
    first = xq.submit(HwCommand(100))
    assert seen == [(1, 0)]
    assert (xq.info().pending, xq.info().in_flight) == (1, 0)
    xq.resume()
    xq.wait(first)
    assert first.done


def test_readiness_is_what_info_says(device):
    xq = XQueue(device.create_queue())

    def both():
        info = xq.info()
        return xq.readiness() == (info.state is XQueueState.READY, info.suspended, info.ready_since)

    assert both() and xq.readiness()[:2] == (False, False)
    xq.submit(HwCommand(100))
    xq.suspend()
    assert both() and xq.readiness()[:2] == (True, True)
    xq.resume()
    xq.synchronize()
    assert both()


def test_explicit_task_span_waits_for_its_commands_and_records_latency(device):
    xq = XQueue(device.create_queue())
    events = []
    xq.add_listener(events.append)
    with xq.task():
        for _ in range(4):
            xq.submit(HwCommand(250))
    assert xq.info().completed == 4
    task_events = [e for e in events if e.kind is EventKind.TASK]
    assert [e.latency_s for e in task_events] == [pytest.approx(1e-3)]
    assert xq.task_latency.summary().p50_s == pytest.approx(1e-3)


def test_online_changes_are_reported_and_take_effect(device):
    xq = XQueue(device.create_queue(), threshold=8)
    xq.set_threshold(2)
    xq.set_batch_size(1)
    xq.set_level(3)
    info = xq.info()
    assert (info.threshold, info.batch_size, info.level) == (2, 1, Level.INTERRUPT)
    for _ in range(5):
        xq.submit(HwCommand(100))
    assert xq.info().in_flight == 2


def test_changing_level_while_suspended_keeps_the_queue_stopped_and_resumable(device):
    clock = device.clock
    xq = XQueue(device.create_queue(), level=1, threshold=4)
    cmds = [xq.submit(HwCommand(100)) for _ in range(8)]
    clock.run_until(50e-6)
    xq.suspend()
    xq.set_level(3)  # now the running command is interrupted too
    done_before = xq.info().completed
    clock.run_until(1.0)
    assert xq.info().completed == done_before
    xq.resume()
    xq.wait(cmds[-1])
    assert all(c.done for c in cmds)


# -- errors ------------------------------------------------------------------------------


def test_submit_to_a_closed_queue_is_refused(device):
    xq = XQueue(device.create_queue(), name="fg")
    xq.close()
    with pytest.raises(XQueueClosedError, match="closed XQueue 'fg'"):
        xq.submit(HwCommand(1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 0}, r"threshold 0 is out of range \[1, 2\*\*63-1\]"),
        ({"threshold": 4, "batch_size": 5}, r"batch_size 5 is out of range \[1, threshold=4\]"),
        ({"level": 4}, r"level 4 is out of range \[1, 3\]"),
        ({"threshold": "8"}, "threshold must be an integer"),
    ],
)
def test_bad_parameters_are_refused_naming_the_value_and_range(device, kwargs, message):
    with pytest.raises(XQueueConfigError, match=message):
        XQueue(device.create_queue(), **kwargs)


def test_online_changes_are_validated_too(device):
    xq = XQueue(device.create_queue(), threshold=4)
    with pytest.raises(XQueueConfigError, match="batch_size 9"):
        xq.set_batch_size(9)
    with pytest.raises(XQueueConfigError, match="threshold 0"):
        xq.set_threshold(0)


def test_a_level_above_the_hardware_queue_is_refused(device):
    level1_only = RecordingQueue(device.create_queue(), max_level=Level.BLOCK)
    with pytest.raises(UnsupportedLevelError, match="max level 1"):
        XQueue(level1_only, level=2)
    xq = XQueue(level1_only)
    with pytest.raises(UnsupportedLevelError):
        xq.set_level(3)


def test_waiting_on_a_suspended_queue_in_virtual_time_says_it_would_block_forever(device):
    xq = XQueue(device.create_queue())
    xq.suspend()
    cmd = xq.submit(HwCommand(10))
    with pytest.raises(WouldBlockForever):
        xq.wait(cmd)


def test_wait_with_a_timeout_raises_when_time_is_up(device):
    xq = XQueue(device.create_queue())
    cmd = xq.submit(HwCommand(10_000))
    with pytest.raises(XQueueTimeout):
        xq.wait(cmd, timeout=1e-3)
    assert xq.wait(cmd, timeout=1.0) is None


def test_submit_takes_only_hardware_commands(device):
    with pytest.raises(TypeError, match="HwCommand"):
        XQueue(device.create_queue()).submit("kernel")  # type: ignore[arg-type]


# -- real time --------------------------------------------------------------------------


def test_real_time_worker_runs_commands_in_order():
    device = SimDevice.local(speed=10.0)
    xq = XQueue(device.create_queue(), threshold=4)
    ran: list[int] = []
    cmds = [xq.submit(HwCommand(100, payload=lambda i=i: ran.append(i))) for i in range(50)]
    xq.suspend()
    xq.resume()
    xq.wait(cmds[-1], timeout=10)
    xq.close(timeout=10)
    assert ran == list(range(50))


def test_a_set_gate_byte_holds_launches_until_the_queue_is_resumed_or_ungated(device):
    """xschedd's suspend gate: the byte alone stops launching at once; the operation
    that follows (suspend, resume) or dropping the gate decides what runs next."""
    page = bytearray(8)
    xq = XQueue(device.create_queue(), threshold=2)
    xq.set_gate(memoryview(page), 3)
    a = xq.submit(HwCommand(100))
    assert (xq.info().pending, xq.info().in_flight) == (0, 1)  # byte 0: launches as usual
    page[3] = 1  # the daemon decided: nothing more is launched, even with room in flight
    b = xq.submit(HwCommand(100))
    xq.wait(a)
    assert (xq.info().pending, xq.info().in_flight, xq.suspended) == (1, 0, False)
    xq.suspend()  # the operation arrives
    page[3] = 0  # the daemon resumes: the byte first, then the operation
    assert xq.info().pending == 1
    xq.resume()
    xq.wait(b)
    page[3] = 1
    c = xq.submit(HwCommand(100))
    assert xq.info().pending == 1
    xq.set_gate(None)  # the session ended: what the gate held back goes
    xq.wait(c)
    assert a.done and b.done and c.done


def test_a_suspension_left_to_the_gate_ends_when_the_byte_clears(device):
    """suspend(by_gate=True), the daemon's level-1 suspend: the queue is suspended while
    the byte is set and launches again once it clears, before the resume arrives; a
    stalled queue (work it has room for, held by the byte alone) asks to be pumped."""
    page = bytearray(8)
    stalls: list[int] = []
    events: list[EventKind] = []
    xq = XQueue(device.create_queue(), threshold=2)
    xq.add_listener(lambda e: events.append(e.kind))
    xq.set_gate(memoryview(page), 3, lambda: stalls.append(1))
    page[3] = 1
    xq.suspend(by_gate=True)
    assert xq.suspended and xq.info().suspended and events[-1] is EventKind.SUSPENDED
    a = xq.submit(HwCommand(100))
    assert xq.info().pending == 1 and stalls  # stalled: the gate alone holds it
    page[3] = 0  # the daemon resumes: the byte first
    assert not xq.suspended
    xq.pump()  # the agent's gate thread, woken by the daemon
    xq.wait(a)
    xq.resume()  # the operation arrives: the event, nothing else to do
    assert events[-1] is EventKind.RESUMED and not xq.suspended
    xq.resume()
    assert events.count(EventKind.RESUMED) == 1


def test_a_queue_left_to_the_gate_launches_at_its_next_completion_and_keeps_its_own_suspend(device):
    page = bytearray(8)
    xq = XQueue(device.create_queue(), threshold=1)
    xq.set_gate(memoryview(page), 0)
    a = xq.submit(HwCommand(100))
    b = xq.submit(HwCommand(100))
    page[0] = 1
    xq.suspend(by_gate=True)
    page[0] = 0  # cleared while a runs: a's completion launches b, no resume needed
    xq.wait(b)
    assert a.done and b.done
    page[0] = 1
    xq.suspend()  # a suspend of the application's own outlasts the gate
    xq.suspend(by_gate=True)
    page[0] = 0
    _held_until_resumed(xq)


def _held_until_resumed(xq: XQueue) -> None:
    """A command submitted now waits, the queue suspended, until `resume()` lets it go."""
    cmd = xq.submit(HwCommand(100))
    assert xq.suspended and xq.info().pending == 1
    xq.resume()
    xq.wait(cmd)


def test_a_level_change_turns_a_gate_suspension_into_a_full_one(device):
    page = bytearray(1)
    xq = XQueue(device.create_queue(), threshold=1)
    xq.set_gate(memoryview(page), 0)
    page[0] = 1
    xq.suspend(by_gate=True)
    xq.set_level(2)  # deactivation needs the hardware queue: no longer the gate's alone
    page[0] = 0
    _held_until_resumed(xq)


def test_by_gate_without_a_gate_or_above_level_1_is_a_plain_suspend(device):
    for level, gated in ((1, False), (2, True)):
        page = bytearray(1)
        xq = XQueue(device.create_queue(), level=level, threshold=1)
        if gated:
            xq.set_gate(memoryview(page), 0)
        xq.suspend(by_gate=True)
        _held_until_resumed(xq)


def test_a_queue_whose_launches_are_cheap_launches_its_first_command_before_ready():
    """HwQueue.cheap_launch (CUDA, the CPU device): the task's first command does not wait
    for the schedulers' news; they still hear READY, with the command in flight."""
    hwq = SimDevice.local(VirtualClock()).create_queue()
    hwq.cheap_launch = True  # the simulated device's own launch is not (IPC when shared)
    xq = XQueue(hwq)
    seen = []
    xq.add_listener(lambda e: e.kind is EventKind.READY and seen.append((e.info.pending, e.info.in_flight)))
    first = xq.submit(HwCommand(100))
    assert seen == [(0, 1)]
    xq.wait(first)
    page = bytearray(1)
    xq.set_gate(memoryview(page), 0)
    page[0] = 1  # held back by its gate: nothing goes first
    second = xq.submit(HwCommand(100))
    assert seen[-1] == (1, 0)
    page[0] = 0
    xq.pump()
    xq.wait(second)


class _DriverQueue(HwQueue):
    """A direct-wait queue (as CUDA's) whose completion thread is the test: synchronize()
    returns at once, as the driver does when the work is done; callbacks wait for
    `deliver()`, as the adapter's completion thread comes a little later."""

    direct_wait = True

    def __init__(self, clock=None) -> None:
        self.clock = clock or VirtualClock()
        self.callbacks: list = []
        self.synchronized = threading.Event()

    def launch(self, cmd, on_complete=None) -> None:
        if on_complete is not None:
            self.callbacks.append((cmd, on_complete))

    def synchronize(self, timeout=None) -> bool:
        self.synchronized.set()
        return True

    def deliver(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for cmd, callback in callbacks:
            callback(cmd)


def test_a_direct_waiters_late_callbacks_leave_the_idle_news_to_the_clock():
    """XQueue.wait on a direct-wait queue returns without telling listeners IDLE (the
    agent's message to xschedd is not the task's cost). The adapter's callbacks of the
    task, coming after the waiter returned (CUDA calls them on its later thread), find
    the commands retired and leave the held IDLE to the clock's delay; it goes out once."""
    hwq = _DriverQueue()
    xq = XQueue(hwq, threshold=4)
    xq.idle_news_delay_s = 0.002
    kinds = []
    xq.add_listener(lambda e: kinds.append(e.kind))
    for _ in range(3):
        last = xq.submit(HwCommand(100))
    xq.wait(last)
    assert last.done and xq.state is XQueueState.IDLE
    assert kinds == [EventKind.READY]  # the waiter did not send it
    hwq.deliver()
    assert kinds == [EventKind.READY]  # nor its late callbacks
    xq.clock.run_for(0.003)
    assert kinds == [EventKind.READY, EventKind.IDLE]
    hwq.deliver()
    xq.clock.run_for(0.003)
    assert kinds == [EventKind.READY, EventKind.IDLE]  # once
    # back to back: the next task's READY joins the news held for the last one
    xq.wait(xq.submit(HwCommand(100)))
    xq.wait(xq.submit(HwCommand(100)))
    assert kinds[2:] == [EventKind.READY]
    hwq.deliver()
    assert kinds[2:] == [EventKind.READY]
    xq.clock.run_for(0.003)  # the held news once, in order
    assert kinds[2:] == [EventKind.READY, EventKind.IDLE, EventKind.READY, EventKind.IDLE]
    assert xq.info().completed == 5


def test_a_direct_waiters_idle_news_goes_out_on_the_clock_after_the_delay_unless_a_ready_took_it():
    """Held news leaves `idle_news_delay_s` after the waiter returned (the adapter's own
    completion may come later, or never: CUDA's waiter takes it); a READY within the
    delay sends it first, and the clock then sends nothing."""
    hwq = _DriverQueue()
    xq = XQueue(hwq, threshold=4)
    xq.idle_news_delay_s = 0.002
    kinds = []
    xq.add_listener(lambda e: kinds.append((e.kind, xq.clock.now())))
    xq.wait(xq.submit(HwCommand(100)))
    returned = xq.clock.now()
    xq.clock.run_for(0.0015)
    assert [k for k, _ in kinds] == [EventKind.READY]  # still held
    xq.clock.run_for(0.001)
    assert [k for k, _ in kinds] == [EventKind.READY, EventKind.IDLE]
    assert kinds[-1][1] == pytest.approx(returned + 0.002)
    # back to back within the delay: the clock sends the held IDLE with the next READY
    xq.wait(xq.submit(HwCommand(100)))
    xq.wait(xq.submit(HwCommand(100)))
    xq.clock.run_for(0.01)
    hwq.deliver()
    ready, idle = EventKind.READY, EventKind.IDLE
    assert [k for k, _ in kinds[2:]] == [ready, idle, ready, idle]
    assert xq.info().completed == 3


def test_a_ready_that_follows_held_news_leaves_with_it_on_the_clock():
    """To listeners that never heard the last task end, the next task's READY only
    restarts the queue's span: it waits with the held IDLE for the clock, which sends
    both in order while the task runs (not its launching thread), with the READY's
    `ready_since` the task's start."""
    hwq = _DriverQueue()
    xq = XQueue(hwq, threshold=4)
    xq.idle_news_delay_s = 0.002
    seen = []
    xq.add_listener(lambda e: seen.append((e.kind, xq.clock.now(), e.info)))
    xq.wait(xq.submit(HwCommand(100)))
    returned = xq.clock.now()
    xq.clock.run_for(0.0005)
    start = xq.clock.now()
    second = xq.submit(HwCommand(100))
    assert [k for k, _, _ in seen] == [EventKind.READY]  # nothing on the submitting thread
    xq.clock.run_for(0.0016)
    assert [k for k, _, _ in seen] == [EventKind.READY, EventKind.IDLE, EventKind.READY]
    assert seen[1][1] == seen[2][1] == pytest.approx(returned + 0.002)
    assert seen[2][2].ready_since == pytest.approx(start)
    xq.wait(second)
    xq.clock.run_for(0.01)
    assert [k for k, _, _ in seen][3:] == [EventKind.IDLE]
    assert xq.info().completed == 2


def test_tasks_much_shorter_than_the_delay_hold_a_bounded_list_of_news():
    """Back to back with no time passing, the news held for the clock grows by two events
    a task; at HELD_NEWS_MAX the submitting thread sends it, READY and IDLE in turn."""
    hwq = _DriverQueue()
    xq = XQueue(hwq, threshold=4)
    kinds = []
    xq.add_listener(lambda e: kinds.append(e.kind))
    for _ in range(3 * HELD_NEWS_MAX):
        xq.wait(xq.submit(HwCommand(100)))
        assert len(xq._held_news) <= HELD_NEWS_MAX
    assert len(kinds) > 1  # sent from here, not only held
    xq.clock.run_for(0.01)
    assert kinds == [EventKind.READY, EventKind.IDLE] * (3 * HELD_NEWS_MAX)


def test_waiters_returning_within_the_delay_arm_one_release_of_the_held_news():
    """Tasks much shorter than the delay: one clock timer is pending for the held news at
    a time, not one per waiter's return; it sends everything held by then, and the next
    return after it arms the next."""
    hwq = _DriverQueue()
    xq = XQueue(hwq, threshold=4)
    xq.idle_news_delay_s = 0.002
    armed = []
    call_at = xq.clock.call_at
    xq.clock.call_at = lambda when, fn: (armed.append(when), call_at(when, fn))[1]
    kinds = []
    xq.add_listener(lambda e: kinds.append(e.kind))
    for _ in range(5):
        xq.wait(xq.submit(HwCommand(100)))
        xq.clock.run_for(0.0001)
    assert len(armed) == 1
    xq.clock.run_for(0.002)
    assert kinds == [EventKind.READY, EventKind.IDLE] * 5
    xq.wait(xq.submit(HwCommand(100)))  # after the release: a timer of its own
    assert len(armed) == 2
    xq.clock.run_for(0.003)
    assert kinds[-2:] == [EventKind.READY, EventKind.IDLE]


news_ops = st.lists(st.sampled_from(["task", "deliver", "tick", "long"]), max_size=40)


@settings(max_examples=150, deadline=None)
@given(script=news_ops)
def test_listeners_hear_ready_and_idle_in_turn_however_news_is_held(script):
    """Whatever thread sends it and whenever (a direct waiter's held news, the clock's
    release, the adapter's late callbacks, a flush at HELD_NEWS_MAX), listeners hear
    READY and IDLE alternately, and once it all settles, the last they heard is IDLE."""
    hwq = _DriverQueue()
    xq = XQueue(hwq, threshold=4)
    xq.idle_news_delay_s = 0.001
    kinds = []
    xq.add_listener(lambda e: kinds.append(e.kind))
    tasks = 0
    for op in script:
        if op == "task":
            xq.wait(xq.submit(HwCommand(100)))
            tasks += 1
        elif op == "deliver":
            hwq.deliver()
        elif op == "tick":
            xq.clock.run_for(0.0004)
        else:
            xq.clock.run_for(0.005)
    xq.clock.run_for(0.01)
    hwq.deliver()
    assert kinds == [EventKind.READY, EventKind.IDLE] * (len(kinds) // 2)
    assert (len(kinds) > 0) == (tasks > 0)
    assert xq.info().completed == tasks


class _CallingBackDriverQueue(_DriverQueue):
    """`_DriverQueue` whose synchronize() calls the callbacks on the waiting thread, as
    CUDA's does for what it saw complete (hal.cuda.completions, `deliver_through`)."""

    def synchronize(self, timeout=None) -> bool:
        self.deliver()
        return super().synchronize(timeout)


def test_callbacks_the_adapter_calls_on_a_waiters_thread_hold_their_news_for_the_clock():
    hwq = _CallingBackDriverQueue(RealClock())
    xq = XQueue(hwq, threshold=4)
    xq.idle_news_delay_s = 0.05
    idle = threading.Event()
    senders = []

    def listener(event):
        if event.kind is EventKind.IDLE:
            senders.append(threading.get_ident())
            idle.set()

    xq.add_listener(listener)
    cmds = [xq.submit(HwCommand(100)) for _ in range(3)]
    xq.wait(cmds[-1])
    assert all(c.done for c in cmds) and hwq.callbacks == []
    assert not idle.is_set()  # not on the waiter's thread, not yet
    assert idle.wait(5)
    assert senders != [threading.get_ident()] and len(senders) == 1
    assert xq.info().completed == 3


def test_closing_sends_the_idle_news_a_direct_waiter_held():
    hwq = _DriverQueue()
    xq = XQueue(hwq)
    kinds = []
    xq.add_listener(lambda e: kinds.append(e.kind))
    xq.wait(xq.submit(HwCommand(100)))
    xq.close()
    assert kinds == [EventKind.READY, EventKind.IDLE, EventKind.CLOSED]
    hwq.deliver()
    assert kinds == [EventKind.READY, EventKind.IDLE, EventKind.CLOSED]


class _WaitingDriverQueue(_DriverQueue):
    """`_DriverQueue` whose driver can also wait for one command (`wait_for`): it returns
    once the command is done; the callbacks still come only with `deliver()`."""

    def __init__(self, clock=None) -> None:
        super().__init__(clock)
        self.launched: list[tuple[int, int]] = []  # (command id, launching thread)
        self.waited: list[int] = []

    def launch(self, cmd, on_complete=None) -> None:
        self.launched.append((cmd.id, threading.get_ident()))
        super().launch(cmd, on_complete)

    def wait_for(self, cmd, then=None) -> bool:
        assert any(c is cmd for c, _ in self.callbacks), "waited for a command launched without a callback"
        self.waited.append(cmd.id)
        if then is not None:
            then()
        return True


@pytest.mark.parametrize("threshold", [1, 2, 4])
def test_a_waiter_makes_room_in_the_driver_and_launches_the_rest_itself(threshold):
    """While the queue is throttled, XQueue.wait blocks in the driver for the in-flight
    command whose completion makes room, retires through it and launches the next ones
    on its own thread; the adapter's callbacks, later, retire nothing twice."""
    hwq = _WaitingDriverQueue()
    xq = XQueue(hwq, threshold=threshold)
    cmds = [xq.submit(HwCommand(100)) for _ in range(9)]
    assert len(hwq.launched) == threshold  # throttled: the rest pend
    assert xq.wait(cmds[-1]) is None
    assert all(c.done for c in cmds) and xq.state is XQueueState.IDLE
    assert [i for i, _ in hwq.launched] == [c.hw.id for c in cmds]  # in order, each once
    assert {t for _, t in hwq.launched} == {threading.get_ident()}  # all on the waiter's thread
    assert hwq.waited and len(hwq.waited) <= len(cmds) - threshold
    hwq.deliver()
    assert xq.info().completed == len(cmds) and xq.info().in_flight == 0


def test_synchronize_and_task_wait_in_the_driver_too():
    """XQueue.synchronize (and so `task()`) on a direct-wait queue goes the way of `wait`
    for the last command: room made in the driver, then the driver's wait for all."""
    hwq = _WaitingDriverQueue()
    xq = XQueue(hwq, threshold=2)
    with xq.task():
        cmds = [xq.submit(HwCommand(100)) for _ in range(6)]
    assert all(c.done for c in cmds) and xq.state is XQueueState.IDLE
    assert hwq.waited and hwq.synchronized.is_set()
    assert xq.task_latency.count == 1
    xq.synchronize()  # nothing submitted: returns at once
    hwq.deliver()
    assert xq.info().completed == 6


class _DeliveringDriverQueue(_DriverQueue):
    """An adapter that calls the callbacks of what synchronize() waited for on the
    waiter's thread before it returns (CUDA did, before it left them to its later thread)."""

    def synchronize(self, timeout=None) -> bool:
        super().synchronize(timeout)
        self.deliver()
        return True


def test_a_whole_stream_wait_whose_callbacks_come_on_the_waiters_thread_retires_all_and_holds_the_idle():
    """Callbacks called back on the waiter's thread, one per sync point, retire the task
    in order; the IDLE news is still held for the clock, and sent once."""
    hwq = _DeliveringDriverQueue()
    xq = XQueue(hwq, threshold=4)
    kinds = []
    xq.add_listener(lambda e: kinds.append(e.kind))
    cmds = [xq.submit(HwCommand(100)) for _ in range(4)]
    xq.wait(cmds[-1])
    assert all(c.done for c in cmds) and xq.info().completed == 4 and xq.info().in_flight == 0
    assert kinds == [EventKind.READY]  # the IDLE is held for the clock
    xq.wait(xq.submit(HwCommand(100)))  # the next task's READY joins it
    assert kinds.count(EventKind.IDLE) == 0 and xq.info().completed == 5
    xq.close()
    assert kinds == [EventKind.READY, EventKind.IDLE, EventKind.READY, EventKind.IDLE, EventKind.CLOSED]


def test_a_waiter_leaves_a_suspended_queue_to_its_resume():
    """No driver wait for room while suspended: the waiter waits for the resume."""
    hwq = _WaitingDriverQueue(RealClock())
    xq = XQueue(hwq, threshold=1)
    cmds = [xq.submit(HwCommand(100)) for _ in range(3)]
    xq.suspend()
    waiter = threading.Thread(target=xq.wait, args=(cmds[-1],), daemon=True)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and hwq.waited == [] and len(hwq.launched) == 1
    xq.resume()
    waiter.join(5)
    assert not waiter.is_alive() and all(c.done for c in cmds)


def test_a_waiter_parked_behind_the_gate_goes_back_to_the_driver_when_a_pump_launches():
    """A waiter that the daemon's gate left with no room to make waits for the queue; the
    gate thread's pump after the gate clears launches, and the waiter must go back to
    making room in the driver then, not wait for the adapter's completion thread (on
    CUDA it may look only every 20 ms, and the GPU ran dry meanwhile at each hand-over)."""
    hwq = _WaitingDriverQueue(RealClock())
    xq = XQueue(hwq, threshold=2)
    page = bytearray(8)
    xq.set_gate(memoryview(page), 0, lambda: None)
    cmds = [xq.submit(HwCommand(100)) for _ in range(6)]
    assert len(hwq.launched) == 2
    page[0] = 1  # the daemon suspends the queue through its gate
    xq.suspend(by_gate=True)
    waiter = threading.Thread(target=xq.wait, args=(cmds[-1],), daemon=True)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and len(hwq.launched) == 2, "it made room, but the gate launches nothing"
    page[0] = 0  # the daemon resumes it: the gate thread pumps
    xq.pump()
    waiter.join(5)
    assert not waiter.is_alive(), "the waiter stayed parked after the pump launched"
    assert all(c.done for c in cmds) and [i for i, _ in hwq.launched] == [c.hw.id for c in cmds]
    hwq.deliver()
    assert xq.info().completed == 6


def test_a_waiter_for_a_pending_command_goes_to_the_driver_once_it_is_launched_last():
    """With more commands than the threshold, the last is launched by a completion; the
    waiter then blocks in the driver instead of waiting for the last completion's news."""
    hwq = _DriverQueue(RealClock())
    xq = XQueue(hwq, threshold=2, batch_size=1)
    cmds = [xq.submit(HwCommand(100)) for _ in range(4)]
    assert [c.state for c in cmds].count(CommandState.PENDING) == 2
    waiter = threading.Thread(target=xq.wait, args=(cmds[-1],), daemon=True)
    waiter.start()
    assert not hwq.synchronized.wait(0.2)  # not while the command is pending
    hwq.deliver()  # the first two complete: the last two launch
    waiter.join(5)
    assert not waiter.is_alive() and hwq.synchronized.is_set()
    assert all(c.done for c in cmds) and xq.state is XQueueState.IDLE
    hwq.deliver()  # the adapter's callbacks for the last two: nothing retired twice
    assert xq.info().completed == 4


class _FlushQueue(HwQueue):
    """A level-2 queue whose launches may be held (a thread in the driver), recording its
    deactivation flag; `on_deactivate` runs inside deactivate (a racing thread's turn)."""

    max_level = Level.DEACTIVATE

    def __init__(self) -> None:
        self.clock = RealClock()
        self.active = True
        self.deactivated = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.launching = threading.Event()
        self.on_deactivate = None

    def launch(self, cmd, on_complete=None) -> None:
        self.launching.set()
        self.release.wait(5)

    def synchronize(self, timeout=None) -> bool:
        return True

    def deactivate(self) -> None:
        self.active = False
        self.deactivated.set()
        hook, self.on_deactivate = self.on_deactivate, None
        if hook is not None:
            hook()

    def reactivate(self) -> None:
        self.active = True


def test_a_level_2_suspend_deactivates_without_waiting_for_a_launch_in_progress():
    hwq = _FlushQueue()
    xq = XQueue(hwq, level=2, threshold=4)
    hwq.release.clear()
    submitter = threading.Thread(target=xq.submit, args=(HwCommand(100),), daemon=True)
    submitter.start()
    assert hwq.launching.wait(5)  # the submitter holds the XQueue's lock in the launch
    suspender = threading.Thread(target=xq.suspend, daemon=True)
    suspender.start()
    assert hwq.deactivated.wait(5) and suspender.is_alive()  # the device first
    hwq.release.set()
    submitter.join(5)
    suspender.join(5)
    assert xq.suspended and not hwq.active
    xq.resume()
    assert hwq.active and not xq.suspended


@pytest.mark.parametrize("race", ["set_level(1)", "close()"])
def test_a_deactivate_ahead_of_the_lock_is_undone_when_a_race_makes_it_wrong(race):
    hwq = _FlushQueue()
    xq = XQueue(hwq, level=2)
    hwq.on_deactivate = lambda: xq.set_level(1) if race == "set_level(1)" else xq.close()
    xq.suspend()
    assert hwq.active  # a level-1 suspension, or none, leaves the device running
    assert xq.suspended == (race == "set_level(1)")
    if xq.suspended:
        xq.resume()
        assert hwq.active
