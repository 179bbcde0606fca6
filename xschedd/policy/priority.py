"""What the priority policies (HPF, HHPF, CHPF, LAX, AWF) share: the top ready priority runs."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from xschedd.policy.base import Status, XQueueStatus
from xschedd.policy.hints import PRIORITY_NEVER

# The lane of the per-device policies (HPF, CHPF): one C call per XQueue, not a lambda.
by_device: Callable[[XQueueStatus], str] = attrgetter("device")


def top_priority(
    status: Status,
    priority_of: Callable[[XQueueStatus], int],
    lane_of: Callable[[XQueueStatus], str] | None = None,
) -> list[int]:
    """The XQueues to resume: in each lane, those whose priority is at least the lane's
    highest ready priority (no `lane_of`: one lane for all).

    Idle XQueues of that priority stay resumed so their next command starts at once; a
    lane with nothing ready resumes all its XQueues; PRIORITY_NEVER is always suspended.
    One call of each function per XQueue: this runs on every decision of the daemon.
    """
    queues = status.xqueues.values()
    lanes = [lane_of(q) for q in queues] if lane_of is not None else [""] * len(queues)
    rows = [(q.xqueue_id, priority_of(q), lane, q.ready) for q, lane in zip(queues, lanes)]
    top: dict[str, int] = {}
    for _, priority, lane, ready in rows:
        if ready and priority > top.get(lane, PRIORITY_NEVER):
            top[lane] = priority
    floor = PRIORITY_NEVER + 1  # a lane with nothing ready: everything but NEVER runs
    return [
        xqueue_id
        for xqueue_id, priority, lane, _ in rows
        if priority != PRIORITY_NEVER and priority >= top.get(lane, floor)
    ]
