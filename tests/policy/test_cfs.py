"""CFS: per device, the least virtual runtime runs; weights grow 1.2x per priority step."""

import pytest

from xschedd.policy.cfs import CompletelyFair
from xschedd.policy.hints import PRIORITY_NEVER, PriorityHint, TimesliceHint, UtilizationHint

from .scenario import MS, drive, resumed, status, timer, xq


def cfs(**priorities: int) -> CompletelyFair:
    policy = CompletelyFair()
    for name, priority in priorities.items():
        policy.on_hint(PriorityHint(int(name[1:]), priority))
    return policy


def test_equal_queues_alternate_each_time_slice():
    policy = cfs()
    queues = (xq(1), xq(2))
    ops = policy.schedule(status(0.0, *queues))
    assert resumed(ops) == {1}
    assert timer(ops) == 5 * MS
    assert resumed(policy.schedule(status(5 * MS, *queues))) == {2}
    assert resumed(policy.schedule(status(10 * MS, *queues))) == {1}


def test_equal_queues_get_equal_device_time():
    got = drive(cfs(), [xq(1), xq(2), xq(3)], until=0.3)
    assert [got[1], got[2], got[3]] == pytest.approx([0.1, 0.1, 0.1], abs=5 * MS)


@pytest.mark.parametrize("priority", [1, 5])
def test_a_queue_priority_steps_up_gets_1_2_to_that_power_more_time(priority):
    got = drive(cfs(q1=priority), [xq(1), xq(2)], until=2.0)
    assert got[1] / got[2] == pytest.approx(1.2**priority, rel=0.05)


def test_each_device_has_its_own_run_queue():
    ops = cfs().schedule(
        status(0.0, xq(1, device="gpu0"), xq(2, device="gpu0"), xq(3, device="gpu1"))
    )
    assert resumed(ops) == {1, 3}


def test_a_queue_waking_up_gets_no_credit_for_its_sleep():
    policy = cfs()
    drive(policy, [xq(1), xq(2, ready=False)], until=0.1)
    got = drive(policy, [xq(1), xq(2, since=0.1)], start=0.1, until=0.2)
    assert got[2] == pytest.approx(0.05, abs=5 * MS)


def test_idle_queues_are_held_while_their_device_is_busy_and_resumed_when_it_is_not():
    ops = cfs().schedule(
        status(
            0.0,
            xq(1, device="gpu0"),
            xq(2, device="gpu0", ready=False),
            xq(3, device="gpu1", ready=False),
        )
    )
    assert resumed(ops) == {1, 3}


def test_priority_never_does_not_run_even_alone():
    ops = cfs(q1=PRIORITY_NEVER).schedule(status(0.0, xq(1), xq(2, device="gpu1")))
    assert resumed(ops) == {2}


def test_the_time_slice_hint_sets_the_slice():
    policy = cfs()
    policy.on_hint(TimesliceHint(1000))
    assert timer(policy.schedule(status(0.0, xq(1), xq(2)))) == 1 * MS


def test_utilization_hints_belong_to_up_not_cfs():
    policy = cfs()
    policy.on_hint(UtilizationHint(1, 0))
    assert resumed(policy.schedule(status(0.0, xq(1), xq(2)))) == {1}
