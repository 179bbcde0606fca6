"""The global scheduler's decision memo: a readiness-only policy's decision for a state seen
before goes into the suspend gates first, and the policy's own decision always wins."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.xsched.v1 import types_pb2 as pb
from xschedd.policy import hints as H
from xschedd.scheduler import GlobalScheduler

FG = 10 << 32 | 1
BG = [20 << 32 | n for n in (1, 2, 3)]


def _info(xqueue_id: int, ready: bool) -> pb.XQueueInfo:
    state = pb.XQUEUE_STATE_READY if ready else pb.XQUEUE_STATE_IDLE
    return pb.XQueueInfo(xqueue_id=xqueue_id, pid=xqueue_id >> 32, device="sim", state=state)


class Log:
    """Gate writes (their latest value per XQueue), dispatched operations, and the order
    of gate writes and policy runs."""

    def __init__(self) -> None:
        self.gates: dict[int, bool] = {}
        self.ops: list[tuple[int, bool]] = []
        self.order: list[str] = []

    def gate(self, pid: int, changes: list[tuple[int, bool]]) -> None:
        self.gates.update(changes)
        self.order.append("gate")

    def dispatch(self, pid: int, changes: list[tuple[int, bool]]) -> None:
        self.ops += changes


def _sched(memo: bool = True) -> tuple[GlobalScheduler, Log]:
    log = Log()
    s = GlobalScheduler("HPF", dispatch=log.dispatch, gate=log.gate, call_later=lambda d, f: None,
                        pid_alive=lambda p: True)  # fmt: skip
    if not memo:
        s._policy.readiness_only = False  # the same policy, always decided from scratch
    schedule = s._policy.schedule

    def spied(status):
        log.order.append("policy")
        return schedule(status)

    s._policy.schedule = spied
    s.register(10, 0, "fg", 0, [_info(FG, False)], [H.PriorityHint(FG, 5)])
    s.register(20, 0, "bg", 0, [_info(x, True) for x in BG], [])
    return s, log


def _gated(s: GlobalScheduler) -> dict[int, bool]:
    """What the gates must hold after a decision: suspended as last sent."""
    return {x: x in s._sent_suspend for x in s.xqueues}


def test_a_state_seen_before_is_gated_before_the_policy_runs_and_sends_the_same() -> None:
    s, log = _sched()
    ref, ref_log = _sched(memo=False)
    for ready in (True, False, True, False, True):
        for sched in (s, ref):
            sched.xqueue_event(10, pb.EVENT_KIND_READY if ready else pb.EVENT_KIND_IDLE, _info(FG, ready))
    assert s.memo_hits == 4  # all but the first ready: the idle state was decided at registration
    assert ref.memo_hits == 0
    assert log.ops == ref_log.ops  # the same operations, in the same order
    assert [kind for kind in log.order[-2:]] == ["gate", "policy"]  # a hit: gates first
    assert ref_log.order[-2:] == ["policy", "gate"]
    assert log.gates == ref_log.gates == _gated(s)
    assert all(log.gates[x] for x in BG) and not log.gates.get(FG, False)


def test_a_wrong_memo_is_put_right_before_any_operation_leaves() -> None:
    s, log = _sched()
    for ready in (True, False):
        s.xqueue_event(10, pb.EVENT_KIND_READY if ready else pb.EVENT_KIND_IDLE, _info(FG, ready))
    # A change the generation does not see (a policy changed behind the scheduler's back):
    # the memo says suspend the background, the policy now says the opposite.
    s._policy._priorities[FG] = -5
    n_ops, hits = len(log.ops), s.memo_hits
    s.xqueue_event(10, pb.EVENT_KIND_READY, _info(FG, True))
    assert s.memo_hits == hits + 1
    assert log.gates == _gated(s)
    assert log.gates[FG] and not any(log.gates[x] for x in BG)
    assert log.ops[n_ops:] == [(FG, True)]  # only what the policy decided was sent


def test_a_policy_that_fails_after_a_memo_hit_leaves_the_gates_as_sent() -> None:
    s, log = _sched()
    for ready in (True, False):
        s.xqueue_event(10, pb.EVENT_KIND_READY if ready else pb.EVENT_KIND_IDLE, _info(FG, ready))
    hits = s.memo_hits

    def broken(status):
        raise RuntimeError("a policy bug")

    s._policy.schedule = broken
    with pytest.raises(RuntimeError, match="a policy bug"):
        s.xqueue_event(10, pb.EVENT_KIND_READY, _info(FG, True))
    assert s.memo_hits == hits + 1  # the memo gated the background first...
    assert log.gates == _gated(s)  # ...and the gates went back to what was sent
    assert not any(log.gates[x] for x in BG)


_ACTION = st.one_of(
    st.tuples(st.just("ready"), st.sampled_from([FG, *BG]), st.booleans()),
    st.tuples(st.just("hint"), st.sampled_from([FG, *BG]), st.integers(-2, 6)),
    st.tuples(st.just("hold"), st.sampled_from([FG, *BG]), st.booleans()),
    st.tuples(st.just("policy"), st.sampled_from(["HPF", "HHPF", "UP"]), st.booleans()),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ACTION, max_size=40))
def test_with_or_without_the_memo_the_same_operations_leave_and_the_gates_agree(actions) -> None:
    s, log = _sched()
    ref, ref_log = _sched(memo=False)
    for action in actions:
        for sched in (s, ref):
            kind, a, b = action
            if kind == "ready":
                sched.xqueue_event(a >> 32, pb.EVENT_KIND_READY if b else pb.EVENT_KIND_IDLE, _info(a, b))
            elif kind == "hint":
                sched.hint(H.PriorityHint(a, b))
            elif kind == "hold":
                sched.hold(a, b)
            else:
                sched.set_policy(a, gang=b)
                if sched is ref:
                    sched._policy.readiness_only = False
        assert log.ops == ref_log.ops
        assert log.gates == _gated(s) == {x: ref_log.gates.get(x, False) for x in s.xqueues}
