"""The Markdown report of a simulation: workload and engine, per-policy latency and
throughput table, ratios against FCFS, rejections, simulator speed, and the plots."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import asdict

from llmserve.sched.request import Request
from llmserve.sim.metrics import PolicySummary
from llmserve.sim.simulator import SimConfig, SimResult


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def render_report(
    *,
    source: str,
    requests: Seq[Request],
    config: SimConfig,
    results: Seq[SimResult],
    summaries: Seq[PolicySummary],
    plots: Seq[tuple[str, str]] = (),
) -> str:
    """Markdown text. `plots` are (title, file name relative to the report)."""
    bs = config.block_size
    demand = sum(-(-(r.prompt_tokens + r.max_tokens - 1) // bs) for r in requests)
    span = max(r.arrival_s for r in requests) - min(r.arrival_s for r in requests)
    sc = config.scheduler
    host = config.host_blocks if config.host_blocks is not None else 4 * config.kv_blocks
    mode = config.preemption_mode.value if config.preemption_mode else "each policy's default"
    lines: list[str] = [
        "# llmserve simulation report",
        "",
        (
            "Virtual time on the cost-model executor. Its default coefficients approximate "
            "an 8B Llama-class model on one H100 and should be recalibrated from measured "
            "step times (`CostModel.fit`); compare policies with each other, not with a GPU."
        ),
        "",
        "## Workload and engine",
        "",
        (
            f"- requests: `{source}`: {len(requests)} requests arriving over {span:.2f} s, "
            f"{sum(r.prompt_tokens for r in requests)} prompt tokens, "
            f"{sum(r.max_tokens for r in requests)} output tokens"
        ),
        (
            f"- KV demand if all ran at once: {demand} blocks; the cache holds "
            f"{config.kv_blocks} blocks of {bs} tokens ({demand / config.kv_blocks:.1f}x "
            f"the cache); host pool {host} blocks"
        ),
        (
            f"- scheduler: max_batched_tokens {sc.max_batched_tokens}, max_running_seqs "
            f"{sc.max_running_seqs}, chunked prefill {'on' if sc.chunked_prefill else 'off'}, "
            f"KV watermark {sc.kv_watermark:.0%}; cfs slice {config.cfs_slice_steps} steps; "
            f"preemption {mode}"
        ),
        "- cost model (ms): "
        + ", ".join(f"{k} {v:g}" for k, v in asdict(config.cost_model).items()),
        "",
        "## Latency and throughput",
        "",
        (
            "| policy | finished | rejected | TTFT P50 | TTFT P90 | TTFT P99 | TPOT P50 "
            "| TPOT P90 | TPOT P99 | tokens/s | requests/s | preempt swap / recompute "
            "| blocks swapped | KV mean / peak | host peak | SLO met |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        slo = f"{s.slo_met}/{s.slo_requests}" if s.slo_requests else "-"
        lines.append(
            f"| {s.policy} | {s.finished} | {s.rejected} | {_ms(s.ttft_ms.p50)} "
            f"| {_ms(s.ttft_ms.p90)} | {_ms(s.ttft_ms.p99)} | {_ms(s.tpot_ms.p50)} "
            f"| {_ms(s.tpot_ms.p90)} | {_ms(s.tpot_ms.p99)} | {s.throughput_tok_s:.0f} "
            f"| {s.throughput_req_s:.2f} | {s.preempt_swap} / {s.preempt_recompute} "
            f"| {s.swapped_blocks} | {s.kv_mean_frac:.0%} / {s.kv_peak_frac:.0%} "
            f"| {s.host_peak_blocks} | {slo} |"
        )
    lines += ["", "Times in ms of virtual time; TTFT and TPOT over finished requests."]

    base = next((s for s in summaries if s.policy == "fcfs"), None)
    if base is not None and len(summaries) > 1:
        lines += [
            "",
            "## Against FCFS",
            "",
            "| policy | P99 TTFT / FCFS | P50 TTFT / FCFS | throughput / FCFS | P50 TPOT / FCFS |",
            "|---|---:|---:|---:|---:|",
        ]
        for s in summaries:
            if s is base:
                continue
            lines.append(
                f"| {s.policy} | {_ratio(s.ttft_ms.p99, base.ttft_ms.p99)} "
                f"| {_ratio(s.ttft_ms.p50, base.ttft_ms.p50)} "
                f"| {_ratio(s.throughput_tok_s, base.throughput_tok_s)} "
                f"| {_ratio(s.tpot_ms.p50, base.tpot_ms.p50)} |"
            )

    rejected = [(res.policy, r) for res in results for r in res.records if r.rejected]
    if rejected:
        lines += ["", "## Rejections", ""]
        limit = 30
        for policy, r in rejected[:limit]:
            lines.append(f"- {policy} `{r.request.id}`: {r.rejected}")
        if len(rejected) > limit:
            lines.append(f"- ... and {len(rejected) - limit} more (see the trace)")

    lines += [
        "",
        "## Simulator speed",
        "",
        "| policy | steps | wall s | simulated requests/s | steps/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in summaries:
        steps_s = s.steps / s.wall_s if s.wall_s > 0 else float("inf")
        lines.append(
            f"| {s.policy} | {s.steps} | {s.wall_s:.3f} | {s.sim_req_per_s:.0f} | {steps_s:.0f} |"
        )
    if plots:
        lines += ["", "## Plots", ""]
        for title, name in plots:
            lines += [f"![{title}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"
