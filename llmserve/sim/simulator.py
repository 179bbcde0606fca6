"""Runs a request workload through the real scheduler and block manager on an executor,
in virtual time (the cost model by default), recording per-request results and a trace."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

from llmserve.errors import SimulationError
from llmserve.executor.base import Executor
from llmserve.executor.cost_model import CostModel, CostModelExecutor
from llmserve.kv.block_manager import BlockManager
from llmserve.sched.config import PreemptionMode, SchedulerConfig
from llmserve.sched.output import SchedulerOutput
from llmserve.sched.policies import make_policy
from llmserve.sched.request import Request
from llmserve.sched.scheduler import Scheduler
from llmserve.sim.trace import NullTrace, TraceEvent, TraceSink


@dataclass(frozen=True)
class SimConfig:
    """One simulated engine: KV pool sizes, scheduler limits, step costs, policy knobs.
    `preemption_mode` None keeps each policy's own default."""

    kv_blocks: int = 1024
    block_size: int = 16
    host_blocks: int | None = None
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    cost_model: CostModel = field(default_factory=CostModel)
    cfs_slice_steps: int = 64
    preemption_mode: PreemptionMode | None = None
    slo_margin: float = 1.1


@dataclass(frozen=True)
class RequestRecord:
    """How one request fared. Times are seconds of virtual time; `index` is file order."""

    index: int
    request: Request
    tokens: int
    first_token_s: float | None
    finish_s: float | None
    rejected: str | None
    num_swaps: int
    num_recomputes: int

    @property
    def finished(self) -> bool:
        return self.rejected is None and self.tokens == self.request.max_tokens

    @property
    def ttft_s(self) -> float | None:
        if self.first_token_s is None:
            return None
        return self.first_token_s - self.request.arrival_s

    @property
    def tpot_s(self) -> float | None:
        """Mean time per output token after the first; None with fewer than two tokens."""
        if self.first_token_s is None or self.finish_s is None or self.tokens < 2:
            return None
        return (self.finish_s - self.first_token_s) / (self.tokens - 1)


@dataclass(frozen=True)
class KVSample:
    """KV gauges when a step was scheduled."""

    t: float
    gpu_used: int
    gpu_total: int
    host_used: int
    running: int
    queued: int


@dataclass(frozen=True)
class SimResult:
    policy: str
    records: tuple[RequestRecord, ...]
    kv_timeline: tuple[KVSample, ...]
    steps: int
    busy_s: float  # virtual time spent executing steps
    start_s: float
    end_s: float
    wall_s: float  # host seconds the simulation took
    swap_out_blocks: int
    swap_in_blocks: int


