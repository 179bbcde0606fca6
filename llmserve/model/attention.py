"""Grouped-query attention over K/V gathered from the paged cache.

Prefill (many new tokens of one sequence) is computed per sequence with a causal mask,
in query chunks so the score matrix stays bounded; decode (one new token for each of
many sequences) is computed for the whole group at once over K/V padded to the longest
context and masked past each sequence's length.
"""

from __future__ import annotations

from typing import Any

from llmserve.model.layers import softmax

PREFILL_QUERY_CHUNK = 256


def prefill_attention(xp: Any, q: Any, k: Any, v: Any, start: int, group: int) -> Any:
    """q [n, heads, hd] at positions start..start+n-1; k, v [L, kv heads, hd] for positions
    0..L-1 with L = start + n. Returns [n, heads, hd]."""
    n, heads, hd = q.shape
    kv_heads = k.shape[1]
    length = k.shape[0]
    # Contiguous operands and no broadcast stack dims, so NumPy's matmul reaches BLAS.
    kt = xp.ascontiguousarray(k.transpose(1, 2, 0))  # [kvh, hd, L]
    vt = xp.ascontiguousarray(v.transpose(1, 0, 2))  # [kvh, L, hd]
    scale = hd**-0.5
    out = xp.empty_like(q)
    key_pos = xp.arange(length)
    for q0 in range(0, n, PREFILL_QUERY_CHUNK):
        q1 = min(n, q0 + PREFILL_QUERY_CHUNK)
        nc = q1 - q0
        qc = q[q0:q1].reshape(nc, kv_heads, group, hd).transpose(1, 2, 0, 3)
        qc = qc.reshape(kv_heads, group * nc, hd)  # rows: (query head in group, token)
        seen = start + q1  # keys past the chunk's last query are all masked: skip them
        scores = xp.matmul(qc, kt[:, :, :seen]).astype(xp.float32, copy=False)
        scores *= scale  # [kvh, g nc, seen]
        query_pos = start + xp.arange(q0, q1)
        future = key_pos[None, :seen] > query_pos[:, None]  # [nc, seen]
        scores = xp.where(xp.tile(future, (group, 1)), -xp.inf, scores)
        probs = softmax(xp, scores).astype(q.dtype, copy=False)
        ctx = xp.matmul(probs, vt[:, :seen]).reshape(kv_heads, group, nc, hd)
        out[q0:q1] = ctx.transpose(2, 0, 1, 3).reshape(nc, heads, hd)
    return out


def decode_attention(xp: Any, q: Any, k: Any, v: Any, lengths: Any, group: int) -> Any:
    """q [B, heads, hd], one new token per sequence; k, v [B, Lmax, kv heads, hd] padded;
    `lengths` [B] the real context of each. Returns [B, heads, hd]."""
    batch, heads, hd = q.shape
    kv_heads = k.shape[2]
    qg = q.reshape(batch, kv_heads, group, hd)
    kt = xp.ascontiguousarray(k.transpose(0, 2, 3, 1))  # [B, kvh, hd, L]
    scores = xp.matmul(qg, kt).astype(xp.float32, copy=False) * hd**-0.5  # [B, kvh, g, L]
    pad = xp.arange(k.shape[1])[None, :] >= lengths[:, None]  # [B, Lmax]
    scores = xp.where(pad[:, None, None, :], -xp.inf, scores)
    probs = softmax(xp, scores).astype(q.dtype, copy=False)
    ctx = xp.matmul(probs, xp.ascontiguousarray(v.transpose(0, 2, 1, 3)))  # [B, kvh, g, hd]
    return ctx.reshape(batch, heads, hd)
