"""Each request policy's decisions on small hand-made scenarios, through the real loop."""

from __future__ import annotations

import pytest

from llmserve.errors import ConfigError, UnknownPolicyError
from llmserve.executor.cost_model import CostModel
from llmserve.kv import BlockManager
from llmserve.sched import (
    PreemptionMode,
    RejectReason,
    Request,
    Scheduler,
    SchedulerConfig,
    SchedulerOutput,
    SequenceState,
    make_policy,
)
from llmserve.sched.policies import CFSPolicy, FCFSPolicy, PriorityPolicy, SLOPolicy


def req(
    rid: str,
    arrival: float = 0.0,
    prompt: int = 8,
    max_tokens: int = 4,
    priority: int = 0,
    slo_ms: float | None = None,
) -> Request:
    return Request(rid, arrival, prompt, max_tokens, priority, slo_ms)


def engine(policy, gpu_blocks: int, block_size: int = 4, **cfg) -> Scheduler:
    cfg.setdefault("kv_watermark", 0.0)
    kv = BlockManager(gpu_blocks, block_size, num_host_blocks=64)
    return Scheduler(SchedulerConfig(**cfg), policy, kv)


def step(sched: Scheduler, now: float = 0.0) -> SchedulerOutput:
    out = sched.schedule(now)
    sched.update(out, {s.seq_id: 7 for s in out.scheduled if s.samples}, now + 0.01)
    sched.kv.audit()
    return out


def ids(out: SchedulerOutput) -> list[str]:
    return [s.seq_id for s in out.scheduled]


def preempted(out: SchedulerOutput) -> list[tuple[str, PreemptionMode]]:
    return [(p.seq_id, p.mode) for p in out.preempted]


def run_to_end(sched: Scheduler, limit: int = 500) -> None:
    for _ in range(limit):
        if not sched.has_unfinished():
            return
        step(sched)
    raise AssertionError("did not finish")


# ---- fcfs -----------------------------------------------------------------------------


def test_fcfs_admits_in_arrival_order_and_a_waiter_never_preempts() -> None:
    sched = engine(FCFSPolicy(), gpu_blocks=5)
    for r in (req("a", 0.0), req("b", 0.1), req("c", 0.2)):  # 2 blocks each
        sched.add_request(r)
    out = step(sched)
    assert ids(out) == ["a", "b"]
    assert out.preempted == ()
    assert [s.id for s in sched.queued] == ["c"]


def test_fcfs_preempts_the_latest_arrival_by_recompute_when_a_decode_needs_a_block() -> None:
    sched = engine(FCFSPolicy(), gpu_blocks=4)
    sched.add_request(req("a", 0.0))
    sched.add_request(req("b", 0.1))
    assert ids(step(sched)) == ["a", "b"]  # prefill 8 tokens each: 2 + 2 blocks
    out = step(sched)  # a's decode needs a third block
    assert preempted(out) == [("b", PreemptionMode.RECOMPUTE)]
    assert ids(out) == ["a"]
    b = sched.sequence("b")
    assert (b.state, b.num_computed, b.num_generated) == (SequenceState.WAITING, 0, 1)
    run_to_end(sched)
    assert sched.sequence("b").num_generated == 4
    assert sched.sequence("b").num_recomputes >= 1


def test_fcfs_does_not_let_a_small_request_overtake_a_blocked_one() -> None:
    sched = engine(FCFSPolicy(), gpu_blocks=6)
    sched.add_request(req("a", 0.0, prompt=12, max_tokens=8))  # 3 blocks
    step(sched)
    sched.add_request(req("big", 0.1, prompt=16))  # 4 blocks: does not fit in 3
    sched.add_request(req("small", 0.2, prompt=4))  # 1 block: would fit
    out = step(sched)
    assert ids(out) == ["a"]
    assert [s.id for s in sched.queued] == ["big", "small"]


# ---- priority -------------------------------------------------------------------------


