"""Small builders for hand-made scheduling scenarios, shared by the policy tests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from xschedd.policy import (
    Operation,
    Policy,
    ProcessStatus,
    Resume,
    SetTimer,
    Status,
    Suspend,
    XQueueStatus,
)

MS = 1e-3


def xq(
    xqueue_id: int, *, pid: int = 1, device: str = "", ready: bool = True, since: float = 0.0
) -> XQueueStatus:
    """An XQueue; ready by default, ready since t=0."""
    return XQueueStatus(
        xqueue_id, pid=pid, device=device, ready=ready, ready_since=since if ready else None
    )


def status(now: float, *queues: XQueueStatus, processes: Iterable[ProcessStatus] = ()) -> Status:
    return Status(
        now=now,
        xqueues={q.xqueue_id: q for q in queues},
        processes={p.pid: p for p in processes},
    )


def resumed(ops: list[Operation]) -> set[int]:
    return {op.xqueue_id for op in ops if isinstance(op, Resume)}


def suspended(ops: list[Operation]) -> set[int]:
    return {op.xqueue_id for op in ops if isinstance(op, Suspend)}


def timer(ops: list[Operation]) -> float | None:
    timers = [op.at for op in ops if isinstance(op, SetTimer)]
    assert len(timers) <= 1, f"more than one SetTimer in {ops}"
    return timers[0] if timers else None


def drive(
    policy: Policy,
    queues: Iterable[XQueueStatus],
    *,
    start: float = 0.0,
    until: float,
    processes: Iterable[ProcessStatus] = (),
) -> dict[int, float]:
    """Run `policy` from `start` to `until`, waking it at each of its timers, with fixed
    readiness; return the device time each ready XQueue was resumed for."""
    queues, processes = list(queues), list(processes)
    got: dict[int, float] = defaultdict(float)
    now = start
    while now < until:
        ops = policy.schedule(status(now, *queues, processes=processes))
        at = timer(ops)
        nxt = until if at is None else min(at, until)
        assert nxt > now, f"timer {at} does not move past now={now}"
        for q in queues:
            if q.ready and q.xqueue_id in resumed(ops):
                got[q.xqueue_id] += nxt - now
        now = nxt
    return got
