"""Level-1 holds on the GPU (hal.cuda.holds): commands launched ahead, each let past only
while the queue may run; a suspend, the daemon's gate byte or a refusal all stop the
stream at the next hold, and a release runs what was held exactly once."""

from __future__ import annotations

import mmap
import os
import threading
import time

import pytest

pytestmark = pytest.mark.gpu


def _settle(predicate, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.001)
    return predicate()


def test_a_hold_refuses_once_the_work_before_it_ends_and_open_lets_it_past(cuda, device):
    import cupy

    from hal.cuda.holds import holds

    h = holds()
    if h is None:
        pytest.skip("no stream memory waits on this driver")
    spin = device.spin
    count_a = cupy.zeros(spin.shape(20_000)[0], dtype=cupy.uint32)
    count_b = cupy.zeros(spin.shape(1_000)[0], dtype=cupy.uint32)
    stream = cupy.cuda.Stream(non_blocking=True)
    side = cupy.cuda.Stream(non_blocking=True)
    done = cupy.cuda.Event(disable_timing=True)
    a, b = spin.command(20_000, count=count_a), spin.command(1_000, count=count_b)
    a.kernel.launch_plain(a.grid, a.block, a.args, 0, stream, device.index)
    h.hold(stream)
    b.kernel.launch_plain(b.grid, b.block, b.args, 0, stream, device.index)
    done.record(stream)
    h.close()  # while the 20 ms command runs: its hold has not been looked at yet
    try:
        assert _settle(lambda: h.refused == 1), "the hold kernel should refuse once the first command ends"
        time.sleep(0.02)
        assert not done.done and int(cupy.asnumpy(count_b, stream=side).sum()) == 0
        assert int(cupy.asnumpy(count_a, stream=side).min()) == 1  # the command before ran whole
    finally:
        h.open()
    done.synchronize()
    assert int(count_b.min()) == 1 and int(count_b.max()) == 1


def _page():
    """Two page-aligned pages of shared memory, as xschedd's gate page: flags, then stalls."""
    mm = mmap.mmap(-1, 2 * mmap.PAGESIZE)
    view = memoryview(mm)
    return mm, view[: mmap.PAGESIZE], view[mmap.PAGESIZE :]


def test_holds_read_a_gate_byte_and_mark_the_stall_the_gpu_saw(cuda, device):
    import cupy

    from hal import HwCommand

    q = device.create_queue()
    if not q.holds:
        pytest.skip("no holds on this driver")
    mm, flags, stalls = _page()
    try:
        assert not q.set_hold_gate(flags[1:], 6, stalls), "a view that does not start on a page is refused"
        assert q.set_hold_gate(flags, 7, stalls)
        spin = device.spin
        count = cupy.zeros(spin.shape(1_000)[0], dtype=cupy.uint32)
        done = threading.Event()
        q.launch(HwCommand(20_000))
        flags[7] = 1  # the daemon's suspend, while the first command runs
        q.launch_held(spin.command(1_000, count=count), lambda c: done.set())
        assert _settle(lambda: stalls[7] == 1), "the refused hold should mark the stall byte"
        assert not done.wait(0.03)
        q.release_holds()  # the byte is still set: nothing to pass
        assert not done.wait(0.01)
        flags[7] = 0
        q.release_holds()
        assert done.wait(5)
        assert int(count.min()) == 1 and int(count.max()) == 1
    finally:
        q.close()
        del flags, stalls
        mm.close()


