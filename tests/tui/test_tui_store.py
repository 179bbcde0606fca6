"""The data layer: recorded WatchStatus messages become the records the console renders."""

from __future__ import annotations

from tui_fakes import BATCH_PID, LLM_PID, SERVICE_PID, recorded_snapshot, xq

from protos.xsched.v1 import control_pb2 as cpb
from xsched_tui.records import QueueState, StatusChange
from xsched_tui.store import StatusStore

SERVICE_Q = (SERVICE_PID << 32) | 1
BATCH_Q = (BATCH_PID << 32) | 1
IO_Q = (BATCH_PID << 32) | 2
LLM_Q = (LLM_PID << 32) | 1


def fed() -> StatusStore:
    store = StatusStore()
    change = store.apply(cpb.StatusUpdate(snapshot=recorded_snapshot()))
    assert change.reset and change.policy
    return store


def delta(**kw) -> cpb.StatusUpdate:
    return cpb.StatusUpdate(delta=cpb.Delta(**kw))


def test_snapshot_becomes_rows_with_states_process_names_and_hints():
    store = fed()
    assert store.policy.name == "HPF" and len(store.policy.available) == 12
    assert store.policy.global_hints == ("timeslice=5000us",)
    rows = store.xqueues
    assert rows[SERVICE_Q].state is QueueState.READY and rows[SERVICE_Q].priority == 10
    assert rows[SERVICE_Q].process == "service"
    assert rows[BATCH_Q].state is QueueState.SUSPENDED
    assert rows[BATCH_Q].hints == ("util=40%",)
    assert rows[IO_Q].state is QueueState.HELD
    assert rows[LLM_Q].state is QueueState.IDLE
    assert rows[SERVICE_Q].latency.p99_ms == 6.3 and rows[SERVICE_Q].latency.kind == "busy"


def test_kv_gauges_are_found_only_where_both_are_reported():
    store = fed()
    kv = store.kv_processes()
    assert [p.pid for p in kv] == [LLM_PID]
    assert kv[0].kv_blocks == (300.0, 1024.0)


def test_delta_changes_only_the_named_xqueues_and_removal_forgets_them():
    store = fed()
    change = store.apply(delta(changed_xqueues=[xq(SERVICE_PID, 1, "interactive", done=4100, priority=10)]))
    assert change.xqueues == {SERVICE_Q} and not change.reset
    assert store.xqueues[SERVICE_Q].completed == 4100
    change = store.apply(delta(removed_xqueues=[IO_Q], removed_pids=[LLM_PID]))
    assert change.removed_xqueues == {IO_Q} and change.removed_pids == {LLM_PID}
    assert IO_Q not in store.xqueues and LLM_PID not in store.processes
    assert store.devices() == {"sim": 3}


def test_share_is_the_daemons_measure_as_sent_in_the_view():
    store = fed()
    assert store.share_window_s == 5.0
    assert store.xqueues[SERVICE_Q].share == 0.75
    store.apply(delta(changed_xqueues=[xq(SERVICE_PID, 1, "interactive", share=0.25)]))
    assert store.xqueues[SERVICE_Q].share == 0.25


def test_rows_are_built_when_read_and_kept_until_their_view_changes():
    store = fed()
    first = store.xqueues[SERVICE_Q]
    assert store.xqueues[SERVICE_Q] is first
    store.apply(delta(changed_xqueues=[xq(BATCH_PID, 1, "batch", done=9100)]))
    assert store.xqueues[SERVICE_Q] is first, "an unrelated change must not rebuild a row"
    store.apply(delta(changed_xqueues=[xq(SERVICE_PID, 1, "interactive", done=4100)]))
    assert store.xqueues[SERVICE_Q] is not first and store.xqueues[SERVICE_Q].completed == 4100


def test_a_renamed_process_renames_its_xqueues_rows():
    store = fed()
    assert store.xqueues[SERVICE_Q].process == "service"
    change = store.apply(delta(changed_processes=[
        cpb.ProcessView(pid=SERVICE_PID, name="frontend --port 8080", xqueue_ids=[SERVICE_Q])]))
    assert SERVICE_Q in change.xqueues and store.xqueues[SERVICE_Q].process == "frontend"


def test_a_heartbeat_changes_nothing():
    store = fed()
    assert not store.apply(cpb.StatusUpdate(heartbeat=cpb.Heartbeat()))


def test_latency_history_grows_when_new_samples_arrive():
    store = fed()
    for p99 in (7.0, 8.0, 9.0):
        store.apply(delta(changed_xqueues=[xq(SERVICE_PID, 1, "interactive", done=4000 + int(p99) * 10, p99=p99)]))
    assert store.history(SERVICE_Q).p99_ms == (6.3, 7.0, 8.0, 9.0)


def test_policy_delta_reindexes_hints_for_every_xqueue():
    store = fed()
    policy = recorded_snapshot().policy
    del policy.hints[:]
    policy.name = "UP"
    change = store.apply(delta(policy=policy))
    assert change.policy and store.policy.name == "UP"
    assert store.xqueues[BATCH_Q].hints == () and BATCH_Q in change.xqueues


def test_clear_reports_everything_removed():
    store = fed()
    change = store.clear()
    assert change.removed_xqueues == {SERVICE_Q, BATCH_Q, IO_Q, LLM_Q}
    assert not store.xqueues and store.policy.name == "-"


def test_changes_merge_so_the_ui_can_coalesce_bursts():
    a = StatusChange(xqueues=frozenset({1, 2}))
    b = StatusChange(removed_xqueues=frozenset({2}), policy=True)
    merged = a.merge(b)
    assert merged.xqueues == {1} and merged.removed_xqueues == {2} and merged.policy
    assert StatusChange(reset=True).merge(a).reset
