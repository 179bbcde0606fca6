"""The global scheduler's decisions, without processes: status in, operations out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.xsched.v1 import types_pb2 as pb
from xschedd.errors import InvalidArgument, NotFound
from xschedd.policy import Resume, Status, Suspend, XQueueStatus, make_policy
from xschedd.policy import hints as H
from xschedd.policy.gang import gang
from xschedd.scheduler import GlobalScheduler
from xschedd.state import StateStore


def _info(pid: int, n: int, ready: bool = True) -> pb.XQueueInfo:
    state = pb.XQUEUE_STATE_READY if ready else pb.XQUEUE_STATE_IDLE
    return pb.XQueueInfo(xqueue_id=pid << 32 | n, pid=pid, device="sim", state=state)


class Recorder:
    def __init__(self) -> None:
        self.ops: list[tuple[int, int, str]] = []

    def __call__(self, pid, changes) -> None:
        self.ops += [(pid, xq, "suspend" if suspend else "resume") for xq, suspend in changes]

    def last(self) -> dict[int, str]:
        return {xq: kind for _, xq, kind in self.ops}


def _sched(policy: str = "HPF", **kw) -> tuple[GlobalScheduler, Recorder]:
    rec = Recorder()
    s = GlobalScheduler(policy, dispatch=rec, call_later=lambda d, f: None, pid_alive=lambda p: True, **kw)
    return s, rec


def test_hpf_across_processes_suspends_the_lower_priority_one() -> None:
    s, rec = _sched()
    s.register(10, 0, "fg", 0, [_info(10, 1)], [H.PriorityHint(10 << 32 | 1, 5)])
    s.register(20, 0, "bg", 0, [_info(20, 1)], [])
    assert rec.last() == {10 << 32 | 1: "resume", 20 << 32 | 1: "suspend"}


def test_only_changes_are_dispatched() -> None:
    s, rec = _sched()
    s.register(10, 0, "a", 0, [_info(10, 1)], [])
    n = len(rec.ops)
    s.reschedule()
    s.reschedule()
    assert len(rec.ops) == n


def test_an_application_hint_does_not_override_an_operator_hint_on_reregistration() -> None:
    s, _ = _sched()
    xq = 10 << 32 | 1
    s.register(10, 0, "a", 0, [_info(10, 1)], [H.PriorityHint(xq, 1)])
    s.hint(H.PriorityHint(xq, 7))
    s.unregister(10)
    s.register(10, 0, "a", 0, [_info(10, 1)], [H.PriorityHint(xq, 1)])
    assert s.priority_of(xq) == 7


def test_a_held_queue_stays_suspended_whatever_the_policy() -> None:
    s, rec = _sched()
    xq = 10 << 32 | 1
    s.register(10, 0, "a", 0, [_info(10, 1)], [])
    s.hold(xq, True)
    assert rec.last()[xq] == "suspend"
    s.hold(xq, False)
    assert rec.last()[xq] == "resume"


def test_a_process_may_not_register_another_process_queues() -> None:
    s, _ = _sched()
    with pytest.raises(InvalidArgument, match="does not belong"):
        s.register(10, 0, "a", 0, [_info(11, 1)], [])
    with pytest.raises(NotFound):
        s.hint(H.PriorityHint(99 << 32 | 1, 1))


def test_gang_mode_runs_all_queues_of_a_process_or_none() -> None:
    status = Status(
        now=0.0,
        xqueues={
            1: XQueueStatus(1, pid=10, ready=True),
            2: XQueueStatus(2, pid=10, ready=False),
            3: XQueueStatus(3, pid=20, ready=True),
        },
    )
    ops = gang(status, [Resume(1), Suspend(2), Suspend(3)])
    assert ops == [Resume(1), Resume(2), Suspend(3)]


def test_hints_of_exited_processes_are_forgotten() -> None:
    rec = Recorder()
    alive = {10}
    s = GlobalScheduler("HPF", dispatch=rec, call_later=lambda d, f: None, pid_alive=lambda p: p in alive)
    s.register(10, 0, "a", 0, [_info(10, 1)], [H.PriorityHint(10 << 32 | 1, 3)])
    s.unregister(10)
    s.collect_hints()
    assert len(s.hints) == 1
    alive.clear()
    s.collect_hints()
    assert len(s.hints) == 0


def test_state_round_trips_and_survives_a_damaged_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "st")
    hints = [H.PriorityHint(5 << 32 | 1, -3), H.TimesliceHint(2000), H.WindowActiveHint(5, True)]
    store.save("CFS", True, hints)
    saved = store.load()
    assert (saved.policy, saved.gang, list(saved.hints)) == ("CFS", True, hints)
    store.path.write_text("{not json")
    assert store.load().policy is None


def test_events_in_a_batch_make_one_decision_on_the_latest_state() -> None:
    s, rec = _sched()
    fg, bg = 10 << 32 | 1, 20 << 32 | 1
    s.register(10, 0, "fg", 0, [_info(10, 1, ready=False)], [H.PriorityHint(fg, 5)])
    s.register(20, 0, "bg", 0, [_info(20, 1)], [])
    decisions, n = s.decisions, len(rec.ops)
    with s.batch():
        s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1))
        s.xqueue_event(10, pb.EVENT_KIND_IDLE, _info(10, 1, ready=False))
        s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1))
        assert s.decisions == decisions  # nothing decided inside the batch
    assert s.decisions == decisions + 1
    assert rec.ops[n:] == [(20, bg, "suspend")]  # one operation, not three


def test_a_batch_without_changes_decides_nothing_and_nested_batches_decide_once() -> None:
    s, _ = _sched()
    s.register(10, 0, "a", 0, [_info(10, 1)], [])
    decisions = s.decisions
    with s.batch():
        s.xqueue_event(10, pb.EVENT_KIND_SUSPENDED, _info(10, 1))  # not a reason to decide
    assert s.decisions == decisions
    with s.batch():
        with s.batch():
            s.xqueue_event(10, pb.EVENT_KIND_IDLE, _info(10, 1, ready=False))
        assert s.decisions == decisions
    assert s.decisions == decisions + 1


def test_a_failing_event_in_a_batch_still_decides_on_the_others() -> None:
    s, rec = _sched()
    fg, bg = 10 << 32 | 1, 20 << 32 | 1
    s.register(10, 0, "fg", 0, [_info(10, 1, ready=False)], [H.PriorityHint(fg, 5)])
    s.register(20, 0, "bg", 0, [_info(20, 1)], [])
    with pytest.raises(InvalidArgument), s.batch():
        s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1))
        s.xqueue_event(10, pb.EVENT_KIND_READY, _info(11, 1))  # not its queue
    assert rec.last()[bg] == "suspend"


def test_the_policy_sees_every_change_of_the_mirror() -> None:
    seen = []
    s, _ = _sched()
    real = s._policy.schedule
    s._policy.schedule = lambda status: seen.append(status) or real(status)  # type: ignore[method-assign]
    a, b = 10 << 32 | 1, 10 << 32 | 2
    s.register(10, 0, "p", 3, [_info(10, 1), _info(10, 2, ready=False)], [])
    assert {q: (st.ready, st.suspended) for q, st in seen[-1].xqueues.items()} == {a: (True, False), b: (False, False)}
    assert seen[-1].processes[10].nice == 3
    suspended = pb.XQueueInfo(xqueue_id=a, pid=10, device="sim", state=pb.XQUEUE_STATE_READY, suspended=True)
    s.xqueue_event(10, pb.EVENT_KIND_SUSPENDED, suspended)
    s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 2))
    st = seen[-1].xqueues
    assert (st[a].suspended, st[b].ready, st[b].ready_since is not None) == (True, True, True)
    s.report(10, [], {}, nice=7)
    assert seen[-1].processes[10].nice == 7
    s.xqueue_event(10, pb.EVENT_KIND_CLOSED, _info(10, 2))
    assert set(seen[-1].xqueues) == {a}
    s.unregister(10)
    assert not seen[-1].xqueues and not seen[-1].processes


def test_operation_metrics_count_every_operation_sent() -> None:
    from xschedd.metrics import Metrics

    metrics = Metrics(None)
    s, rec = _sched(metrics=metrics)
    s.register(10, 0, "fg", 0, [_info(10, n) for n in (1, 2, 3)], [H.PriorityHint(10 << 32 | n, 5) for n in (1, 2, 3)])
    s.register(20, 0, "bg", 0, [_info(20, n) for n in (1, 2)], [])
    count = lambda kind: metrics.registry.get_sample_value("xsched_operations_total", {"kind": kind})
    kinds = [k for _, _, k in rec.ops]
    assert (count("suspend"), count("resume")) == (kinds.count("suspend"), kinds.count("resume")) == (2, 3)


def test_a_decision_sends_one_dispatch_per_process_in_xqueue_order() -> None:
    calls = []
    s = GlobalScheduler("HPF", dispatch=lambda pid, ch: calls.append((pid, ch)), call_later=lambda d, f: None)
    s.register(20, 0, "bg", 0, [_info(20, n) for n in (1, 2, 3)], [])
    s.register(30, 0, "bg2", 0, [_info(30, 1)], [])
    calls.clear()
    fg = 10 << 32 | 1
    s.register(10, 0, "fg", 0, [_info(10, 1)], [H.PriorityHint(fg, 5)])
    assert calls == [
        (10, [(fg, False)]),
        (20, [(20 << 32 | 1, True), (20 << 32 | 2, True), (20 << 32 | 3, True)]),
        (30, [(30 << 32 | 1, True)]),
    ]


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from(["HPF", "HHPF", "LAX", "KEDF", "MLFQ"]),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["ready", "idle", "prio", "hold", "release", "close", "gang"]),
            st.integers(0, 2), st.integers(1, 3), st.integers(-3, 3),
        ),
        max_size=30,
    ),
)
def test_the_set_fast_path_sends_what_the_list_of_operations_says(policy, steps) -> None:
    """Policies answering with run_only are diffed as sets; the same operations handed over
    as a plain list take the general path. Both must send the same, in the same order."""
    def as_list(name: str):
        inner = make_policy(name)

        class Listed(type(inner)):  # the same policy, answering with a plain list
            def schedule(self, status):
                return list(super().schedule(status))

        return Listed()

    now = [0.0]  # one fake clock, advanced per step: MLFQ, LAX and KEDF read the time
    fast, fast_rec = _sched(policy, clock=lambda: now[0])
    slow, slow_rec = _sched(policy, clock=lambda: now[0])
    slow._policy = as_list(policy)
    for s in (fast, slow):
        for pid in (10, 20, 30):
            s.register(pid, 0, f"p{pid}", 0, [_info(pid, n, ready=n == 1) for n in (1, 2, 3)], [])
    for action, p, n, value in steps:
        now[0] += 0.004
        pid, xq = (10, 20, 30)[p], (10, 20, 30)[p] << 32 | n
        for s in (fast, slow):
            if xq not in s.xqueues and action != "gang":
                continue
            if action in ("ready", "idle"):
                kind = pb.EVENT_KIND_READY if action == "ready" else pb.EVENT_KIND_IDLE
                s.xqueue_event(pid, kind, _info(pid, n, ready=action == "ready"))
            elif action == "prio":
                s.hint(H.PriorityHint(xq, value))
            elif action in ("hold", "release"):
                s.hold(xq, action == "hold")
            elif action == "close":
                s.xqueue_event(pid, pb.EVENT_KIND_CLOSED, _info(pid, n))
            else:
                s.set_policy(None, gang=not s.gang)
        assert fast_rec.ops == slow_rec.ops
    assert fast_rec.ops == slow_rec.ops


# -- hardware priorities: the daemon's priority hints reach the XQueue's hardware queue --


def _prio_sched(**kw) -> tuple[GlobalScheduler, list[tuple[int, int, int]]]:
    pushed: list[tuple[int, int, int]] = []
    s = GlobalScheduler(
        "HPF", dispatch=Recorder(), call_later=lambda d, f: None, pid_alive=lambda p: True,
        set_priority=lambda pid, xq, prio: pushed.append((pid, xq, prio)), **kw,
    )  # fmt: skip
    return s, pushed


def test_an_operator_priority_hint_is_pushed_to_the_hardware_queue_once() -> None:
    s, pushed = _prio_sched()
    xq = 10 << 32 | 1
    s.register(10, 0, "a", 0, [_info(10, 1)], [H.PriorityHint(xq, 1)])
    assert pushed == []  # the application set its own creation priority itself
    s.hint(H.PriorityHint(xq, 7))
    assert pushed == [(10, xq, 7)]
    s.hint(H.PriorityHint(xq, 7))  # no change, nothing sent
    s.hint(H.UtilizationHint(xq, 50))  # not a priority
    assert pushed == [(10, xq, 7)]
    s.hint(H.PriorityHint(xq, 1))
    assert pushed == [(10, xq, 7), (10, xq, 1)]


def test_a_queue_without_a_priority_of_its_own_gets_the_operators() -> None:
    s, pushed = _prio_sched()
    xq = 20 << 32 | 1
    s.register(20, 0, "b", 0, [_info(20, 1)], [])
    s.hint(H.PriorityHint(xq, H.PRIORITY_DEFAULT))  # what it has already
    assert pushed == []
    s.hint(H.PriorityHint(xq, -3))
    assert pushed == [(20, xq, -3)]


def test_a_kept_hint_is_pushed_when_the_process_registers_again() -> None:
    """After a daemon restart (or a reconnect) the application creates its queue with its
    own priority; the operator's hint the daemon kept wins and reaches the hardware."""
    xq = 10 << 32 | 1
    s, pushed = _prio_sched(hints=[H.PriorityHint(xq, 9)])
    s.register(10, 0, "a", 0, [_info(10, 1)], [H.PriorityHint(xq, 1)])
    assert pushed == [(10, xq, 9)]
    s.unregister(10)
    s.register(10, 0, "a", 0, [_info(10, 1)], [H.PriorityHint(xq, 9)])
    assert pushed == [(10, xq, 9)]  # this time its own priority already matches


