"""The burst benchmark, in-process against the engine: a burst of requests whose KV demand
exceeds the cache, served under several request policies on the cost model (virtual time)
or on the real model through an XQueue (wall time). Per-request TTFT/TPOT in issue order,
percentiles, throughput, KV usage over time, ratios against FCFS, a JSON file and plots."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence as Seq
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from llmserve.errors import ConfigError
from llmserve.executor.cost_model import CostModel
from llmserve.kv.block_manager import KVUsage
from llmserve.sched.config import SchedulerConfig
from llmserve.sim.metrics import PolicySummary, summarize
from llmserve.sim.simulator import SimConfig, SimResult, simulate
from llmserve.sim.trace import TeeTrace, TraceEvent
from llmserve.sim.workload import gen_burst

EXECUTORS = ("cost", "model")


@dataclass(frozen=True)
class BenchConfig:
    burst: int = 50
    seed: int = 0
    interval_s: float = 0.01
    policies: tuple[str, ...] = ("fcfs", "cfs", "priority")
    executor: str = "cost"
    preset: str = "tiny"
    device: str = "cpu"
    gguf: str | None = None
    kv_blocks: int = 1024
    block_size: int = 16
    host_blocks: int | None = None
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    cfs_slice_steps: int = 64
    cost_model: CostModel = field(default_factory=CostModel)
    fused_kernels: bool | None = None  # None: fused CUDA kernels where they apply

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}; choose one of {EXECUTORS}")
        if not self.policies:
            raise ConfigError("the benchmark needs at least one policy")


@dataclass(frozen=True)
class BenchRun:
    config: BenchConfig
    device: str  # what ran the steps, in words
    clock: str  # "virtual time" or "wall time"
    kv_demand_blocks: int
    results: tuple[SimResult, ...]
    summaries: tuple[PolicySummary, ...]

    def summary(self, policy: str) -> PolicySummary | None:
        return next((s for s in self.summaries if s.policy == policy), None)


def run_bench(config: BenchConfig, progress: TextIO | None = None) -> BenchRun:
    """Run every policy; with `progress`, the real model's runs print what they are doing
    there (set-up, then a line every few seconds)."""
    requests = gen_burst(config.burst, seed=config.seed, interval_s=config.interval_s)
    sim = SimConfig(
        kv_blocks=config.kv_blocks,
        block_size=config.block_size,
        host_blocks=config.host_blocks,
        scheduler=config.scheduler,
        cost_model=config.cost_model,
        cfs_slice_steps=config.cfs_slice_steps,
    )
    bs = config.block_size
    demand = sum(-(-(r.prompt_tokens + r.max_tokens - 1) // bs) for r in requests)
    results: list[SimResult] = []
    if config.executor == "cost":
        for policy in config.policies:
            results.append(simulate(requests, policy, sim))
        device, clock = "cost model (virtual time)", "virtual time"
    else:
        results, device = _run_model(config, sim, requests, progress)
        clock = "wall time"
    return BenchRun(config, device, clock, demand, tuple(results),
                    tuple(summarize(r) for r in results))  # fmt: skip


def _run_model(
    config: BenchConfig, sim: SimConfig, requests: list, progress: TextIO | None
) -> tuple[list[SimResult], str]:
    from hal import open_device
    from llmserve.executor.model import ModelExecutor
    from llmserve.model.factory import load_model
    from llmserve.model.tokenizer import synthetic_prompt
    from llmserve.telemetry import EngineTelemetry
    from preempt.runtime import get_runtime

    def say(text: str) -> None:
        if progress is not None:
            print(f"[{time.perf_counter() - t0:6.1f} s] {text}", file=progress, flush=True)

    t0 = time.perf_counter()
    say(f"loading {config.gguf or config.preset} on {config.device}")
    model = load_model(config.preset, config.device, gguf=config.gguf, seed=config.seed)
    host_blocks = sim.host_blocks if sim.host_blocks is not None else 4 * sim.kv_blocks
    # One KV cache (device blocks, pinned host blocks) for every policy: each run starts
    # from a fresh block manager, and a sequence reads only slots it wrote itself.
    runner = model.runner(sim.kv_blocks, sim.block_size, host_blocks, fused=config.fused_kernels)
    gib = 2**30
    say(f"weights {model.weights.nbytes() / gib:.1f} GiB, KV cache {sim.kv_blocks} blocks "
        f"({sim.kv_blocks * runner.cache.block_nbytes / gib:.2f} GiB), host swap {host_blocks} "
        f"blocks; warming up")  # fmt: skip
    runner.warmup()
    hw_device = open_device(config.device)
    runtime = get_runtime()
    telemetry = EngineTelemetry.attach(runtime, hw_device)
    if telemetry is not None:
        say("publishing KV gauges and TTFT/TPOT to xschedd")
    results = []
    try:
        for policy in config.policies:
            executor = ModelExecutor.create(runner, hw_device.create_queue(), runtime=runtime,
                                            name=f"llmserve-{policy}")  # fmt: skip
            vocab, seed = model.config.vocab_size, config.seed
            for r in requests:
                executor.add_prompt(r.id, synthetic_prompt(r.id, r.prompt_tokens, vocab, seed))
            shown = ProgressTrace(progress, policy, len(requests)) if progress else None
            sink = TeeTrace(telemetry, shown)
            say(f"{policy}: serving {len(requests)} requests")
            trace = sink if sink.sinks else None
            try:
                results.append(simulate(requests, policy, sim, trace=trace, executor=executor,
                                        wall_clock=time.perf_counter))  # fmt: skip
            finally:
                executor.close()
            res = results[-1]
            say(f"{policy}: done in {res.end_s - res.start_s:.1f} s, {res.steps} steps")
    finally:
        if telemetry is not None:
            telemetry.close()
    dtype = model.backend.xp.dtype(model.backend.dtype).name
    weights = "gguf" if config.gguf else "random"
    kernels = ", fused kernels" if runner.kernels.fused else ""
    return results, f"{config.device} {model.config.name} ({dtype}, {weights} weights{kernels})"


class ProgressTrace:
    """A trace sink that prints a progress line every `every_s` seconds of wall time and
    when the last request ends: requests done, tokens generated, KV in use."""

    def __init__(self, stream: TextIO, label: str, total: int, every_s: float = 5.0) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.every_s = every_s
        self.start = self.last = time.perf_counter()
        self.done = 0
        self.tokens = 0

    def emit(self, t: float, event: TraceEvent, seq_id: str, kv: KVUsage, **fields: Any) -> None:
        if event is TraceEvent.TOKEN:
            self.tokens += 1
        elif event in (TraceEvent.FINISH, TraceEvent.REJECT):
            self.done += 1
        else:
            return
        now = time.perf_counter()
        last = self.done == self.total and event is not TraceEvent.TOKEN
        if last or now - self.last >= self.every_s:
            self.last = now
            print(f"  {self.label}: {self.done}/{self.total} requests done, {self.tokens} tokens, "
                  f"KV {kv.gpu_blocks_used}/{kv.gpu_blocks_total} blocks "
                  f"({kv.host_blocks_used} swapped), {now - self.start:.1f} s",
                  file=self.stream, flush=True)  # fmt: skip


def ratios(run: BenchRun, base: str = "fcfs", other: str = "cfs") -> dict[str, float | None]:
    """other / base for P99 TTFT, throughput (tokens/s) and TPOT (P50, P99)."""
    a, b = run.summary(base), run.summary(other)
    if a is None or b is None:
        return {}

    def div(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None or y == 0 else x / y

    return {
        "p99_ttft": div(b.ttft_ms.p99, a.ttft_ms.p99),
        "p50_ttft": div(b.ttft_ms.p50, a.ttft_ms.p50),
        "throughput": div(b.throughput_tok_s, a.throughput_tok_s),
        "p50_tpot": div(b.tpot_ms.p50, a.tpot_ms.p50),
        "p99_tpot": div(b.tpot_ms.p99, a.tpot_ms.p99),
    }


def _kv_series(res: SimResult, points: int = 400) -> list[list[float]]:
    tl = res.kv_timeline
    stride = max(1, len(tl) // points)
    return [[round(s.t - res.start_s, 6), s.gpu_used, s.host_used] for s in tl[::stride]]


def to_json(run: BenchRun) -> dict[str, Any]:
    """The run as plain JSON: parameters, per-policy summary, per-request rows in issue
    order (TTFT / TPOT in ms), a KV timeline [t_s, gpu blocks used, host blocks used]."""
    cfg = asdict(run.config)
    policies = {}
    for res, s in zip(run.results, run.summaries):
        policies[s.policy] = {
            "summary": asdict(s),
            "ttft_ms": [None if r.ttft_s is None else round(r.ttft_s * 1e3, 3) for r in res.records],
            "tpot_ms": [None if r.tpot_s is None else round(r.tpot_s * 1e3, 3) for r in res.records],
            "kv_timeline": _kv_series(res),
        }
    return {
        "device": run.device,
        "clock": run.clock,
        "parameters": cfg,
        "kv_demand_blocks": run.kv_demand_blocks,
        "policies": policies,
        "ratios_cfs_over_fcfs": ratios(run),
        "ratios_priority_over_fcfs": ratios(run, other="priority"),
    }


def write_outputs(run: BenchRun, out_dir: str | Path) -> list[Path]:
    """bench.json, ttft.png (FCFS vs CFS, and the other policies) and kv.png in `out_dir`."""
    from llmserve.sim.plots import plot_kv, plot_ttft

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    path.write_text(json.dumps(to_json(run), indent=1) + "\n", encoding="utf-8")
    order = {"fcfs": 0, "cfs": 1}
    shown = sorted(run.results, key=lambda r: order.get(r.policy, 2))
    clock = run.clock
    return [path, plot_ttft(shown, out / "ttft.png", clock), plot_kv(shown, out / "kv.png", clock)]


def format_table(runs: Seq[BenchRun]) -> str:
    """A text table of every run's policies, then the CFS/FCFS ratios."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    header = (
        f"{'executor':<38}{'policy':<9}{'done':>5}{'TTFT p50':>10}{'p99':>10}"
        f"{'TPOT p50':>10}{'p99':>8}{'tok/s':>9}{'swaps':>7}{'recomp':>7}"
    )
    lines = [header]
    for run in runs:
        for s in run.summaries:
            lines.append(
                f"{run.device[:37]:<38}{s.policy:<9}{s.finished:>5}{ms(s.ttft_ms.p50):>10}"
                f"{ms(s.ttft_ms.p99):>10}{ms(s.tpot_ms.p50):>10}{ms(s.tpot_ms.p99):>8}"
                f"{s.throughput_tok_s:>9.0f}{s.preempt_swap:>7}{s.preempt_recompute:>7}"
            )
    lines.append("")
    lines.append(f"{'CFS / FCFS':<38}{'P99 TTFT':>10}{'P50 TTFT':>10}{'tok/s':>8}"
                 f"{'TPOT p50':>10}{'TPOT p99':>10}")  # fmt: skip
    for run in runs:
        r = ratios(run)
        if not r:
            continue

        def x(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        lines.append(f"{run.device[:37]:<38}{x(r['p99_ttft']):>10}{x(r['p50_ttft']):>10}"
                     f"{x(r['throughput']):>8}{x(r['p50_tpot']):>10}{x(r['p99_tpot']):>10}")  # fmt: skip
    lines.append("(times in ms: virtual time for the cost model, wall time for a real model)")
    return "\n".join(lines)
