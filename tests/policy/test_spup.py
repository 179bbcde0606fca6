"""SPUP: a process never runs more than its share of each window, even on an idle device."""

import pytest

from xschedd.policy.hints import ProcessUtilizationHint, TimesliceHint
from xschedd.policy.spup import StrictProcessUtilizationPartition

from .scenario import MS, drive, resumed, status, timer, xq


def spup(**shares: int) -> StrictProcessUtilizationPartition:
    policy = StrictProcessUtilizationPartition()
    for name, share in shares.items():
        policy.on_hint(ProcessUtilizationHint(int(name[1:]), share))
    return policy


def test_a_capped_process_is_held_after_its_share_even_when_alone():
    policy = spup(p10=30)
    alone = xq(1, pid=10)
    ops = policy.schedule(status(0.0, alone))
    assert resumed(ops) == {1}
    assert timer(ops) == pytest.approx(1.5 * MS)
    ops = policy.schedule(status(1.5 * MS, alone))
    assert resumed(ops) == set()
    assert timer(ops) == pytest.approx(5 * MS)  # the next window
    assert resumed(policy.schedule(status(5 * MS, alone))) == {1}


def test_over_many_windows_a_capped_process_gets_exactly_its_share():
    got = drive(spup(p10=30), [xq(1, pid=10)], until=1.0)
    assert got[1] == pytest.approx(0.3, abs=1e-6)


def test_caps_below_full_leave_the_rest_of_the_device_idle():
    got = drive(spup(p10=30, p20=20), [xq(1, pid=10), xq(2, pid=20)], until=1.0)
    assert got[1] == pytest.approx(0.3, abs=1e-6)
    assert got[2] == pytest.approx(0.2, abs=1e-6)


def test_caps_adding_up_to_more_than_the_device_are_scaled_to_fit():
    got = drive(spup(), [xq(1, pid=10), xq(2, pid=20)], until=1.0)  # 100 % + 100 %
    assert got[1] == pytest.approx(0.5, abs=1e-6)
    assert got[2] == pytest.approx(0.5, abs=1e-6)


def test_a_process_of_utilization_zero_never_runs():
    got = drive(spup(p10=0), [xq(1, pid=10)], until=0.1)
    assert got[1] == 0.0


def test_the_time_slice_hint_sets_the_window():
    policy = spup(p10=50)
    policy.on_hint(TimesliceHint(20_000))
    assert timer(policy.schedule(status(0.0, xq(1, pid=10)))) == pytest.approx(10 * MS)


def test_queues_of_a_process_with_budget_left_stay_resumed_while_others_are_held():
    policy = spup(p10=30)
    policy.schedule(status(0.0, xq(1, pid=10), xq(2, pid=20, ready=False)))
    ops = policy.schedule(status(1.5 * MS, xq(1, pid=10), xq(2, pid=20, ready=False)))
    assert resumed(ops) == {2}


def test_a_turn_never_outlasts_the_window_it_started_in():
    policy = spup()  # 100 % each, two processes: 2.5 ms of each 5 ms window
    policy.schedule(status(0.0, xq(1, pid=10), xq(2, pid=20, ready=False)))
    policy.schedule(status(2.5 * MS, xq(1, pid=10), xq(2, pid=20, ready=False)))
    ops = policy.schedule(status(4 * MS, xq(1, pid=10), xq(2, pid=20, since=4 * MS)))
    assert resumed(ops) == {2}
    assert timer(ops) == pytest.approx(5 * MS)  # 1 ms of its 2.5 ms, then a new window


def test_a_scheduler_that_slept_through_windows_starts_a_fresh_one():
    policy = spup(p10=50)
    policy.schedule(status(0.0, xq(1, pid=10)))
    ops = policy.schedule(status(1.0, xq(1, pid=10)))
    assert resumed(ops) == {1}
    assert timer(ops) == pytest.approx(1.0 + 2.5 * MS)
