"""CudaHwQueue on a real GPU: completion order, level-2 flushing, exactly-once relaunch."""

from __future__ import annotations

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


def test_deactivate_flushes_a_running_kernel_and_reactivate_runs_each_block_once(cuda, device):
    import cupy

    q = device.create_queue(guard=True)
    spin = device.spin
    blocks = spin.shape(100_000)[0]  # ~100 ms
    count = cupy.zeros(blocks, dtype=cupy.uint32)
    q.launch(spin.command(1000))  # compile the guarded kernels (and `+=` below) first
    q.launch(spin.command(100_000))
    q.launch(cuda.call(count.__iadd__, 0))
    q.synchronize()
    # Load every kernel this test uses while deactivated: loading a module waits for the
    # device to go idle, which a gated stream never does (see hal.cuda.hwqueue).
    int((count == 1).sum())
    count.fill(0)
    cupy.cuda.Device().synchronize()
    done = threading.Event()
    t0 = time.monotonic()
    q.launch(spin.command(100_000, count=count), lambda c: done.set())
    q.launch(cuda.call(count.__iadd__, 0))  # a level-1 command behind it stays in order
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
    q.close()


def test_workload_cli_runs_spin_kernels_on_cuda(cuda):
    out = subprocess.run(
        [sys.executable, "-m", "xsched_workload.cli", "--device", "cuda:0", "--duration-s", "1",
         "--queue", "name=fg,priority=5,period_ms=20,commands=4,command_us=500,level=2,threshold=4",
         "--queue", "name=bg,commands=8,command_us=1000", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "XSCHED_POLICY": "HPF", "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"summary": true, "queue": "fg"' in out.stdout


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
    assert xq.task_latency.count == 1 if hasattr(xq.task_latency, "count") else True
    xq.close()
