"""The local scheduler runs HPF, UP and WRR in-process (virtual time, exact and repeatable)."""

from __future__ import annotations

import pytest

from hal import HwCommand, VirtualClock
from hal.sim import SimDevice
from hal.stats import percentile
from preempt.config import load_config
from preempt.runtime import Runtime
from xschedd.policy import make_policy
from xschedd.policy.hints import PriorityHint, UtilizationHint

T_US = 500.0


def runtime(policy: str, clock: VirtualClock) -> Runtime:
    return Runtime(load_config({"XSCHED_POLICY": policy}), clock=clock)


def foreground_latencies(clock, fg, period_s=0.02, tasks=30, commands=10) -> list[float]:
    out = []
    start = clock.now()
    for i in range(tasks):
        clock.run_until(start + i * period_s)
        t0 = clock.now()
        last = None
        for _ in range(commands):
            last = fg.submit(HwCommand(T_US))
        fg.wait(last)
        out.append(clock.now() - t0)
    return out


def standalone_p99() -> float:
    clock = VirtualClock()
    fg = runtime("HPF", clock).create_xqueue(SimDevice.local(clock).create_queue())
    return percentile(foreground_latencies(clock, fg), 99)


@pytest.mark.parametrize("level, threshold, bound_commands", [(1, 2, 2), (2, 8, 1), (3, 8, 0)])
def test_hpf_keeps_high_priority_latency_close_to_standalone(level, threshold, bound_commands):
    clock = VirtualClock()
    device = SimDevice.local(clock)
    rt = runtime("HPF", clock)
    params = {"level": level, "threshold": threshold}
    bg = rt.create_xqueue(device.create_queue(), name="bg", priority=0, **params)
    fg = rt.create_xqueue(device.create_queue(), name="fg", priority=10, **params)
    for _ in range(20_000):
        bg.submit(HwCommand(T_US))
    clock.run_for(0.005)
    p99 = percentile(foreground_latencies(clock, fg), 99)
    alone = standalone_p99()
    # the only extra wait is what the level cannot preempt: the bg commands in flight
    assert p99 <= alone + bound_commands * T_US / 1e6 + 1e-9
    assert bg.info().completed > 0  # background ran in the gaps


def test_without_a_policy_the_foreground_waits_for_the_background():
    clock = VirtualClock()
    device = SimDevice.local(clock)
    rt = Runtime(load_config({}), clock=clock)  # APP: nobody schedules
    bg = rt.create_xqueue(device.create_queue(), threshold=16)
    fg = rt.create_xqueue(device.create_queue(), threshold=16)
    for _ in range(20_000):
        bg.submit(HwCommand(T_US))
    clock.run_for(0.005)
    p99 = percentile(foreground_latencies(clock, fg), 99)
    assert p99 > 1.5 * standalone_p99()


def device_shares(policy: str, utilizations, level: int, threshold: int, seconds: float = 2.0):
    clock = VirtualClock()
    device = SimDevice.local(clock)
    rt = runtime(policy, clock)
    queues = [
        rt.create_xqueue(device.create_queue(), level=level, threshold=threshold, utilization=u)
        for u in utilizations
    ]
    for xq in queues:
        for _ in range(int(seconds * 1e6 / T_US) + 100):
            xq.submit(HwCommand(T_US))
    clock.run_until(seconds)
    busy = [device.engine.busy_seconds(xq.hwq.qid) for xq in queues]
    return [b / seconds for b in busy]


# At level 1, the commands in flight at a switch spill into the next slice; with a
# threshold of 2 (1 ms in flight against 5 ms slices) that stays within a few points.
LEVELS = [(1, 2), (2, 8), (3, 8)]


@pytest.mark.parametrize("level, threshold", LEVELS)
def test_up_partitions_the_device_75_25(level, threshold):
    a, b = device_shares("UP", (75, 25), level, threshold)
    assert a == pytest.approx(0.75, abs=0.03)
    assert b == pytest.approx(0.25, abs=0.03)
    assert a + b == pytest.approx(1.0, abs=0.01)  # the partition wastes no device time


