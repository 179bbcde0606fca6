"""Calibrate the cost model from real steps: time a grid of prefill and decode batches and
of KV swaps on a ModelRunner, then fit `CostModel` by least squares."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from llmserve.errors import ConfigError
from llmserve.executor.cost_model import CostModel, StepSample
from llmserve.model.runner import ModelRunner, SeqWork


@dataclass(frozen=True)
class Calibration:
    model: CostModel
    samples: tuple[StepSample, ...]
    swap_per_block_ms: float


def _timed_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def calibrate(
    runner: ModelRunner,
    *,
    prefill_tokens: tuple[int, ...] = (32, 128, 512, 1024),
    decode_batches: tuple[int, ...] = (1, 4, 16, 32),
    decode_contexts: tuple[int, ...] = (64, 256, 1024),
    repeats: int = 3,
) -> Calibration:
    """Measure steps on `runner` (its KV cache must hold no live sequence: calibration
    writes into its blocks) and fit a CostModel. Shapes that do not fit the cache or the
    model's max position are skipped."""
    cache = runner.cache
    bs, nblocks = cache.block_size, cache.num_blocks
    limit = runner.config.max_position
    samples: list[StepSample] = []

    def run(works: list[SeqWork]) -> None:
        runner.step(works)

    runner.step([SeqWork("warm", (1, 2), 0, (0,), True)])  # first-call costs out of the way
    for n in prefill_tokens:
        need = -(-n // bs)
        if need > nblocks or n > limit:
            continue
        works = [SeqWork("p", tuple([1] * n), 0, tuple(range(need)), True)]
        samples.append(StepSample(n, 0, n, _timed_ms(lambda w=works: run(w), repeats)))
    for batch in decode_batches:
        for ctx in decode_contexts:
            need = -(-(ctx + 1) // bs)
            if need * batch > nblocks or ctx + 1 > limit:
                continue
            works = [
                SeqWork(f"d{i}", (1,), ctx, tuple(range(i * need, (i + 1) * need)), True)
                for i in range(batch)
            ]
            ms = _timed_ms(lambda w=works: run(w), repeats)
            samples.append(StepSample(0, batch, batch * (ctx + 1), ms))
    if len(samples) < 4:
        raise ConfigError(
            f"calibration measured only {len(samples)} step shapes; give the KV cache more "
            f"blocks than {nblocks} of {bs} tokens"
        )
    blocks = min(nblocks, cache.num_host_blocks, 64)
    swap_ms = 0.0
    if blocks > 0:
        pairs = [(i, i) for i in range(blocks)]

        def swap() -> None:
            runner.swap_out(pairs)
            runner.swap_in(pairs)
            runner.backend.synchronize()

        swap_ms = _timed_ms(swap, repeats) / (2 * blocks)
    return Calibration(CostModel.fit(samples, swap_per_block_ms=swap_ms), tuple(samples), swap_ms)
