"""The CPU device: payloads really run on one worker thread, one command at a time,
first-come first-served between queues; level 2 stops a queue's launched commands."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import hal
from hal import HwCommand, Level
from hal.cpu import CpuDevice, CpuHwQueue
from preempt.config import Config
from preempt.runtime import Runtime

TIMEOUT = 10.0


@pytest.fixture
def device() -> Iterator[CpuDevice]:
    dev = CpuDevice("cpu-test")
    yield dev
    dev.close()


def gate_command(started: threading.Event, release: threading.Event, log: list, tag: str):
    def payload() -> str:
        started.set()
        release.wait(TIMEOUT)
        log.append(tag)
        return tag

    return HwCommand(payload=payload, name=tag)


def test_payloads_run_on_the_worker_in_launch_order_with_one_callback_each(device) -> None:
    q = device.create_queue()
    seen: list[str] = []
    done: list[tuple[str, str]] = []
    cmds = [HwCommand(payload=lambda i=i: seen.append(threading.current_thread().name) or i)
            for i in range(5)]  # fmt: skip
    for c in cmds:
        q.launch(c, lambda c: done.append((c.name, threading.current_thread().name)))
    assert q.synchronize(TIMEOUT)
    assert [c.result for c in cmds] == [0, 1, 2, 3, 4]
    assert len(done) == 5 and all(t == "xsched-cpu-test-worker" for _, t in done)
    assert set(seen) == {"xsched-cpu-test-worker"}


def test_queues_share_the_device_first_come_first_served_one_at_a_time(device) -> None:
    a, b = device.create_queue(), device.create_queue()
    log: list[str] = []
    started, release = threading.Event(), threading.Event()
    a.launch(gate_command(started, release, log, "a1"))
    assert started.wait(TIMEOUT)
    b.launch(HwCommand(payload=lambda: log.append("b1")))
    a.launch(HwCommand(payload=lambda: log.append("a2")))
    assert log == []  # b1 waits for the running a1: one command at a time
    release.set()
    assert a.synchronize(TIMEOUT) and b.synchronize(TIMEOUT)
    assert log == ["a1", "b1", "a2"]


def test_deactivate_keeps_launched_commands_from_starting_until_reactivate(device) -> None:
    q = device.create_queue()
    log: list[str] = []
    started, release = threading.Event(), threading.Event()
    q.launch(gate_command(started, release, log, "running"))
    assert started.wait(TIMEOUT)
    q.launch(HwCommand(payload=lambda: log.append("queued")))
    q.deactivate()
    release.set()
    assert not q.synchronize(0.2)  # the running one completed, the queued one did not start
    assert log == ["running"] and q.launched_count == 1
    q.reactivate()
    assert q.synchronize(TIMEOUT)
    assert log == ["running", "queued"]


def test_a_failing_payload_keeps_its_exception_and_the_device_goes_on(device) -> None:
    q = device.create_queue()
    bad = HwCommand(payload=lambda: 1 / 0)
    good = HwCommand(payload=lambda: "ok")
    q.launch(bad)
    q.launch(good)
    assert q.synchronize(TIMEOUT)
    assert isinstance(bad.error, ZeroDivisionError) and good.result == "ok"


def test_close_drops_unstarted_commands_and_wakes_synchronize(device) -> None:
    q = device.create_queue()
    q.deactivate()
    q.launch(HwCommand(payload=lambda: "never"))
    q.close()
    assert q.synchronize(TIMEOUT) and q.launched_count == 0
    with pytest.raises(hal.HalError, match="closed"):
        q.launch(HwCommand())


def test_an_xqueue_suspended_at_level2_stops_its_cpu_commands_and_resumes_them(device) -> None:
    xq = Runtime(Config()).create_xqueue(device.create_queue(), name="llm", level=2)
    assert xq.level is Level.DEACTIVATE
    log: list[str] = []
    started, release = threading.Event(), threading.Event()
    first = xq.submit(gate_command(started, release, log, "first"))
    assert started.wait(TIMEOUT)
    second = xq.submit(HwCommand(payload=lambda: log.append("second") or 2))
    xq.suspend()
    release.set()
    assert xq.wait(first, TIMEOUT) == "first"
    assert not second.done and log == ["first"]
    xq.resume()
    assert xq.wait(second, TIMEOUT) == 2
    xq.close()


def test_open_device_cpu_is_the_shared_cpu_device() -> None:
    assert "cpu" in hal.DEVICE_NAMES
    dev = hal.open_device("cpu")
    assert isinstance(dev, CpuDevice) and dev is hal.open_device("cpu")
    q = dev.create_queue()
    assert isinstance(q, CpuHwQueue) and q.max_level is Level.DEACTIVATE
    with pytest.raises(hal.UnsupportedLevelError):
        q.interrupt()
    q.close()


@pytest.mark.parametrize("threshold", [1, 3, 16])
def test_waiting_in_the_adapter_retires_commands_once_and_in_order(device, threshold) -> None:
    """`direct_wait` (CUDA's XQueue.wait path): the waiter blocks in synchronize() and
    retires the commands itself; the adapter's own completions later change nothing."""
    from preempt import XQueue

    hwq = device.create_queue()
    hwq.direct_wait = True
    xq = XQueue(hwq, threshold=threshold)
    log: list[int] = []
    for task in range(20):
        cmds = [xq.submit(HwCommand(payload=lambda i=i: log.append(i) or i)) for i in range(task * 5, task * 5 + 5)]
        assert xq.wait(cmds[-1]) == task * 5 + 4
        assert all(c.done for c in cmds)
    xq.synchronize(TIMEOUT)
    assert log == list(range(100))
    assert xq.info().completed == 100 and xq.info().in_flight == 0
