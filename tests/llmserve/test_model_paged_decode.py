"""The tiny model's batched, paged steps compute what a plain unbatched, unpaged forward
computes: chunked prefill, decode batches of sequences with different contexts, block
tables that are neither contiguous nor ordered, and swaps that move exact bytes."""

from __future__ import annotations

import numpy as np
import pytest

from llmserve.model import (
    ModelRunner,
    SeqWork,
    StepError,
    make_backend,
    preset,
    reference_logits,
    synthetic_prompt,
)

CFG = preset("tiny")
BS = 4


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner.create(CFG, make_backend("cpu"), num_blocks=96, block_size=BS,
                              num_host_blocks=32, seed=7)  # fmt: skip


def test_batched_paged_decode_matches_the_unbatched_unpaged_reference(runner) -> None:
    rng = np.random.default_rng(0)
    free = list(rng.permutation(runner.cache.num_blocks))  # scattered, unordered blocks
    prompts = {sid: synthetic_prompt(sid, n, CFG.vocab_size) for sid, n in
               (("a", 3), ("b", 17), ("c", 30))}  # fmt: skip
    tables = {sid: tuple(int(free.pop()) for _ in range(12)) for sid in prompts}
    seqs = {sid: list(p) for sid, p in prompts.items()}
    # Prefill: "c" in two chunks (the first does not sample), "a" and "b" whole.
    first = runner.step([SeqWork("a", tuple(seqs["a"]), 0, tables["a"], True),
                         SeqWork("c", tuple(seqs["c"][:11]), 0, tables["c"], False),
                         SeqWork("b", tuple(seqs["b"]), 0, tables["b"], True)],
                        return_logits=True)  # fmt: skip
    rest = runner.step([SeqWork("c", tuple(seqs["c"][11:]), 11, tables["c"], True)],
                       return_logits=True)  # fmt: skip
    outs = {**first.logits, **rest.logits}
    tokens = {**first.tokens, **rest.tokens}
    for step in range(6):
        for sid, logits in outs.items():
            want = reference_logits(CFG, runner.weights, runner.backend, seqs[sid])[-1]
            np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4,
                                       err_msg=f"{sid} at step {step}")  # fmt: skip
            assert tokens[sid] == int(np.argmax(want))
            seqs[sid].append(tokens[sid])
        works = [SeqWork(sid, (seqs[sid][-1],), len(seqs[sid]) - 1, tables[sid], True)
                 for sid in ("c", "a", "b")]  # fmt: skip
        res = runner.step(works, return_logits=True)
        outs, tokens = dict(res.logits), dict(res.tokens)


def test_swap_out_and_in_moves_the_exact_block_bytes(runner) -> None:
    cache = runner.cache
    cache.data[5] = np.random.default_rng(1).standard_normal(cache.block_shape)
    cache.data[9] = 3.0
    before5, before9 = cache.data[5].copy(), cache.data[9].copy()
    runner.swap_out([(5, 0), (9, 7)])
    cache.data[5] = 0.0
    cache.data[9] = 0.0
    runner.swap_in([(7, 40), (0, 41)])
    assert np.array_equal(cache.data[40], before9) and np.array_equal(cache.data[41], before5)


def test_a_step_beyond_its_block_table_is_refused_with_the_numbers(runner) -> None:
    with pytest.raises(StepError, match="1 blocks of 4 hold fewer than the 6 tokens"):
        runner.step([SeqWork("x", (1, 2, 3, 4, 5, 6), 0, (0,), True)])
    with pytest.raises(StepError, match="outside the vocabulary of 259"):
        runner.step([SeqWork("x", (999,), 0, (0,), True)])


def test_presets_have_the_shapes_they_promise() -> None:
    big = preset("llama3-8b")
    assert (big.n_layers, big.d_model, big.n_heads, big.n_kv_heads, big.ffn_dim,
            big.vocab_size) == (32, 4096, 32, 8, 14336, 128256)  # fmt: skip
    assert 7.9e9 < big.num_params() < 8.1e9
    assert big.kv_bytes_per_token == 128 * 1024
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        preset("huge")