def simulate(
    requests: Seq[Request],
    policy: str,
    config: SimConfig | None = None,
    trace: TraceSink | None = None,
    executor: Executor | None = None,
    wall_clock: Callable[[], float] | None = None,
) -> SimResult:
    """Serve `requests` (any order; served by arrival time, ties in the given order) with
    request policy `policy` until every request has finished or been rejected.

    Time is virtual by default: a step lasts what the executor reports, and an idle
    engine jumps to the next arrival. With `wall_clock` (e.g. time.perf_counter) the loop
    runs as a real engine: times are read from that clock, so scheduling overhead counts,
    and an idle engine sleeps until the next arrival is due."""
    cfg = config if config is not None else SimConfig()
    tracing = trace is not None and not isinstance(trace, NullTrace)
    sink: TraceSink = trace if trace is not None else NullTrace()
    ex: Executor = executor if executor is not None else CostModelExecutor(cfg.cost_model)
    kv = BlockManager(cfg.kv_blocks, cfg.block_size, cfg.host_blocks)
    sched = Scheduler(
        cfg.scheduler,
        make_policy(
            policy,
            step_time=cfg.cost_model,
            preemption_mode=cfg.preemption_mode,
            cfs_slice_steps=cfg.cfs_slice_steps,
            slo_margin=cfg.slo_margin,
        ),
        kv,
    )
    order = {r.id: i for i, r in enumerate(requests)}
    if len(order) != len(requests):
        raise SimulationError("duplicate request ids in the workload")
    pending = sorted(requests, key=lambda r: (r.arrival_s, order[r.id]))
    wall0 = time.perf_counter()
    timeline: list[KVSample] = []
    steps = 0
    busy = 0.0
    swapped_out = swapped_in = 0
    nxt = 0
    now = pending[0].arrival_s if pending else 0.0
    start = now
    t0 = wall_clock() if wall_clock is not None else 0.0

    def elapsed() -> float:  # real-time mode only: the clock, on the workload's time axis
        assert wall_clock is not None
        return start + (wall_clock() - t0)

    def feed(until: float) -> None:
        nonlocal nxt
        while nxt < len(pending) and pending[nxt].arrival_s <= until:
            req = pending[nxt]
            sched.add_request(req)
            sink.emit(req.arrival_s, TraceEvent.ARRIVE, req.id, kv.usage())
            nxt += 1

    feed(now)
    while nxt < len(pending) or sched.has_unfinished():
        if wall_clock is not None:
            now = max(now, elapsed())
            feed(now)
        out = sched.schedule(now)
        if tracing:
            _emit_decisions(sink, out, now)
        timeline.append(
            KVSample(
                now,
                out.kv.gpu_blocks_used,
                out.kv.gpu_blocks_total,
                out.kv.host_blocks_used,
                len(sched.running),
                len(sched.queued),
            )
        )
        if not out.has_device_work:
            if nxt < len(pending):
                if wall_clock is not None:
                    time.sleep(max(0.0, pending[nxt].arrival_s - elapsed()))
                now = max(now, pending[nxt].arrival_s)
                feed(now)
                continue
            if sched.has_unfinished():
                raise SimulationError(
                    f"no progress at t={now:.6f}s: {len(sched.queued)} queued, "
                    f"{len(sched.running)} running, nothing schedulable"
                )
            break
        result = ex.execute(out)
        if result.duration_s <= 0:
            raise SimulationError(f"executor reported a step of {result.duration_s} s")
        steps += 1
        busy += result.duration_s
        swapped_out += out.swap_out_blocks
        swapped_in += out.swap_in_blocks
        end = now + result.duration_s if wall_clock is None else max(now, elapsed())
        feed(end)
        update = sched.update(out, result.sampled, end)
        if tracing:
            for seq_id, n in update.sampled:
                sink.emit(end, TraceEvent.TOKEN, seq_id, update.kv, n=n)
            for seq_id in update.finished:
                sink.emit(end, TraceEvent.FINISH, seq_id, update.kv)
        now = end
    wall = time.perf_counter() - wall0

    records = []
    for seq in sched.sequences():
        records.append(
            RequestRecord(
                index=order[seq.id],
                request=seq.request,
                tokens=seq.num_generated,
                first_token_s=seq.first_token_s,
                finish_s=seq.finish_s,
                rejected=seq.rejection,
                num_swaps=seq.num_swaps,
                num_recomputes=seq.num_recomputes,
            )
        )
    records.sort(key=lambda r: r.index)
    return SimResult(
        policy=sched.policy.name,
        records=tuple(records),
        kv_timeline=tuple(timeline),
        steps=steps,
        busy_s=busy,
        start_s=start,
        end_s=now,
        wall_s=wall,
        swap_out_blocks=swapped_out,
        swap_in_blocks=swapped_in,
    )


def _emit_decisions(sink: TraceSink, out: SchedulerOutput, now: float) -> None:
    kv = out.kv
    for rej in out.rejected:
        sink.emit(
            now, TraceEvent.REJECT, rej.seq_id, kv, reason=rej.reason.value, detail=rej.detail
        )
    for seq_id in out.admitted:
        sink.emit(now, TraceEvent.ADMIT, seq_id, kv)
    for p in out.preempted:
        sink.emit(now, TraceEvent.PREEMPT, p.seq_id, kv, mode=p.mode.value, blocks=p.num_blocks)
        if p.mode is PreemptionMode.SWAP:
            sink.emit(now, TraceEvent.SWAP_OUT, p.seq_id, kv, blocks=p.num_blocks)
    for s in out.swapped_in:
        sink.emit(now, TraceEvent.SWAP_IN, s.seq_id, kv, blocks=s.num_blocks)
    for s in out.scheduled:
        sink.emit(
            now,
            TraceEvent.SCHEDULE,
            s.seq_id,
            kv,
            kind="prefill" if s.is_prefill else "decode",
            tokens=s.num_tokens,
            step=out.step,
        )
