"""What the priority policies (HPF, HHPF, CHPF, LAX, AWF) share: the top ready priority runs."""

from __future__ import annotations

from collections.abc import Callable

from xschedd.policy.base import Status, XQueueStatus
from xschedd.policy.hints import PRIORITY_NEVER


def top_priority(
    status: Status,
    priority_of: Callable[[XQueueStatus], int],
    lane_of: Callable[[XQueueStatus], str] = lambda q: "",
) -> list[int]:
    """The XQueues to resume: in each lane, those whose priority is at least the lane's
    highest ready priority.

    Idle XQueues of that priority stay resumed so their next command starts at once; a
    lane with nothing ready resumes all its XQueues; PRIORITY_NEVER is always suspended.
    """
    priorities = {q.xqueue_id: priority_of(q) for q in status.xqueues.values()}
    top: dict[str, int] = {}
    for q in status.xqueues.values():
        priority = priorities[q.xqueue_id]
        if q.ready and priority != PRIORITY_NEVER:
            lane = lane_of(q)
            top[lane] = max(top.get(lane, priority), priority)
    return [
        q.xqueue_id
        for q in status.xqueues.values()
        if priorities[q.xqueue_id] != PRIORITY_NEVER
        and priorities[q.xqueue_id] >= top.get(lane_of(q), PRIORITY_NEVER + 1)
    ]
