"""Fused CUDA kernels (CuPy RawModule) for the float16 decoder on a GPU: RMSNorm, RoPE on
q and k in place, the K/V write into the paged cache, paged attention of every token of a
step (decodes and causal prefills alike) read straight from the block tables, and SwiGLU.
Each replaces 5-25 small CuPy kernels per layer, whose launches and passes over memory are
what a step of the 8B shape otherwise spends its time on.

Float16 values are handled as raw 16-bit words converted with PTX `cvt`, so NVRTC needs
no CUDA headers. Arithmetic is float32. Imported only where CuPy is; compiled once per
process on first use (the runner's warm-up), on the current device.
"""

from __future__ import annotations

from typing import Any

import cupy as cp
import numpy as np

from llmserve.model.kernels import StepShape, XpKernels
from llmserve.model.kv_cache import PagedKVCache

_SOURCE = r"""
typedef unsigned short half_t;

__device__ __forceinline__ float h2f(half_t h) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f;
}
__device__ __forceinline__ half_t f2h(float f) {
    half_t h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h;
}

// One block per row of x [rows, d]; out = half(half(x / rms(x)) * w), as the NumPy path.
extern "C" __global__ void rms_norm_f16(const half_t* x, const half_t* w, half_t* out,
                                        int d, float eps) {
    const half_t* row = x + (long long)blockIdx.x * d;
    half_t* orow = out + (long long)blockIdx.x * d;
    float acc = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) { float v = h2f(row[i]); acc += v * v; }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < (int)(blockDim.x >> 5) ? part[lane] : 0.f;
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) part[0] = acc;
    }
    __syncthreads();
    const float inv = 1.f / sqrtf(part[0] / d + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        orow[i] = f2h(h2f(f2h(h2f(row[i]) * inv)) * h2f(w[i]));
}

// Rotates interleaved pairs of the first `heads` heads of every row of qkv, in place.
extern "C" __global__ void rope_f16(half_t* qkv, const long long* pos, const float* cosb,
                                    const float* sinb, long long n, int heads, int half,
                                    long long row_stride) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n) return;
    const int i = (int)(idx % half);
    const long long r = idx / half;
    const int h = (int)(r % heads);
    const long long t = r / heads;
    half_t* p = qkv + t * row_stride + (long long)h * 2 * half + 2 * i;
    const long long at = pos[t] * half + i;
    const float c = cosb[at], s = sinb[at];
    const float e = h2f(p[0]), o = h2f(p[1]);
    p[0] = f2h(e * c - o * s);
    p[1] = f2h(e * s + o * c);
}

// K and V columns of qkv rows -> cache [block, layer, k/v, slot, kv head, head dim].
extern "C" __global__ void write_kv_f16(const half_t* qkv, half_t* cache,
                                        const long long* blocks, const long long* offsets,
                                        long long n, int kvw, long long row_stride, int k_col,
                                        int v_col, int layer, int n_layers, int bs) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n) return;
    const int j = (int)(idx % kvw);
    const long long t = idx / kvw;
    const long long at = ((blocks[t] * n_layers + layer) * 2LL * bs + offsets[t]) * kvw + j;
    cache[at] = qkv[t * row_stride + k_col + j];
    cache[at + (long long)bs * kvw] = qkv[t * row_stride + v_col + j];
}

// Paged attention of every new token of a step over its sequence's context up to itself
// (a decode token, or a prefill token under the causal mask): row r of qkv attends to
// positions [0, lengths[r]) of the block table tables[table_of[r]].
// One block per (row, KV head), SPLIT x group warps: warp (split, w) serves query head
// kvh * group + w over every SPLIT-th run of four context positions (so a long context is
// read by many warps at once), with an online softmax; the splits of each head are then
// merged through shared memory. A lane holds EPL consecutive elements of the head.
template <int EPL>
__global__ void paged_attention_f16(const half_t* qkv, long long row_stride,
                                    const half_t* cache, const long long* tables, int width,
                                    const long long* table_of, const long long* lengths,
                                    half_t* out, int layer, int n_layers, int bs, int nkv,
                                    int group, float scale) {
    extern __shared__ float smem[];  // [split][group]: m, l, acc[hd]
    const int b = blockIdx.x, kvh = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int w = warp % group, split = warp / group, splits = blockDim.x / (32 * group);
    const int hd = EPL * 32, kvw = nkv * hd;
    const int head = kvh * group + w;
    const half_t* q = qkv + (long long)b * row_stride + (long long)head * hd + lane * EPL;
    float qv[EPL], acc[EPL];
#pragma unroll
    for (int e = 0; e < EPL; ++e) { qv[e] = h2f(q[e]) * scale; acc[e] = 0.f; }
    float m = -1e30f, l = 0.f;
    const long long len = lengths[b];
    const long long* table = tables + table_of[b] * width;
    const long long block_stride = (long long)n_layers * 2 * bs * kvw;
    const long long base = (long long)layer * 2 * bs * kvw + (long long)kvh * hd + lane * EPL;
    for (long long p0 = 4LL * split; p0 < len; p0 += 4LL * splits) {
        float s[4];
        const half_t* vp[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const long long p = p0 + u;
            float d = 0.f;
            vp[u] = 0;
            if (p < len) {
                const half_t* kp = cache + table[p / bs] * block_stride + base
                                   + (p % bs) * (long long)kvw;
                vp[u] = kp + (long long)bs * kvw;
#pragma unroll
                for (int e = 0; e < EPL; ++e) d += qv[e] * h2f(kp[e]);
            }
            s[u] = d;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
            for (int u = 0; u < 4; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);
        }
        float mx = m;
#pragma unroll
        for (int u = 0; u < 4; ++u) if (vp[u]) mx = fmaxf(mx, s[u]);
        const float corr = __expf(m - mx);
        l *= corr;
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc[e] *= corr;
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            if (!vp[u]) continue;
            const float pr = __expf(s[u] - mx);
            l += pr;
#pragma unroll
            for (int e = 0; e < EPL; ++e) acc[e] += pr * h2f(vp[u][e]);
        }
        m = mx;
    }
    float* mine = smem + (long long)(split * group + w) * (hd + 2);
    if (lane == 0) { mine[0] = m; mine[1] = l; }
#pragma unroll
    for (int e = 0; e < EPL; ++e) mine[2 + lane * EPL + e] = acc[e];
    __syncthreads();
    if (split != 0) return;
    float mt = -1e30f;
    for (int t = 0; t < splits; ++t) mt = fmaxf(mt, smem[(t * group + w) * (hd + 2)]);
    float lt = 0.f, at[EPL];
#pragma unroll
    for (int e = 0; e < EPL; ++e) at[e] = 0.f;
    for (int t = 0; t < splits; ++t) {
        const float* part = smem + (long long)(t * group + w) * (hd + 2);
        const float f = __expf(part[0] - mt);
        lt += part[1] * f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) at[e] += part[2 + lane * EPL + e] * f;
    }
    half_t* o = out + (long long)b * nkv * group * hd + (long long)head * hd + lane * EPL;
#pragma unroll
    for (int e = 0; e < EPL; ++e) o[e] = f2h(at[e] / lt);
}

// silu(gate) * up for the fused [rows, 2F] projection -> [rows, F].
extern "C" __global__ void swiglu_f16(const half_t* gu, half_t* out, long long n, int F) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n) return;
    const long long t = idx / F;
    const int j = (int)(idx % F);
    const float g = h2f(gu[t * 2 * F + j]), u = h2f(gu[t * 2 * F + F + j]);
    out[idx] = f2h(g / (1.f + __expf(-g)) * u);
}
"""

