"""AWF: XQueues of processes owning an active window run first."""

from xschedd.policy.awf import ActiveWindowFirst
from xschedd.policy.hints import WindowActiveHint

from .scenario import resumed, status, timer, xq


def awf(*active: int) -> ActiveWindowFirst:
    policy = ActiveWindowFirst()
    for pid in active:
        policy.on_hint(WindowActiveHint(pid, True))
    return policy


def test_only_the_active_process_runs_while_it_has_work():
    ops = awf(10).schedule(status(0.0, xq(1, pid=10), xq(2, pid=20), xq(3, pid=30)))
    assert resumed(ops) == {1}


def test_idle_queues_of_the_active_process_stay_resumed():
    ops = awf(10).schedule(status(0.0, xq(1, pid=10), xq(2, pid=10, ready=False), xq(3, pid=20)))
    assert resumed(ops) == {1, 2}


def test_background_processes_run_when_the_active_one_is_idle():
    ops = awf(10).schedule(status(0.0, xq(1, pid=10, ready=False), xq(2, pid=20), xq(3, pid=30)))
    assert resumed(ops) == {1, 2, 3}


def test_without_any_active_window_every_queue_runs():
    ops = awf().schedule(status(0.0, xq(1, pid=10), xq(2, pid=20)))
    assert resumed(ops) == {1, 2}


def test_losing_focus_makes_a_process_background_again():
    policy = awf(10, 20)
    queues = (xq(1, pid=10), xq(2, pid=20), xq(3, pid=30))
    assert resumed(policy.schedule(status(0.0, *queues))) == {1, 2}
    policy.on_hint(WindowActiveHint(10, False))
    assert resumed(policy.schedule(status(0.1, *queues))) == {2}


def test_needs_no_timer():
    assert timer(awf(10).schedule(status(0.0, xq(1, pid=10), xq(2, pid=20)))) is None
