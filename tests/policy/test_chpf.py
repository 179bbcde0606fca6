"""CHPF: an XQueue's priority is its owning process's CPU priority (lower nice runs first)."""

from xschedd.policy import ProcessStatus
from xschedd.policy.chpf import CpuHighestPriorityFirst
from xschedd.policy.hints import PRIORITY_MAX, PRIORITY_NEVER, PriorityHint

from .scenario import resumed, status, xq

NICE_PROCS = [ProcessStatus(10, nice=-5), ProcessStatus(20, nice=0), ProcessStatus(30, nice=10)]


def test_the_queue_of_the_lowest_nice_process_runs():
    ops = CpuHighestPriorityFirst().schedule(
        status(0.0, xq(1, pid=20), xq(2, pid=10), xq(3, pid=30), processes=NICE_PROCS)
    )
    assert resumed(ops) == {2}


def test_renicing_a_process_changes_the_order_on_the_next_schedule():
    policy = CpuHighestPriorityFirst()
    queues = (xq(1, pid=10), xq(2, pid=20))
    assert resumed(policy.schedule(status(0.0, *queues, processes=NICE_PROCS))) == {1}
    reniced = [ProcessStatus(10, nice=19), ProcessStatus(20, nice=0)]
    assert resumed(policy.schedule(status(0.1, *queues, processes=reniced))) == {2}


def test_all_queues_of_one_process_share_its_priority():
    ops = CpuHighestPriorityFirst().schedule(
        status(0.0, xq(1, pid=10), xq(2, pid=10), xq(3, pid=20), processes=NICE_PROCS)
    )
    assert resumed(ops) == {1, 2}


def test_each_device_is_decided_on_its_own():
    ops = CpuHighestPriorityFirst().schedule(
        status(
            0.0,
            xq(1, pid=10, device="gpu0"),
            xq(2, pid=30, device="gpu0"),
            xq(3, pid=30, device="gpu1"),
            processes=NICE_PROCS,
        )
    )
    assert resumed(ops) == {1, 3}


def test_a_process_missing_from_the_status_counts_as_nice_zero():
    ops = CpuHighestPriorityFirst().schedule(
        status(0.0, xq(1, pid=99), xq(2, pid=30), xq(3, pid=10), processes=NICE_PROCS)
    )
    assert resumed(ops) == {3}
    ops = CpuHighestPriorityFirst().schedule(
        status(0.0, xq(1, pid=99), xq(2, pid=20), processes=NICE_PROCS)
    )
    assert resumed(ops) == {1, 2}


def test_priority_hints_are_ignored_so_renice_is_the_one_knob():
    policy = CpuHighestPriorityFirst()
    policy.on_hint(PriorityHint(2, PRIORITY_MAX))
    policy.on_hint(PriorityHint(1, PRIORITY_NEVER))
    ops = policy.schedule(status(0.0, xq(1, pid=10), xq(2, pid=30), processes=NICE_PROCS))
    assert resumed(ops) == {1}
