"""CudaHwQueue on a real GPU: completion order, level-2 flushing, exactly-once relaunch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]


def test_device_is_named_through_nvml(cuda, device):
    assert device.info.name and device.info.sm_count > 0
    assert [d.index for d in cuda.list_devices()][0] == 0


def test_completions_arrive_in_launch_order(cuda, device):
    import cupy

    q = device.create_queue()
    seen: list[int] = []
    done = threading.Event()
    a = cupy.arange(1 << 20, dtype=cupy.float32)
    cmds = [cuda.call(cupy.multiply, a, 2, out=a) for _ in range(50)]
    for i, cmd in enumerate(cmds):
        q.launch(cmd, lambda c, i=i: (seen.append(i), i == 49 and done.set()))
    assert done.wait(10)
    assert seen == list(range(50))
    assert q.synchronize(5)
    assert float(a[1]) == 2.0**50


def test_completions_arrive_while_a_thread_waits_in_the_driver(cuda, device):
    """A thread blocked in synchronize() on queue A holds up no completion: queue B's
    arrive meanwhile, and so do A's own where the completion thread watched A before the
    waiter came (A's first launch more than the completions' grace earlier)."""
    a, b = device.create_queue(guard=False), device.create_queue(guard=False)
    b.set_priority(10)  # its blocks go before A's: it is done long before A
    for q in (a, b):  # warm up
        q.launch(device.spin.command(100))
        assert q.synchronize(5)
    a_first, a_done, b_done = threading.Event(), threading.Event(), threading.Event()
    a.launch(device.spin.command(1_000), lambda c: a_first.set())
    a.launch(device.spin.command(200_000), lambda c: a_done.set())  # ~200 ms
    time.sleep(20 * device.completions.grace_s)  # nobody waits: the completion thread watches A
    waiter = threading.Thread(target=a.synchronize)
    waiter.start()
    time.sleep(0.02)  # the waiter is in the driver
    b.launch(device.spin.command(100), lambda c: b_done.set())
    assert b_done.wait(5), "B's completion waited for A's waiter"
    assert a_first.is_set(), "A's finished command was not delivered while A was waited for"
    assert not a_done.is_set()
    assert a_done.wait(5)
    waiter.join(10)
    assert not waiter.is_alive()


def test_a_task_waited_for_at_once_is_called_back_later_in_order(cuda, device):
    """A waiter that comes within the grace of the task's first launch has the task to
    itself (hal.cuda.completions): synchronize() returns once the driver did, and the
    task's entries come off the lane soon after on the later thread ("Delivered later"),
    their callbacks in launch order, once (a host that stalls past the grace between the
    launches may leave the first to the completion thread: only the order is checked
    for those)."""
    from hal.cuda import hwqueue

    q = device.create_queue(guard=False)
    q.launch(device.spin.command(100))
    assert q.synchronize(5)
    calls: list[tuple[int, int]] = []
    for i, us in enumerate((1_000, 100, 20_000)):
        q.launch(device.spin.command(us), lambda c, i=i: calls.append((i, threading.get_ident())))
    assert q.synchronize()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert [i for i, _ in calls] == [0, 1, 2]
    assert device.completions.outstanding(id(q)) == 0
    assert calls[-1][1] == hwqueue._later_thread.ident, "the later thread did not deliver the task"
    time.sleep(0.05)
    assert len(calls) == 3, "a callback ran twice"


def test_tasks_back_to_back_are_delivered_on_the_waiters_thread(cuda, device):
    """A task whose first launch comes within BACK_TO_BACK_S of the last whole-stream
    wait's return has its callbacks called on the waiter's thread, in launch order, before
    synchronize() returns; after a pause the next one goes to the later thread again."""
    from hal.cuda import hwqueue

    q = device.create_queue(guard=False)
    calls: list[tuple[int, int]] = []

    def task(first: int) -> None:
        for i in range(first, first + 3):
            q.launch(device.spin.command(200), lambda c, i=i: calls.append((i, threading.get_ident())))

    task(0)
    assert q.synchronize()
    task(3)  # at once: back to back
    assert q.synchronize()
    assert (5, threading.get_ident()) in calls, "the task was not delivered before the return"
    assert [i for i, _ in calls if i >= 3] == [3, 4, 5]
    time.sleep(2 * hwqueue.BACK_TO_BACK_S)
    task(6)
    assert q.synchronize()
    deadline = time.monotonic() + 5
    while len(calls) < 9 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert sorted(i for i, _ in calls) == list(range(9)), "each once"
    assert [i for i, _ in calls if i >= 6] == [6, 7, 8]
    assert calls[-1] == (8, hwqueue._later_thread.ident), "after a pause, the later thread delivers"
    assert device.completions.outstanding(id(q)) == 0
    q.close()


def test_an_event_a_thread_waits_on_is_not_reused_until_it_returns(cuda, device):
    """event_of() inside waiting(): the command's event, which its completion thread may
    collect meanwhile, is parked then, not pooled, so no later launch records it again
    under the waiter's feet; it goes back to the pool once the waiter leaves."""
    q = device.create_queue(guard=False)
    completions, key = device.completions, id(q)
    q.launch(device.spin.command(100))
    assert q.synchronize(5)
    first_done = threading.Event()
    first = device.spin.command(50_000)  # ~50 ms
    q.launch(first, lambda c: first_done.set())
    time.sleep(0.01)  # the completion thread waits in the driver for it
    with completions.waiting(key):
        held = completions.event_of(key, first)
        assert held is not None
        assert first_done.wait(5), "a completion the thread was already waiting for did not come"
        assert completions.event_of(key, first) is None  # collected: the command completed
        later = [device.spin.command(100) for _ in range(8)]
        for cmd in later:
            q.launch(cmd, lambda c: None)
        assert all(completions.event_of(key, cmd) is not held for cmd in later)
    assert q.synchronize(5)
    again = [device.spin.command(100) for _ in range(32)]
    seen = []
    for cmd in again:  # launched together, they take 32 events off the pool: the parked one too
        q.launch(cmd, lambda c: None)
        seen.append(completions.event_of(key, cmd))
    assert q.synchronize(5)
    assert any(e is held for e in seen), "the parked event never went back to the pool"