def test_a_queue_added_later_and_an_application_hint_at_run_time_are_pushed_too() -> None:
    xq2 = 10 << 32 | 2
    s, pushed = _prio_sched(hints=[H.PriorityHint(xq2, 4)])
    s.register(10, 0, "a", 0, [_info(10, 1)], [])
    s.xqueue_event(10, pb.EVENT_KIND_CONFIGURED, _info(10, 2), hints=[H.PriorityHint(xq2, 2)])
    assert pushed == [(10, xq2, 4)]  # the kept hint, over the new queue's own
    s.xqueue_event(10, pb.EVENT_KIND_CONFIGURED, _info(10, 2), hints=[H.PriorityHint(xq2, 6)])
    assert pushed == [(10, xq2, 4), (10, xq2, 6)]  # Agent.hint does not touch the hardware itself


def test_a_queue_added_later_brings_its_global_hints_as_a_registration_does() -> None:
    """An XQueue created after its process registered (XSCHED_AUTO_XQUEUE_TIMESLICE, or
    `timeslice=` in xsched-workload) brings a global hint: adopted unless the daemon
    holds one of that kind (an operator's wins), as at registration."""
    s, _ = _sched("UP")
    s.register(10, 0, "a", 0, [], [])
    s.xqueue_event(10, pb.EVENT_KIND_CONFIGURED, _info(10, 1), hints=[H.TimesliceHint(20_000)])
    assert s._policy._timeslice_s == 0.02
    s.hint(H.TimesliceHint(8_000))
    s.xqueue_event(10, pb.EVENT_KIND_CONFIGURED, _info(10, 2), hints=[H.TimesliceHint(30_000)])
    assert s._policy._timeslice_s == 0.008


