"""KEDF: the k ready XQueues with the earliest absolute deadlines run."""

from xschedd.policy.hints import DeadlineHint, KDeadlineHint
from xschedd.policy.kedf import KEarliestDeadlineFirst

from .scenario import MS, resumed, status, timer, xq


def kedf(k: int = 1, **deadlines_ms: int) -> KEarliestDeadlineFirst:
    policy = KEarliestDeadlineFirst()
    policy.on_hint(KDeadlineHint(k))
    for name, deadline_ms in deadlines_ms.items():
        policy.on_hint(DeadlineHint(int(name[1:]), deadline_ms * 1000))
    return policy


def test_the_earliest_absolute_deadline_runs_not_the_shortest_relative_one():
    # q1: ready at 0 ms + 10 ms = 10 ms; q2: ready at 9 ms + 2 ms = 11 ms.
    ops = kedf(q1=10, q2=2).schedule(status(9 * MS, xq(1, since=0.0), xq(2, since=9 * MS)))
    assert resumed(ops) == {1}


def test_a_later_task_with_a_tighter_deadline_preempts():
    # q1: 0 + 10 = 10 ms; q2: 5 + 2 = 7 ms.
    ops = kedf(q1=10, q2=2).schedule(status(5 * MS, xq(1, since=0.0), xq(2, since=5 * MS)))
    assert resumed(ops) == {2}


def test_k_sets_how_many_queues_run_together():
    policy = kedf(k=2, q1=30, q2=10, q3=20)
    ops = policy.schedule(status(0.0, xq(1), xq(2), xq(3)))
    assert resumed(ops) == {2, 3}


def test_queues_without_a_deadline_run_only_after_those_with_one():
    ops = kedf(q2=1000).schedule(status(1.0, xq(1, since=0.0), xq(2, since=0.9)))
    assert resumed(ops) == {2}


def test_queues_without_a_deadline_go_in_the_order_they_became_ready():
    ops = kedf(k=1).schedule(status(1.0, xq(1, since=0.5), xq(2, since=0.2)))
    assert resumed(ops) == {2}


def test_while_fewer_than_k_are_ready_idle_queues_stay_resumed_for_a_fast_start():
    ops = kedf(k=2, q1=5).schedule(status(0.0, xq(1), xq(2, ready=False), xq(3, ready=False)))
    assert resumed(ops) == {1, 2, 3}


def test_once_k_are_ready_idle_queues_are_held():
    ops = kedf(k=1, q1=5).schedule(status(0.0, xq(1), xq(2, ready=False)))
    assert resumed(ops) == {1}


def test_a_deadline_hint_replaces_the_earlier_one():
    policy = kedf(q1=1, q2=5)
    policy.on_hint(DeadlineHint(1, 9000))
    assert resumed(policy.schedule(status(0.0, xq(1), xq(2)))) == {2}


def test_needs_no_timer_because_deadlines_do_not_move():
    assert timer(kedf(q1=5).schedule(status(0.0, xq(1), xq(2)))) is None