def test_priority_arrival_preempts_a_lower_priority_run_by_recompute_by_default() -> None:
    sched = engine(PriorityPolicy(), gpu_blocks=4)
    sched.add_request(req("low", 0.0, prompt=12, max_tokens=4, priority=0))  # 3 of 4 blocks
    step(sched)
    sched.add_request(req("high", 0.1, prompt=8, priority=5))  # needs 2
    out = step(sched)
    assert preempted(out) == [("low", PreemptionMode.RECOMPUTE)]
    assert ids(out) == ["high"]


def test_priority_with_swap_moves_the_victim_to_host_and_swaps_it_back_later() -> None:
    sched = engine(PriorityPolicy("swap"), gpu_blocks=4)
    sched.add_request(req("low", 0.0, prompt=12, max_tokens=3, priority=0))
    step(sched)
    sched.add_request(req("high", 0.1, prompt=12, max_tokens=2, priority=1))
    out = step(sched)
    assert preempted(out) == [("low", PreemptionMode.SWAP)]
    low = sched.sequence("low")
    assert low.state is SequenceState.SWAPPED and low.num_computed == 12
    assert sched.kv.usage().host_blocks_used == 4  # 13 slots held when it was swapped
    swapped_in = []
    for _ in range(10):
        if not sched.has_unfinished():
            break
        swapped_in += [s.seq_id for s in step(sched).swapped_in]
    assert swapped_in == ["low"]
    assert low.state is SequenceState.FINISHED and low.num_generated == 3
    assert low.num_recomputes == 0


def test_priority_never_preempts_an_equal_priority_run() -> None:
    sched = engine(PriorityPolicy(), gpu_blocks=4)
    sched.add_request(req("first", 0.0, prompt=12, max_tokens=4, priority=2))
    step(sched)
    sched.add_request(req("second", 0.1, prompt=8, priority=2))
    out = step(sched)
    assert out.preempted == ()
    assert ids(out) == ["first"]


def test_priority_queue_serves_higher_priority_first_then_arrival() -> None:
    sched = engine(PriorityPolicy(), gpu_blocks=64, max_running_seqs=2)
    sched.add_request(req("p0-early", 0.0, priority=0))
    sched.add_request(req("p1-late", 0.2, priority=1))
    sched.add_request(req("p1-early", 0.1, priority=1))
    assert ids(step(sched)) == ["p1-early", "p1-late"]


# ---- cfs ------------------------------------------------------------------------------


def test_cfs_swaps_out_the_most_served_at_each_slice_so_the_least_served_run() -> None:
    sched = engine(CFSPolicy(slice_steps=4), gpu_blocks=2, block_size=16)
    sched.add_request(req("a", 0.0, prompt=8, max_tokens=20))
    sched.add_request(req("b", 0.001, prompt=8, max_tokens=20))
    assert ids(step(sched)) == ["a", "b"]  # step 0: one block each (up to step 8)
    sched.add_request(req("c", 0.01, prompt=8, max_tokens=20))
    for _ in range(3):  # steps 1-3: no room for c, and no slice boundary yet
        out = step(sched)
        assert ids(out) == ["a", "b"] and out.preempted == ()
    out = step(sched)  # step 4: c (0 served) and a (4 served, earlier) make the slice
    assert preempted(out) == [("b", PreemptionMode.SWAP)]
    assert sorted(ids(out)) == ["a", "c"]
    assert sched.sequence("b").state is SequenceState.SWAPPED
    for _ in range(3):
        step(sched)
    out = step(sched)  # step 8: b (4 served) and c (4, later) beat a (8)
    assert preempted(out) == [("a", PreemptionMode.SWAP)]
    assert [s.seq_id for s in out.swapped_in] == ["b"]
    assert sorted(ids(out)) == ["b", "c"]


