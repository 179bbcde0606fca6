"""Preemption latency per level on the simulated XPU, with exact bounds in virtual time.

After suspend, a queue's commands stop running within threshold x T at level 1, within
T at level 2, and at once at level 3 (T = one command's duration).
"""

from __future__ import annotations

import pytest

from hal import HwCommand, VirtualClock
from hal.sim import SimDevice
from preempt import XQueue


def preemption_latency(level: int, threshold: int, command_us: float, suspend_at_us: float) -> float:
    """Seconds from suspend() until the queue's last command stopped running."""
    clock = VirtualClock()
    device = SimDevice.local(clock)
    xq = XQueue(device.create_queue(), level=level, threshold=threshold, batch_size=1)
    for _ in range(1000):
        xq.submit(HwCommand(command_us))
    clock.run_until(suspend_at_us / 1e6)
    xq.suspend()
    t0 = clock.now()
    busy_at_suspend = device.engine.busy_seconds(xq.hwq.qid)
    clock.run_until(t0 + 10.0)  # nothing else runs: the device drains what it may
    ran_after = device.engine.busy_seconds(xq.hwq.qid) - busy_at_suspend
    assert xq.info().completed < 1000
    return ran_after


@pytest.mark.parametrize("command_us", [100, 500, 2000])
@pytest.mark.parametrize("threshold", [1, 4, 8, 16])
def test_level1_drains_at_most_threshold_commands(threshold, command_us):
    latency = preemption_latency(1, threshold, command_us, suspend_at_us=command_us * 20.5)
    assert latency <= threshold * command_us / 1e6 + 1e-12
    assert latency >= (threshold // 2) * command_us / 1e6 - 1e-12  # half refilled at least


@pytest.mark.parametrize("command_us", [100, 500, 2000])
@pytest.mark.parametrize("threshold", [1, 8, 16])
def test_level2_drains_at_most_the_running_command(threshold, command_us):
    latency = preemption_latency(2, threshold, command_us, suspend_at_us=command_us * 20.5)
    assert latency == pytest.approx(command_us / 2 / 1e6)  # the rest of the running one


@pytest.mark.parametrize("command_us", [100, 500, 2000])
@pytest.mark.parametrize("threshold", [1, 16])
def test_level3_stops_at_once(threshold, command_us):
    assert preemption_latency(3, threshold, command_us, suspend_at_us=command_us * 20.5) == 0.0


def test_level1_latency_grows_with_threshold_and_level2_does_not():
    l1 = [preemption_latency(1, k, 500, 10_250) for k in (2, 8)]
    l2 = [preemption_latency(2, k, 500, 10_250) for k in (2, 8)]
    assert l1[1] > 2 * l1[0]
    assert l2[0] == l2[1]