_EPLS = (1, 2, 4, 8)  # head_dim 32, 64, 128, 256
_modules: dict[int, Any] = {}  # one compiled module per device
_THREADS = 256
_SPLITS = 8  # warps that share one query head's context in paged attention


def _module() -> Any:
    device = cp.cuda.Device().id
    mod = _modules.get(device)
    if mod is None:
        mod = cp.RawModule(
            code=_SOURCE,
            options=("-std=c++14",),
            name_expressions=[f"paged_attention_f16<{e}>" for e in _EPLS],
        )
        _modules[device] = mod
    return mod


def _grid(n: int) -> tuple[int]:
    return (max(1, -(-n // _THREADS)),)


class CudaKernels(XpKernels):
    """The layer operations as fused float16 kernels, enqueued on the current stream."""

    fused = True

    def __init__(self, config, backend, rope) -> None:
        super().__init__(config, backend, rope)
        mod = _module()
        self._rms = mod.get_function("rms_norm_f16")
        self._rope = mod.get_function("rope_f16")
        self._write = mod.get_function("write_kv_f16")
        self._attend = mod.get_function(f"paged_attention_f16<{config.head_dim // 32}>")
        self._swiglu = mod.get_function("swiglu_f16")
        # As many warps per query head as the compiled kernel's registers allow per block.
        room = self._attend.max_threads_per_block // (32 * config.group_size)
        self._splits = max(1, min(_SPLITS, room))
        self._cos = cp.ascontiguousarray(rope.cos, dtype=cp.float32)
        self._sin = cp.ascontiguousarray(rope.sin, dtype=cp.float32)

    def rms_norm(self, x: Any, weight: Any) -> Any:
        x = cp.ascontiguousarray(x)
        d = x.shape[-1]
        out = cp.empty_like(x)
        rows = x.size // d
        if rows:
            self._rms((rows,), (_THREADS,), (x, weight, out, np.int32(d),
                                             np.float32(self.config.norm_eps)))  # fmt: skip
        return out

    def rope_qk_(self, qkv: Any, positions: Any) -> None:
        cfg = self.config
        t = qkv.shape[0]
        half = cfg.head_dim // 2
        heads = cfg.n_heads + cfg.n_kv_heads  # q heads, then k heads: adjacent columns
        n = t * heads * half
        if n:
            stride = np.int64(qkv.strides[0] // qkv.itemsize)
            self._rope(_grid(n), (_THREADS,), (qkv, positions, self._cos, self._sin,
                                               np.int64(n), np.int32(heads), np.int32(half),
                                               stride))  # fmt: skip

    def write_kv(
        self, cache: PagedKVCache, layer: int, blocks: Any, offsets: Any, qkv: Any
    ) -> None:
        cfg = self.config
        kvw = cfg.n_kv_heads * cfg.head_dim
        k_col = cfg.n_heads * cfg.head_dim
        n = qkv.shape[0] * kvw
        if n:
            self._write(_grid(n), (_THREADS,), (
                qkv, cache.data, blocks, offsets, np.int64(n), np.int32(kvw),
                np.int64(qkv.strides[0] // qkv.itemsize), np.int32(k_col), np.int32(k_col + kvw),
                np.int32(layer), np.int32(cfg.n_layers), np.int32(cache.block_size),
            ))  # fmt: skip

    def prepare_attention(self, shape: StepShape, block_size: int) -> list[np.ndarray]:
        """Per token: its context length (position + 1) and its sequence's row in the
        padded block tables; the tables."""
        counts = np.asarray(shape.counts, dtype=np.int64)
        owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        first = np.cumsum(counts) - counts
        offset = np.arange(owner.size, dtype=np.int64) - first[owner]
        lengths = np.asarray(shape.starts, dtype=np.int64)[owner] + offset + 1
        return [lengths, owner, shape.padded_tables(block_size)]

    def attention(self, cache: PagedKVCache, layer: int, qkv: Any, shape: StepShape,
                  args: list[Any], out: Any) -> None:  # fmt: skip
        cfg = self.config
        lengths, owner, tables = args
        rows = qkv.shape[0]
        splits = self._splits
        smem = splits * cfg.group_size * (cfg.head_dim + 2) * 4
        self._attend((rows, cfg.n_kv_heads), (32 * cfg.group_size * splits,), (
            qkv, np.int64(qkv.strides[0] // qkv.itemsize), cache.data, tables,
            np.int32(tables.shape[1]), owner, lengths, out, np.int32(layer),
            np.int32(cfg.n_layers), np.int32(cache.block_size), np.int32(cfg.n_kv_heads),
            np.int32(cfg.group_size), np.float32(cfg.head_dim**-0.5),
        ), shared_mem=smem)  # fmt: skip

    def swiglu(self, gate_up: Any) -> Any:
        gate_up = cp.ascontiguousarray(gate_up)
        f = self.config.ffn_dim
        out = cp.empty((gate_up.shape[0], f), dtype=gate_up.dtype)
        n = out.size
        if n:
            self._swiglu(_grid(n), (_THREADS,), (gate_up, out, np.int64(n), np.int32(f)))
        return out
