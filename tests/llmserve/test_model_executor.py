"""The real-model executor: every step runs as XQueue commands on the CPU device, swaps
really move KV to host and back, recompute really recomputes, and a request preempted
and resumed either way generates exactly the tokens of an undisturbed run (greedy)."""

from __future__ import annotations

import pytest

from hal.cpu import CpuDevice
from llmserve.executor.calibrate import calibrate
from llmserve.executor.model import ModelExecutor
from llmserve.model import ModelRunner, make_backend, preset, random_weights, synthetic_prompt
from llmserve.sched import PreemptionMode, Request, SchedulerConfig
from llmserve.sim.simulator import SimConfig, simulate
from preempt.config import Config
from preempt.runtime import Runtime

CFG = preset("tiny")
BACKEND = make_backend("cpu")
WEIGHTS = random_weights(CFG, BACKEND, seed=3)
BS = 4
# All arrive at once, so the schedule depends on step counts only, not on step times.
REQUESTS = [
    Request(f"r{i}", 0.0, prompt, out, priority=i % 2)
    for i, (prompt, out) in enumerate([(23, 20), (9, 16), (37, 12), (14, 24), (30, 18), (5, 22)])
]


@pytest.fixture(scope="module")
def device():
    dev = CpuDevice("cpu-llm-test")
    yield dev
    dev.close()


def serve(device, policy: str, kv_blocks: int, mode: PreemptionMode | None = None):
    runner = ModelRunner.create(CFG, BACKEND, num_blocks=kv_blocks, block_size=BS,
                                num_host_blocks=256, weights=WEIGHTS)  # fmt: skip
    executor = ModelExecutor.create(runner, device.create_queue(), runtime=Runtime(Config()))
    for r in REQUESTS:
        executor.add_prompt(r.id, synthetic_prompt(r.id, r.prompt_tokens, CFG.vocab_size))
    config = SimConfig(kv_blocks=kv_blocks, block_size=BS, host_blocks=256, cfs_slice_steps=3,
                       preemption_mode=mode,
                       scheduler=SchedulerConfig(max_batched_tokens=64, kv_watermark=0.0))  # fmt: skip
    result = simulate(REQUESTS, policy, config, executor=executor)
    executor.close()
    outputs = {r.id: executor.tokens(r.id)[r.prompt_tokens :] for r in REQUESTS}
    return result, outputs, executor


@pytest.fixture(scope="module")
def undisturbed(device):
    result, outputs, _ = serve(device, "fcfs", kv_blocks=400)
    assert sum(r.num_swaps + r.num_recomputes for r in result.records) == 0
    assert all(len(outputs[r.id]) == r.max_tokens for r in REQUESTS)
    return outputs


def test_requests_swapped_out_and_back_generate_the_undisturbed_tokens(device, undisturbed):
    result, outputs, executor = serve(device, "cfs", kv_blocks=40, mode=PreemptionMode.SWAP)
    assert sum(r.num_swaps for r in result.records) >= 3
    assert executor.swapped_bytes > 0
    assert outputs == undisturbed


def test_requests_preempted_by_recompute_generate_the_undisturbed_tokens(device, undisturbed):
    result, outputs, _ = serve(device, "cfs", kv_blocks=40, mode=PreemptionMode.RECOMPUTE)
    assert sum(r.num_recomputes for r in result.records) >= 3
    assert outputs == undisturbed


def test_every_step_is_a_command_of_the_executors_xqueue(device) -> None:
    result, _, executor = serve(device, "cfs", kv_blocks=40, mode=PreemptionMode.SWAP)
    info = executor.xqueue.info()
    assert info.submitted == info.completed
    assert executor.steps == result.steps
    assert info.submitted > result.steps  # swap copies ran as commands of their own
    assert info.device == "cpu-llm-test"


def test_a_step_for_a_sequence_without_a_prompt_is_refused(device) -> None:
    runner = ModelRunner.create(CFG, BACKEND, num_blocks=64, block_size=BS, num_host_blocks=0,
                                weights=WEIGHTS)  # fmt: skip
    executor = ModelExecutor.create(runner, device.create_queue(), runtime=Runtime(Config()))
    with pytest.raises(Exception, match="no prompt registered for 'r0'"):
        simulate(REQUESTS[:1], "fcfs", SimConfig(kv_blocks=64, block_size=BS), executor=executor)
    executor.close()


def test_calibration_fits_a_cost_model_from_measured_steps() -> None:
    runner = ModelRunner.create(CFG, BACKEND, num_blocks=64, block_size=16, num_host_blocks=16,
                                weights=WEIGHTS)  # fmt: skip
    cal = calibrate(runner, prefill_tokens=(16, 64, 128), decode_batches=(1, 4),
                    decode_contexts=(16, 64), repeats=1)  # fmt: skip
    assert len(cal.samples) == 7 and all(s.measured_ms > 0 for s in cal.samples)
    assert cal.swap_per_block_ms > 0
    assert cal.model.step_ms(64, 0, 64) > 0
