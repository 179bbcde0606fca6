"""The continuous-batching loop: token budget, running-set limit, chunked prefill, the
contract of schedule/update, and its invariants on random workloads for every policy."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmserve.errors import SchedulerError
from llmserve.executor.cost_model import CostModel, CostModelExecutor
from llmserve.kv import BlockManager
from llmserve.sched import (
    POLICY_NAMES,
    PreemptionMode,
    RejectReason,
    Request,
    Scheduler,
    SchedulerConfig,
    SequenceState,
    make_policy,
)


def engine(policy: str = "fcfs", gpu_blocks: int = 64, block_size: int = 4, **cfg) -> Scheduler:
    kv = BlockManager(gpu_blocks, block_size, num_host_blocks=cfg.pop("host_blocks", None))
    return Scheduler(
        SchedulerConfig(**cfg),
        make_policy(policy, step_time=CostModel(), cfs_slice_steps=3),
        kv,
    )


def test_chunked_prefill_splits_a_long_prompt_over_the_token_budget() -> None:
    sched = engine(gpu_blocks=256, max_batched_tokens=256)
    sched.add_request(Request("long", 0.0, 600, 2))
    chunks = []
    for _ in range(3):
        out = sched.schedule(0.0)
        chunks.append([(s.num_tokens, s.is_prefill, s.samples) for s in out.scheduled])
        sched.update(out, {s.seq_id: 1 for s in out.scheduled if s.samples}, 0.0)
    assert chunks == [[(256, True, False)], [(256, True, False)], [(88, True, True)]]
    assert sched.sequence("long").num_generated == 1


def test_decodes_come_first_and_new_prefills_take_what_budget_is_left() -> None:
    sched = engine(gpu_blocks=256, max_batched_tokens=100)
    sched.add_request(Request("a", 0.0, 10, 5))
    out = sched.schedule(0.0)
    sched.update(out, {"a": 1}, 0.0)
    sched.add_request(Request("b", 0.0, 500, 5))
    out = sched.schedule(0.0)
    assert [(s.seq_id, s.num_tokens, s.is_prefill) for s in out.scheduled] == [
        ("a", 1, False),
        ("b", 99, True),
    ]


def test_the_running_set_never_exceeds_max_running_seqs() -> None:
    sched = engine(gpu_blocks=256, max_running_seqs=3)
    for i in range(6):
        sched.add_request(Request(f"r{i}", 0.0, 4, 3))
    out = sched.schedule(0.0)
    assert len(out.scheduled) == 3 and len(sched.running) == 3


def test_without_chunking_a_prompt_beyond_the_budget_is_rejected_up_front() -> None:
    sched = engine(gpu_blocks=256, max_batched_tokens=256, chunked_prefill=False)
    sched.add_request(Request("long", 0.0, 250, 10))
    out = sched.schedule(0.0)
    assert [(r.seq_id, r.reason) for r in out.rejected] == [("long", RejectReason.PROMPT_TOO_LONG)]
    assert "max_batched_tokens is 256" in out.rejected[0].detail


def test_update_needs_a_token_for_every_sampling_sequence_and_refuses_a_replay() -> None:
    sched = engine()
    sched.add_request(Request("a", 0.0, 8, 3))
    out = sched.schedule(0.0)
    with pytest.raises(SchedulerError, match="sampled no token for 'a'"):
        sched.update(out, {}, 0.1)
    sched = engine()
    sched.add_request(Request("a", 0.0, 8, 3))
    out = sched.schedule(0.0)
    sched.update(out, {"a": 1}, 0.1)
    with pytest.raises(SchedulerError, match="applied twice or out of order"):
        sched.update(out, {"a": 1}, 0.2)


def test_a_duplicate_request_id_is_refused() -> None:
    sched = engine()
    sched.add_request(Request("a", 0.0, 8, 3))
    with pytest.raises(SchedulerError, match="duplicate request id 'a'"):
        sched.add_request(Request("a", 1.0, 8, 3))


def test_swap_falls_back_to_recompute_when_the_host_pool_is_full() -> None:
    sched = Scheduler(
        SchedulerConfig(kv_watermark=0.0),
        make_policy("priority", preemption_mode="swap"),
        BlockManager(4, 4, num_host_blocks=1),
    )
    sched.add_request(Request("low", 0.0, 12, 4, priority=0))
    out = sched.schedule(0.0)
    sched.update(out, {"low": 1}, 0.1)
    sched.add_request(Request("high", 0.1, 8, 2, priority=1))
    out = sched.schedule(0.1)
    assert [(p.seq_id, p.mode) for p in out.preempted] == [("low", PreemptionMode.RECOMPUTE)]


workloads = st.lists(
    st.tuples(
        st.floats(0.0, 0.5, allow_nan=False),  # arrival
        st.integers(1, 60),  # prompt tokens
        st.integers(1, 20),  # max tokens
        st.integers(-1, 2),  # priority
        st.one_of(st.none(), st.floats(5.0, 5000.0)),  # ttft slo ms
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    work=workloads,
    policy=st.sampled_from(POLICY_NAMES),
    gpu_blocks=st.integers(4, 24),
    budget=st.integers(8, 64),
    max_running=st.integers(1, 6),
    chunked=st.booleans(),
    mode=st.sampled_from([None, "swap", "recompute"]),
)
def test_every_policy_keeps_the_books_and_finishes_every_admitted_request(
    work,
    policy,
    gpu_blocks,
    budget,
    max_running,
    chunked,
    mode,
) -> None:
    kv = BlockManager(gpu_blocks, 4, num_host_blocks=16)
    config = SchedulerConfig(
        max_batched_tokens=budget, max_running_seqs=max_running, chunked_prefill=chunked
    )
    sched = Scheduler(
        config,
        make_policy(policy, step_time=CostModel(), preemption_mode=mode, cfs_slice_steps=2),
        kv,
    )
    pending = sorted(
        (Request(f"r{i}", a, p, m, pr, slo) for i, (a, p, m, pr, slo) in enumerate(work)),
        key=lambda r: r.arrival_s,
    )
    executor = CostModelExecutor()
    now = 0.0
    for _ in range(5000):
        while pending and pending[0].arrival_s <= now:
            sched.add_request(pending.pop(0))
        if not pending and not sched.has_unfinished():
            break
        out = sched.schedule(now)
        kv.audit()
        assert sum(s.num_tokens for s in out.scheduled) <= budget
        assert len(sched.running) <= max_running
        assert out.kv == kv.usage()
        if not out.has_device_work:
            if not pending:
                assert not sched.has_unfinished(), "nothing schedulable while requests wait"
                break
            now = pending[0].arrival_s
            continue
        result = executor.execute(out)
        now += result.duration_s
        sched.update(out, result.sampled, now)
        kv.audit()
    else:
        raise AssertionError("the loop did not drain the workload")
    for seq in sched.sequences():
        assert seq.state in (SequenceState.FINISHED, SequenceState.REJECTED)
        if seq.state is SequenceState.FINISHED:
            assert seq.num_generated == seq.request.max_tokens
    usage = kv.usage()
    assert (usage.gpu_blocks_used, usage.host_blocks_used) == (0, 0)
