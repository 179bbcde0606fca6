"""PUP: processes share device time by utilization; all queues of a process run together."""

import pytest

from xschedd.policy.hints import ProcessUtilizationHint, UtilizationHint
from xschedd.policy.pup import ProcessUtilizationPartition

from .scenario import MS, drive, resumed, status, timer, xq


def pup(**shares: int) -> ProcessUtilizationPartition:
    policy = ProcessUtilizationPartition()
    for name, share in shares.items():
        policy.on_hint(ProcessUtilizationHint(int(name[1:]), share))
    return policy


def test_all_queues_of_the_running_process_resume_together_across_devices():
    ops = pup().schedule(
        status(
            0.0,
            xq(1, pid=10, device="gpu0"),
            xq(2, pid=10, device="gpu1", ready=False),
            xq(3, pid=20, device="gpu0"),
        )
    )
    assert resumed(ops) == {1, 2}
    assert timer(ops) == 5 * MS


def test_processes_take_turns_a_time_slice_each():
    policy = pup()
    queues = (xq(1, pid=10), xq(2, pid=20))
    assert resumed(policy.schedule(status(0.0, *queues))) == {1}
    assert resumed(policy.schedule(status(5 * MS, *queues))) == {2}
    assert resumed(policy.schedule(status(10 * MS, *queues))) == {1}


def test_device_time_follows_process_utilization():
    got = drive(pup(p10=75, p20=25), [xq(1, pid=10), xq(2, pid=20)], until=1.0)
    assert got[1] == pytest.approx(0.75, abs=0.01)
    assert got[2] == pytest.approx(0.25, abs=0.01)


def test_a_process_with_more_queues_gets_no_larger_share():
    queues = [xq(1, pid=10), xq(2, pid=10), xq(3, pid=10), xq(4, pid=20)]
    got = drive(pup(), queues, until=1.0)
    assert [got[1], got[2], got[3]] == pytest.approx([0.5, 0.5, 0.5], abs=0.01)
    assert got[4] == pytest.approx(0.5, abs=0.01)


def test_an_idle_process_leaves_its_share_to_the_ready_ones():
    got = drive(pup(p10=75, p20=25), [xq(1, pid=10, ready=False), xq(2, pid=20)], until=1.0)
    assert got[2] == pytest.approx(1.0)


def test_a_process_of_utilization_zero_runs_only_when_no_other_is_ready():
    policy = pup(p10=0)
    assert resumed(policy.schedule(status(0.0, xq(1, pid=10), xq(2, pid=20)))) == {2}
    assert resumed(policy.schedule(status(1.0, xq(1, pid=10), xq(2, pid=20, ready=False)))) == {1}


def test_xqueue_utilization_hints_belong_to_up_not_pup():
    policy = pup()
    policy.on_hint(UtilizationHint(1, 0))
    got = drive(policy, [xq(1, pid=10), xq(2, pid=20)], until=1.0)
    assert got[1] == pytest.approx(0.5, abs=0.01)
