"""The policy contract, for every registered policy, on random statuses and hints.

Every `schedule` answers each XQueue exactly once (Suspend or Resume), so switching
policy never strands a queue. Work conservation (a ready queue always has one running)
holds for every policy unless told otherwise, with two documented exceptions:
  - SPUP is strict: a process that spent its share of the window is held even on an idle
    device, and a process of utilization 0 never runs;
  - PRIORITY_NEVER (priority -256) never runs under HPF, HHPF, LAX and CFS.
The priority policies (HPF, HHPF, CHPF, KEDF, LAX, AWF) starve lower ranks by design;
the fair ones (UP, WRR, PUP, SPUP, CFS, MLFQ) keep giving every ready queue device time.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xschedd.policy import (
    POLICIES,
    ProcessStatus,
    Resume,
    SetTimer,
    Status,
    Suspend,
    XQueueStatus,
    make_policy,
)
from xschedd.policy.hints import (
    PRIORITY_MAX,
    PRIORITY_NEVER,
    DeadlineHint,
    Hint,
    KDeadlineHint,
    LaxityHint,
    PriorityHint,
    ProcessUtilizationHint,
    TimesliceHint,
    UtilizationHint,
    WindowActiveHint,
)

from .scenario import drive

NAMES = sorted(POLICIES)
PER_DEVICE = {"HPF", "CHPF", "CFS", "MLFQ"}  # each device is decided on its own
NEVER_HONOURED = {"HPF", "HHPF", "LAX", "CFS"}
FAIR = ["UP", "WRR", "PUP", "SPUP", "CFS", "MLFQ"]
IDS = st.integers(1, 6)  # few ids, so random hints land on the queues
PIDS = st.sampled_from([101, 102, 103])
DEVICES = st.sampled_from(["", "gpu0", "gpu1"])
FEW = settings(max_examples=40, deadline=None)


@st.composite
def statuses(draw: st.DrawFn, now: float | None = None) -> Status:
    now = draw(st.floats(0.0, 100.0)) if now is None else now
    queues = []
    for xqueue_id in draw(st.sets(IDS, max_size=6)):
        ready = draw(st.booleans())
        since = draw(st.none() | st.floats(0.0, now)) if ready else None
        queues.append(
            XQueueStatus(
                xqueue_id,
                pid=draw(PIDS),
                device=draw(DEVICES),
                ready=ready,
                suspended=draw(st.booleans()),
                ready_since=since,
            )
        )
    processes = [ProcessStatus(pid, nice=draw(st.integers(-20, 19))) for pid in draw(st.sets(PIDS))]
    return Status(now, {q.xqueue_id: q for q in queues}, {p.pid: p for p in processes})


def hints(lowest_priority: int = PRIORITY_NEVER, lowest_share: int = 0) -> st.SearchStrategy[Hint]:
    priority = st.integers(lowest_priority, PRIORITY_MAX)
    return st.one_of(
        st.builds(PriorityHint, IDS, priority),
        st.builds(UtilizationHint, IDS, st.integers(0, 100)),
        st.builds(ProcessUtilizationHint, PIDS, st.integers(lowest_share, 100)),
        st.builds(TimesliceHint, st.integers(100, 100_000)),
        st.builds(DeadlineHint, IDS, st.integers(1, 10**12)),
        st.builds(KDeadlineHint, st.integers(1, 4)),
        st.builds(LaxityHint, IDS, st.integers(1, 10**8), priority, priority),
        st.builds(WindowActiveHint, PIDS, st.booleans()),
    )


def check_answers_each_xqueue_once(status: Status, ops: list) -> None:
    decided = [op.xqueue_id for op in ops if isinstance(op, (Suspend, Resume))]
    assert sorted(decided) == sorted(status.xqueues)
    timers = [op for op in ops if isinstance(op, SetTimer)]
    assert len(timers) <= 1
    assert all(t.at > status.now for t in timers)


def ready_resumed(status: Status, ops: list) -> set[int]:
    return {
        op.xqueue_id for op in ops if isinstance(op, Resume) and status.xqueues[op.xqueue_id].ready
    }


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(
    given_hints=st.lists(hints(), max_size=8), steps=st.lists(statuses(), min_size=1, max_size=5)
)
def test_every_schedule_answers_each_xqueue_exactly_once(name, given_hints, steps):
    policy = make_policy(name)
    for hint in given_hints:
        policy.on_hint(hint)
    for status in sorted(steps, key=lambda s: s.now):
        check_answers_each_xqueue_once(status, policy.schedule(status))


@pytest.mark.parametrize("new", NAMES)
@settings(max_examples=60, deadline=None)
@given(
    old=st.sampled_from(NAMES),
    given_hints=st.lists(hints(lowest_priority=PRIORITY_NEVER + 1, lowest_share=1), max_size=10),
    status=statuses(),
)
def test_switching_policy_keeps_a_ready_queue_running(old, new, given_hints, status):
    before, after = make_policy(old), make_policy(new)
    for hint in given_hints:
        before.on_hint(hint)
        after.on_hint(hint)
    before.schedule(status)
    ops = after.schedule(status)
    check_answers_each_xqueue_once(status, ops)

    def lane(q: XQueueStatus) -> str:
        return q.device if new in PER_DEVICE else ""

    busy = {lane(q) for q in status.xqueues.values() if q.ready}
    running = {lane(status.xqueues[xq]) for xq in ready_resumed(status, ops)}
    assert running == busy, f"{new} after {old}: ready work but nothing running on {busy - running}"


@pytest.mark.parametrize("name", NAMES)
def test_priority_never_idles_exactly_the_documented_policies(name):
    policy = make_policy(name)
    for xqueue_id in (1, 2):
        policy.on_hint(PriorityHint(xqueue_id, PRIORITY_NEVER))
        policy.on_hint(LaxityHint(xqueue_id, 1000, PRIORITY_NEVER, PRIORITY_NEVER))
    queues = {i: XQueueStatus(i, pid=101, ready=True, ready_since=0.0) for i in (1, 2)}
    ops = policy.schedule(Status(1.0, queues))
    assert (ready_resumed(Status(1.0, queues), ops) == set()) == (name in NEVER_HONOURED)


@pytest.mark.parametrize("name", FAIR)
@settings(max_examples=15, deadline=None)
@given(status=statuses(now=0.0))
def test_fair_policies_keep_giving_every_ready_queue_device_time(name, status):
    policy = make_policy(name)
    queues = list(status.xqueues.values())
    drive(policy, queues, until=0.2)
    got = drive(policy, queues, start=0.2, until=0.4)
    starved = [q.xqueue_id for q in queues if q.ready and got.get(q.xqueue_id, 0.0) <= 0.0]
    assert not starved, f"{name} gave no device time to {starved} in 200 ms"


def test_every_xsched_policy_name_is_registered():
    xsched = {"HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF", "LAX", "AWF", "CFS", "MLFQ"}
    assert xsched | {"WRR"} == set(POLICIES)