def test_a_ready_event_starts_a_new_ready_span_without_an_idle_between() -> None:
    """Back-to-back tasks: the agent may leave out the IDLE between two (it would say
    READY by the time it is sent); the next READY still restarts the span, which
    deadline policies count from."""
    now = [1.0]
    seen = []
    s, _ = _sched(clock=lambda: now[0])
    real = s._policy.schedule
    s._policy.schedule = lambda status: seen.append(status) or real(status)  # type: ignore[method-assign]
    xq = 10 << 32 | 1
    s.register(10, 0, "p", 0, [_info(10, 1, ready=False)], [])
    s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1))
    assert seen[-1].xqueues[xq].ready_since == 1.0
    now[0] = 5.0
    s.xqueue_event(10, pb.EVENT_KIND_IDLE, _info(10, 1))  # an IDLE whose fresh status is READY
    assert seen[-1].xqueues[xq].ready_since == 1.0
    now[0] = 6.0
    s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1))
    assert seen[-1].xqueues[xq].ready_since == 6.0


def test_a_ready_that_left_late_dates_its_span_back_but_not_before_the_last_news() -> None:
    """A READY may leave while its task runs (the XQueue holds it with the IDLE before
    it): `ready_for_s` dates the span back to the task's start, though never before the
    daemon's last news of the queue (an agent cannot claim a span it was not in)."""
    now = [10.0]
    s, _ = _sched(clock=lambda: now[0])
    xq = 10 << 32 | 1
    s.register(10, 0, "p", 0, [_info(10, 1, ready=False)], [])
    now[0] = 12.0
    s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1), ready_for_s=0.5)
    assert s.xqueues[xq].ready_since == 11.5
    now[0] = 15.0
    s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1), ready_for_s=0.001)  # a span restart
    assert s.xqueues[xq].ready_since == pytest.approx(14.999)
    now[0] = 16.0
    s.xqueue_event(10, pb.EVENT_KIND_READY, _info(10, 1), ready_for_s=3600.0)
    assert s.xqueues[xq].ready_since == 15.0  # the last news came at 15
