"""Preempted-and-resumed work equals undisturbed work bit for bit, at every level/threshold."""

from __future__ import annotations

import random
import threading
import time

import pytest

pytestmark = pytest.mark.gpu


def _run(device, level, threshold, build, preempt, plain_budget_us=0.0):
    """Submit `build()`'s commands through an XQueue, suspending/resuming at random if asked.
    `plain_budget_us` 0 (the default here) flushes every guarded launch, however short."""
    import cupy

    from preempt import XQueue

    hwq = device.create_queue(guard=level >= 2)
    hwq.plain_budget_us = plain_budget_us
    xq = XQueue(hwq, level=level, threshold=threshold)
    cmds, outputs = build()
    stop = threading.Event()
    cycles = [0]

    def preempter():
        rnd = random.Random(threshold * 10 + level)
        while not stop.is_set():
            time.sleep(rnd.uniform(0.0002, 0.002))
            xq.suspend()
            time.sleep(rnd.uniform(0.0002, 0.002))
            xq.resume()
            cycles[0] += 1

    thread = threading.Thread(target=preempter)
    if preempt:
        thread.start()
    for cmd in cmds:
        xq.submit(cmd)
    xq.synchronize(timeout=60)
    stop.set()
    if preempt:
        thread.join()
    xq.close()
    hwq.close()
    cupy.cuda.Device().synchronize()
    return [cupy.asnumpy(o) for o in outputs], cycles[0]


def _gemm_chain(seed):
    def build():
        import cupy

        from hal.cuda import call
        from hal.cuda import kernels as K

        rng = cupy.random.default_rng(seed)
        a = rng.standard_normal((512, 384), dtype=cupy.float32)
        bs = [rng.standard_normal((384, 384), dtype=cupy.float32) for _ in range(8)]
        outs = [cupy.full((512, 384), cupy.nan, dtype=cupy.float32) for _ in range(8)]
        blas = [cupy.full((512, 384), cupy.nan, dtype=cupy.float32) for _ in range(8)]
        cupy.cuda.Device().synchronize()
        cmds, prev = [], a
        for b, o, ob in zip(bs, outs, blas):
            cmds.append(K.sgemm(prev, b, o))
            cmds.append(call(cupy.matmul, prev, b, out=ob))
            cmds.append(K.axpy_(o, ob, -1e-3))
            prev = o
        return cmds, outs + blas

    return build


def _reductions_and_elementwise(seed):
    def build():
        import cupy

        from hal.cuda import kernels as K

        rng = cupy.random.default_rng(seed)
        x = rng.standard_normal((4096, 1024), dtype=cupy.float32)
        bias = rng.standard_normal(1024, dtype=cupy.float32)
        sums = cupy.zeros(4096, dtype=cupy.float32)
        cupy.cuda.Device().synchronize()
        cmds = []
        for _ in range(12):
            cmds.append(K.bias_gelu_(x, bias))  # in place: a block run twice would show
            cmds.append(K.rowsum_add(x, sums))  # += : likewise
            cmds.append(K.axpy_(x, x, -0.25))
        return cmds, [x, sums]

    return build


def _transformer(seed, guarded):
    def build():
        from hal.cuda.tasks import TransformerStack

        t = TransformerStack(tokens=256, d=256, hidden=1024, layers=4, seed=seed, guarded=guarded)
        return t.commands(), [t.x]

    return build


def _spin_counts():
    def build():
        import cupy

        from hal.cuda import CudaDevice

        spin = CudaDevice.open(0).spin
        cmds, counts = [], []
        for _ in range(16):
            blocks = spin.shape(2000)[0]
            c = cupy.zeros(blocks, dtype=cupy.uint32)
            cmds.append(spin.command(2000, count=c))
            counts.append(c)
        cupy.cuda.Device().synchronize()
        return cmds, counts

    return build


WORKLOADS = {
    "gemm_chain": lambda s: _gemm_chain(s),
    "reduce_elementwise": lambda s: _reductions_and_elementwise(s),
    "transformer_guarded": lambda s: _transformer(s, True),
    "transformer_cublas": lambda s: _transformer(s, False),
}


@pytest.mark.parametrize("level, plain_budget_us", [(1, 0.0), (2, 0.0), (2, 20.0)],
                         ids=["level1", "level2-flush-all", "level2-short-plain"])  # fmt: skip
@pytest.mark.parametrize("threshold", [1, 4, 16])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_preempted_result_equals_undisturbed_bit_for_bit(device, workload, level, threshold, plain_budget_us):
    import numpy as np

    seed = random.randrange(1 << 30)
    ref, _ = _run(device, 1, 16, WORKLOADS[workload](seed), preempt=False)
    got, cycles = _run(device, level, threshold, WORKLOADS[workload](seed), preempt=True,
                       plain_budget_us=plain_budget_us)  # fmt: skip
    assert cycles > 0, "the preempter never got a turn"
    for r, g in zip(ref, got):
        assert not np.isnan(r).any()
        assert np.array_equal(r.view(np.uint32), g.view(np.uint32)), f"{workload} differs (seed {seed})"


