"""A plain decoder forward for one sequence: no batching, no paging, no cache, K/V heads
repeated for every query head. The specification the paged runner is tested against."""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np

from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig
from llmserve.model.layers import Rope, rms_norm, softmax, swiglu
from llmserve.model.weights import Weights


def reference_logits(
    config: ModelConfig, weights: Weights, backend: Backend, token_ids: Seq[int]
) -> np.ndarray:
    """Float32 logits [len(token_ids), vocab]: row i predicts the token after position i."""
    xp, cfg = backend.xp, config
    n = len(token_ids)
    nq, nkv, hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
    rope = Rope(cfg, backend, weights.rope_freq_factors)
    pos = xp.arange(n)
    causal = xp.triu(xp.ones((n, n), dtype=bool), k=1)
    x = weights.embed[xp.asarray(np.asarray(token_ids))]
    for lw in weights.layers:
        h = rms_norm(xp, x, lw.attn_norm, cfg.norm_eps)
        q = rope((h @ lw.wqkv[:, : nq * hd]).reshape(n, nq, hd), pos)
        k = rope((h @ lw.wqkv[:, nq * hd : (nq + nkv) * hd]).reshape(n, nkv, hd), pos)
        v = (h @ lw.wqkv[:, (nq + nkv) * hd :]).reshape(n, nkv, hd)
        k = xp.repeat(k, cfg.group_size, axis=1)  # [n, nq, hd]
        v = xp.repeat(v, cfg.group_size, axis=1)
        heads = []
        for head in range(nq):
            scores = (q[:, head] @ k[:, head].T).astype(xp.float32) / np.sqrt(hd)
            scores = xp.where(causal, -xp.inf, scores)
            heads.append(softmax(xp, scores).astype(x.dtype) @ v[:, head])
        x = x + xp.concatenate(heads, axis=1) @ lw.wo
        h = rms_norm(xp, x, lw.ffn_norm, cfg.norm_eps)
        x = x + swiglu(xp, h @ lw.w_gate_up, cfg.ffn_dim) @ lw.w_down
    logits = rms_norm(xp, x, weights.norm, cfg.norm_eps) @ weights.lm_head
    return backend.to_host(logits.astype(xp.float32))
