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


class BackToBack:
    """A queue that runs tasks of `task_s` of device time while resumed, going idle
    `gap_s` between two (the application waits for one task, then submits the next)."""

    def __init__(self, xqueue_id: int, task_s: float, gap_s: float) -> None:
        self.xqueue_id, self.task_s, self.gap_s = xqueue_id, task_s, gap_s
        self.left, self.idle_until, self.tasks, self.lane_s = task_s, -1.0, 0, 0.0

    def ready(self, now: float) -> bool:
        return now >= self.idle_until


def share_the_device(policy, loads: list[BackToBack], until: float, step: float = 5e-5) -> int:
    """Step `policy` over `loads` on one device; returns how often the lane changed hands.
    A queue resumed alone holds the lane (held while idle too); it works while ready."""
    now, holder, switches = 0.0, None, 0
    while now < until:
        ops = policy.schedule(status(now, *(xq(q.xqueue_id, ready=q.ready(now)) for q in loads)))
        running = resumed(ops)
        if len(running) == 1:
            (q,) = [q for q in loads if q.xqueue_id in running]
            switches += holder is not None and holder != q.xqueue_id
            holder = q.xqueue_id
            q.lane_s += step
            if q.ready(now):
                q.left -= step
                if q.left <= 1e-12:
                    q.left, q.idle_until, q.tasks = q.task_s, now + step + q.gap_s, q.tasks + 1
        now += step
    return switches


def test_up_keeps_the_credit_of_a_queue_idle_only_between_two_tasks():
    policy = UtilizationPartition()
    policy.on_hint(UtilizationHint(1, 75))
    policy.on_hint(UtilizationHint(2, 25))
    # queue 1: tasks of 2 ms, then 0.1 ms idle; queue 2 always has work
    a, b = BackToBack(1, 2e-3, 1e-4), BackToBack(2, 1.0, 0.0)
    share_the_device(policy, [a, b], until=2.0)
    assert a.lane_s / (a.lane_s + b.lane_s) == pytest.approx(0.75, abs=0.03)


@pytest.mark.parametrize("gap_s", [5e-5, 2e-4, 4e-4])
def test_up_hands_the_lane_over_per_slice_not_per_task(gap_s):
    """Two queues with tasks back to back, shorter than a slice: the holder's gap between
    two tasks does not give the lane away (anticipation), so the lane changes hands a few
    times per 4 slices (75/25), not at every task, and the shares hold."""
    policy = UtilizationPartition()
    policy.on_hint(UtilizationHint(1, 75))
    policy.on_hint(UtilizationHint(2, 25))
    a, b = BackToBack(1, 3.5e-3, gap_s), BackToBack(2, 3.5e-3, gap_s)
    switches = share_the_device(policy, [a, b], until=2.0)
    assert a.tasks / (a.tasks + b.tasks) == pytest.approx(0.75, abs=0.03)
    assert switches <= 2 * 2.0 / (5 * MS) * 0.6  # 2 changes per 4 slices, with room
    assert (a.tasks + b.tasks) * 3.5e-3 >= 0.85 * 2.0  # the device works between gaps


def test_up_waits_for_a_holder_back_within_its_usual_gap_and_no_longer():
    policy = UtilizationPartition()
    policy.on_hint(UtilizationHint(1, 75))
    policy.on_hint(UtilizationHint(2, 25))
    policy.on_hint(TimesliceHint(20_000))  # the hold, not the slice, ends the turn here
    t = 0.0
    for _ in range(4):  # alone, queue 1 shows its gap: 0.2 ms between tasks of 1 ms
        policy.schedule(status(t, xq(1), xq(2, ready=False)))
        policy.schedule(status(t + 1 * MS, xq(1, ready=False), xq(2, ready=False)))
        t += 1.2 * MS
    idle = t + 1 * MS
    policy.schedule(status(t, xq(1), xq(2)))
    ops = policy.schedule(status(idle, xq(1, ready=False), xq(2)))
    assert resumed(ops) == {1}  # held: queue 2 stays suspended
    hold_end = timer(ops)
    assert idle + 0.4 * MS < hold_end <= idle + 1 * MS
    assert resumed(policy.schedule(status(hold_end, xq(1, ready=False), xq(2)))) == {2}


def test_up_does_not_wait_for_a_holder_whose_gaps_are_long():
    policy = UtilizationPartition()
    policy.on_hint(UtilizationHint(1, 75))
    policy.on_hint(UtilizationHint(2, 25))
    t = 0.0
    for _ in range(4):  # periodic: 1 ms of work every 4 ms; queue 2 has nothing to do
        policy.schedule(status(t, xq(1), xq(2, ready=False)))
        policy.schedule(status(t + 1 * MS, xq(1, ready=False), xq(2, ready=False)))
        t += 4 * MS
    policy.schedule(status(t, xq(1), xq(2)))
    assert resumed(policy.schedule(status(t + 1 * MS, xq(1, ready=False), xq(2)))) == {2}