@pytest.mark.parametrize("threshold", [1, 8])
def test_level2_spin_kernels_run_every_block_exactly_once(device, threshold):
    got, cycles = _run(device, 2, threshold, _spin_counts(), preempt=True)
    assert cycles > 0
    for c in got:
        assert c.min() == 1 and c.max() == 1


def _run_board(device, build, preempt):
    """Launch `build()`'s commands on a level-0 queue of the priority board while a
    registered level 10 becomes active and idle at random, as another process's tasks
    make it (hal.board: its kernels flush or stop, its stream parks and is let go).
    Returns the outputs, the cycles, and how many launches went looped."""
    import cupy

    lo, hi = device.create_queue(board=True), device.create_queue(board=True)
    if lo._board is None:
        pytest.skip("no priority board here (CUDA cannot map it, or no stream memory waits)")
    hi.set_priority(10)
    lo.plain_budget_us = 0
    board, looped = lo._board, []
    real = lo._launch_looped
    lo._launch_looped = lambda *a: (looped.append(1), real(*a))
    scratch = cupy.cuda.Stream(non_blocking=True)
    lo._ticket.wait(scratch)  # load the ticket kernel now: a module load waits for an idle device
    scratch.synchronize()
    cmds, outputs = build()
    stop = threading.Event()
    cycles = [0]

    def preempter():
        rnd = random.Random(5)
        while not stop.is_set():
            time.sleep(rnd.uniform(0.0002, 0.002))
            board.activate(10)
            time.sleep(rnd.uniform(0.0002, 0.002))
            board.deactivate(10)
            cycles[0] += 1

    thread = threading.Thread(target=preempter)
    if preempt:
        thread.start()
    try:
        for cmd in cmds:
            lo.launch(cmd)
    finally:
        stop.set()
        if preempt:
            thread.join()
    assert lo.synchronize(60), "the level-0 stream did not drain once level 10 went idle"
    result = [cupy.asnumpy(o) for o in outputs]
    lo.close()
    hi.close()
    return result, cycles[0], len(looped)


def _big_launches(seed):
    """Launches of more than LOOP_MIN_WAVES waves: GEMMs of 16,384 tiles, each followed by an
    in-place axpy on its output (on the H100 the sgemm's loop fits fewer blocks an SM, so
    these flush as a grid), and in-place elementwise kernels over 32 M floats (these run
    looped on the board)."""

    def build():
        import cupy

        from hal.cuda import kernels as K

        rng = cupy.random.default_rng(seed)
        cmds, outs = [], []
        for _ in range(2):
            a = rng.standard_normal((8192, 64), dtype=cupy.float32)
            b = rng.standard_normal((64, 8192), dtype=cupy.float32)
            c = cupy.full((8192, 8192), cupy.nan, dtype=cupy.float32)
            cmds += [K.sgemm(a, b, c), K.axpy_(c, c, -0.5)]
            outs.append(c)
        x = rng.standard_normal((32768, 1024), dtype=cupy.float32)
        y = rng.standard_normal((32768, 1024), dtype=cupy.float32)
        bias = rng.standard_normal(1024, dtype=cupy.float32)
        for _ in range(4):
            cmds += [K.axpy_(y, x, 0.25), K.bias_gelu_(y, bias)]  # in place: a block run twice would show
        outs.append(y)
        cupy.cuda.Device().synchronize()
        return cmds, outs

    return build


@pytest.mark.parametrize("workload", ["gemm_chain", "big_launches"])
def test_board_preempted_result_equals_undisturbed_bit_for_bit(device, workload, monkeypatch):
    """On the board, an outranked queue's kernels flush (short ones) or stop while looped
    (long ones, hal.cuda.hwqueue `_launch_looped`; here whatever their waves' length), and
    its relaunches stop again: the result equals an undisturbed run's bit for bit."""
    import numpy as np

    import hal.cuda.hwqueue as hq

    monkeypatch.setattr(hq, "LOOP_MIN_WAVE_US", 0.0)

    seed = random.randrange(1 << 30)
    build = _big_launches if workload == "big_launches" else _gemm_chain
    ref, _, _ = _run_board(device, build(seed), preempt=False)
    got, cycles, looped = _run_board(device, build(seed), preempt=True)
    assert cycles > 0, "level 10 never came"
    assert (looped > 0) == (workload == "big_launches")
    for r, g in zip(ref, got):
        assert not np.isnan(r).any()
        assert np.array_equal(r.view(np.uint32), g.view(np.uint32)), f"{workload} differs (seed {seed})"


def test_board_looped_spin_kernels_run_every_block_exactly_once(device):
    """Long spin commands on the board go looped once their shape is timed (the first
    launches of a shape are, hal.cuda.durations); stopped and let go at random, every
    block runs exactly once."""
    _run_board(device, _spin_counts(), preempt=False)  # times the shape (hal.cuda.durations)
    got, cycles, looped = _run_board(device, _spin_counts(), preempt=True)
    assert cycles > 0 and looped == 16
    for c in got:
        assert c.min() == 1 and c.max() == 1
