"""Guarded kernels with independent blocks: tiled GEMM, row reductions, elementwise, norm.

fp32, deterministic (each output is written by one block, in a fixed order), so a
flushed-and-relaunched run equals an undisturbed one bit for bit.
"""

from __future__ import annotations

import cupy
import numpy as np

from hal.cuda.commands import GuardedLaunch
from hal.cuda.guard import GuardedKernel

GEMM_TILE = 64  # xs_sgemm's tile of C per block (BM = BN): its 16 x 16 threads compute 4 x 4 outputs each
EW = 4  # elements per thread of the elementwise kernels
EW_BLOCK = 256 * EW  # elements per block of them

# the sizes both sides use are defined once, here, and handed to the source
_SRC = f"#define BM {GEMM_TILE}\n#define BN {GEMM_TILE}\n#define EW {EW}\n" + r"""
#define BK 16
extern "C" __global__ void __launch_bounds__(256) xs_sgemm(const float* A, const float* B, float* C, int M, int N, int K) {
  // C[M,N] = A[M,K] @ B[K,N]: one 64x64 tile of C per block of 16x16 threads, 4x4 outputs
  // per thread (rows ty + 16i, columns tx + 16j), each summed over k in order
  __shared__ float As[BK][BM + 4];  // As[k][m]
  __shared__ float Bs[BK][BN];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int ar = tid >> 2, ac = (tid & 3) * 4, br = tid >> 4, bc = (tid & 15) * 4;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += BK) {
    #pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int gm = m0 + ar, gk = k0 + ac + j;
      As[ac + j][ar] = (gm < M && gk < K) ? A[(size_t)gm * K + gk] : 0.f;
      const int gk2 = k0 + br, gn = n0 + bc + j;
      Bs[br][bc + j] = (gk2 < K && gn < N) ? B[(size_t)gk2 * N + gn] : 0.f;
    }
    __syncthreads();
    #pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[4], b[4];
      #pragma unroll
      for (int i = 0; i < 4; ++i) { a[i] = As[k][ty + 16 * i]; b[i] = Bs[k][tx + 16 * i]; }
      #pragma unroll
      for (int i = 0; i < 4; ++i)
        #pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  #pragma unroll
  for (int i = 0; i < 4; ++i)
    #pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int gm = m0 + ty + 16 * i, gn = n0 + tx + 16 * j;
      if (gm < M && gn < N) C[(size_t)gm * N + gn] = acc[i][j];
    }
}

extern "C" __global__ void xs_rowsum(const float* X, float* out, int cols) {
  // out[row] += sum(X[row, :]) : one block (256 threads) per row; += makes it non-idempotent
  __shared__ float s[256];
  const float* x = X + (size_t)blockIdx.x * cols;
  float acc = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) acc += x[c];
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] += s[0];
}

extern "C" __global__ void xs_bias_gelu(float* X, const float* bias, int n, int cols) {
  // in place: X = gelu(X + bias[col]) -- in place, so running a block twice is wrong
  #pragma unroll
  for (int j = 0; j < EW; ++j) {
    int i = (blockIdx.x * EW + j) * blockDim.x + threadIdx.x;
    if (i < n) {
      float v = X[i] + bias[i % cols];
      X[i] = 0.5f * v * (1.f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
    }
  }
}

extern "C" __global__ void xs_axpy(float* Y, const float* X, float a, int n) {
  #pragma unroll
  for (int j = 0; j < EW; ++j) {
    int i = (blockIdx.x * EW + j) * blockDim.x + threadIdx.x;
    if (i < n) Y[i] += a * X[i];
  }
}

extern "C" __global__ void xs_layernorm(const float* X, float* Y, const float* g, const float* b, int cols) {
  __shared__ float s[256];
  __shared__ float stat[2];
  const float* x = X + (size_t)blockIdx.x * cols;
  float* y = Y + (size_t)blockIdx.x * cols;
  float acc = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) acc += x[c];
  s[threadIdx.x] = acc; __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) { if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w]; __syncthreads(); }
  if (threadIdx.x == 0) stat[0] = s[0] / cols;
  __syncthreads();
  float mean = stat[0]; acc = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) { float d = x[c] - mean; acc += d * d; }
  s[threadIdx.x] = acc; __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) { if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w]; __syncthreads(); }
  if (threadIdx.x == 0) stat[1] = rsqrtf(s[0] / cols + 1e-5f);
  __syncthreads();
  for (int c = threadIdx.x; c < cols; c += blockDim.x) y[c] = (x[c] - mean) * stat[1] * g[c] + b[c];
}
"""

sgemm_kernel = GuardedKernel(_SRC, "xs_sgemm")
rowsum_kernel = GuardedKernel(_SRC, "xs_rowsum")
bias_gelu_kernel = GuardedKernel(_SRC, "xs_bias_gelu")
axpy_kernel = GuardedKernel(_SRC, "xs_axpy")
layernorm_kernel = GuardedKernel(_SRC, "xs_layernorm")


def _i(v: int) -> np.int32:
    return np.int32(v)


def sgemm(a: cupy.ndarray, b: cupy.ndarray, c: cupy.ndarray) -> GuardedLaunch:
    """c = a @ b (float32, C-contiguous)."""
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2 or c.shape != (m, n):
        raise ValueError(f"sgemm shapes {a.shape} @ {b.shape} -> {c.shape} do not match")
    grid = ((n + GEMM_TILE - 1) // GEMM_TILE, (m + GEMM_TILE - 1) // GEMM_TILE)
    return sgemm_kernel(grid, (16, 16), (a, b, c, _i(m), _i(n), _i(k)))


def rowsum_add(x: cupy.ndarray, out: cupy.ndarray) -> GuardedLaunch:
    """out[r] += sum(x[r, :])."""
    return rowsum_kernel((x.shape[0],), (256,), (x, out, _i(x.shape[1])))


def bias_gelu_(x: cupy.ndarray, bias: cupy.ndarray) -> GuardedLaunch:
    """x = gelu(x + bias), in place, bias broadcast over rows."""
    return bias_gelu_kernel(((x.size + EW_BLOCK - 1) // EW_BLOCK,), (256,), (x, bias, _i(x.size), _i(x.shape[-1])))


def axpy_(y: cupy.ndarray, x: cupy.ndarray, a: float) -> GuardedLaunch:
    """y += a * x, in place."""
    return axpy_kernel(((y.size + EW_BLOCK - 1) // EW_BLOCK,), (256,), (y, x, np.float32(a), _i(y.size)))


def layernorm(x: cupy.ndarray, y: cupy.ndarray, g: cupy.ndarray, b: cupy.ndarray) -> GuardedLaunch:
    """y = layernorm(x) * g + b over the last axis, one block per row."""
    return layernorm_kernel((x.shape[0],), (256,), (x, y, g, b, _i(x.shape[1])))