def test_a_closed_queue_ends_its_completion_thread(cuda, device):
    q = device.create_queue(guard=False)
    done = threading.Event()
    q.launch(device.spin.command(1_000), lambda c: done.set())
    thread = device.completions._lanes[id(q)].thread
    q.close()
    assert done.wait(5)
    thread.join(5)
    assert not thread.is_alive()
    assert id(q) not in device.completions._lanes


def test_a_duration_command_runs_a_spin_launch_made_once_per_duration_and_calibration(cuda, device):
    """An HwCommand with no payload runs the device's spin launch for its duration, made
    once (`SpinKernel.shared`) and not per command; each command is still delivered once,
    and a calibration, which changes the shapes, makes the launches anew."""
    from hal.command import HwCommand

    spin = device.spin
    first = spin.shared(300)
    assert spin.shared(300) is first and spin.shared(400) is not first
    assert (first.grid, first.args[0]) == (spin.command(300).grid, spin.command(300).args[0])
    q = device.create_queue(guard=False)
    seen: list[int] = []
    cmds = [HwCommand(duration_us=300) for _ in range(3)]
    for i, cmd in enumerate(cmds):
        q.launch(cmd, lambda c, i=i: seen.append(i))
    assert q.synchronize()
    deadline = time.monotonic() + 5  # the callbacks come on the later thread
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert seen == [0, 1, 2]
    q.close()
    from hal.cuda.spin import SpinKernel

    own = SpinKernel(device)  # calibrated here, not the session's device (the other tests' shapes)
    before = own.shared(300)
    own.calibrate(waves=20)
    after = own.shared(300)
    assert after is not before and (after.grid, after.args[0]) == (own.command(300).grid, own.command(300).args[0])


def test_a_queue_dropped_without_close_ends_its_completion_thread(cuda, device):
    import gc

    q = device.create_queue(guard=False)
    done = threading.Event()
    q.launch(device.spin.command(1_000), lambda c: done.set())
    assert done.wait(5)
    key, thread = id(q), device.completions._lanes[id(q)].thread
    del q
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
    assert key not in device.completions._lanes


def _set_gate(q, gate: str) -> None:
    """device: the gate and the relaunch from the GPU, after a flush only; device-host-relaunch:
    the relaunch from the host behind every launch; host: what a GPU without the device
    runtime does (both from the host)."""
    q.device_gate = gate != "host"
    q.gpu_relaunch = gate == "device"


@pytest.mark.parametrize("gate", ["device", "device-host-relaunch", "host"])
def test_deactivate_flushes_a_running_kernel_and_reactivate_runs_each_block_once(cuda, device, gate,
                                                                                 request):  # fmt: skip
    import cupy

    if gate != "host":
        request.getfixturevalue("device_runtime")

    q = device.create_queue(guard=True)
    _set_gate(q, gate)
    spin = device.spin
    blocks = spin.shape(100_000)[0]  # ~100 ms
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    seen = cupy.zeros_like(count)
    q.launch(spin.command(1000))  # compile the guarded kernels (and the copy below) first
    q.launch(spin.command(100_000))
    q.launch(cuda.call(cupy.copyto, seen, count))
    q.synchronize()
    # Load every kernel this test uses while deactivated: loading a module waits for the
    # device to go idle, which a gated stream never does (see hal.cuda.hwqueue).
    int((count == 1).sum())
    count.fill(0)
    cupy.cuda.Device().synchronize()
    done = threading.Event()
    t0 = time.monotonic()
    q.launch(spin.command(100_000, count=count), lambda c: done.set())
    q.launch(cuda.call(cupy.copyto, seen, count))  # level 1: must see every block's count
    time.sleep(0.02)
    q.deactivate()
    try:
        t_deact = time.monotonic() - t0
        time.sleep(0.03)
        ran = int((count == 1).sum())
        assert not done.is_set(), f"stream passed the gate: deactivated at {t_deact * 1e3:.1f} ms, {ran}/{blocks} ran"
        assert 0 < ran < blocks, f"expected a partial kernel, {ran} of {blocks} blocks ran"
        time.sleep(0.02)
        assert int((count == 1).sum()) == ran, "no block may start while deactivated"
    finally:
        q.reactivate()  # a stream left at its gate would hang every later device-wide sync
    assert done.wait(5)
    q.synchronize()
    assert int(count.min()) == 1 and int(count.max()) == 1
    assert int(seen.min()) == 1, "the level-1 copy behind the flushed kernel ran before its relaunch"
    assert spin.kernel.tail or gate == "host", "the spin kernel did not compile with dynamic parallelism"
    q.close()


def test_the_relaunch_from_the_gpu_is_preemptible_and_runs_each_block_once(cuda, device, device_runtime):
    """Suspended again while it relaunches a flushed kernel, the GPU's relaunch flushes
    too (no block starts while deactivated) and the next one runs the rest, once each."""
    import cupy

    q = device.create_queue(guard=True)
    _set_gate(q, "device")
    spin = device.spin
    blocks = spin.shape(100_000)[0]  # ~100 ms
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    q.launch(spin.command(1000))
    q.launch(cuda.call(count.__iadd__, 0))
    q.synchronize()
    int((count == 1).sum())  # load every kernel used below before any deactivate
    count.fill(0)
    cupy.cuda.Device().synchronize()
    done = threading.Event()
    q.launch(spin.command(100_000, count=count), lambda c: done.set())
    seen = []
    try:
        for pause_s in (0.02, 0.015, 0.015):  # the main launch, then two relaunches
            time.sleep(pause_s)
            q.deactivate()
            time.sleep(0.02)
            ran = int((count == 1).sum())
            time.sleep(0.02)
            assert int((count == 1).sum()) == ran, f"blocks started while deactivated ({len(seen)} resumes)"
            assert not done.is_set()
            seen.append(ran)
            q.reactivate()
    finally:
        q.reactivate()
    assert done.wait(5)
    q.synchronize()
    assert seen == sorted(seen) and 0 < seen[0] < seen[-1] < blocks, seen
    assert int(count.min()) == 1 and int(count.max()) == 1
    q.close()


