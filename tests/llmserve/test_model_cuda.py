"""The model on a GPU (skipped without CuPy and a CUDA device): the fused float16 kernels
compute what the unfused CuPy operations and the plain reference compute, swaps through
pinned memory move exact bytes, and the burst benchmark runs through a CUDA XQueue."""

from __future__ import annotations

import numpy as np
import pytest

from llmserve.model import ModelRunner, SeqWork, make_backend, reference_logits, synthetic_prompt
from llmserve.model.config import BYTE_VOCAB, ModelConfig
from llmserve.model.weights import random_weights

pytestmark = pytest.mark.gpu

# head_dim 128 with 4 query heads per KV head, as the 8B shape; and head_dim 64, group 2.
SHAPES = [
    ModelConfig("gpu-a", BYTE_VOCAB, 512, 2, 4, 1, 1024, max_position=2048),
    ModelConfig("gpu-b", BYTE_VOCAB, 256, 2, 4, 2, 640, max_position=2048),
]
BS = 16


@pytest.fixture(scope="module")
def backend():
    pytest.importorskip("cupy")
    from llmserve.model.backend import BackendUnavailableError

    try:
        return make_backend("cuda:0")
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("cfg", SHAPES, ids=lambda c: c.name)
def test_fused_kernels_match_the_unfused_step_and_the_reference(backend, cfg) -> None:
    weights = random_weights(cfg, backend, seed=5)
    fused = ModelRunner.create(cfg, backend, num_blocks=64, block_size=BS, num_host_blocks=4,
                               weights=weights, fused=True)  # fmt: skip
    plain = ModelRunner.create(cfg, backend, num_blocks=64, block_size=BS, num_host_blocks=4,
                               weights=weights, fused=False)  # fmt: skip
    assert fused.kernels.fused and not plain.kernels.fused
    rng = np.random.default_rng(1)
    free = [int(b) for b in rng.permutation(64)]
    prompts = {sid: synthetic_prompt(sid, n, cfg.vocab_size) for sid, n in
               (("a", 5), ("b", 40), ("c", 70))}  # fmt: skip
    tables = {sid: tuple(free.pop() for _ in range(8)) for sid in prompts}
    seqs = {sid: list(p) for sid, p in prompts.items()}
    for step in range(5):
        if step == 0:  # prefills, "c" in two chunks of which the first does not sample
            works = [SeqWork("a", tuple(seqs["a"]), 0, tables["a"], True),
                     SeqWork("c", tuple(seqs["c"][:33]), 0, tables["c"], False),
                     SeqWork("b", tuple(seqs["b"]), 0, tables["b"], True)]  # fmt: skip
            got = dict(fused.step(works, return_logits=True).logits)
            want = dict(plain.step(works, return_logits=True).logits)
            works = [SeqWork("c", tuple(seqs["c"][33:]), 33, tables["c"], True)]
            got.update(fused.step(works, return_logits=True).logits)
            want.update(plain.step(works, return_logits=True).logits)
        else:
            works = [SeqWork(sid, (seqs[sid][-1],), len(seqs[sid]) - 1, tables[sid], True)
                     for sid in ("c", "a", "b")]  # fmt: skip
            got = dict(fused.step(works, return_logits=True).logits)
            want = dict(plain.step(works, return_logits=True).logits)
        for sid, logits in got.items():
            assert rel_err(logits, want[sid]) < 1e-2, (sid, step)
            ref = reference_logits(cfg, weights, backend, seqs[sid])[-1]
            assert rel_err(logits, ref) < 2e-2, (sid, step)
            seqs[sid].append(int(np.argmax(ref)))


def test_swaps_through_pinned_memory_move_exact_bytes(backend) -> None:
    import cupy as cp

    cfg = SHAPES[0]
    runner = ModelRunner.create(cfg, backend, num_blocks=16, block_size=BS, num_host_blocks=8,
                                seed=2)  # fmt: skip
    cache = runner.cache
    with backend.activate():
        cache.data[3] = cp.asarray(np.random.default_rng(3).standard_normal(cache.block_shape),
                                   dtype=cache.data.dtype)  # fmt: skip
        before = cp.asnumpy(cache.data[3])
        runner.swap_out([(3, 5)])
        backend.synchronize()
        cache.data[3] = 0
        runner.swap_in([(5, 11)])
        backend.synchronize()
        assert np.array_equal(cp.asnumpy(cache.data[11]), before)


def test_the_burst_bench_runs_through_a_cuda_xqueue(backend, tmp_path) -> None:
    from llmserve.cli import main

    code = main(["bench", "--burst", "6", "--policy", "fcfs,cfs", "--executor", "model",
                 "--preset", "small", "--device", "cuda:0", "--kv-blocks", "64",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    import json

    data = json.loads((tmp_path / "bench.json").read_text())
    assert "fused kernels" in data["device"]
    for policy in ("fcfs", "cfs"):
        s = data["policies"][policy]["summary"]
        assert s["finished"] + s["rejected"] == 6
