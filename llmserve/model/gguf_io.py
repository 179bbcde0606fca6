"""Llama weights in GGUF files (llama.cpp's format) through the optional `gguf` package.

Tensor names and layouts follow llama.cpp: `token_embd`, `blk.N.attn_{norm,q,k,v,output}`,
`blk.N.ffn_{norm,gate,up,down}`, `output_norm`, `output` (absent when tied); a linear
weight is stored [out, in], and Q/K rows are already in the interleaved RoPE order this
model uses. F32, F16, BF16 and the quantised types `gguf` can dequantise are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from llmserve.errors import ConfigError, LLMServeError
from llmserve.model.backend import Backend
from llmserve.model.config import ModelConfig
from llmserve.model.weights import LayerWeights, Weights

ARCH = "llama"


class GGUFError(LLMServeError):
    """A GGUF file this loader cannot use (wrong architecture, missing tensor or key)."""


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise ConfigError(f"--gguf needs the gguf package (pip install gguf): {exc}") from None
    return gguf


def load_gguf(path: str | Path, backend: Backend) -> tuple[ModelConfig, Weights]:
    """The model config and weights in `path`, converted to the backend's dtype."""
    gguf = _gguf()
    path = Path(path)
    if not path.is_file():
        raise GGUFError(f"GGUF file {str(path)!r} does not exist")
    reader = gguf.GGUFReader(path)

    def meta(key: str, default: Any = None) -> Any:
        field = reader.fields.get(key)
        if field is None:
            if default is None:
                raise GGUFError(f"{path.name}: metadata key {key!r} is missing")
            return default
        return field.contents()

    arch = meta("general.architecture")
    if arch != ARCH:
        raise GGUFError(f"{path.name}: architecture {arch!r} is not supported; only {ARCH!r}")
    tensors = {t.name: t for t in reader.tensors}

    def host(name: str) -> np.ndarray:
        t = tensors.get(name)
        if t is None:
            raise GGUFError(f"{path.name}: tensor {name!r} is missing")
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            data = np.asarray(t.data)
        else:
            data = gguf.quants.dequantize(t.data, t.tensor_type)
        return data.reshape(tuple(int(n) for n in reversed(t.shape)))

    embed = host("token_embd.weight")
    n_heads = int(meta(f"{ARCH}.attention.head_count"))
    config = ModelConfig(
        name=str(meta("general.name", path.stem)),
        vocab_size=int(embed.shape[0]),
        d_model=int(meta(f"{ARCH}.embedding_length")),
        n_layers=int(meta(f"{ARCH}.block_count")),
        n_heads=n_heads,
        n_kv_heads=int(meta(f"{ARCH}.attention.head_count_kv", n_heads)),
        ffn_dim=int(meta(f"{ARCH}.feed_forward_length")),
        rope_theta=float(meta(f"{ARCH}.rope.freq_base", 10000.0)),
        norm_eps=float(meta(f"{ARCH}.attention.layer_norm_rms_epsilon", 1e-5)),
        max_position=int(meta(f"{ARCH}.context_length", 4096)),
        tie_embeddings="output.weight" not in tensors,
    )
    xp, dtype = backend.xp, backend.dtype

    def dev(a: np.ndarray) -> Any:
        return xp.asarray(np.ascontiguousarray(a.astype(dtype)))

    layers = []
    for i in range(config.n_layers):
        b = f"blk.{i}."
        qkv = np.concatenate(
            [host(b + "attn_q.weight"), host(b + "attn_k.weight"), host(b + "attn_v.weight")]
        )
        gate_up = np.concatenate([host(b + "ffn_gate.weight"), host(b + "ffn_up.weight")])
        layers.append(
            LayerWeights(
                attn_norm=dev(host(b + "attn_norm.weight")),
                wqkv=dev(qkv.T),
                wo=dev(host(b + "attn_output.weight").T),
                ffn_norm=dev(host(b + "ffn_norm.weight")),
                w_gate_up=dev(gate_up.T),
                w_down=dev(host(b + "ffn_down.weight").T),
            )
        )
    d_embed = dev(embed)
    lm_head = d_embed.T if config.tie_embeddings else dev(host("output.weight").T)
    factors = host("rope_freqs.weight") if "rope_freqs.weight" in tensors else None
    weights = Weights(
        embed=d_embed,
        layers=tuple(layers),
        norm=dev(host("output_norm.weight")),
        lm_head=lm_head,
        rope_freq_factors=None if factors is None else np.asarray(factors, dtype=np.float64),
    )
    _check_shapes(config, weights, path.name)
    return config, weights


def save_gguf(path: str | Path, config: ModelConfig, weights: Weights, backend: Backend) -> Path:
    """Write `weights` as a llama GGUF file (float32 norms, weights in their own dtype)."""
    gguf = _gguf()
    path = Path(path)
    cfg = config
    writer = gguf.GGUFWriter(str(path), ARCH)
    writer.add_name(cfg.name)
    writer.add_context_length(cfg.max_position)
    writer.add_embedding_length(cfg.d_model)
    writer.add_block_count(cfg.n_layers)
    writer.add_feed_forward_length(cfg.ffn_dim)
    writer.add_head_count(cfg.n_heads)
    writer.add_head_count_kv(cfg.n_kv_heads)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.norm_eps)
    writer.add_vocab_size(cfg.vocab_size)

    def put(name: str, array: Any, norm: bool = False) -> None:
        a = backend.to_host(array)
        writer.add_tensor(name, np.ascontiguousarray(a.astype(np.float32) if norm else a))

    nq, nkv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    put("token_embd.weight", weights.embed)
    for i, lw in enumerate(weights.layers):
        b = f"blk.{i}."
        qkv = backend.to_host(lw.wqkv).T  # [out, in]
        put(b + "attn_norm.weight", lw.attn_norm, norm=True)
        put(b + "attn_q.weight", qkv[:nq])
        put(b + "attn_k.weight", qkv[nq : nq + nkv])
        put(b + "attn_v.weight", qkv[nq + nkv : nq + 2 * nkv])
        put(b + "attn_output.weight", backend.to_host(lw.wo).T)
        put(b + "ffn_norm.weight", lw.ffn_norm, norm=True)
        gate_up = backend.to_host(lw.w_gate_up).T
        put(b + "ffn_gate.weight", gate_up[: cfg.ffn_dim])
        put(b + "ffn_up.weight", gate_up[cfg.ffn_dim :])
        put(b + "ffn_down.weight", backend.to_host(lw.w_down).T)
    put("output_norm.weight", weights.norm, norm=True)
    if not cfg.tie_embeddings:
        put("output.weight", backend.to_host(weights.lm_head).T)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _check_shapes(config: ModelConfig, w: Weights, source: str) -> None:
    d, f = config.d_model, config.ffn_dim
    expect = {
        "wqkv": (d, config.qkv_dim),
        "wo": (config.n_heads * config.head_dim, d),
        "w_gate_up": (d, 2 * f),
        "w_down": (f, d),
    }
    for i, lw in enumerate(w.layers):
        for name, shape in expect.items():
            got = tuple(getattr(lw, name).shape)
            if got != shape:
                raise GGUFError(f"{source}: layer {i} {name} has shape {got}, expected {shape}")
    if tuple(w.lm_head.shape) != (d, config.vocab_size):
        raise GGUFError(f"{source}: output has shape {tuple(w.lm_head.shape)[::-1]}, expected "
                        f"{(config.vocab_size, d)}")  # fmt: skip
