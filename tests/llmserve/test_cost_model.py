"""The cost-model executor: the step-time formula, swap costs, calibration by fit."""

from __future__ import annotations

import pytest

from llmserve.errors import ConfigError
from llmserve.executor import CostModel, CostModelExecutor, StepSample
from llmserve.kv import BlockManager
from llmserve.sched import Request, Scheduler, SchedulerConfig, make_policy


def test_step_time_is_linear_in_prefill_decode_and_context() -> None:
    m = CostModel(
        base_ms=5, per_prefill_token_ms=0.1, per_decode_seq_ms=0.5, per_context_token_ms=0.01
    )
    assert m.step_ms(100, 4, 1000) == pytest.approx(5 + 10 + 2 + 10)


def test_executor_charges_the_batch_and_swaps_and_samples_only_finished_prefills() -> None:
    model = CostModel(
        base_ms=2,
        per_prefill_token_ms=0.01,
        per_decode_seq_ms=0.1,
        per_context_token_ms=0.0,
        swap_per_block_ms=1.0,
    )
    sched = Scheduler(
        SchedulerConfig(max_batched_tokens=64, kv_watermark=0.0),
        make_policy("priority", preemption_mode="swap"),
        BlockManager(8, 4),
    )
    sched.add_request(Request("low", 0.0, 20, 4))  # 5 of 8 blocks
    ex = CostModelExecutor(model, token_id=42)
    out = sched.schedule(0.0)
    res = ex.execute(out)
    assert res.sampled == {"low": 42}
    assert res.duration_s == pytest.approx((2 + 0.01 * 20) / 1000)
    sched.update(out, res.sampled, res.duration_s)
    sched.add_request(Request("high", 0.0, 12, 2, priority=1))  # 3 blocks: swaps low
    out = sched.schedule(0.01)
    assert out.swap_out_blocks == 6  # low held 21 slots: 6 blocks
    res = ex.execute(out)
    expected = 6 * 1.0 + 2 + 0.01 * 12
    assert res.duration_s == pytest.approx(expected / 1000)
    assert set(res.sampled) == {"high"}


def test_fit_recovers_the_coefficients_of_measured_steps() -> None:
    truth = CostModel(
        base_ms=7.5, per_prefill_token_ms=0.025, per_decode_seq_ms=0.08, per_context_token_ms=5e-5
    )
    samples = [
        StepSample(p, d, c, truth.step_ms(p, d, c))
        for p, d, c in [
            (0, 1, 500),
            (512, 0, 512),
            (0, 32, 40000),
            (2048, 8, 9000),
            (128, 64, 90000),
            (0, 16, 2000),
        ]
    ]
    fitted = CostModel.fit(samples, swap_per_block_ms=0.1)
    for name in ("base_ms", "per_prefill_token_ms", "per_decode_seq_ms", "per_context_token_ms"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=1e-6)
    assert fitted.swap_per_block_ms == 0.1


def test_bad_coefficients_and_too_few_samples_are_refused() -> None:
    with pytest.raises(ConfigError, match="per_decode_seq_ms must be a finite number >= 0, got -1"):
        CostModel(per_decode_seq_ms=-1)
    with pytest.raises(ConfigError, match="at least 4 measured steps, got 1"):
        CostModel.fit([StepSample(1, 1, 1, 1.0)])
