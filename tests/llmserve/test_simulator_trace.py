"""The simulator's trace is consistent for every policy: each request ends exactly once,
times never go back, and finished requests got exactly max_tokens tokens."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from llmserve.sched import SchedulerConfig
from llmserve.sim.simulator import SimConfig, simulate
from llmserve.sim.trace import ListTrace, TraceEvent
from llmserve.sim.workload import gen_burst

EVENTS = {e.value for e in TraceEvent}


@pytest.fixture(scope="module")
def burst():
    # 30 requests with a tight TTFT target so that slo rejects some; 2x the cache's KV.
    return gen_burst(30, seed=3, interval_s=0.02, ttft_slo_ms=800)


@pytest.mark.parametrize("policy", ["fcfs", "priority", "cfs", "slo"])
def test_trace_is_consistent(policy: str, burst) -> None:
    trace = ListTrace(policy)
    config = SimConfig(kv_blocks=300, block_size=16, cfs_slice_steps=16)
    result = simulate(burst, policy, config, trace=trace)
    events = trace.events
    assert events, "no events"

    times = [e["t"] for e in events]
    assert times == sorted(times), "trace times go back"
    for e in events:
        assert {"t", "event", "id", "kv_used", "kv_total", "kv_swapped"} <= set(e)
        assert e["event"] in EVENTS
        assert 0 <= e["kv_used"] <= e["kv_total"] == 300

    by_id: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        by_id[e["id"]].append(e)
    assert set(by_id) == {r.id for r in burst}
    for req in burst:
        evs = by_id[req.id]
        kinds = [e["event"] for e in evs]
        ends = Counter(k for k in kinds if k in ("finish", "reject"))
        assert sum(ends.values()) == 1, f"{req.id} ended {dict(ends)}"
        assert kinds[0] == "arrive" and evs[0]["t"] == pytest.approx(req.arrival_s)
        assert kinds[-1] in ("finish", "reject"), f"{req.id} has events after its end"
        if kinds[-1] == "reject":
            assert kinds == ["arrive", "reject"]
            assert evs[-1]["reason"] and evs[-1]["detail"]
            continue
        assert kinds[1] == "admit"
        tokens = [e["n"] for e in evs if e["event"] == "token"]
        assert tokens == list(range(1, req.max_tokens + 1))
        swaps_out = kinds.count("swap_out")
        assert kinds.count("swap_in") == swaps_out
        assert kinds.count("preempt") >= swaps_out

    records = {r.request.id: r for r in result.records}
    assert [r.index for r in result.records] == list(range(len(burst)))
    for rec in records.values():
        assert rec.finished != (rec.rejected is not None)
        if rec.finished:
            assert rec.tokens == rec.request.max_tokens
            assert rec.ttft_s is not None and rec.ttft_s > 0
            assert rec.finish_s >= rec.first_token_s
    # Every simulation drains: nothing on the GPU or the host at the end.
    assert result.kv_timeline[0].gpu_used >= 0
    last = events[-1]
    assert last["kv_used"] == 0 and last["kv_swapped"] == 0


def test_slo_rejects_on_this_burst_and_cfs_swaps(burst) -> None:
    config = SimConfig(kv_blocks=300, block_size=16, cfs_slice_steps=16)
    slo = simulate(burst, "slo", config)
    assert any(r.rejected for r in slo.records)
    assert all(r.rejected.startswith("ttft_slo:") for r in slo.records if r.rejected)
    cfs = simulate(burst, "cfs", config)
    assert cfs.swap_out_blocks > 0 and cfs.swap_out_blocks == cfs.swap_in_blocks


def test_simulation_is_deterministic_in_virtual_time(burst) -> None:
    config = SimConfig(kv_blocks=300, scheduler=SchedulerConfig(max_batched_tokens=1024))
    a = simulate(burst, "cfs", config)
    b = simulate(burst, "cfs", config)
    assert a.records == b.records and a.kv_timeline == b.kv_timeline
