"""hal.cuda.kernels compute what they say, plain and guarded, on shapes that are not
multiples of their tiles (the bit-for-bit tests only compare a kernel with itself)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu

GEMM_SHAPES = [(1, 1, 1), (64, 16, 64), (100, 33, 70), (257, 65, 129), (512, 384, 384)]


def _launch(device, cmd, guarded):
    """Run one command plain, or guarded through a queue that flushes every launch."""
    import cupy

    if not guarded:
        cmd.kernel.plain(cmd.grid, cmd.block, cmd.args, shared_mem=cmd.shared_mem)
        cupy.cuda.Device().synchronize()
        return
    q = device.create_queue(guard=True)
    q.plain_budget_us = 0
    q.launch(cmd)
    assert q.synchronize(30)
    q.close()


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "guarded"])
@pytest.mark.parametrize("m, k, n", GEMM_SHAPES)
def test_sgemm_matches_a_float64_product(device, m, k, n, guarded):
    import cupy

    from hal.cuda import kernels as K

    rng = cupy.random.default_rng(m * 7 + k * 3 + n)
    a = rng.standard_normal((m, k), dtype=cupy.float32)
    b = rng.standard_normal((k, n), dtype=cupy.float32)
    c = cupy.full((m, n), cupy.nan, dtype=cupy.float32)
    _launch(device, K.sgemm(a, b, c), guarded)
    ref = a.astype(cupy.float64) @ b.astype(cupy.float64)
    err = float(cupy.abs(c - ref).max()) / max(float(cupy.abs(ref).max()), 1e-30)
    assert err < 1e-5, f"{m}x{k}x{n}: relative error {err:.2e}"


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "guarded"])
@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 333), (257, 1001), (1024, 4096)])
def test_elementwise_kernels_touch_every_element_once(device, rows, cols, guarded):
    """bias_gelu and axpy run EW elements per thread: each element once, none past the end."""
    import cupy

    from hal.cuda import kernels as K

    rng = cupy.random.default_rng(rows + cols)
    x = rng.standard_normal((rows, cols), dtype=cupy.float32)
    guard_cell = cupy.zeros(x.size + 1, dtype=cupy.float32)  # one past the end, watched
    y = guard_cell[: x.size].reshape(rows, cols)
    bias = rng.standard_normal(cols, dtype=cupy.float32)
    v = x.astype(cupy.float64) + bias
    want = 0.5 * v * (1 + cupy.tanh(0.7978845608 * (v + 0.044715 * v**3)))
    _launch(device, K.bias_gelu_(x, bias), guarded)
    assert float(cupy.abs(x - want).max()) < 1e-5 * max(1.0, float(cupy.abs(want).max()))
    _launch(device, K.axpy_(y, x, 0.5), guarded)
    assert bool((y == 0.5 * x).all())
    assert float(guard_cell[-1]) == 0.0
