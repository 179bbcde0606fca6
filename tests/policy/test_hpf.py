"""HPF: highest priority first, decided for each device on its own (as in XSched)."""

from xschedd.policy.hpf import HighestPriorityFirst
from xschedd.policy.hints import PRIORITY_NEVER, PriorityHint

from .scenario import resumed, status, suspended, timer, xq


def hpf(**priorities: int) -> HighestPriorityFirst:
    policy = HighestPriorityFirst()
    for name, priority in priorities.items():
        policy.on_hint(PriorityHint(int(name[1:]), priority))
    return policy


def test_each_device_runs_its_own_top_priority_queue():
    policy = hpf(q1=5, q2=1, q3=1, q4=0)
    ops = policy.schedule(
        status(
            0.0,
            xq(1, device="gpu0"),
            xq(2, device="gpu0"),
            xq(3, device="npu0"),
            xq(4, device="npu0"),
        )
    )
    assert resumed(ops) == {1, 3}
    assert suspended(ops) == {2, 4}


def test_urgent_work_on_one_device_does_not_hold_back_another_device():
    policy = hpf(q1=255, q2=-255)
    ops = policy.schedule(status(0.0, xq(1, device="gpu0"), xq(2, device="gpu1")))
    assert resumed(ops) == {1, 2}


def test_queues_of_equal_top_priority_share_their_device():
    policy = hpf(q1=3, q2=3, q3=0)
    ops = policy.schedule(
        status(0.0, xq(1, device="gpu0"), xq(2, device="gpu0"), xq(3, device="gpu0"))
    )
    assert resumed(ops) == {1, 2}


def test_an_idle_higher_priority_queue_stays_resumed_to_start_at_once():
    policy = hpf(q1=9, q2=0)
    ops = policy.schedule(status(0.0, xq(1, device="gpu0", ready=False), xq(2, device="gpu0")))
    assert resumed(ops) == {1, 2}


def test_idle_lower_priority_queue_is_held_while_its_device_is_busy():
    policy = hpf(q1=9, q2=0)
    ops = policy.schedule(status(0.0, xq(1, device="gpu0"), xq(2, device="gpu0", ready=False)))
    assert resumed(ops) == {1}


def test_a_device_with_nothing_ready_resumes_all_its_queues():
    policy = hpf(q1=9, q2=0, q3=5)
    ops = policy.schedule(
        status(
            0.0,
            xq(1, device="gpu0"),
            xq(2, device="gpu1", ready=False),
            xq(3, device="gpu1", ready=False),
        )
    )
    assert resumed(ops) == {1, 2, 3}


def test_priority_never_stays_suspended_even_alone_on_its_device():
    policy = hpf(q1=PRIORITY_NEVER)
    ops = policy.schedule(status(0.0, xq(1, device="gpu0"), xq(2, device="gpu1")))
    assert suspended(ops) == {1}
    assert resumed(ops) == {2}


def test_needs_no_timer():
    assert timer(hpf().schedule(status(0.0, xq(1), xq(2)))) is None


def test_hhpf_holds_lower_priority_work_on_every_device():
    from xschedd.policy.hhpf import HeterogeneousHighestPriorityFirst

    policy = HeterogeneousHighestPriorityFirst()
    policy.on_hint(PriorityHint(1, 255))
    policy.on_hint(PriorityHint(2, -255))
    ops = policy.schedule(status(0.0, xq(1, device="gpu0"), xq(2, device="gpu1")))
    assert resumed(ops) == {1}
    assert suspended(ops) == {2}