def test_cfs_does_not_swap_when_nobody_less_served_waits() -> None:
    sched = engine(CFSPolicy(slice_steps=2), gpu_blocks=8, block_size=16)
    sched.add_request(req("a", 0.0, prompt=8, max_tokens=20))
    sched.add_request(req("b", 0.1, prompt=8, max_tokens=20))
    for _ in range(10):
        assert step(sched).preempted == ()


def test_cfs_rejects_a_zero_slice() -> None:
    with pytest.raises(ConfigError, match="slice_steps must be an integer >= 1, got 0"):
        CFSPolicy(slice_steps=0)


# ---- slo ------------------------------------------------------------------------------

SLOW_PREFILL = CostModel(
    base_ms=1.0, per_prefill_token_ms=1.0, per_decode_seq_ms=0.0, per_context_token_ms=0.0
)


def test_slo_rejects_early_with_a_reason_when_the_target_cannot_be_met() -> None:
    sched = engine(SLOPolicy(SLOW_PREFILL, margin=1.0), gpu_blocks=256, max_batched_tokens=4096)
    sched.add_request(req("hopeless", 0.0, prompt=1000, slo_ms=100))  # ~1000 ms of prefill
    sched.add_request(req("fine", 0.0, prompt=50, slo_ms=5000))
    out = step(sched)
    assert [r.seq_id for r in out.rejected] == ["hopeless"]
    rejection = out.rejected[0]
    assert rejection.reason is RejectReason.TTFT_SLO
    assert "exceeds the target 100 ms" in rejection.detail
    assert sched.sequence("hopeless").state is SequenceState.REJECTED
    assert out.admitted == ("fine",)


def test_slo_counts_the_queue_ahead_in_its_estimate() -> None:
    policy = SLOPolicy(SLOW_PREFILL, margin=1.0)
    sched = engine(policy, gpu_blocks=256, max_batched_tokens=4096)
    # Each alone would make its 700 ms target; the third behind two others would not.
    for i in range(3):
        sched.add_request(req(f"r{i}", 0.0, prompt=300, slo_ms=700))
    out = step(sched)
    assert out.admitted == ("r0", "r1")
    assert [r.seq_id for r in out.rejected] == ["r2"]


def test_slo_never_rejects_a_request_without_a_target_and_serves_edf() -> None:
    sched = engine(SLOPolicy(SLOW_PREFILL), gpu_blocks=256, max_running_seqs=1)
    sched.add_request(req("no-slo", 0.0, prompt=900))
    sched.add_request(req("late-deadline", 0.0, prompt=10, slo_ms=9000))
    sched.add_request(req("early-deadline", 0.1, prompt=10, slo_ms=5000))
    out = step(sched)
    assert out.rejected == ()
    assert ids(out) == ["early-deadline"]
    assert [s.id for s in sched.queued] == ["late-deadline", "no-slo"]


# ---- common ---------------------------------------------------------------------------


def test_a_request_larger_than_the_whole_cache_is_rejected_by_every_policy() -> None:
    for name in ("fcfs", "priority", "cfs", "slo"):
        sched = engine(make_policy(name, step_time=CostModel()), gpu_blocks=4)
        sched.add_request(req("huge", 0.0, prompt=16, max_tokens=2))  # 17 slots: 5 blocks
        out = step(sched)
        assert [(r.seq_id, r.reason) for r in out.rejected] == [("huge", RejectReason.KV_CAPACITY)]
        assert "needs 5 KV blocks" in out.rejected[0].detail


def test_make_policy_names_the_unknown_policy() -> None:
    with pytest.raises(UnknownPolicyError, match="unknown policy 'lifo'; choose one of fcfs"):
        make_policy("lifo")
    with pytest.raises(ConfigError, match="unknown preemption mode 'evict'"):
        make_policy("priority", preemption_mode="evict")
    assert make_policy("CFS").preemption_mode is PreemptionMode.SWAP
    assert make_policy("fcfs").preemption_mode is PreemptionMode.RECOMPUTE
