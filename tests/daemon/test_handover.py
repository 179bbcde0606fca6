"""Make before break (xschedd.handover): in a hand-over the resumes go first and the
level-2/3 suspends a little later, and no operation is lost, reordered or doubled."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protos.xsched.v1 import types_pb2 as pb
from xschedd.handover import HANDOVER_S, Handover
from xschedd.policy import hints as H
from xschedd.scheduler import GlobalScheduler


class Timers:
    """call_later by hand: `fire()` runs what is due, in order."""

    def __init__(self) -> None:
        self.pending: list[list] = []  # [delay, fn, cancelled]

    def __call__(self, delay, fn):
        entry = [delay, fn, False]
        self.pending.append(entry)

        class Handle:
            def cancel(self) -> None:
                entry[2] = True

        return Handle()

    def fire(self) -> None:
        due, self.pending = self.pending, []
        for _, fn, cancelled in due:
            if not cancelled:
                fn()


class Sent:
    def __init__(self) -> None:
        self.calls: list[tuple[int, list[tuple[int, bool]]]] = []

    def __call__(self, pid, changes) -> None:
        self.calls.append((pid, list(changes)))

    def ops(self) -> list[tuple[int, bool]]:
        return [change for _, changes in self.calls for change in changes]


A, B, C = 1 << 32 | 1, 2 << 32 | 1, 2 << 32 | 2  # A in process 1; B and C in process 2


def _handover():
    sent, timers = Sent(), Timers()
    return Handover(sent, timers), sent, timers


def test_the_resume_goes_first_and_the_suspend_after_the_delay():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], deferrable=lambda x: True)
    assert sent.calls == [(2, [(B, False)])]
    assert h.deferred == {1: [(A, True)]}
    assert [delay for delay, _, _ in timers.pending] == [HANDOVER_S]
    timers.fire()
    assert sent.calls == [(2, [(B, False)]), (1, [(A, True)])]
    assert h.deferred == {}


def test_suspends_that_are_not_deferrable_or_not_in_a_hand_over_go_at_once():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], deferrable=lambda x: False)  # e.g. level 1
    assert sent.ops() == [(A, True), (B, False)] and not timers.pending
    h.send([(2, [(B, True)])], deferrable=lambda x: True)  # suspends only: nothing to hand over to
    assert sent.ops()[-1] == (B, True) and not timers.pending


def test_a_resume_before_the_delay_cancels_the_deferred_suspend():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], deferrable=lambda x: True)
    h.send([(1, [(A, False)]), (2, [(B, True)])], deferrable=lambda x: True)  # the turn comes back
    assert (A, True) not in sent.ops()  # never sent: it was undone before it went out
    assert sent.ops() == [(B, False), (A, False)]
    timers.fire()
    assert sent.ops() == [(B, False), (A, False), (B, True)]


def test_a_later_decision_for_the_process_sends_what_was_deferred_first():
    h, sent, timers = _handover()
    h.send([(2, [(B, True)]), (1, [(A, False)])], deferrable=lambda x: True)
    h.send([(2, [(C, True)])], deferrable=lambda x: True)  # no hand-over: C goes now, after B
    assert sent.calls == [(1, [(A, False)]), (2, [(B, True), (C, True)])]
    timers.fire()  # the timer finds nothing left
    assert len(sent.calls) == 2


def test_a_process_that_left_takes_its_deferred_suspends_along():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], deferrable=lambda x: True)
    h.forget(1)
    timers.fire()
    assert sent.ops() == [(B, False)]


def test_cancel_drops_what_was_deferred_and_its_timer():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], deferrable=lambda x: True)
    h.cancel()
    timers.fire()
    assert sent.ops() == [(B, False)] and h.deferred == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.sampled_from([A, B, C]), st.booleans()), max_size=3),
                          st.booleans()), max_size=12))  # fmt: skip
def test_every_xqueue_ends_as_last_decided(decisions):
    """Whatever the decisions and whenever the timer fires, once it has, each XQueue's
    last operation sent is the last one decided for it."""
    h, sent, timers = _handover()
    decided: dict[int, bool] = {}
    for changes, fire in decisions:
        last = {}
        for xqueue_id, suspend in changes:
            last[xqueue_id] = suspend
        by_pid: dict[int, list] = {}
        for xqueue_id in sorted(last):
            by_pid.setdefault(xqueue_id >> 32, []).append((xqueue_id, last[xqueue_id]))
        h.send(sorted(by_pid.items()), deferrable=lambda x: x != C)
        decided.update(last)
        if fire:
            timers.fire()
    h.flush()
    final = {}
    for xqueue_id, suspend in sent.ops():
        final[xqueue_id] = suspend
    assert {x: s for x, s in final.items() if x in decided} == decided
    assert set(final) <= set(decided)


def _info(pid: int, level: int) -> pb.XQueueInfo:
    return pb.XQueueInfo(xqueue_id=pid << 32 | 1, pid=pid, device="cuda:0", state=pb.XQUEUE_STATE_READY, level=level)


def _scheduler(policy: str, clock=None):
    sent, timers = Sent(), Timers()
    s = GlobalScheduler(policy, dispatch=sent, call_later=timers, pid_alive=lambda p: True,
                        **({"clock": clock} if clock else {}))  # fmt: skip
    return s, sent, timers


def test_up_hands_a_level_2_turn_over_resume_first():
    now = [100.0]
    s, sent, timers = _scheduler("UP", clock=lambda: now[0])
    a, b = 10 << 32 | 1, 20 << 32 | 1
    s.register(10, 0, "a", 0, [_info(10, 2)], [H.UtilizationHint(a, 75)])
    s.register(20, 0, "b", 0, [_info(20, 2)], [H.UtilizationHint(b, 25)])
    running = {x for x, suspend in sent.ops() if not suspend} - {x for x, suspend in sent.ops() if suspend}
    assert len(running) == 1  # b joined later and never ran: its suspend was no hand-over
    (holder,) = running
    other = ({a, b} - running).pop()
    for _ in range(20):  # slices go by until the turn passes
        now[0] += 0.006
        s.reschedule()
        if (other, False) in sent.ops():
            break
    assert sent.ops()[-1] == (other, False)  # the resume went out alone
    assert s._handover.deferred == {holder >> 32: [(holder, True)]}
    timers.fire()  # the hand-over's delay passes
    assert sent.ops()[-1] == (holder, True) and s._handover.deferred == {}


def test_hpf_preempts_a_level_2_queue_at_once():
    s, sent, timers = _scheduler("HPF")
    fg, bg = 10 << 32 | 1, 20 << 32 | 1
    s.register(20, 0, "bg", 0, [_info(20, 2)], [])
    s.register(10, 0, "fg", 0, [_info(10, 2)], [H.PriorityHint(fg, 5)])
    assert (bg, True) in sent.ops() and s._handover.deferred == {}