@pytest.mark.parametrize("level, threshold", LEVELS)
def test_wrr_gives_equal_weights_equal_shares(level, threshold):
    a, b = device_shares("WRR", (100, 100), level, threshold)
    assert a == pytest.approx(0.5, abs=0.03)
    assert b == pytest.approx(0.5, abs=0.03)


def test_wrr_turns_are_weighted_by_utilization():
    a, b = device_shares("WRR", (75, 25), level=3, threshold=8)
    assert a == pytest.approx(0.75, abs=0.03)


def test_switching_policy_under_load_loses_nothing_and_strands_no_queue():
    clock = VirtualClock()
    device = SimDevice.local(clock)
    rt = runtime("HPF", clock)
    queues = [
        rt.create_xqueue(device.create_queue(), threshold=4, priority=p) for p in (5, 0, -3)
    ]
    cmds = [xq.submit(HwCommand(T_US)) for xq in queues for _ in range(200)]
    for name in ("UP", "WRR", "HPF", "CFS", "HPF"):
        clock.run_for(0.02)
        rt.scheduler.set_policy(make_policy(name))
    for xq in queues:
        xq.synchronize()
    assert all(c.done for c in cmds)
    assert not any(xq.suspended for xq in queues)


def test_hints_survive_a_policy_switch():
    clock = VirtualClock()
    device = SimDevice.local(clock)
    rt = runtime("UP", clock)
    hi = rt.create_xqueue(device.create_queue(), threshold=4)
    lo = rt.create_xqueue(device.create_queue(), threshold=4)
    rt.scheduler.hint(PriorityHint(hi.id, 10))
    rt.scheduler.hint(UtilizationHint(lo.id, 50))
    rt.scheduler.set_policy(make_policy("HPF"))
    for _ in range(100):
        lo.submit(HwCommand(T_US))
        hi.submit(HwCommand(T_US))
    clock.run_for(0.01)
    assert lo.suspended and not hi.suspended


def test_removing_a_queue_from_the_scheduler_resumes_it():
    clock = VirtualClock()
    device = SimDevice.local(clock)
    rt = runtime("HPF", clock)
    hi = rt.create_xqueue(device.create_queue(), priority=10)
    lo = rt.create_xqueue(device.create_queue(), priority=0)
    hi.submit(HwCommand(10_000))
    lo.submit(HwCommand(10))
    clock.run_for(1e-4)
    assert lo.suspended
    rt.scheduler.remove(lo)
    assert not lo.suspended


def test_priority_hints_reach_the_hardware_queue_for_its_own_priorities(clock, device):
    """Where hardware has queue priorities (CUDA streams) the XQueue priority drives them:
    at creation, and again when a hint changes it."""
    rt = runtime("HPF", clock)
    hwq = device.create_queue()
    seen: list[int] = []
    hwq.set_priority = seen.append
    xq = rt.create_xqueue(hwq, priority=7)
    rt.scheduler.hint(PriorityHint(xq.id, -3))
    clock.run_until(clock.now() + 0.001)
    assert seen[0] == 7 and seen[-1] == -3


def test_a_device_without_queue_priorities_ignores_them(device):
    device.create_queue().set_priority(255)  # the HwQueue default: nothing to do


def test_changes_queued_together_share_one_decision():
    """200 XQueues created at once (each with a priority hint) cost a few decisions, not
    one per queue and hint: urgent work must not wait behind a start-up backlog."""
    clock = VirtualClock()
    device = SimDevice.local(clock)
    rt = runtime("HPF", clock)
    for i in range(200):
        rt.create_xqueue(device.create_queue(), name=f"q{i}", priority=i % 3)
    clock.run_for(0.001)
    assert rt.scheduler.decisions <= 3
    fg = rt.create_xqueue(device.create_queue(), name="fg", priority=10)
    before = rt.scheduler.decisions
    fg.submit(HwCommand(T_US))
    clock.run_for(0.001)
    assert rt.scheduler.decisions - before <= 3
