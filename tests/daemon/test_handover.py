"""Make before break (xschedd.handover): in a hand-over the resumes go first and the
level-2/3 suspends a little later, and no operation is lost, reordered or doubled."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.xsched.v1 import types_pb2 as pb
from xschedd.handover import HANDOVER_S, UNGATED_HANDOVER_S, Handover
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

    def fire(self, up_to: float = float("inf")) -> None:
        """Run the pending calls of at most `up_to` seconds' delay, in order."""
        due = [entry for entry in self.pending if entry[0] <= up_to]
        self.pending = [entry for entry in self.pending if entry[0] > up_to]
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


def _gated(xqueue_id: int) -> float:
    return HANDOVER_S


def _handover():
    sent, timers = Sent(), Timers()
    return Handover(sent, timers), sent, timers


def test_the_resume_goes_first_and_the_suspend_after_the_delay():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], delay_of=_gated)
    assert sent.calls == [(2, [(B, False)])]
    assert h.deferred == {1: [(A, True)]}
    assert [delay for delay, _, _ in timers.pending] == [HANDOVER_S]
    timers.fire()
    assert sent.calls == [(2, [(B, False)]), (1, [(A, True)])]
    assert h.deferred == {}


def test_suspends_that_are_not_deferrable_or_not_in_a_hand_over_go_at_once():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], delay_of=lambda x: None)  # e.g. level 1
    assert sent.ops() == [(A, True), (B, False)] and not timers.pending
    h.send([(2, [(B, True)])], delay_of=_gated)  # suspends only: nothing to hand over to
    assert sent.ops()[-1] == (B, True) and not timers.pending


def test_a_resume_before_the_delay_cancels_the_deferred_suspend():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], delay_of=_gated)
    h.send([(1, [(A, False)]), (2, [(B, True)])], delay_of=_gated)  # the turn comes back
    assert (A, True) not in sent.ops()  # never sent: it was undone before it went out
    assert sent.ops() == [(B, False), (A, False)]
    timers.fire()
    assert sent.ops() == [(B, False), (A, False), (B, True)]


def test_a_later_decision_for_the_process_sends_what_was_deferred_first():
    h, sent, timers = _handover()
    h.send([(2, [(B, True)]), (1, [(A, False)])], delay_of=_gated)
    h.send([(2, [(C, True)])], delay_of=_gated)  # no hand-over: C goes now, after B
    assert sent.calls == [(1, [(A, False)]), (2, [(B, True), (C, True)])]
    timers.fire()  # the timer finds nothing left
    assert len(sent.calls) == 2


def test_a_process_that_left_takes_its_deferred_suspends_along():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], delay_of=_gated)
    h.forget(1)
    timers.fire()
    assert sent.ops() == [(B, False)]


def test_an_xqueue_without_a_gate_waits_the_shorter_delay():
    """A gated XQueue stopped launching when the daemon wrote its gate, so its flush may
    wait for its work in flight to drain; one without a gate launches until its suspend
    arrives, which goes after the make before break alone."""
    h, sent, timers = _handover()
    delay_by = {A: HANDOVER_S, C: UNGATED_HANDOVER_S}
    h.send([(1, [(A, True)]), (2, [(B, False), (C, True)])], delay_of=delay_by.get)
    assert sent.ops() == [(B, False)]
    assert sorted(delay for delay, _, _ in timers.pending) == [UNGATED_HANDOVER_S, HANDOVER_S]
    assert UNGATED_HANDOVER_S < HANDOVER_S
    timers.fire(up_to=UNGATED_HANDOVER_S)
    assert sent.ops() == [(B, False), (C, True)] and h.deferred == {1: [(A, True)]}
    timers.fire()
    assert sent.ops() == [(B, False), (C, True), (A, True)] and h.deferred == {}


def test_flush_sends_every_delay_and_cancels_the_timers():
    h, sent, timers = _handover()
    delay_by = {A: HANDOVER_S, C: UNGATED_HANDOVER_S}
    h.send([(1, [(A, True)]), (2, [(B, False), (C, True)])], delay_of=delay_by.get)
    h.flush()
    assert sent.ops() == [(B, False), (C, True), (A, True)] and h.deferred == {}
    assert all(cancelled for _, _, cancelled in timers.pending)


def test_cancel_drops_what_was_deferred_and_its_timer():
    h, sent, timers = _handover()
    h.send([(1, [(A, True)]), (2, [(B, False)])], delay_of=_gated)
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
    delay_by = {A: HANDOVER_S, B: UNGATED_HANDOVER_S}  # A gated, B not, C level 1
    decided: dict[int, bool] = {}
    for changes, fire in decisions:
        last = {}
        for xqueue_id, suspend in changes:
            last[xqueue_id] = suspend
        by_pid: dict[int, list] = {}
        for xqueue_id in sorted(last):
            by_pid.setdefault(xqueue_id >> 32, []).append((xqueue_id, last[xqueue_id]))
        h.send(sorted(by_pid.items()), delay_of=lambda x: None if x == C else delay_by[x])
        decided.update(last)
        if fire:
            timers.fire(up_to=UNGATED_HANDOVER_S if len(changes) % 2 else float("inf"))
    h.flush()
    final = {}
    for xqueue_id, suspend in sent.ops():
        final[xqueue_id] = suspend
    assert {x: s for x, s in final.items() if x in decided} == decided
    assert set(final) <= set(decided)


def _info(pid: int, level: int) -> pb.XQueueInfo:
    return pb.XQueueInfo(xqueue_id=pid << 32 | 1, pid=pid, device="cuda:0", state=pb.XQUEUE_STATE_READY, level=level)


def _scheduler(policy: str, clock=None, gated=None):
    sent, timers = Sent(), Timers()
    s = GlobalScheduler(policy, dispatch=sent, call_later=timers, pid_alive=lambda p: True,
                        **({"clock": clock} if clock else {}), **({"gated": gated} if gated else {}))  # fmt: skip
    return s, sent, timers


@pytest.mark.parametrize("gated, delay", [(True, HANDOVER_S), (False, UNGATED_HANDOVER_S)])
def test_up_hands_a_level_2_turn_over_resume_first(gated, delay):
    """The suspend waits the longer delay where the XQueue's gate stopped its launches."""
    now = [100.0]
    s, sent, timers = _scheduler("UP", clock=lambda: now[0], gated=lambda xqueue_id: gated)
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
    assert delay in [d for d, _, cancelled in timers.pending if not cancelled]
    timers.fire()  # the hand-over's delay passes
    assert sent.ops()[-1] == (holder, True) and s._handover.deferred == {}


def test_hpf_preempts_a_level_2_queue_at_once():
    s, sent, timers = _scheduler("HPF")
    fg, bg = 10 << 32 | 1, 20 << 32 | 1
    s.register(20, 0, "bg", 0, [_info(20, 2)], [])
    s.register(10, 0, "fg", 0, [_info(10, 2)], [H.PriorityHint(fg, 5)])
    assert (bg, True) in sent.ops() and s._handover.deferred == {}
