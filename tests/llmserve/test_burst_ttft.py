"""The burst experiment in virtual time: when the burst's KV demand exceeds the cache,
FCFS makes the tail wait for whole waves while CFS's time slices give everyone a first
token early. A property of the algorithms on the cost model, not a timing of this machine."""

from __future__ import annotations

import pytest

from llmserve.sim.metrics import summarize
from llmserve.sim.simulator import SimConfig, simulate
from llmserve.sim.workload import gen_burst


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fcfs_p99_ttft_exceeds_cfs_on_a_burst_larger_than_the_kv_cache(seed: int) -> None:
    burst = gen_burst(50, seed=seed)
    config = SimConfig(kv_blocks=1024, block_size=16)
    demand = sum(-(-(r.prompt_tokens + r.max_tokens - 1) // 16) for r in burst)
    assert demand > 2 * config.kv_blocks, "the burst must not fit in the cache"

    fcfs = summarize(simulate(burst, "fcfs", config))
    cfs = summarize(simulate(burst, "cfs", config))

    assert fcfs.finished == cfs.finished == 50
    assert fcfs.ttft_ms.p99 > cfs.ttft_ms.p99
    assert cfs.preempt_swap > 0  # CFS got there by swapping KV to host
