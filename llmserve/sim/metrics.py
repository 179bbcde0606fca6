"""Per-policy summary numbers of a simulation: TTFT/TPOT percentiles, throughput,
rejections, preemptions, KV usage, SLO attainment and the simulator's own speed."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass

import numpy as np

from llmserve.sim.simulator import SimResult


@dataclass(frozen=True)
class Percentiles:
    """P50 / P90 / P99 in milliseconds; None when there were no samples."""

    p50: float | None
    p90: float | None
    p99: float | None

    @classmethod
    def of_seconds(cls, values: Seq[float]) -> Percentiles:
        if not values:
            return cls(None, None, None)
        p50, p90, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99))


@dataclass(frozen=True)
class PolicySummary:
    policy: str
    requests: int
    finished: int
    rejected: int
    ttft_ms: Percentiles
    tpot_ms: Percentiles
    output_tokens: int
    makespan_s: float
    throughput_tok_s: float
    throughput_req_s: float
    preempt_swap: int
    preempt_recompute: int
    swapped_blocks: int  # out + in
    kv_mean_frac: float  # time-weighted GPU KV usage while the run lasted
    kv_peak_frac: float
    host_peak_blocks: int
    slo_requests: int
    slo_met: int
    steps: int
    wall_s: float
    sim_req_per_s: float


def summarize(result: SimResult) -> PolicySummary:
    records = result.records
    finished = [r for r in records if r.finished]
    ttfts = [r.ttft_s for r in finished if r.ttft_s is not None]
    tpots = [r.tpot_s for r in finished if r.tpot_s is not None]
    tokens = sum(r.tokens for r in finished)
    makespan = max(result.end_s - result.start_s, 0.0)
    tl = result.kv_timeline
    kv_mean = kv_peak = 0.0
    host_peak = 0
    if tl:
        times = np.array([s.t for s in tl] + [result.end_s])
        used = np.array([s.gpu_used / s.gpu_total for s in tl])
        widths = np.diff(times)
        span = float(widths.sum())
        kv_mean = float((used * widths).sum() / span) if span > 0 else float(used.mean())
        kv_peak = float(used.max())
        host_peak = max(s.host_used for s in tl)
    with_slo = [r for r in records if r.request.ttft_slo_ms is not None]
    met = sum(
        1
        for r in with_slo
        if r.finished and r.ttft_s is not None and r.ttft_s * 1000.0 <= r.request.ttft_slo_ms
    )
    return PolicySummary(
        policy=result.policy,
        requests=len(records),
        finished=len(finished),
        rejected=sum(1 for r in records if r.rejected is not None),
        ttft_ms=Percentiles.of_seconds(ttfts),
        tpot_ms=Percentiles.of_seconds(tpots),
        output_tokens=tokens,
        makespan_s=makespan,
        throughput_tok_s=tokens / makespan if makespan > 0 else 0.0,
        throughput_req_s=len(finished) / makespan if makespan > 0 else 0.0,
        preempt_swap=sum(r.num_swaps for r in records),
        preempt_recompute=sum(r.num_recomputes for r in records),
        swapped_blocks=result.swap_out_blocks + result.swap_in_blocks,
        kv_mean_frac=kv_mean,
        kv_peak_frac=kv_peak,
        host_peak_blocks=host_peak,
        slo_requests=len(with_slo),
        slo_met=met,
        steps=result.steps,
        wall_s=result.wall_s,
        sim_req_per_s=len(records) / result.wall_s if result.wall_s > 0 else float("inf"),
    )
