"""hal.cuda.launch: packed launches pass every argument exactly as CuPy's own call does."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu

_SRC = r"""
#include <cuda_fp16.h>
extern "C" __global__ void mix(double* out, signed char a, __half b, double c, bool d, unsigned short e,
                               long long f, float g, unsigned int h, const int* p) {
  out[0] = a; out[1] = __half2float(b); out[2] = c; out[3] = d; out[4] = e; out[5] = (double)f;
  out[6] = g; out[7] = h; out[8] = p[blockIdx.x]; out[9] = gridDim.x * blockDim.x;
}
"""


def test_packed_arguments_reach_the_kernel_as_cupy_passes_them(cuda, device):
    import cupy
    import numpy as np

    from hal.cuda.launch import PackedLauncher, signature

    kernel = cupy.RawKernel(_SRC, "mix")
    p = cupy.arange(3, dtype=cupy.int32) + 40
    args = (np.int8(-7), np.float16(1.5), np.float64(2.25), np.bool_(True), np.uint16(65535),
            np.int64(-(2**40)), np.float32(0.5), np.uint32(2**32 - 1), p)  # fmt: skip
    out = cupy.zeros(10, dtype=cupy.float64)
    assert signature((out, *args)) == "@Pbed?HqfIP"
    stream = cupy.cuda.Stream(non_blocking=True)
    PackedLauncher(kernel)((3, 1, 1), (32, 1, 1), (out, *args), 0, stream, device.index)
    stream.synchronize()
    # every block writes the same but p[blockIdx.x]: any of 40..42
    got = out.get().tolist()
    assert got[:8] == [-7, 1.5, 2.25, 1, 65535, -(2**40), 0.5, 2**32 - 1] and got[8] in (40, 41, 42)
    assert got[9] == 96


def test_unpackable_arguments_go_through_cupy(cuda, device):
    import cupy

    from hal.cuda.launch import PackedLauncher

    kernel = cupy.RawKernel(r'extern "C" __global__ void put(int* o, int v) { o[0] = v; }', "put")
    out = cupy.zeros(1, dtype=cupy.int32)
    stream = cupy.cuda.Stream(non_blocking=True)
    PackedLauncher(kernel)((1, 1, 1), (1, 1, 1), (out, 5), 0, stream, device.index)  # CuPy converts the int
    stream.synchronize()
    assert int(out[0]) == 5
