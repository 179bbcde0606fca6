"""UP and WRR, the XQueue-level time-sharing policies, on the shared TimeSharing base."""

import pytest

from xschedd.policy.hints import TimesliceHint, UtilizationHint
from xschedd.policy.up import UtilizationPartition
from xschedd.policy.wrr import WeightedRoundRobin

from .scenario import MS, drive, resumed, status, timer, xq


def test_up_device_time_follows_utilization():
    policy = UtilizationPartition()
    policy.on_hint(UtilizationHint(1, 75))
    policy.on_hint(UtilizationHint(2, 25))
    got = drive(policy, [xq(1), xq(2)], until=1.0)
    assert got[1] == pytest.approx(0.75, abs=0.01)


def test_up_runs_one_queue_at_a_time_across_devices():
    ops = UtilizationPartition().schedule(status(0.0, xq(1, device="gpu0"), xq(2, device="gpu1")))
    assert resumed(ops) == {1}


def test_up_resumes_every_queue_when_none_is_ready():
    ops = UtilizationPartition().schedule(status(0.0, xq(1, ready=False), xq(2, ready=False)))
    assert resumed(ops) == {1, 2}
    assert timer(ops) is None


def test_wrr_turns_go_in_id_order_and_last_timeslice_times_share():
    policy = WeightedRoundRobin()
    policy.on_hint(UtilizationHint(2, 50))
    policy.on_hint(TimesliceHint(10_000))
    queues = (xq(1), xq(2), xq(3))
    ops = policy.schedule(status(0.0, *queues))
    assert (resumed(ops), timer(ops)) == ({1}, 10 * MS)
    ops = policy.schedule(status(10 * MS, *queues))
    assert (resumed(ops), timer(ops)) == ({2}, 15 * MS)
    assert resumed(policy.schedule(status(15 * MS, *queues))) == {3}
    assert resumed(policy.schedule(status(25 * MS, *queues))) == {1}


def test_up_keeps_the_credit_of_a_queue_idle_only_between_two_tasks():
    policy = UtilizationPartition()
    policy.on_hint(UtilizationHint(1, 75))
    policy.on_hint(UtilizationHint(2, 25))
    shares = {1: 0.0, 2: 0.0}
    step = 1e-4
    work_left, idle_until = 2e-3, -1.0  # queue 1: tasks of 2 ms, then 0.1 ms idle
    now = 0.0
    while now < 2.0:
        ready1 = now >= idle_until
        ops = policy.schedule(status(now, xq(1, ready=ready1), xq(2)))
        holder = min(resumed(ops)) if ready1 and resumed(ops) == {1} else 2
        shares[holder] += step
        if holder == 1:
            work_left -= step
            if work_left <= 1e-12:
                work_left, idle_until = 2e-3, now + step + 1e-4
        now += step
    assert shares[1] / (shares[1] + shares[2]) == pytest.approx(0.75, abs=0.03)