@pytest.mark.parametrize("threshold", [1, 4])
def test_an_xqueue_launches_ahead_and_a_suspend_stops_it_within_the_run_under_way(cuda, device, threshold):
    import cupy

    from preempt import XQueue
    from preempt.xqueue import HOLD_WINDOW

    q = device.create_queue()
    if not q.holds:
        pytest.skip("no holds on this driver")
    xq = XQueue(q, threshold=threshold)
    spin = device.spin
    blocks = spin.shape(4_000)[0]
    counts = [cupy.zeros(blocks, dtype=cupy.uint32) for _ in range(12)]
    side = cupy.cuda.Stream(non_blocking=True)
    cmds = [xq.submit(spin.command(4_000, count=c)) for c in counts]
    assert xq.info().in_flight == min(12, HOLD_WINDOW)  # launched ahead, not one threshold
    time.sleep(0.006)  # into the second command, of the first run (threshold 4) or its own (1)
    xq.suspend()
    time.sleep(0.01 + 0.004 * threshold)
    started = [int(cupy.asnumpy(c, stream=side).sum()) > 0 for c in counts]
    assert started[:2] == [True, True]
    # the rest of the run under way; one more where the suspend came as a hold looked
    assert sum(started) <= max(2, threshold) + 1, f"threshold {threshold}: {started}"
    time.sleep(0.01)
    assert [int(cupy.asnumpy(c, stream=side).sum()) > 0 for c in counts] == started  # stopped
    xq.resume()
    xq.synchronize()
    assert all(c.done for c in cmds)
    for c in counts:
        assert int(c.min()) == 1 and int(c.max()) == 1
    xq.close()
    q.close()


def test_the_daemons_gate_page_stops_held_commands_and_its_clear_wakes_the_pump(cuda, device):
    """Through a real xschedd gate page (xschedd.gates.GatePage): the daemon's byte stops
    the stream at the next hold with no process in between; the GPU marks the stall, so
    the daemon's clear wakes the page, and a pump (the agent's gate thread) lets it go on."""
    import cupy

    from preempt import XQueue
    from xschedd.gates import GatePage, slot_of

    q = device.create_queue()
    if not q.holds:
        pytest.skip("no holds on this driver")
    xq = XQueue(q, threshold=1)
    daemon = GatePage.create(os.getpid(), None)
    agent = GatePage.open(str(daemon.path))
    try:
        slot = slot_of(xq.id)
        xq.set_gate(agent.flags, slot, lambda: agent.mark_stalled(slot), agent.stalled)
        assert xq._window > 1, "the gate page should map for the GPU"
        spin = device.spin
        counts = [cupy.zeros(spin.shape(4_000)[0], dtype=cupy.uint32) for _ in range(4)]
        side = cupy.cuda.Stream(non_blocking=True)
        cmds = [xq.submit(spin.command(4_000, count=c)) for c in counts]
        time.sleep(0.002)
        wakes = agent.wakes
        daemon.apply([(xq.id, True)])
        time.sleep(0.03)
        started = sum(int(cupy.asnumpy(c, stream=side).sum()) > 0 for c in counts)
        assert started <= 2 and not cmds[-1].done
        assert agent.stalled[slot] == 1
        daemon.apply([(xq.id, False)])
        assert agent.wakes > wakes, "clearing a stalled queue's byte wakes the agent"
        xq.pump()
        xq.synchronize()
        for c in counts:
            assert int(c.min()) == 1 and int(c.max()) == 1
        xq.set_gate(None)
    finally:
        xq.close()
        q.close()
        daemon.close()


def test_pass_holds_lets_every_hold_launched_so_far_past_whatever_refused_it(cuda, device):
    """What `XQueue.suspend(sync_hw_queue=True)` needs: the launched work drains though the
    gate byte still refuses; a hold launched after that looks at the byte again."""
    import cupy

    from hal import HwCommand

    q = device.create_queue()
    if not q.holds:
        pytest.skip("no holds on this driver")
    mm, flags, stalls = _page()
    try:
        assert q.set_hold_gate(flags, 2, stalls)
        spin = device.spin
        count = cupy.zeros(spin.shape(1_000)[0], dtype=cupy.uint32)
        first, later = threading.Event(), threading.Event()
        q.launch(HwCommand(5_000))
        flags[2] = 1
        q.launch_held(spin.command(1_000, count=count), lambda c: first.set())
        q.launch_held(spin.command(1_000, count=count), lambda c: first.set())
        assert not first.wait(0.03)
        q.pass_holds()
        assert q.synchronize(5) and int(count.min()) == 2 and int(count.max()) == 2
        q.launch_held(spin.command(1_000, count=count), lambda c: later.set())
        assert not later.wait(0.03), "a hold launched after the pass still reads the byte"
        flags[2] = 0
        q.release_holds()
        assert later.wait(5) and int(count.min()) == 3
    finally:
        q.close()
        del flags, stalls
        mm.close()