def _workload_summaries(*args: str, timeout: float) -> dict[str, dict]:
    """`xsched-workload --device cuda:0 ARGS --json` under HPF, as a user runs it: checks
    that it succeeded, returns its summary line per queue."""
    out = subprocess.run(
        [sys.executable, "-m", "xsched_workload.cli", "--device", "cuda:0", *args, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "XSCHED_POLICY": "HPF", "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return {s["queue"]: s for s in map(json.loads, out.stdout.splitlines()) if s.get("summary")}


def test_workload_cli_runs_spin_kernels_on_cuda(cuda):
    summaries = _workload_summaries(
        "--duration-s", "1",
        "--queue", "name=fg,priority=5,period_ms=20,commands=4,command_us=500,level=2,threshold=4",
        "--queue", "name=bg,commands=8,command_us=1000", timeout=60,
    )  # fmt: skip
    assert "fg" in summaries


def test_workload_cli_runs_a_dnn_stack_on_cuda(cuda):
    """kind=dnn: each task is a forward pass of real guarded kernels (hal.cuda.tasks)."""
    summaries = _workload_summaries(
        "--duration-s", "2",
        "--queue", "name=infer,kind=dnn,layers=4,priority=5,period_ms=20,level=2,threshold=8",
        "--queue", "name=train,kind=dnn,layers=8,level=2", timeout=120,
    )  # fmt: skip
    assert set(summaries) == {"infer", "train"}
    assert summaries["infer"]["tasks"] > 10 and summaries["train"]["tasks"] > 0
    assert 0 < summaries["infer"]["p50_ms"] < 20  # four layers, ahead of the background


def test_workload_cli_guards_from_the_start_with_guard_on(cuda):
    summaries = _workload_summaries(
        "--duration-s", "1", "--queue", "name=a,kind=dnn,layers=2,level=2,threshold=8,guard=on", timeout=60,
    )  # fmt: skip
    assert "a" in summaries


def test_stream_xqueue_runs_a_task_of_closures(cuda):
    import cupy

    from preempt.cuda import StreamXQueue

    stream = cupy.cuda.Stream(non_blocking=True)
    xq = StreamXQueue(stream, level=2, threshold=4)
    a = cupy.ones(1000, dtype=cupy.float32)
    with xq:
        for _ in range(10):
            xq.submit(cupy.add, a, 1, out=a)
    assert float(a.sum()) == 11000.0
    assert xq.task_latency.count == 1 and xq.task_latency.samples()[0] > 0  # the `with` block's task
    xq.close()


def test_priority_maps_onto_cuda_stream_priorities(cuda, device):
    from hal.cuda.gate import stream_priority_for, stream_priority_range

    least, greatest = stream_priority_range()
    assert stream_priority_for(-7) == stream_priority_for(0) == least
    assert stream_priority_for(1) == (least - 1 if least > greatest else least)
    assert stream_priority_for(255) == greatest


def test_a_priority_change_keeps_launch_order(cuda, device):
    import cupy

    q = device.create_queue()
    x = cupy.zeros(1 << 16, dtype=cupy.int64)
    seen: list[int] = []
    done = threading.Event()
    expected = 0
    for i in range(40):
        if i % 10 == 5:
            q.set_priority(10 if (i // 10) % 2 == 0 else 0)
        # x = 2x + (i % 2): the final value spells the launch order in binary
        step = cuda.call(lambda i=i: (x.__imul__(2), x.__iadd__(i % 2)))
        q.launch(step, lambda c, i=i: (seen.append(i), i == 39 and done.set()))
        expected = 2 * expected + i % 2
    assert done.wait(10)
    assert seen == list(range(40))
    assert q.synchronize(5)
    assert int(x[0]) == expected and int(x[-1]) == expected
    q.set_priority(255)
    from hal.cuda.gate import stream_priority_range

    assert q.stream_priority == stream_priority_range()[1]


def test_a_high_priority_queue_overtakes_older_low_priority_work(cuda, device):
    """The reason for set_priority: a suspended queue's commands in flight yield to it."""
    import cupy

    spin = device.spin
    bg, fg = device.create_queue(guard=False), device.create_queue(guard=False)
    fg.set_priority(10)
    for q in (bg, fg):  # warm up
        q.launch(spin.command(100))
        q.synchronize()
    for _ in range(20):
        bg.launch(spin.command(5_000))  # 100 ms of low-priority work in flight
    time.sleep(0.005)
    start = cupy.cuda.Event()
    end = cupy.cuda.Event()
    start.record(fg.stream)
    fg.launch(spin.command(200))
    end.record(fg.stream)
    end.synchronize()
    waited_ms = cupy.cuda.get_elapsed_time(start, end)
    bg.synchronize()
    assert waited_ms < 20, f"the high-priority command waited {waited_ms:.1f} ms behind 100 ms of work"


@pytest.mark.parametrize(
    "board, gate, switching, us",
    [(False, "device", False, 2000), (False, "device-host-relaunch", False, 2000), (False, "host", False, 2000),
     (True, "host", False, 2000), (True, "host", False, 10), (False, "device", True, 2000)],
    ids=["kernel-gate-from-the-gpu", "kernel-gate-from-the-gpu-host-relaunch", "kernel-gate", "ticket-gate",
         "ticket-gate-own-ticket", "switching-between-napping-and-parking"],
)  # fmt: skip
def test_rapid_suspend_resume_never_strands_the_stream_and_runs_each_block_once(cuda, device, board, gate,
                                                                                switching, us):  # fmt: skip
    """Deactivate/reactivate at random points across many guarded launches and level-1
    closures: the gates' races (a ticket read while the flag flips) must neither hang
    the stream nor skip or repeat a block, and closures keep their place. `switching`:
    the launches alternate at random between the napping gate from the GPU and the
    ticket, as when another process comes and goes (hal.sharing). `us`: each launch's
    duration; on the ticket gate, a 2 ms launch (200 waves) is followed by the ticket
    kernel, a 10 us one (one wave) is its own ticket."""
    import random

    import cupy

    from hal.sharing import ALWAYS, SharingWatch

    q = device.create_queue(guard=True, board=board)
    assert q.gate_kind == ("ticket" if board else "kernel")
    _set_gate(q, gate)
    sharing = q._sharing = SharingWatch(ALWAYS, None)
    sharing.park = False
    q.plain_budget_us = 0  # short launches too are guarded
    kinds = set()
    spin = device.spin
    blocks = spin.shape(us)[0]
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    checks = cupy.zeros(40, dtype=cupy.uint32)
    q.launch(spin.command(200))  # compile and load every kernel before any deactivate
    q.launch(cuda.call(cupy.copyto, checks[0:1], count[0:1]))
    assert q.synchronize(30)
    checks.fill(0)
    cupy.cuda.Device().synchronize()
    stop = threading.Event()

    def toggler() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            q.deactivate()
            time.sleep(rng.uniform(0, 0.002))
            q.reactivate()
            time.sleep(rng.uniform(0, 0.002))

    t = threading.Thread(target=toggler)
    t.start()
    rng = random.Random(11)
    try:
        for i in range(40):
            if switching:
                sharing.park = rng.random() < 0.5
            kinds.add(q.gate_kind)
            q.launch(spin.command(us, count=count))
            # a level-1 copy of block 0's count: it must see exactly i + 1 launches done
            q.launch(cuda.call(cupy.copyto, checks[i : i + 1], count[0:1]))
    finally:
        stop.set()
        t.join()
        q.reactivate()
    assert q.synchronize(30), "the stream did not drain after the last reactivate"
    assert int(count.min()) == 40 and int(count.max()) == 40
    assert checks.get().tolist() == list(range(1, 41))
    assert kinds == ({"kernel", "ticket"} if switching else {q.gate_kind})
    if "ticket" in kinds:
        assert q._ticket._word[0] >= q._ticket._issued
    q.close()


def test_parking_takes_the_ticket_for_long_launches_only(cuda, device):
    """While another process time-slices the GPU (forced here), guarded launches of a shape
    measured under `park_min_us` nap and issue no ticket; longer ones park on one each."""
    from hal.sharing import ALWAYS, SharingWatch

    q = device.create_queue(guard=True)
    q._sharing = SharingWatch(ALWAYS, None)
    spin = device.spin
    short, long = 50, 4 * int(q.park_min_us)
    for _ in range(4):  # the first launches of a shape are timed (hal.cuda.durations)
        q.launch(spin.command(short))
        q.launch(spin.command(long))
        assert q.synchronize(30)
    issued = q._ticket._issued
    for _ in range(5):
        q.launch(spin.command(short))
    assert q.synchronize(30) and q._ticket._issued == issued
    for _ in range(5):
        q.launch(spin.command(long))
    assert q.synchronize(30) and q._ticket._issued == issued + 5
    q.close()


def test_a_parked_launch_of_a_few_waves_is_its_own_ticket_a_longer_one_gets_the_ticket_kernel(cuda, device):
    """Counting blocks out costs each block ~0.7 us at its end, so only launches of at most
    SELF_TICKET_MAX_WAVES waves count; longer ones are followed by the one-thread ticket
    kernel (`TicketGate.write`). Either way one ticket per launch, and the stream drains."""
    from hal.cuda.hwqueue import SELF_TICKET_MAX_WAVES
    from hal.sharing import ALWAYS, SharingWatch

    q = device.create_queue(guard=True)
    q._sharing = SharingWatch(ALWAYS, None)
    q.park_min_us = q.plain_budget_us = 0  # every guarded launch parks
    gate, kernels = q._ticket, []
    write = gate.write
    gate.write = lambda *a: (kernels.append(1), write(*a))
    spin = device.spin
    short, long = spin.command(10), spin.command(4000)  # one wave; 400
    assert short.grid[0] <= SELF_TICKET_MAX_WAVES * spin.wave < long.grid[0]
    for cmd, ticket_kernels in ((short, 0), (long, 1), (short, 0)):
        issued, before = gate._issued, len(kernels)
        for _ in range(3):
            q.launch(cmd)
        assert q.synchronize(30)
        assert gate._issued == issued + 3 and len(kernels) - before == 3 * ticket_kernels
    q.close()


_PARK = r"""
import sys, time
import hal.cuda as hc
dev = hc.CudaDevice.open(0)
q = dev.create_queue(guard=True, board=sys.argv[1] == "board")
q.launch(dev.spin.command(200))
q.synchronize()
# 0.1 s of spin and four more commands behind it, the last with a completion callback
# (a sync point, as an XQueue makes them): the completion thread waits for it, and once
# the stream parks that wait must not keep this context in the GPU's time slices (a
# probe: a second stream waiting on a parked one with a blocking-sync record behind the
# wait does, which is how the thread used to wait; this layout alone did not show it)
q.launch(dev.spin.command(100_000))
for i in range(4):
    q.launch(dev.spin.command(1000), (lambda cmd: None) if i == 3 else None)
print("running", flush=True)
sys.stdin.readline()
q.deactivate()
time.sleep(0.01)
print(q.gate_kind, flush=True)
sys.stdin.readline()
q.reactivate()
q.synchronize()
"""


@pytest.mark.parametrize(
    "where, park, expected",
    [("board", "auto", "ticket"), ("alone", "auto", "ticket"), ("alone", "off", "kernel")],
    ids=["on-a-board", "another-process-on-the-gpu", "parking-off"],
)
def test_a_parked_queue_leaves_the_gpu_to_another_process(cuda, device, where, park, expected,
                                                         mps_clients):  # fmt: skip
    """A process whose queue is deactivated at level 2 while another process (this one)
    has a context on the GPU parks on the ticket gate, on a board or not (hal.sharing),
    unless $XSCHED_CUDA_PARK is off: it must then not keep running kernels, and another
    process's kernel runs about as fast as alone, not time-sliced (about 2x), though
    the parked queue's completion thread is waiting for a sync point behind the park."""
    import cupy

    if where == "alone" and park == "auto" and mps_clients:
        pytest.skip("under MPS processes share the GPU without time slices: a suspended queue naps (hal.sharing)")
    spin = device.spin

    def launch(s, n: int) -> None:
        with s:
            for _ in range(n):
                spin.kernel.plain((spin.wave * 50,), (128,), (cupy.uint64(10_000), cupy.uint64(0), cupy.uint64(0)))

    def timed(s=None) -> float:
        s = s or cupy.cuda.Stream(non_blocking=True)
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        durations = []
        for _ in range(5):
            with s:
                start.record(s)
                spin.kernel.plain((spin.wave * 50,), (128,), (cupy.uint64(10_000), cupy.uint64(0), cupy.uint64(0)))
                end.record(s)
            end.synchronize()
            durations.append(cupy.cuda.get_elapsed_time(start, end))
        return sorted(durations)[2]

    timed()
    alone = timed()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}", "XSCHED_CUDA_PARK": park}
    child = subprocess.Popen([sys.executable, "-c", _PARK, where], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "running"
        s = cupy.cuda.Stream(non_blocking=True)
        launch(s, 80)  # ~40 ms: this context is on the GPU while the child parks
        child.stdin.write("\n")
        child.stdin.flush()
        kind = child.stdout.readline().strip()
        assert kind == expected, f"child: {kind!r}"
        parked = timed(s)  # behind the 80
    finally:
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(30)
    assert child.returncode == 0
    if kind != "ticket":
        return  # a napping gate shares time slices: not what this test measures
    # generous: time-slicing with a running context gives about 2x
    assert parked < 1.5 * alone, f"{parked:.2f} ms beside a parked queue vs {alone:.2f} ms alone ({kind} gate)"


def test_priority_board_parks_a_lower_queue_while_a_higher_one_has_work(cuda, device):
    """hal.board: while a level-10 queue has a kernel in flight, a level-0 queue's kernels
    flush and its stream parks (even though the level-10 kernel leaves SMs free); once
    it completes, the watcher lets the level-0 queue go on, and every block ran once."""
    import cupy
    import numpy as np

    lo, hi = device.create_queue(board=True), device.create_queue(board=True)
    hi.set_priority(10)
    spin = device.spin
    blocks = spin.shape(5000)[0]
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    side = cupy.cuda.Stream(non_blocking=True)
    done_lo, done_hi = [], threading.Event()
    lo.launch(spin.command(200), lambda c: None)
    hi.launch(spin.command(200), lambda c: None)
    assert lo.synchronize(30) and hi.synchronize(30)
    cupy.asnumpy(count, stream=side)
    count.fill(0)
    cupy.cuda.Device().synchronize()
    for _ in range(20):  # 100 ms of level-0 work
        lo.launch(spin.command(5000, count=count), done_lo.append)
    time.sleep(0.01)
    # 120 ms on 1 SM: the two reads below, 20 ms apart, stay inside it on a host that oversleeps
    one_block = spin.kernel((1,), (128,), (np.uint64(120_000_000), np.uint64(0), np.uint64(0)))
    hi.launch(one_block, lambda c: done_hi.set())
    time.sleep(0.005)
    early = int(cupy.asnumpy(count, stream=side).sum())
    time.sleep(0.015)
    late = int(cupy.asnumpy(count, stream=side).sum())
    assert not done_hi.is_set()
    assert late == early, f"level-0 blocks kept starting while level 10 ran: {early} -> {late}"
    assert done_hi.wait(5)
    assert lo.synchronize(30), "the level-0 stream stayed parked after level 10 went idle"
    deadline = time.monotonic() + 5
    while len(done_lo) < 20 and time.monotonic() < deadline:  # callbacks follow the stream
        time.sleep(0.01)
    assert len(done_lo) == 20
    assert int(count.min()) == 20 and int(count.max()) == 20
    assert device.board is None or device.board is lo._board
    lo.close()
    hi.close()
    assert lo._board.word == 32



def test_a_ticket_release_lets_the_stream_past_the_refused_hold_only(cuda, device):
    """hal.cuda.gate.TicketGate: a writer that finds the queue outranked records its number
    as refused; `release` lets the stream past that hold and no further, so the hold behind
    it keeps its own writer, which may refuse again; `open` lets it past everything."""
    import cupy
    import numpy as np

    from hal.cuda.gate import ticket_gate

    gate = ticket_gate()
    if gate is None:
        pytest.skip("no stream memory waits on this driver")
    board_mem = cupy.cuda.alloc_pinned_memory(4)
    board = np.frombuffer(board_mem, dtype=np.uint32, count=1)
    board[0] = 0  # a higher level active: level 0 is outranked
    stream = cupy.cuda.Stream(non_blocking=True)
    done = cupy.cuda.Event(disable_timing=True)
    first = gate.issue(2)
    for i in (first, first + 1):
        gate.write(stream, i, board_mem.ptr, 0)
        gate.hold(stream, i)
    done.record(stream)

    def settled(word: int, refused: int) -> bool:
        deadline = time.monotonic() + 5
        while (int(gate._word[0]), int(gate._refused[0])) != (word, refused) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.01)
        return (int(gate._word[0]), int(gate._refused[0])) == (word, refused) and not done.done

    try:
        assert settled(0, first), "the first writer should refuse and the stream park there"
        assert gate.release()
        assert settled(first, first + 1), "released past the first hold only: the second writer refuses too"
        board[0] = 31  # nobody above level 0 now
        assert gate.release()
        done.synchronize()
        assert int(gate._word[0]) == first + 1
        # a writer that finds the queue may pass writes its number; `open` covers every hold
        gate.close()
        i = gate.issue()
        gate.write(stream, i, board_mem.ptr, 0)
        gate.hold(stream, i)
        done.record(stream)
        assert settled(first + 1, i) and not gate.release(), "no release while deactivated"
    finally:
        gate.open()
    done.synchronize()
    # a writer that may pass (nobody above level 0 now) writes its number and records it as
    # passed: a release's store that landed late and lowered the word is repaired from it
    j = gate.issue()
    gate.write(stream, j, board_mem.ptr, 0)
    gate.hold(stream, j)
    stream.synchronize()
    assert int(gate._passed[0]) == j == int(gate._word[0])
    gate._word[0] = j - 1
    assert gate.release() and int(gate._word[0]) == j


def test_a_park_holds_the_stream_with_no_kernel_until_a_release_or_its_own_second_look(cuda, device):
    """hal.cuda.gate.TicketGate.park: a wait alone, with no ticket kernel ahead of it; the
    stream waits there until a release (a board watcher) or `open`, not while the queue is
    closed, and a park whose second look finds the level free lets itself go (a watcher's
    release that looked before the park counted cannot strand it)."""
    import cupy

    from hal.cuda import gate as gates

    gate = gates.ticket_gate()
    if gate is None:
        pytest.skip("no stream memory waits on this driver")
    stream = cupy.cuda.Stream(non_blocking=True)
    kernels = []
    real = gates._ticket_launcher
    gates._ticket_launcher = lambda: kernels.append(1) or real()
    try:

        def parked(may_go: bool) -> cupy.cuda.Event:
            done = cupy.cuda.Event(disable_timing=True)
            gate.park(stream, lambda: may_go)
            done.record(stream)
            return done

        def waits(done: cupy.cuda.Event) -> bool:
            time.sleep(0.02)
            return not done.done

        done = parked(False)
        assert waits(done), "a park with the level outranked should hold the stream"
        assert gate.release()
        done.synchronize()
        assert not gate.release(), "nothing left to let go"
        assert not waits(parked(True)), "a park that may go at its second look passes by itself"
        gate.close()
        done = parked(True)
        assert waits(done) and not gate.release(), "no park passes while the queue is closed"
        gate.open()
        done.synchronize()
        assert kernels == [], "a park enqueues no kernel"
    finally:
        gates._ticket_launcher = real
        gate.open()
        stream.synchronize()


def _board_pair(device):
    """A level-0 and a level-10 queue on the priority board, and a spin kernel of 1 ms
    blocks (a count small enough to read in a blink), with every kernel loaded first
    (hal.cuda.hwqueue's caveat; 20 waves take the ticket kernel too)."""
    from hal.cuda.spin import SpinKernel

    lo, hi = device.create_queue(board=True), device.create_queue(board=True)
    hi.set_priority(10)
    spin = SpinKernel(device, block_us=1000)
    lo.launch(spin.command(20_000), lambda c: None)
    hi.launch(spin.command(200), lambda c: None)
    assert lo.synchronize(30) and hi.synchronize(30)
    return lo, hi, spin


def _blocks_ran(count):
    """A reader of how many blocks have counted themselves in `count` so far: a copy into
    pinned memory on a side stream, which waits for nothing else."""
    import cupy
    import numpy as np

    side = cupy.cuda.Stream(non_blocking=True)
    seen_mem = cupy.cuda.alloc_pinned_memory(count.nbytes)
    seen = np.frombuffer(seen_mem, dtype=np.uint32, count=count.size)

    def ran() -> int:
        cupy.cuda.runtime.memcpyAsync(seen_mem.ptr, count.data.ptr, count.nbytes,
                                      cupy.cuda.runtime.memcpyDeviceToHost, side.ptr)  # fmt: skip
        side.synchronize()
        return int(seen.sum())

    return ran


def test_a_stale_park_lets_itself_go_only_once_old_enough_and_while_the_queue_is_open(cuda, device):
    """hal.cuda.gate.TicketGate.unpark_stale: the watcher lets a park go, though the level
    above still runs, once the oldest park not let go is older than the age given; not
    a younger one, not while the queue is closed, and not a park that went already."""
    import cupy

    from hal.cuda import gate as gates

    gate = gates.ticket_gate()
    if gate is None:
        pytest.skip("no stream memory waits on this driver")
    stream = cupy.cuda.Stream(non_blocking=True)
    try:
        done = cupy.cuda.Event(disable_timing=True)
        gate.park(stream, lambda: False)
        done.record(stream)
        now = time.monotonic()
        assert not gate.unpark_stale(10.0, now), "a park younger than the age was let go"
        time.sleep(0.02)
        assert not done.done, "a park with the level outranked should hold the stream"
        gate.close()
        assert not gate.unpark_stale(0.0, now + 20), "a closed queue's park was let go"
        gate.open()
        done.synchronize()
        gate.park(stream, lambda: False)
        done.record(stream)
        assert gate.unpark_stale(0.005, time.monotonic() + 0.01)
        done.synchronize()
        assert not gate.unpark_stale(0.0, time.monotonic() + 20), "nothing is parked"
    finally:
        gate.open()
        stream.synchronize()


def test_a_launch_parked_long_while_a_higher_level_runs_flushes_and_holds_then_runs_once(cuda, device):
    """hal.cuda.hwqueue (STALE_PARK_S): a level-0 launch parked while level 10 runs a long
    kernel is let go by the board's watcher after STALE_PARK_S (within a watcher's pass):
    its kernel flushes on the board after its first waves and holds, so most of its blocks
    still wait for level 10; once level 10 is idle, every block has run exactly once."""
    import cupy
    import numpy as np

    from hal.board import REAP_S
    from hal.cuda import hwqueue as hq

    lo, hi, spin = _board_pair(device)
    blocks = spin.shape(20_000)[0]  # 20 waves of 1 ms blocks
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    ran = _blocks_ran(count)
    cupy.cuda.Device().synchronize()
    long_ns = int((hq.STALE_PARK_S + 3 * REAP_S + 0.3) * 1e9)
    hi.launch(spin.kernel((1,), (128,), (np.uint64(long_ns), np.uint64(0), np.uint64(0))), lambda c: None)
    lo.launch(spin.command(20_000, count=count), lambda c: None)
    assert ran() == 0, "level 0 ran at once beside level 10"
    deadline = time.monotonic() + hq.STALE_PARK_S + 2 * REAP_S + 0.1
    while lo._ticket._parked_since is not None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert lo._ticket._parked_since is None, "the watcher did not let the stale park go"
    time.sleep(0.05)
    early = ran()
    assert early < blocks // 2, f"the let-go launch ran on beside level 10: {early} of {blocks} blocks"
    assert hi.synchronize(5)
    assert lo.synchronize(30), "the level-0 stream stayed held after level 10 went idle"
    assert int(count.min()) == 1 and int(count.max()) == 1
    lo.close()
    hi.close()


def test_the_relaunch_of_a_parked_queue_stops_when_a_higher_level_comes_back(cuda, device):
    """hal.cuda.hwqueue (`_launch_flushing`): on the board, the host's relaunch of a flushed
    level-0 launch stops like the launch itself when level 10 comes back while it runs (a
    task right after the last one), instead of running the rest of the command first; the
    relaunch behind its own hold runs what is left, every block once."""
    import cupy
    import numpy as np

    lo, hi, spin = _board_pair(device)
    blocks = spin.shape(100_000)[0]  # ~100 ms
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    ran = _blocks_ran(count)
    cupy.cuda.Device().synchronize()
    done_lo = threading.Event()
    lo.launch(spin.command(100_000, count=count), lambda c: done_lo.set())
    one_block = spin.kernel((1,), (128,), (np.uint64(30_000_000), np.uint64(0), np.uint64(0)))  # 30 ms, 1 SM
    time.sleep(0.01)
    hi.launch(one_block, lambda c: None)
    time.sleep(0.005)
    flushed = ran()
    assert hi.synchronize(5)  # level 10 idle: the watcher lets level 0's relaunch go on
    time.sleep(0.01)
    hi.launch(one_block, lambda c: None)  # back while the relaunch runs
    time.sleep(0.005)
    early = ran()
    time.sleep(0.015)
    late = ran()
    assert hi.synchronize(5)
    assert flushed < early < blocks, (flushed, early, blocks)
    assert late == early, f"the relaunch kept starting level-0 blocks while level 10 ran: {early} -> {late}"
    assert lo.synchronize(30) and done_lo.wait(5), "the rest did not run once level 10 went idle"
    assert int(count.min()) == 1 and int(count.max()) == 1
    lo.close()
    hi.close()


def test_a_launch_while_a_higher_level_runs_parks_before_its_kernel(cuda, device):
    """hal.cuda.hwqueue (`_park_first`): a level-0 launch made while level 10 has a kernel in
    flight parks ahead of its kernel, so not one of its blocks starts until level 10 goes
    idle (launched straight in, its first wave would run before the latch that flushes the
    rest); then every block runs once. The park is a wait alone: no ticket kernel of
    level 0 runs while level 10 does (it would hand the GPU to level 0's context)."""
    import cupy
    import numpy as np

    from hal.board import may_run

    lo, hi, spin = _board_pair(device)
    blocks = spin.shape(5000)[0]  # 5 waves of 1 ms blocks
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    ran = _blocks_ran(count)
    cupy.cuda.Device().synchronize()
    hi.launch(spin.kernel((1,), (128,), (np.uint64(30_000_000), np.uint64(0), np.uint64(0))), lambda c: None)
    assert not may_run(hi._board.word, 0), "level 10 should be up while its kernel runs"
    writes = []
    real_write = lo._ticket.write
    lo._ticket.write = lambda *a, **k: writes.append(a) or real_write(*a, **k)
    lo.launch(spin.command(5000, count=count), lambda c: None)
    assert writes == [], "the launch took a ticket kernel ahead of its own (or behind it: 5 waves are their own ticket)"
    time.sleep(0.01)
    early = ran()
    assert early == 0, f"{early} level-0 blocks ran while level 10 ran"
    assert hi.synchronize(5)
    assert lo.synchronize(30), "the level-0 stream stayed parked after level 10 went idle"
    assert int(count.min()) == 1 and int(count.max()) == 1
    lo.close()
    hi.close()


def test_a_direct_waiter_leaves_the_board_lowering_to_another_thread(cuda, device, monkeypatch):
    """hal.cuda.hwqueue: a thread that waits in the driver returns before its queue's board
    level is lowered, which another thread does soon after; a waiter with a timeout (the
    completion thread delivers) and a level that went up again in between keep the
    board's counts right."""
    from hal.board import LEVELS

    hi = device.create_queue(board=True)
    hi.set_priority(10)
    board = hi._board
    lowered_by = []
    real = board.deactivate

    def deactivate(level):
        lowered_by.append(threading.get_ident())
        real(level)

    monkeypatch.setattr(board, "deactivate", deactivate)
    spin = device.spin
    for _ in range(3):
        hi.launch(spin.command(500), lambda c: None)
        assert hi.synchronize()  # in the driver: the callbacks come on the later thread
        deadline = time.monotonic() + 5
        while board.word != LEVELS and time.monotonic() < deadline:
            time.sleep(0.001)
        assert board.word == LEVELS, "the level stayed up after its queue went idle"
    assert len(lowered_by) == 3 and threading.get_ident() not in lowered_by
    hi.launch(spin.command(500), lambda c: None)
    assert hi.synchronize(30)  # with a timeout: the completion thread delivers and lowers
    deadline = time.monotonic() + 5
    while board.word != LEVELS and time.monotonic() < deadline:
        time.sleep(0.001)
    assert board.word == LEVELS
    hi.launch(spin.command(500), lambda c: None)
    hi.synchronize()
    hi.launch(spin.command(500), lambda c: None)  # up again, maybe before the lowering ran
    assert board.word == LEVELS - 11
    hi.synchronize()
    hi.close()
    assert board.word == LEVELS


@pytest.mark.parametrize("threshold", [1, 2])
def test_an_xqueue_keeps_its_board_level_up_from_a_tasks_first_command_to_its_last(cuda, device, monkeypatch,
                                                                                  threshold):
    """hal.cuda.hwqueue (`_track`): a launch counts out after its callback, in which an
    XQueue launches its next command, so at threshold 1 or 2 the level stays up through
    a task of several commands (the lower levels do not run between them) and goes down
    once, after the last."""
    from hal.board import LEVELS
    from preempt.xqueue import XQueue

    lo, hi = device.create_queue(board=True), device.create_queue(board=True)
    hi.set_priority(10)
    board = hi._board
    downs = []
    real = board.deactivate

    def deactivate(level):
        downs.append((level, board.word))
        real(level)

    monkeypatch.setattr(board, "deactivate", deactivate)
    xq = XQueue(hi, level=1, threshold=threshold)
    spin = device.spin
    for _ in range(3):
        downs.clear()
        last = None
        for _ in range(6):
            last = xq.submit(spin.command(100))
        xq.wait(last)
        deadline = time.monotonic() + 5
        while board.word != LEVELS and time.monotonic() < deadline:
            time.sleep(0.001)
        assert board.word == LEVELS, "the level stayed up after the task"
        assert downs == [(10, LEVELS - 11)], f"the level went down inside the task: {downs}"
    xq.close()
    hi.close()
    lo.close()


def test_a_periodic_queue_holds_its_level_and_claims_the_gpu_before_its_tasks(cuda, device, monkeypatch):
    """hal.anticipation on a real queue: a level-10 queue with periodic tasks beside a
    level-0 queue that runs flat out holds its level ahead of its tasks and claims the GPU
    (hal.cuda.claim); the level-0 work still runs every block once, and nothing stays held.
    The level is up whenever one of its tasks launches: a task that came into a held window
    launches first and counts itself on the board behind the launch (hwqueue._up_already),
    any other raises the level before."""
    import cupy

    from hal.board import LEVELS

    monkeypatch.setattr(device, "board_lead_us", 2000.0)
    lo, hi = device.create_queue(board=True), device.create_queue(board=True)
    hi.set_priority(10)
    assert hi._anticipation is not None
    board, enqueue, activate = hi._board, hi._enqueue, hi._board.activate
    tasks = threading.current_thread()  # holds activate on the timer thread, the tasks' launches here
    launches, raised = [], []  # level 10 up at each launch; launches before each task raised it

    def recorded_enqueue(cmd):
        launches.append(board.word == LEVELS - 11)
        enqueue(cmd)

    def recorded_activate(level):
        if level == 10 and threading.current_thread() is tasks:
            raised.append(len(launches))
        activate(level)

    monkeypatch.setattr(hi, "_enqueue", recorded_enqueue)
    monkeypatch.setattr(board, "activate", recorded_activate)
    spin = device.spin
    blocks = spin.shape(1000)[0]
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    claims = device.claim.claims
    stop = threading.Event()
    launched = []

    def background():
        while not stop.is_set():
            lo.launch(spin.command(1000, count=count), lambda c: None)
            launched.append(1)
            lo.synchronize(30)

    t = threading.Thread(target=background)
    t.start()
    try:
        start = time.monotonic()
        for i in range(30):  # a 1 ms task every 20 ms
            while time.monotonic() < start + i * 0.02:
                time.sleep(0.0005)
            hi.launch(spin.command(1000), lambda c: None)
            assert hi.synchronize(30)
    finally:
        stop.set()
        t.join(30)
    assert lo.synchronize(30)
    a = hi._anticipation
    assert a.windows >= 10 and a.held_windows >= 10, (a.windows, a.held_windows)
    assert device.claim.claims - claims >= a.held_windows
    assert all(0 < e < 0.02 for e in a.early_s), "each hold began before its task, within a period"
    summary = hi.anticipation_summary()
    assert summary["arrivals"] == 30 and summary["held"] == a.held_windows
    assert summary["arrivals_in_held_window"] == len(a.early_s) >= 10
    assert lo.anticipation_summary()["held"] == 0, "nobody below the lowest level to park"
    assert int(count.min()) == len(launched) and int(count.max()) == len(launched)
    # a window that ends (no task came yet) between a launch's look at the hold and the
    # launch leaves that one task's level to go up behind it: once at most in 30 tasks
    assert len(launches) == 30 and launches.count(False) <= 1, "tasks launch with their level up on the board"
    assert len(raised) == 30, "each task (one launch) raised its level once"
    assert all(n in (i, i + 1) for i, n in enumerate(raised))
    behind = sum(1 for i, n in enumerate(raised) if n == i + 1)
    came = summary["arrivals_in_held_window"]
    assert came <= behind <= came + 1, "tasks in a held window launch first, the others raise their level first"
    hi.close()
    lo.close()
    assert lo._board.word == 32


def _axpy(q):
    import cupy

    y, x = cupy.zeros(4096, dtype=cupy.float32), cupy.ones(4096, dtype=cupy.float32)
    cupy.cuda.Device().synchronize()
    return y, x


def test_a_shape_is_the_launch_without_its_arrays(cuda):
    """Two launches differing only in their arrays share a shape; a scalar tells them apart."""
    import cupy
    import numpy as np

    from hal.cuda.durations import shape_key

    a, b = cupy.zeros(8, dtype=cupy.float32), cupy.ones(8, dtype=cupy.float32)
    key = shape_key("k", (4, 1, 1), (32, 1, 1), 0, (a, np.int32(8), 2.0, b))
    assert key == shape_key("k", (4, 1, 1), (32, 1, 1), 0, (b, np.int32(8), 2.0, a))
    assert key[-1] == (8, 2.0)
    assert key != shape_key("k", (4, 1, 1), (32, 1, 1), 0, (a, np.int32(9), 2.0, b))
    assert key != shape_key("k", (8, 1, 1), (32, 1, 1), 0, (a, np.int32(8), 2.0, b))
    unhashable = shape_key("k", (4, 1, 1), (32, 1, 1), 0, (a, [1, 2]))  # not hashable: left out
    assert unhashable[-1] == ()


def test_short_guarded_launches_run_plain_within_the_budget(cuda, device):
    """A guarded shape measured shorter than `plain_budget_us` runs plain, but never more
    of them in a row than the budget holds: a suspend waits at most that beyond them."""
    from hal.cuda import kernels as K
    from hal.cuda.durations import SAMPLES, shape_key

    q = device.create_queue(guard=True)
    y, x = _axpy(q)
    q.launch(device.spin.command(500))  # the measured launches queue behind it, as in an XQueue
    for _ in range(SAMPLES):
        q.launch(K.axpy_(y, x, 1.0))
    assert q.synchronize(30)
    assert q.plain_launches == 0  # measured while flushing
    cmd = K.axpy_(y, x, 1.0)
    us = device.durations.estimate_us(shape_key(cmd.kernel, cmd.grid, cmd.block, cmd.shared_mem, cmd.args))
    assert us is not None and 0 < us < 200, f"4,096-element axpy measured {us} us"
    # the default budget (20 us) held a few such launches, but a first run on a cold GPU
    # measured them at 22-28 us on the H100: the budget holds five, however fast they ran
    q.plain_budget_us = 5 * us
    runs = [0]
    for _ in range(40):
        before = q.plain_launches
        q.launch(K.axpy_(y, x, 1.0))
        runs.append(runs[-1] + 1 if q.plain_launches > before else 0)
    assert q.synchronize(30)
    most = int(q.plain_budget_us // us)
    assert max(runs) >= 1, "a short launch never ran plain"
    assert max(runs) <= most, f"{max(runs)} plain launches in a row, the budget holds {most} of {us:.1f} us"
    assert 0 in runs[1:], "the run of plain launches never ended in a flushing one"
    assert float(y.min()) == float(y.max()) == SAMPLES + 40  # each launch ran once either way
    q.close()


def test_plain_budget_zero_and_long_launches_always_flush(cuda, device):
    from hal.cuda import kernels as K

    q = device.create_queue(guard=True)
    q.plain_budget_us = 0
    y, x = _axpy(q)
    for _ in range(8):
        q.launch(K.axpy_(y, x, 1.0))
    q2 = device.create_queue(guard=True)
    for _ in range(6):
        q2.launch(device.spin.command(200))  # 200 us: over the budget
    assert q.synchronize(30) and q2.synchronize(30)
    assert q.plain_launches == 0 and q2.plain_launches == 0
    q.close()
    q2.close()
