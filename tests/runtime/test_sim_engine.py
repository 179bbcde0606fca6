"""The simulated XPU: FCFS between queues, time slicing, and levels 2 and 3, in virtual time."""

from __future__ import annotations

import pytest

from hal import DeviceError, HwCommand, VirtualClock
from hal.sim import SimDevice, SimEngine


def run(device: SimDevice, plan: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Launch (queue, duration_us) in order; return (queue, completion time) in order."""
    queues = {name: device.create_queue() for name, _ in plan}
    done: list[tuple[str, float]] = []
    for name, us in plan:
        queues[name].launch(HwCommand(us), lambda _c, n=name: done.append((n, device.clock.now())))
    device.clock.run_until_idle()
    return done


def test_commands_of_different_queues_run_first_come_first_served(device):
    done = run(device, [("a", 100), ("b", 50), ("a", 100), ("b", 50)])
    assert [n for n, _ in done] == ["a", "b", "a", "b"]
    assert [round(t * 1e6) for _, t in done] == [100, 150, 250, 300]


def test_round_robin_time_slicing_interleaves_long_commands(clock):
    device = SimDevice.local(clock, scheduling="rr", timeslice_us=100)
    done = run(device, [("a", 300), ("b", 300)])
    # a and b alternate 100 us slices: a ends at 500 us, b at 600 us
    assert [(n, round(t * 1e6)) for n, t in done] == [("a", 500), ("b", 600)]


def test_payload_result_is_set_at_completion_in_launch_order(device):
    q = device.create_queue()
    seen: list[int] = []
    cmds = [HwCommand(10, payload=lambda i=i: seen.append(i) or i * i) for i in range(5)]
    for cmd in cmds:
        q.launch(cmd)
    assert seen == []
    q.synchronize()
    assert seen == [0, 1, 2, 3, 4]
    assert [c.result for c in cmds] == [0, 1, 4, 9, 16]


def test_deactivate_stops_launched_commands_but_lets_the_running_one_finish(device):
    clock = device.clock
    q, other = device.create_queue(), device.create_queue()
    times: list[float] = []
    for _ in range(3):
        q.launch(HwCommand(100), lambda _c: times.append(clock.now()))
    clock.run_until(50e-6)
    q.deactivate()
    other.launch(HwCommand(10))
    clock.run_until(1.0)
    assert [round(t * 1e6) for t in times] == [100]  # only the running command finished
    q.reactivate()
    clock.run_until_idle()
    assert [round(t * 1e6) for t in times] == [100, 1_000_100, 1_000_200]


def test_interrupt_pauses_the_running_command_and_restore_continues_its_remaining_time(device):
    clock = device.clock
    q = device.create_queue()
    ends: list[float] = []
    q.launch(HwCommand(100), lambda _c: ends.append(clock.now()))
    clock.run_until(30e-6)
    q.interrupt()
    clock.run_until(1.0)
    assert ends == []
    assert device.engine.busy_seconds(q.qid) == pytest.approx(30e-6)
    q.restore()
    clock.run_until_idle()
    assert ends == [pytest.approx(1.0 + 70e-6)]


def test_interrupted_queue_yields_the_device_to_others_at_once(device):
    clock = device.clock
    low, high = device.create_queue(), device.create_queue()
    low.launch(HwCommand(1000))
    clock.run_until(100e-6)
    low.interrupt()
    end: list[float] = []
    high.launch(HwCommand(50), lambda _c: end.append(clock.now()))
    clock.run_until_idle()
    assert end == [pytest.approx(150e-6)]


def test_speed_factor_scales_command_durations(clock):
    device = SimDevice.local(clock, speed=2.0)
    assert run(device, [("a", 100)]) == [("a", pytest.approx(50e-6))]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"speed": 0}, "speed must be > 0"),
        ({"scheduling": "lottery"}, "scheduling must be one of"),
        ({"timeslice_us": -1}, "timeslice_us must be > 0"),
    ],
)
def test_bad_device_parameters_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(DeviceError, match=message):
        SimEngine(VirtualClock(), **kwargs)


def test_negative_duration_is_refused(device):
    with pytest.raises(DeviceError, match="duration must be >= 0"):
        device.create_queue().launch(HwCommand(-1))
