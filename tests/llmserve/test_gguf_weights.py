"""GGUF weights: a file written with gguf's GGUFWriter in llama.cpp's layout loads into
the same model (same logits), tied embeddings and float16 tensors included; a file the
loader cannot use is refused with the name of what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from llmserve.model import make_backend, preset, random_weights, reference_logits
from llmserve.model.gguf_io import GGUFError, load_gguf, save_gguf

CFG = preset("tiny")
CPU = make_backend("cpu")
PROMPT = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100]


def test_a_saved_model_loads_back_with_the_same_config_and_logits(tmp_path) -> None:
    weights = random_weights(CFG, CPU, seed=11)
    path = save_gguf(tmp_path / "tiny.gguf", CFG, weights, CPU)
    config, loaded = load_gguf(path, CPU)
    assert (config.d_model, config.n_layers, config.n_heads, config.n_kv_heads,
            config.ffn_dim, config.vocab_size) == (64, 2, 4, 2, 160, CFG.vocab_size)  # fmt: skip
    assert config.rope_theta == CFG.rope_theta and not config.tie_embeddings
    np.testing.assert_array_equal(
        reference_logits(config, loaded, CPU, PROMPT), reference_logits(CFG, weights, CPU, PROMPT)
    )


def write_llama_by_hand(path, tie: bool, drop: str | None = None) -> dict[str, np.ndarray]:
    """A 1-layer llama GGUF as llama.cpp lays it out: linear weights [out, in], float16."""
    rng = np.random.default_rng(5)
    d, f, vocab, heads, kv = 32, 48, 40, 4, 2
    hd = d // heads
    t = {
        "token_embd.weight": rng.standard_normal((vocab, d)),
        "blk.0.attn_norm.weight": 1 + 0.1 * rng.standard_normal(d),
        "blk.0.attn_q.weight": rng.standard_normal((d, d)) / d**0.5,
        "blk.0.attn_k.weight": rng.standard_normal((kv * hd, d)) / d**0.5,
        "blk.0.attn_v.weight": rng.standard_normal((kv * hd, d)) / d**0.5,
        "blk.0.attn_output.weight": rng.standard_normal((d, d)) / d**0.5,
        "blk.0.ffn_norm.weight": 1 + 0.1 * rng.standard_normal(d),
        "blk.0.ffn_gate.weight": rng.standard_normal((f, d)) / d**0.5,
        "blk.0.ffn_up.weight": rng.standard_normal((f, d)) / d**0.5,
        "blk.0.ffn_down.weight": rng.standard_normal((d, f)) / f**0.5,
        "output_norm.weight": np.ones(d),
    }
    if not tie:
        t["output.weight"] = rng.standard_normal((vocab, d)) / d**0.5
    t = {k: (v.astype(np.float32) if v.ndim == 1 else v.astype(np.float16)) for k, v in t.items()}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(256)
    w.add_embedding_length(d)
    w.add_block_count(1)
    w.add_feed_forward_length(f)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    for name, array in t.items():
        if name != drop:
            w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return t


def test_a_hand_written_tied_float16_file_is_read_in_llama_cpp_layout(tmp_path) -> None:
    tensors = write_llama_by_hand(tmp_path / "tied.gguf", tie=True)
    config, w = load_gguf(tmp_path / "tied.gguf", CPU)
    assert config.tie_embeddings and config.n_kv_heads == 2 and config.vocab_size == 40
    assert config.norm_eps == pytest.approx(1e-6)
    q = tensors["blk.0.attn_q.weight"].astype(np.float32)
    np.testing.assert_array_equal(w.layers[0].wqkv[:, :32], q.T)  # x @ W == W_gguf @ x
    np.testing.assert_array_equal(w.lm_head, tensors["token_embd.weight"].astype(np.float32).T)
    assert np.isfinite(reference_logits(config, w, CPU, [1, 2, 3])).all()


def test_a_missing_tensor_is_named(tmp_path) -> None:
    write_llama_by_hand(tmp_path / "bad.gguf", tie=False, drop="blk.0.ffn_up.weight")
    with pytest.raises(GGUFError, match="tensor 'blk.0.ffn_up.weight' is missing"):
        load_gguf(tmp_path / "bad.gguf", CPU)
    with pytest.raises(GGUFError, match="does not exist"):
        load_gguf(tmp_path / "nope.gguf", CPU)
