"""MLFQ: new queues start on top, a used-up allotment sinks a level, a periodic boost lifts all."""

import pytest

from xschedd.policy.hints import TimesliceHint
from xschedd.policy.mlfq import MultiLevelFeedbackQueue

from .scenario import MS, drive, resumed, status, timer, xq


def test_a_new_queue_starts_on_the_top_level_with_the_shortest_allotment():
    policy = MultiLevelFeedbackQueue()
    ops = policy.schedule(status(0.0, xq(1)))
    assert resumed(ops) == {1}
    assert policy.level(1) == 0
    assert timer(ops) == 5 * MS


def test_using_up_the_allotment_drops_a_level_and_doubles_the_next_one():
    policy = MultiLevelFeedbackQueue()
    drive(policy, [xq(1)], until=5 * MS)
    ops = policy.schedule(status(5 * MS, xq(1)))
    assert policy.level(1) == 1
    assert timer(ops) == pytest.approx(15 * MS)


def test_the_bottom_level_is_as_low_as_a_queue_goes():
    policy = MultiLevelFeedbackQueue(levels=3)
    drive(policy, [xq(1)], until=90 * MS)
    assert policy.level(1) == 2


def test_a_new_queue_preempts_a_sunk_long_runner_at_once():
    policy = MultiLevelFeedbackQueue()
    drive(policy, [xq(1)], until=20 * MS)
    ops = policy.schedule(status(20 * MS, xq(1), xq(2, since=20 * MS)))
    assert resumed(ops) == {2}


def test_within_a_level_the_first_come_runs_first_until_its_allotment_ends():
    policy = MultiLevelFeedbackQueue()
    queues = (xq(1), xq(2))
    assert resumed(policy.schedule(status(0.0, *queues))) == {1}
    assert resumed(policy.schedule(status(2 * MS, *queues))) == {1}
    assert resumed(policy.schedule(status(5 * MS, *queues))) == {2}


def test_short_bursts_add_up_so_they_cannot_keep_the_top_level():
    policy = MultiLevelFeedbackQueue()
    policy.schedule(status(0.0, xq(1)))
    policy.schedule(status(3 * MS, xq(1, ready=False)))
    policy.schedule(status(10 * MS, xq(1, since=10 * MS)))
    policy.schedule(status(12 * MS, xq(1, since=10 * MS)))
    assert policy.level(1) == 1


def test_the_periodic_boost_lifts_every_queue_back_to_the_top():
    policy = MultiLevelFeedbackQueue(boost_period_s=0.05)
    drive(policy, [xq(1)], until=49 * MS)  # 5 + 10 + 20 ms used: level 3
    assert policy.level(1) == 3
    policy.schedule(status(50 * MS, xq(1)))
    assert policy.level(1) == 0


def test_a_sunk_queue_gets_the_device_by_the_boost_at_the_latest():
    policy = MultiLevelFeedbackQueue(boost_period_s=0.05)
    drive(policy, [xq(1)], until=40 * MS)
    ops = policy.schedule(status(40 * MS, xq(1), xq(2, since=40 * MS)))
    assert resumed(ops) == {2}
    assert timer(ops) <= 50 * MS
    assert resumed(policy.schedule(status(50 * MS, xq(1), xq(2, since=40 * MS)))) == {1}


def test_each_device_runs_its_own_best_queue():
    ops = MultiLevelFeedbackQueue().schedule(
        status(0.0, xq(1, device="gpu0"), xq(2, device="gpu0"), xq(3, device="gpu1"))
    )
    assert resumed(ops) == {1, 3}


def test_the_time_slice_hint_sets_the_top_allotment():
    policy = MultiLevelFeedbackQueue()
    policy.on_hint(TimesliceHint(1000))
    assert timer(policy.schedule(status(0.0, xq(1)))) == 1 * MS
